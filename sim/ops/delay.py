r"""``delay`` in the simulator: :math:`y[t] = x[t - d]`, zeros for :math:`t < d`.

Written from the manifest spec (``docs/EXPORT_FORMAT.md``) and the twin's documented equation;
no code is shared with :mod:`hwsnn.fixed`. The op takes a chunk ``x`` ``[Tc, N, *input_shape]``
of integers and returns ``[Tc, N, *input_shape]`` of the input's dtype.

**Delay FIFO.** A ring buffer ``[d, N, *shape]`` with a head pointer: each step reads
``fifo[head]`` as the output, writes the input there and advances ``head = (head+1) mod d``;
zeros at :meth:`reset`; it carries across chunks. ``d = 0`` is a wire (the identity, no FIFO).

**Counting model** (``self.counters``, per step and core block ``b`` of the output elements):
``d > 0``: ``neuron_updates[t, b] = N * |b|`` (every FIFO element shifts once per step) and
``words_read = neuron_updates`` (one state word each); ``d = 0``: all zeros (a wire).
``synaptic_events = 0`` and ``saturations[t] = 0`` always.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .base import Op, register_op
from .chunk import check_chunk

__all__ = ["DelayOp"]


@register_op("delay")
class DelayOp(Op):
    """``delay``: ring buffer of depth ``d`` per element, ``y[t] = x[t - d]`` (module docstring)."""

    kind = "delay"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.d = spec.delay_steps
        self.fifo: Optional[np.ndarray] = None
        self.head = 0

    def reset(self) -> None:
        self.fifo = None
        self.head = 0

    def run(self, x, t0: int, record_states: bool = False):
        x = check_chunk(self, x)
        tc, d = x.shape[0], self.d
        self.new_counters(tc)
        if d == 0:
            return x, {}
        if self.fifo is None:
            self.fifo = np.zeros((d, *x.shape[1:]), x.dtype)
        elif not np.can_cast(x.dtype, self.fifo.dtype, "safe"):
            self.fifo = self.fifo.astype(np.result_type(self.fifo.dtype, x.dtype))
        fifo, h = self.fifo, self.head
        y = np.empty((tc, *x.shape[1:]), fifo.dtype)
        # Steps t < d read slots written before this chunk; later steps read this chunk's x[t - d].
        k = min(tc, d)
        y[:k] = fifo[(h + np.arange(k)) % d]
        if tc > d:
            y[d:] = x[: tc - d]
        # Write: step t goes to slot (h + t) mod d; only the last min(tc, d) writes survive.
        ts = np.arange(tc - k, tc)
        fifo[(h + ts) % d] = x[tc - k :]
        self.head = (h + tc) % d
        self.count_updates(1)  # one state word per element
        return y, {}
