r"""``voting`` in the simulator: sums over groups of ``voting_size`` in the last dim.

Written from the manifest spec (``docs/EXPORT_FORMAT.md``) and the twin's documented equation;
no code is shared with :mod:`hwsnn.fixed`. The op takes a chunk ``x`` ``[Tc, N, ..., C v]`` of
integers and returns ``[Tc, N, ..., C]`` as ``int64``:

.. math::
    s_c = \mathrm{ovf}\Big(\sum_{k<v} x_{cv+k}\Big),

then :math:`s_c \gg \log_2 v` (floor) when ``shift``.

``ovf`` is the target's accumulator overflow (:mod:`.chunk`), counted as
``saturations['accumulator']``. In float terms the sum stands for :math:`v \cdot` the mean: the
division is an exponent change (output exponent :math:`e_{in} - \log_2 v`) unless ``shift`` asks
for the hardware right shift (output exponent :math:`e_{in}`) (:mod:`.sumdivide`).

**Counting model**: routing, ``synaptic_events = neuron_updates = words_read = 0``;
``saturations[t]``: accumulator values brought into range at step ``t``.

**Exactness.** Sums are exact ``int64`` sums of at most ``v`` terms; the op refuses inputs with
:math:`\max|x| \cdot v \ge 2^{63}` rather than let ``int64`` wrap.
"""

from __future__ import annotations

from .. import arith
from .base import register_op
from .chunk import check_chunk
from .sumdivide import SumDivideOp

__all__ = ["VotingOp"]


@register_op("voting")
class VotingOp(SumDivideOp):
    """``voting``: sums over groups of ``voting_size`` in the last dim (module docstring)."""

    kind = "voting"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.v = spec.voting_size
        self._init_divide()

    def run(self, x, t0: int, record_states: bool = False):
        x = check_chunk(self, x)
        self.new_counters(x.shape[0])
        if arith.max_abs(x) * self.v >= arith.I64_LIMIT:
            raise self.error(f"inputs up to {arith.max_abs(x)} summed in groups of {self.v} would overflow int64")
        s = arith.as_i64(x).reshape(*x.shape[:-1], x.shape[-1] // self.v, self.v).sum(axis=-1)
        return self._finish(s), {}
