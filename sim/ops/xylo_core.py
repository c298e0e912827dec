r"""The Xylo core of the simulator: manifest op ``xylo_core`` (the whole chip, one op).

Written from ``docs/EXPORT_FORMAT.md`` and ``../shared/targets/xylo.md`` (the twin it must match bit
for bit is ``hwsnn.fixed.xylo_core.FixedXyloCore``, and both must match SynSense's ``xylosim``
engine; no code is shared with either). Notation as in :mod:`targets.bundle.xylo_core`:
:math:`\mathrm{sat}` clips to int16, :math:`D(x, k) = x \gg k` but 1 when that is 0 and :math:`x > 0`.

Per step, for every sample of the batch:

1. input events, channel order, :math:`c = \min(X, 15)`; then the previous step's hidden spike
   counts :math:`R` (hidden order) into the same currents; then :math:`R` of the last ``Noen``
   neurons into the readout currents. Each current saturates after every event
   (:func:`~sim.ops.neuron.accumulate_events`: one clipped add per source, replayed only for the
   rows whose partial sums can leave int16).
2. hidden neurons: :math:`I_s \mathrel{-}= D(I_s, k_s)`; :math:`\delta = \mathrm{wrap}(-D(V, k_m))`,
   :math:`\delta = \mathrm{sat}(\delta + I_1 + I_2)`, :math:`\delta = \mathrm{sat}(\delta + b)`,
   :math:`V = \mathrm{sat}(V + \delta)`; spikes: neurons without aliases in closed form,
   :math:`n = \min(\lfloor V/\theta \rfloor, 31)` where :math:`V \ge \theta`, :math:`V \mathrel{-}= n\theta`;
   neurons that are alias sources or targets one by one in index order, starting from the count
   the aliases deposited (``while V >= th and n < 31``), then :math:`R_a = \min(R_a + n, 31)`.
3. readout neurons: the same with one synapse and at most one spike, no aliases.

Recorded states (``record="states"``): ``i``, ``i2`` (synapse 2; zeros without it), ``v``,
``spikes`` (the hidden counts :math:`R`), ``i_out``, ``v_out``. Saturation counters: ``i``,
``i2``, ``dv``, ``v``, ``i_out``, ``dv_out``, ``v_out``.

Counters: ``synaptic_events`` (one per nonzero synapse reached, times the event count),
``neuron_updates`` (:math:`N + M` per sample and step), ``words_read`` (weights read plus the
state words), and the activity of SynSense's cycle model (:mod:`sim.xylo_cycles`): ``input_active``,
``hidden_active``, ``output_active``, the (sample, channel or neuron) pairs with at least one event.
"""

from __future__ import annotations

import numpy as np

from .. import arith as A
from .base import Op, register_op
from .neuron import accumulate_events

__all__ = ["XyloCoreOp", "ACTIVITY"]

#: the activity counters the cycle model reads (``[Tc, 1]`` each)
ACTIVITY = ("input_active", "hidden_active", "output_active")

_LO, _HI = -(1 << 15), (1 << 15) - 1


