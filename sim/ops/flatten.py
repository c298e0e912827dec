r"""``flatten`` in the simulator: a reshape of each step ``[N, ...]`` from ``start_dim`` to ``end_dim``.

Written from the manifest spec (``docs/EXPORT_FORMAT.md``); no code is shared with
:mod:`hwsnn.fixed`. The op takes a chunk ``x`` ``[Tc, N, *input_shape]`` of integers and returns
``[Tc, N, *output_shape]`` of the input's dtype (``torch.flatten(step, start_dim, end_dim)``).

**Counting model**: routing, ``synaptic_events = neuron_updates = words_read = 0`` and
``saturations[t] = 0`` (it never computes).
"""

from __future__ import annotations

from .base import Op, register_op
from .chunk import check_chunk

__all__ = ["FlattenOp"]


@register_op("flatten")
class FlattenOp(Op):
    """``flatten``: ``torch.flatten(step, start_dim, end_dim)`` of one step ``[N, ...]``."""

    kind = "flatten"

    def run(self, x, t0: int, record_states: bool = False):
        x = check_chunk(self, x)
        self.new_counters(x.shape[0])
        return x.reshape(x.shape[0], self.batch, *self.output_shape), {}
