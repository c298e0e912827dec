r"""``output_code`` in the simulator: class scores of an output code, decoded off the chip.

Written from the manifest spec (``docs/EXPORT_FORMAT.md``, :mod:`targets.bundle.output_code`);
no code is shared with :mod:`hwsnn.fixed`. The op takes a chunk ``x`` ``[Tc, N, ..., M]`` of
integers (the readout's spikes) and returns ``[Tc, N, ..., K]`` as ``int64``:

.. math::
    s_k = \mathrm{ovf}\Big(\sum_{j<M} x_j \;[C_{kj} = 1] \;-\; \sum_{j<M} x_j \;[C_{kj} = 0]\Big),

i.e. the readouts a codeword wants on count for the class, the others against it. ``ovf`` is
the target's accumulator overflow (:mod:`.chunk`), counted as ``saturations['accumulator']``.
The class decided off the chip is :math:`\arg\max_k \sum_t s_k[t]`, the nearest codeword to the
readout counts (the proof is in :mod:`targets.bundle.output_code`).

**Counting model**: runs off the chip, so ``synaptic_events = neuron_updates = words_read = 0``;
``saturations[t]``: accumulator values brought into range at step ``t``.

**Exactness.** Sums of at most ``M`` terms in ``int64``; inputs with
:math:`\max|x| \cdot M \ge 2^{63}` are refused rather than wrapped.
"""

from __future__ import annotations

import numpy as np

from .. import arith
from .base import Op, register_op
from .chunk import accumulator_overflow, check_chunk

__all__ = ["OutputCodeOp"]


@register_op("output_code")
class OutputCodeOp(Op):
    """``output_code``: scores of the codewords (module docstring)."""

    kind = "output_code"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        code = np.asarray(spec.codebook, np.int64)
        self.on = (code == 1).T.astype(np.int64)   # [M, K]: readout j is in codeword k
        self.off = (code == 0).T.astype(np.int64)  # [M, K]: readout j is not
        self.m = code.shape[1]

    def run(self, x, t0: int, record_states: bool = False):
        x = check_chunk(self, x)
        self.new_counters(x.shape[0])
        if arith.max_abs(x) * self.m >= arith.I64_LIMIT:
            raise self.error(f"inputs up to {arith.max_abs(x)} summed over {self.m} readouts would overflow int64")
        a = arith.as_i64(x)
        s = np.einsum("...j,jk->...k", a, self.on) - np.einsum("...j,jk->...k", a, self.off)
        return accumulator_overflow(self, s), {}