def _decay(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """:math:`D(x, k)` elementwise (``k`` per neuron, broadcast on the last axis)."""
    d = x >> k
    return np.where((d == 0) & (x > 0), 1, d)


def _sat(x: np.ndarray) -> tuple[np.ndarray, int]:
    y = np.clip(x, _LO, _HI)
    return y, int(np.count_nonzero(y != x))


def _wrap16(x: np.ndarray) -> np.ndarray:
    return ((x + (1 << 15)) & 0xFFFF) - (1 << 15)


@register_op("xylo_core")
class XyloCoreOp(Op):
    """``xylo_core`` (module docstring)."""

    kind = "xylo_core"
    state_names = ("i", "i2", "v", "spikes", "i_out", "v_out")

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.n, self.m, self.nin, self.s = spec.hidden, spec.readout, spec.inputs, spec.synapses
        self.nien, self.noen = spec.input_expansion, spec.output_expansion
        eff = lambda w, sh: _wrap16(A.as_i64(w) << sh)  # noqa: E731 - wrap16(w << shift), one shift per matrix
        # per synapse: [targets, sources] effective weights
        self.w_in = [np.ascontiguousarray(eff(spec.w_in[:, :, s], spec.weight_shift_in).T) for s in range(self.s)]
        self.w_rec = [np.ascontiguousarray(eff(spec.w_rec[:, :, s], spec.weight_shift_rec).T) for s in range(self.s)]
        self.w_out = np.ascontiguousarray(eff(spec.w_out, spec.weight_shift_out).T)
        self.nnz_in = sum(np.count_nonzero(spec.w_in[:, :, s], axis=1) for s in range(self.s))  # per channel
        self.nnz_rec = sum(np.count_nonzero(spec.w_rec[:, :, s], axis=1) for s in range(self.s))  # per source
        self.nnz_out = np.count_nonzero(spec.w_out, axis=1)  # per source of the last Noen
        self.dash = [A.as_i64(spec.dash_syn), A.as_i64(spec.dash_syn2) if spec.dash_syn2 is not None else None]
        self.dash_mem = A.as_i64(spec.dash_mem)
        self.th, self.bias = A.as_i64(spec.threshold), A.as_i64(spec.bias)
        self.alias = A.as_i64(spec.alias)
        self.dash_syn_out, self.dash_mem_out = A.as_i64(spec.dash_syn_out), A.as_i64(spec.dash_mem_out)
        self.th_out, self.bias_out = A.as_i64(spec.threshold_out), A.as_i64(spec.bias_out)
        self.input_cap, self.spike_cap, self.readout_cap = spec.input_cap, spec.spike_cap, spec.readout_cap
        self.clip_events = spec.clip_events
        src = np.flatnonzero(self.alias >= 0)
        self.alias_order = np.union1d(src, self.alias[src]).astype(np.int64)  # neurons stepped one by one
        self.plain = np.ones(self.n, bool)
        self.plain[self.alias_order] = False
        self.clipped: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        b = self.batch
        self.i = np.zeros((2, b, self.n), np.int64)
        self.v = np.zeros((b, self.n), np.int64)
        self.spikes = np.zeros((b, self.n), np.int64)
        self.i_out = np.zeros((b, self.m), np.int64)
        self.v_out = np.zeros((b, self.m), np.int64)

    def states(self) -> dict[str, np.ndarray]:
        return {"i": self.i[0].copy(), "i2": self.i[1].copy(), "v": self.v.copy(), "spikes": self.spikes.copy(),
                "i_out": self.i_out.copy(), "v_out": self.v_out.copy()}

    def _sat_count(self, name: str, n: int) -> None:
        if n:
            self.count_saturations(name, n)
            self._step_sat += n

    # -- one step ------------------------------------------------------------------------------
    def _events(self, c_in: np.ndarray) -> None:
        """Input, recurrent and readout events of one step into the currents (per-event saturation)."""
        r = self.spikes  # the previous step's hidden counts (<= spike_cap)
        for s in range(self.s):
            cur = self.i[s]
            head, n1 = accumulate_events(cur[:, :self.nien], c_in, self.w_in[s], _LO, _HI, self.name)
            cur = cur.copy()
            cur[:, :self.nien] = head
            n2 = 0
            if r.any():
                cur, n2 = accumulate_events(cur, r, self.w_rec[s], _LO, _HI, self.name)
            self.i[s] = cur
            self._sat_count("i" if s == 0 else "i2", n1 + n2)
        if r.any():
            self.i_out, n3 = accumulate_events(self.i_out, r[:, self.n - self.noen:], self.w_out, _LO, _HI, self.name)
            self._sat_count("i_out", n3)

    def _membrane(self, v: np.ndarray, i_total: np.ndarray, dash_mem: np.ndarray, bias: np.ndarray, sfx: str) -> np.ndarray:
        dv = _wrap16(-_decay(v, dash_mem))
        dv, a = _sat(dv + i_total)
        dv, b = _sat(dv + bias)
        self._sat_count("dv" + sfx, a + b)
        v, c = _sat(v + dv)
        self._sat_count("v" + sfx, c)
        return v

    def _hidden(self) -> np.ndarray:
        """The hidden update; returns the new spike counts ``R``."""
        for s in range(self.s):
            self.i[s] = self.i[s] - _decay(self.i[s], self.dash[s])
        v = self._membrane(self.v, self.i[0] + self.i[1], self.dash_mem, self.bias, "")
        th, cap = self.th, self.spike_cap
        fired = v >= th
        n = np.where(fired, np.minimum(v // th, cap), 0)
        r = np.zeros_like(n)
        r[:, self.plain] = n[:, self.plain]
        v = np.where(self.plain, v - r * th, v)
        for j in self.alias_order:  # one by one, in index order (deposits of earlier sources included)
            vj, tj, n0 = v[:, j], th[j], r[:, j]
            k = np.where(vj >= tj, np.minimum(vj // tj, np.maximum(cap - n0, 0)), 0)
            v[:, j] = vj - k * tj
            r[:, j] = n0 + k
            a = self.alias[j]
            if a >= 0:
                r[:, a] = np.minimum(r[:, a] + r[:, j], cap)
        self.v = v
        return r

    def _readout(self) -> np.ndarray:
        self.i_out = self.i_out - _decay(self.i_out, self.dash_syn_out)
        v = self._membrane(self.v_out, self.i_out, self.dash_mem_out, self.bias_out, "_out")
        th = self.th_out
        n = np.where(v >= th, np.minimum(v // th, self.readout_cap), 0)
        self.v_out = v - n * th
        return n

    # -- input checks and the chunk loop -------------------------------------------------------------
    def _check_input(self, x) -> np.ndarray:
        a = np.asarray(x)
        if a.dtype.kind not in "iub":
            raise self.error(f"expects integer input events [Tc, {self.batch}, {self.nin}]; got dtype {a.dtype}")
        if a.ndim != 3 or a.shape[1:] != (self.batch, self.nin):
            raise self.error(f"expects input events [Tc, {self.batch}, {self.nin}]; got {list(a.shape)}")
        a = a.astype(np.int64)
        if a.size and int(a.min()) < 0:
            raise self.error(f"input event counts must be >= 0; got {int(a.min())}")
        over = a > self.input_cap
        if over.any():
            if not self.clip_events:
                raise self.error(f"{int(over.sum())} input count(s) above the chip's {self.input_cap} events per channel "
                                 f"and step (largest {int(a.max())}); the export refuses them (clip_events: false)")
            self.clipped["input_events"] = self.clipped.get("input_events", 0) + int(over.sum())
            a = np.minimum(a, self.input_cap)
        return a

    def run(self, x, t0: int, record_states: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        xs = self._check_input(x)
        tc = xs.shape[0]
        self.new_counters(tc)
        for key in ACTIVITY:
            self.counters[key] = np.zeros((tc, 1), np.int64)
        b = self.batch
        y = np.zeros((tc, b, self.m), np.int8)
        rec = {s: np.zeros((tc, b, self.m if s.endswith("_out") else self.n), np.int64) for s in self.state_names} \
            if record_states else {}
        state_words = self.n * (2 + self.s) + 2 * self.m
        for t in range(tc):
            self._step_sat = 0
            c_in, r_prev = xs[t], self.spikes
            events = int((c_in @ self.nnz_in).sum()) + int((r_prev @ self.nnz_rec).sum())
            events += int((r_prev[:, self.n - self.noen:] @ self.nnz_out).sum())
            self._events(c_in)
            self.spikes = self._hidden()
            out = self._readout()
            y[t] = out
            c = self.counters
            c["synaptic_events"][t] = events
            c["neuron_updates"][t] = b * (self.n + self.m)
            c["words_read"][t] = events + b * state_words
            c["saturations"][t] = self._step_sat
            c["input_active"][t] = np.count_nonzero(c_in)
            c["hidden_active"][t] = np.count_nonzero(self.spikes)
            c["output_active"][t] = np.count_nonzero(out)
            if rec:
                for s, val in (("i", self.i[0]), ("i2", self.i[1]), ("v", self.v), ("spikes", self.spikes),
                               ("i_out", self.i_out), ("v_out", self.v_out)):
                    rec[s][t] = val
        return y, rec
