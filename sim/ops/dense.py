r"""The ``dense`` op of the simulator (NumPy, ``int64``).

Written from the export format (``docs/EXPORT_FORMAT.md``) and the target semantics; it shares
no code with the torch twins (:mod:`hwsnn.fixed.dense`, :mod:`hwsnn.fixed.conv`,
:mod:`hwsnn.fixed.dropout`) and must reproduce them bit for bit.

``dense``, accumulation ``sum`` (float :math:`y = w x + b`, :math:`w = W 2^{e_w}`,
:math:`x = X 2^{e_x}`, :math:`e_{out} = e_w + e_x - s`)::

    A[t]  = ovf(W X[t])                 (exact integer sum)
    Y[t]  = ovf(shift(A[t], s) + B)     (both overflows counted under 'accumulator')
    out[t] = Y[t - L]  for t >= L, else 0    (latency L = params.latency; zeros, bias included,
                                              for the first L steps after reset; a FIFO across chunks)

``target.synapse.sum_overflow: shifted`` (Loihi): ``Y[t] = ovf(shift(W X[t], s) + B)``, the
exact sum shifted, one overflow (Lava's int64 sum held in the int32 buffer and channel).

With per-synapse delays (table ``delays`` [out, in], :math:`d_{oi}`; :mod:`sim.ops.delaydense`):
``on_arrival``, the raw sum that *arrives* at step :math:`t` is
:math:`\sum_i W_{oi} X_i[t - d_{oi}]`, and overflow, shift and bias apply to it; ``per_slot``
(Loihi), each source step's sum per delay slot is shifted before it accumulates in the int32 ring
(wraps counted), and only the bias and its overflow follow. Then the latency FIFO: a spike at step
:math:`t` reaches the output at :math:`t + L + d`.

Sign modes (``target.synapse.sign_modes``; :mod:`sim.ops.signmode`): the weights are what Lava
makes of the table (its automatic mode, clip and truncation); a table that rule changes, or whose
``sign_mode`` is not the rule's, is refused.

``dense``, accumulation ``per_event_saturate`` (Xylo): no sum. The event counts :math:`c` must lie
in ``0 .. params.event_cap`` (an error naming the layer, unless ``params.clip_events``: then
clipped to that range and counted in :attr:`DenseOp.clipped` ``['input_events']`` and in the
per-step ``saturations`` counter); they go through the latency FIFO (zeros first) and are returned
as :class:`~sim.ops.base.Events` with the effective weight
:math:`\mathrm{wrap}_{\text{current}}(W \ll s)`, which the following neuron adds one event at a
time.

Notation, exact sums and counters: :mod:`sim.ops.synaptic`.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import arith
from .base import Events, register_op
from .delaydense import arriving_sums
from .signmode import lava_weights
from .synaptic import SynapticOp, effective_weight, exact_matmul

__all__ = ["DenseOp", "exact_matmul", "effective_weight"]

_max_abs, _matmul_bound = arith.max_abs, arith.matmul_bound


@register_op("dense")
class DenseOp(SynapticOp):
    """``dense`` (module docstring): ``sum`` rule with latency and optional per-synapse delays, or
    the Xylo ``per_event_saturate`` rule returning :class:`~sim.ops.base.Events`."""

    kind = "dense"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.accumulation = spec.accumulation
        self.per_event = self.accumulation == "per_event_saturate"
        self.in_features, self.out_features = spec.in_features, spec.out_features
        self.first_layer, self.latency = spec.first_layer, spec.latency
        self.weight, self.bias, self.delays = spec.weight, spec.bias, spec.delays
        if target.synapse.sign_modes:
            self._check_sign_mode(spec.sign_mode)
        if self.per_event:
            self.event_cap, self.clip_events = spec.event_cap, spec.clip_events
        if self.delays is not None:
            self._delay_values = [int(d) for d in np.unique(self.delays)]
            self._delay_weights = [arith.MatmulWeight(np.where(self.delays == d, self.weight, 0).T) for d in self._delay_values]
            self.max_delay_used = max(self._delay_values) if self._delay_values else 0
        self.reset()

    def _check_sign_mode(self, recorded: Optional[str]) -> None:
        """The table must be the weights Lava uses, and ``sign_mode`` the mode it picks (:mod:`sim.ops.signmode`)."""
        used, mode = lava_weights(self.weight, self.target.widths.weight.bits, self.target.synapse.weight_step)
        if recorded != mode or not np.array_equal(used, self.weight):
            changed = int(np.count_nonzero(used != self.weight))
            raise self.error(f"params.sign_mode is {recorded!r}; Lava picks {mode!r} for this weight table and "
                             f"changes {changed} of its values: the table is not what the chip computes with")

    def reset(self) -> None:
        n, o, i = self.batch, self.out_features, self.in_features
        width = i if self.per_event else o
        self._fifo = np.zeros((self.latency, n, width), np.int64)
        if self.delays is not None:
            self._pending = np.zeros((self.max_delay_used, n, o), np.int64)

    def _count(self, counts: np.ndarray, sat: np.ndarray) -> None:
        """Counters from event counts ``[Tc, N, in]``: per step and block :math:`b`,
        :math:`\\sum_i (\\sum_n c_{n,i}) \\#\\{o \\in b : w_{oi} \\ne 0\\}` with the weights that are read
        (per-event: the effective weights)."""
        w = effective_weight(self) if self.per_event else self.weight
        nnz = self.derived(f"nonzero weights per block {self.blocks}",  # [in, n_blocks]
                           lambda: np.stack([(w[a:b] != 0).sum(axis=0) for a, b in self.blocks], axis=1))
        self.new_counters(counts.shape[0])
        # the batch sum in int32 where it provably fits: N counts below 2^(8 itemsize) each
        narrow = counts.dtype.itemsize <= 2 and counts.shape[1] << (8 * counts.dtype.itemsize) <= 1 << 31
        ev = counts.sum(axis=1, dtype=np.int32 if narrow else np.int64) @ nnz  # [Tc, n_blocks], exact int64
        self.counters["synaptic_events"] += ev
        self.counters["words_read"] += ev
        self.counters["saturations"] += sat

    def _raw_sum(self, x: np.ndarray) -> tuple[np.ndarray, Optional[int], np.ndarray]:
        """Sums arriving at each step of the chunk, ``[Tc, N, out]`` (delays: :func:`arriving_sums`), a bound
        on their magnitude, :math:`\\max|X|\\,\\max|W|\\,in` (None with delays), and the buffer's wraps per
        step (per-slot delays: the sums come already shifted)."""
        tc = x.shape[0]
        if self.delays is None:
            # the table's own (narrow) dtype makes the float copy cheap; kept across runs of the export
            w_t = self.derived("weight^T", lambda: arith.MatmulWeight(self.weight.T))
            return exact_matmul(x, w_t, self.name), _max_abs(x) * w_t.max * self.in_features, np.zeros(tc, np.int64)
        syn, acc = self.target.synapse, self.target.widths.accumulator
        sums = [(d, exact_matmul(x, wd, self.name)) for d, wd in zip(self._delay_values, self._delay_weights)]
        y, self._pending, wraps = arriving_sums(sums, self._pending, syn.delay_shift, self.weight_shift, acc,
                                                self.target.overflow.accumulator,
                                                _max_abs(x) * _max_abs(self.weight) * self.in_features)
        self.count_saturations("accumulator", int(wraps.sum()))
        return y, None, wraps

    def _cap(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Counts checked against ``0 .. event_cap`` (clipped and counted with ``clip_events``)."""
        cap = self.event_cap
        bad = (x < 0) | (x > cap)
        n = int(np.count_nonzero(bad))
        per_step = np.zeros(x.shape[0], np.int64)
        if n:
            if not self.clip_events:
                worst = int(x[bad].flat[0])
                raise self.error(
                    f"input events per step must lie in [0, {cap}] (params.event_cap); got {worst} "
                    f"({n} value(s) outside); export with clip_events to clip them"
                )
            per_step = bad.reshape(x.shape[0], -1).sum(axis=1).astype(np.int64)
            self.clipped["input_events"] = self.clipped.get("input_events", 0) + n
            x = np.clip(x, 0, cap)
        return x, per_step

    def run(self, x, t0: int, record_states: bool = False):
        x = self._check_input(x)
        if self.per_event:
            counts, sat = self._cap(x.astype(np.int64))
            counts = self._latency(counts)
            self._count(counts, sat)
            return Events(counts=counts, weight=effective_weight(self)), {}
        acc, bound, wraps = self._raw_sum(x)
        if self.delays is not None and self.target.synapse.delay_shift == "per_slot":  # shifted per slot already
            y, sat = self._bias_only(acc, self.bias)
        else:
            y, sat = self._shift_bias(acc, self.bias, bound)
        self._count(self._event_counts(x), sat + wraps)
        return self._latency(y), {}


