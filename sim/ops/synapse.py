r"""The synapse filter of the simulator: manifest op ``synapse_filter``.

Written from ``docs/EXPORT_FORMAT.md`` and the target specs; it must match the torch twin
``hwsnn.fixed.synapse.FixedSynapseFilter`` bit for bit, with no code shared.

==================================================  ==================================================
float                                               integer rule, :math:`\tau = 2^k`, state :math:`I`
==================================================  ==================================================
:math:`I \leftarrow I - (1 - S)\,I/\tau + S`        :math:`I \leftarrow \mathrm{ovf}(I + \mathit{one})` where :math:`S = 1`,
                                                    :math:`\mathrm{ovf}(I - D(I))` where :math:`S = 0`
real current :math:`I`                              :math:`I_{int}\,2^{e}`, :math:`\mathit{one} = 2^{-e}` (``state_exponent`` :math:`e \le 0`)
==================================================  ==================================================

:math:`S` must be 0/1. Decay: ``shift`` targets :math:`D(I, k)` with the target's rounding (floor;
Xylo ``xylo_min1``); ``mul12`` targets (Loihi): :math:`I - D = \mathrm{sign}(p)(|p| \gg 12)`,
:math:`p = I\,(4096 - \mathit{decay\_factor})`, ``decay_factor = 4096 >> k``. Overflow: the target's
current width and mode, counted in ``saturations['out_i']``. The output is the state itself
(int64, exponent :math:`e`), recorded as ``out_i``.

Counting model (per step, per block of output elements, summed over the batch):
``neuron_updates = N * block size``, ``words_read = neuron_updates`` (one state word),
``synaptic_events = 0``, ``saturations[t]`` = states brought into range in step ``t``.
"""

from __future__ import annotations

import numpy as np

from .. import arith as A
from .base import Op, register_op

__all__ = ["SynapseFilterOp"]


@register_op("synapse_filter")
class SynapseFilterOp(Op):
    """``synapse_filter`` (see the module docstring); output shape = input shape."""

    kind = "synapse_filter"
    state_names = ("out_i",)

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.k, self.one, self.decay_factor = spec.k, spec.one, spec.decay_factor
        self.mul12 = self.target.decay.mechanism == "mul12"
        self.reset()

    def reset(self) -> None:
        self.out_i = np.zeros((self.batch, *self.input_shape), np.int64)

    def states(self) -> dict[str, np.ndarray]:
        return {"out_i": self.out_i.copy()}

    def _decayed(self, i: np.ndarray) -> np.ndarray:
        """:math:`I - D(I)` by the target's rule."""
        r = self.target.decay.rounding
        if self.mul12:
            return A.mul12(i, self.decay_factor, r)
        return i - A.decay_amount(i, self.k, r)

    def run(self, x, t0: int, record_states: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        a = np.asarray(x)
        full = (self.batch, *self.input_shape)
        if a.dtype.kind not in "iub":
            raise self.error(f"expects 0/1 integer (or bool) spikes; got dtype {a.dtype}")
        if a.ndim < 2 or a.shape[1:] != full:
            raise self.error(f"expects input [Tc, {', '.join(map(str, full))}]; got {list(a.shape)}")
        if a.dtype.kind != "b":
            bad = (a != 0) & (a != 1)
            if bad.any():
                raise self.error(f"the synapse filter takes binary spikes (0/1); got value {int(a[bad].flat[0])} "
                                 f"({int(np.count_nonzero(bad))} non-binary value(s))")
        spk = a.astype(bool)
        tc = a.shape[0]
        self.new_counters(tc)
        w, mode = self.target.widths.current, self.target.overflow.current
        y = np.zeros((tc, *full), np.int64)
        for t in range(tc):
            i = self.out_i
            new, n = A.overflow(np.where(spk[t], i + self.one, self._decayed(i)), w, mode)
            self.count_saturations("out_i", n)
            self.counters["saturations"][t] = n
            self.out_i = new
            y[t] = new
        self.count_updates(1)
        return y, ({"out_i": y.copy()} if record_states else {})
