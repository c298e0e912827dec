r"""Spiking neurons of the simulator: manifest ops ``if``, ``lif`` and ``cuba``.

Written from ``docs/EXPORT_FORMAT.md`` and the target specs (``targets/*.yaml``,
``shared/targets/{loihi,xylo}.md``); the reference it must match bit for bit is the torch twin of
the same name (``hwsnn.fixed.neuron``), but no code is shared with it.

States (int64 here, in the target's widths): ``v`` (membrane) and, for ``cuba``, ``i`` (current),
exponent ``state_exponent``. The input is an integer array in *input units* (exponent
``state_exponent + input_shift``) or :class:`~sim.ops.base.Events` (per-event accumulation).
Notation: :math:`\mathrm{ovf}` = the target's overflow mode of the state's width, :math:`s` =
``input_shift``, :math:`D_m`, :math:`D_s` = the decay amounts of ``decay_mem``/``decay_syn``,
:math:`B` = ``bias << bias_exp`` (floor right shift for a negative exponent),
:math:`TH` = ``threshold_int``.

=================================================  =============================================================
float                                              integer rule of one step
=================================================  =============================================================
input current (``if``/``lif``)                     :math:`I = \mathrm{ovf}(X \ll s)` (a fresh current each step);
                                                   ``lif`` with ``decay_input``: :math:`I \gg k` (floor; toward zero
                                                   on toward_zero targets; mul12: :math:`(I\,dv) \gg 12`)
:math:`I \leftarrow I - I/\tau_s + X` (``cuba``)   ``decay_then_add``: :math:`I = \mathrm{ovf}(I - D_s(I) + (X \ll s))`;
                                                   ``add_then_decay``: :math:`I = \mathrm{ovf}(I + X)`, :math:`I \mathrel{-}= D_s(I)`
:math:`H = V - (V - V_r)/\tau + I + b`             ``direct``: :math:`V = \mathrm{ovf}(V - D_m(V - V_r) + I + B)` (``if``: no :math:`D_m`);
                                                   ``saturated_delta`` (Xylo): :math:`\delta = \mathrm{wrap}(-D_m(V - V_r))`,
                                                   :math:`\delta = \mathrm{ovf}(\delta + I)`, :math:`\delta = \mathrm{ovf}(\delta + B)`,
                                                   :math:`V = \mathrm{ovf}(V + \delta)`
:math:`S = \Theta(H - V_{th})`, reset              ``zero``: :math:`n = [V \mathbin{cmp} TH]`, :math:`V = V_r` where :math:`n`;
                                                   ``subtract``: ``while V cmp TH and n < max_spikes: n += 1; V -= TH``;
                                                   then :math:`V = \mathrm{ovf}(V)` once more
=================================================  =============================================================

Fixed-width input (``target.neuron.input_wrap_bits`` :math:`w`, Loihi: Lava's int32 ``a_in``): the
input is :math:`X = \mathrm{wrap}_w(X)`, the shifted input :math:`\mathrm{wrap}_w(X \ll s)` and the
sum :math:`\mathrm{wrap}_w(I + (X \ll s))`, then the current's overflow; every wrap is counted
under ``i``. A per-neuron bias exponent (table ``bias_exp_per_neuron``) replaces ``bias_exp``.

Decay amounts: ``shift`` targets :math:`D(x, k)` of :func:`sim.arith.decay_amount` with the target's
rounding; ``mul12`` (Loihi) :math:`D(x) = x - \mathrm{tz}(x\,(4096 - d) / 4096)` with
:math:`d = du + 1` for the current and :math:`d = dv` for the membrane. Loihi in these terms: ``u``
is the current (``fold_once``, never reset), ``v`` saturates in the symmetric 24-bit range,
``>`` against ``vth << 6``, zero reset, input ``a_in << 6``.

The subtractive loop in closed form: for :math:`TH > 0` it turns
:math:`\min(\max(\lfloor V'/TH \rfloor, 0), \mathit{cap})` times, :math:`V' = V` for ``>=`` and
:math:`V - 1` for ``>`` (integers: :math:`V > TH \Leftrightarrow V - 1 \ge TH`); for
:math:`TH \le 0` a fired neuron stays above threshold, so it turns ``cap`` times.

Per-event input (:class:`Events`, Xylo): for each source :math:`j` in order,
:math:`I \leftarrow \mathrm{sat}(I + c_j w_{:,j})` (see :func:`accumulate_events`); for ``if``/``lif``
the events add into a zero current. Saturation counters, as the twins name them: ``i`` (current),
``v`` (membrane), ``dv`` (Xylo's delta, wraps included).

Counting model (per step, per core block of output elements, summed over the batch):
``neuron_updates = N * block size``; ``words_read = neuron_updates * words`` (``if``/``lif``: 1 state
word, ``cuba``: 2); ``synaptic_events = 0``; ``saturations[t]`` = the values of all states brought
into range in step ``t`` (``i`` + ``v`` + ``dv``).
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from .. import arith as A
from .. import fast
from .base import Events, Op, register_op

__all__ = ["NeuronOp", "IFOp", "LIFOp", "CubaOp", "accumulate_events", "exact_matmul"]

_max_abs, exact_matmul = A.max_abs, A.exact_matmul


def accumulate_events(current: np.ndarray, counts: np.ndarray, weight: np.ndarray, lo: int, hi: int,
                      who: str = "events") -> tuple[np.ndarray, int]:
    r"""Add events into ``current`` ``[R, M]`` saturating to ``[lo, hi]`` after every source, in source order.

    ``counts`` ``[R, K]`` (non-negative), ``weight`` ``[M, K]``. Rule (Xylo): for ``j = 0..K-1``,
    :math:`I \leftarrow \mathrm{clip}(I + c_j w_{:,j})`. Returns ``(new current, number of
    saturating adds)``; a source counts once however many events it carries.

    *One add per source.* The :math:`c_j` events of source :math:`j` all add :math:`w_{:,j}`, of one
    sign, so the running value moves monotonically; once clipped at a bound it stays there, hence
    :math:`c_j` clipped adds equal one clipped add of :math:`c_j w_{:,j}`.

    *Skipping the replay.* Let :math:`P = \sum_j c_j \max(w_j, 0)` and
    :math:`Q = \sum_j c_j \min(w_j, 0)` (:math:`c_j \ge 0`). Every unclipped partial sum
    :math:`I_0 + \sum_{j<m} c_j w_j` lies in :math:`[I_0 + Q, I_0 + P]`, since its positive terms
    are a sub-sum of :math:`P`'s (:math:`\le P`) and its negative terms a sub-sum of :math:`Q`'s
    (:math:`\ge Q`). So if :math:`I_0 + P \le hi` and :math:`I_0 + Q \ge lo` no add ever clips
    (by induction, each clipped partial sum equals the unclipped one), and the result is exactly
    :math:`I_0 + P + Q` with no saturation. Only the other (row, neuron) pairs are replayed.
    """
    i0 = current.astype(np.int64)
    c = counts.astype(np.int64)
    w = weight.astype(np.int64)
    pos = exact_matmul(c, np.maximum(w, 0).T, who)
    neg = exact_matmul(c, np.minimum(w, 0).T, who)
    out = i0 + pos + neg
    risky = (i0 + pos > hi) | (i0 + neg < lo)
    n_sat = 0
    if risky.any():
        rows, cols = np.nonzero(risky)
        acc = i0[rows, cols]
        cnt, wt = c[rows], w[cols]  # [P, K] each
        steps = cnt * wt
        for j in np.flatnonzero(np.any(steps != 0, axis=0)):  # a zero add neither moves nor clips
            raw = acc + steps[:, j]
            acc = np.clip(raw, lo, hi)
            n_sat += int(np.count_nonzero(acc != raw))
        out[rows, cols] = acc
    return out, n_sat


class NeuronOp(Op):
    """Shared part of ``if``/``lif``/``cuba``: parameter checks, input checks, fire and reset, stepping."""

    state_names: tuple[str, ...] = ("v",)
    #: state words read per neuron update (counting model)
    words: int = 1
    has_mem_decay: bool = False

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.shape = self.input_shape
        self.threshold, self.threshold_int = spec.threshold, spec.threshold_int
        self.reset_kind, self.v_reset = spec.reset, spec.v_reset
        self.readout, self.max_spikes = spec.readout, spec.max_spikes
        self.spike_dtype = np.int8 if self.max_spikes <= 127 else np.int16 if self.max_spikes <= 32767 else np.int32
        self.state_exponent, self.input_shift, self.bias_exp = spec.state_exponent, spec.input_shift, spec.bias_exp
        self.bias = spec.bias
        per = getattr(spec, "bias_exp_per_neuron", None)
        if per is None:
            self.bias_int = A.shift(self.bias, self.bias_exp, "floor")
        else:  # B = mant << e per neuron (floor >> for e < 0)
            b = np.broadcast_to(A.as_i64(self.bias), per.shape)
            self.bias_int = np.where(per >= 0, b << np.maximum(per, 0), b >> np.maximum(-per, 0))
        self.decay_mem: Optional[int] = getattr(spec, "decay_mem", None)
        self.decay_syn: Optional[int] = getattr(spec, "decay_syn", None)
        #: per-neuron thresholds or decays (Xylo cores): arrays of the neuron shape in their place
        self.per_neuron = bool(spec.has_per_neuron)
        if self.per_neuron:
            self.threshold_int = spec.per_neuron("threshold_int")
            self.decay_mem = spec.per_neuron("decay_mem") if self.decay_mem is not None else None
            self.decay_syn = spec.per_neuron("decay_syn") if self.decay_syn is not None else None
        self.decay_input = bool(getattr(spec, "decay_input", False))
        self.reset()

    # -- engine interface ----------------------------------------------------------------------
    def reset(self) -> None:
        """States back to their start values: ``v = v_reset`` (zero reset) or 0; ``i = 0``."""
        full = (self.batch, *self.shape)
        self.v = np.full(full, self.v_reset if self.reset_kind == "zero" else 0, np.int64)
        if "i" in self.state_names:
            self.i = np.zeros(full, np.int64)

    def states(self) -> dict[str, np.ndarray]:
        return {s: getattr(self, s).copy() for s in self.state_names}

    # -- arithmetic ----------------------------------------------------------------------------
    def _ovf(self, x: np.ndarray, state: str, width, mode: str) -> np.ndarray:
        y, n = A.overflow(x, width, mode)
        if n:
            self.count_saturations(state, n)
            self._step_sat += n
        return y

    def _decay(self, x: np.ndarray, param: int, which: str) -> np.ndarray:
        """What one decay step removes from ``x``: :math:`D(x, k)`, or :math:`x - \\mathrm{mul12}(x, d)`
        (a new array)."""
        d = self.target.decay
        if d.mechanism == "shift":
            return A.decay_amount(x, param, d.rounding)
        factor = param + 1 if which == "syn" else param
        return x - A.mul12(x, factor, d.rounding)

    def _add_input(self, i: Optional[np.ndarray], x: Union[np.ndarray, tuple]) -> np.ndarray:
        """``i`` plus one step's input in the current width (per source for events); ``i = None``
        is a zero current: :math:`\\mathrm{ovf}(X \\ll s)` (``x`` itself when in range and s = 0)."""
        tg = self.target
        w = tg.widths.current
        if isinstance(x, tuple):  # (counts [N, K], weight [M, K])
            if i is None:
                i = np.zeros((self.batch, *self.shape), np.int64)
            y, n = accumulate_events(i, x[0], x[1], w.lo, w.hi, self.name)
            if n:
                self.count_saturations("i", n)
                self._step_sat += n
            return y
        bits = tg.neuron.input_wrap_bits
        if bits is not None:  # Lava: a_in is int32, and so are a_in << 6 and u + (a_in << 6)
            return self._ovf(self._wrapped_input(i, x, bits), "i", w, tg.overflow.current)
        x = A.shift(x, self.input_shift) if self.input_shift else A.as_i64(x)
        return self._ovf(x if i is None else i + x, "i", w, tg.overflow.current)

    def _wrapped_input(self, i: Optional[np.ndarray], x: np.ndarray, bits: int) -> np.ndarray:
        """:math:`\\mathrm{wrap}(I + \\mathrm{wrap}(\\mathrm{wrap}(X) \\ll s))` at ``bits`` (two's complement),
        each wrap counted under ``i``."""
        half = 1 << (bits - 1)

        def wrap(v: np.ndarray) -> np.ndarray:
            out = ((v + half) & ((1 << bits) - 1)) - half
            n = int(np.count_nonzero(out != v))
            if n:
                self.count_saturations("i", n)
                self._step_sat += n
            return out

        v = wrap(A.as_i64(x))
        v = wrap(v << self.input_shift)
        return v if i is None else wrap(i + v)

    def _current(self, x) -> np.ndarray:
        """This step's current entering the membrane (``if``/``lif``: the input alone)."""
        c = self._add_input(None, x)
        if not self.decay_input:
            return c
        tz = "toward_zero" if self.target.decay.rounding == "toward_zero" else "floor"
        if self.target.decay.mechanism == "mul12":
            return A.rshift(c * self.decay_mem, 12, tz)
        return A.rshift(c, self.decay_mem, tz)

    def _membrane(self, v: np.ndarray, i: np.ndarray) -> np.ndarray:
        """The membrane before firing (module table): ``direct`` :math:`\\mathrm{ovf}(V - D_m + I + B)`,
        summed in place in one new array; ``saturated_delta`` through :math:`\\delta`."""
        tg = self.target
        w, mode = tg.widths.membrane, tg.overflow.membrane
        leak = self._decay(v - self.v_reset if self.v_reset else v, self.decay_mem, "mem") if self.has_mem_decay else None
        if tg.neuron.membrane_update == "direct":
            if leak is None:
                h = v + i
            else:
                h = np.subtract(v, leak, out=leak)
                h += i
            if self.bias_int.any():
                h += self.bias_int
            return self._ovf(h, "v", w, mode)
        dv = np.zeros_like(v) if leak is None else self._ovf(np.negative(leak, out=leak), "dv", w, "wrap")
        dv = self._ovf(dv + i, "dv", w, mode)
        dv = self._ovf(dv + self.bias_int, "dv", w, mode)
        return self._ovf(v + dv, "v", w, mode)

    def _fire(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Spike counts :math:`n` (one spike at most: the 0/1 ``int8`` view of the comparison, else
        int64) and the membrane after the reset (before its last overflow), :math:`V - n\\,TH`."""
        th, strict = self.threshold_int, self.target.neuron.compare == ">"
        fired = v > th if strict else v >= th
        if self.reset_kind == "zero":
            return fired.view(np.int8), np.where(fired, np.int64(self.v_reset), v)
        cap = self.max_spikes
        if cap == 1:
            n, nth = fired.view(np.int8), np.multiply(fired, th)  # bool * int: an int64 n TH
        else:
            if np.all(th > 0):
                n = np.clip(np.floor_divide(v - 1 if strict else v, th), 0, cap)
            elif np.ndim(th) == 0:  # TH <= 0: subtracting TH keeps the neuron above threshold until the cap
                n = fired.astype(np.int64) * cap
            else:  # per neuron: each its rule
                turns = np.clip(np.floor_divide(v - 1 if strict else v, np.maximum(th, 1)), 0, cap)
                n = np.where(th > 0, turns, fired.astype(np.int64) * cap)
            nth = n * th
        return n, np.subtract(v, nth, out=nth)

    def _step(self, x) -> np.ndarray:
        """One step: current, membrane, fire and reset, then :math:`V = \\mathrm{ovf}(V)` once more.

        That last overflow is skipped where it provably changes nothing: with ``saturate`` the
        membrane is in :math:`[lo, hi]` after :meth:`_membrane`, and a zero reset sets
        :math:`V_r \\in [lo, hi]`, while a subtractive reset with :math:`TH > 0` takes
        :math:`n\\,TH \\le V' \\le V` (:math:`n \\ge 1`) or nothing, leaving :math:`0 \\le V - n\\,TH \\le V`."""
        i = self._current(x)
        v = self._membrane(self.v, i)
        n, v = self._fire(v)
        tg = self.target
        mode = tg.overflow.membrane
        if mode == "saturate" and (self.reset_kind == "zero" or bool(np.all(self.threshold_int > 0))):
            self.v = v
        else:
            self.v = self._ovf(v, "v", tg.widths.membrane, mode)
        return n

    # -- input checks --------------------------------------------------------------------------
    def _check_input(self, x) -> tuple[int, object]:
        """``(Tc, x)`` with ``x`` an int64 array ``[Tc, N, *shape]`` or ``(counts, weight)`` int64."""
        tg = self.target
        if isinstance(x, Events):
            if self.input_shift != 0 or tg.overflow.current != "saturate":
                raise self.error(f"per-event input needs input_shift 0 and a saturating current (target {tg.name!r} "
                                 f"has {self.input_shift}, {tg.overflow.current!r})")
            c, w = np.asarray(x.counts), np.asarray(x.weight)
            if c.dtype.kind not in "iub" or w.dtype.kind not in "iu":
                raise self.error(f"events need integer counts and weights; got {c.dtype}, {w.dtype}")
            if len(self.shape) != 1 or w.ndim != 2 or w.shape[0] != self.shape[0]:
                raise self.error(f"events with weights of shape {list(w.shape)} do not feed neurons of shape "
                                 f"{list(self.shape)} (expected weights [{', '.join(map(str, self.shape))}, in])")
            if c.ndim != 3 or c.shape[1] != self.batch or c.shape[2] != w.shape[1]:
                raise self.error(f"event counts must be [Tc, {self.batch}, {w.shape[1]}]; got {list(c.shape)}")
            if c.size and int(c.min()) < 0:
                raise self.error(f"event counts must be >= 0; got {int(c.min())}")
            return c.shape[0], (c.astype(np.int64), w.astype(np.int64))
        a = np.asarray(x)
        if a.dtype.kind not in "iub":
            raise self.error(f"expects an integer array [Tc, N, {', '.join(map(str, self.shape))}] in input units "
                             f"(exponent {self.state_exponent + self.input_shift}) or Events; got dtype {a.dtype}")
        if a.ndim < 2 or a.shape[1:] != (self.batch, *self.shape):
            raise self.error(f"expects input [Tc, {self.batch}, {', '.join(map(str, self.shape))}]; got {list(a.shape)}")
        a = a.astype(np.int64, copy=False)
        lim = 1 << (61 - self.input_shift)
        if a.size and _max_abs(a) >= lim:
            raise self.error(f"input magnitude {_max_abs(a)} >= 2^{61 - self.input_shift} would overflow int64 "
                             f"after the input shift {self.input_shift}")
        return a.shape[0], a

    def run(self, x, t0: int, record_states: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        tc, xs = self._check_input(x)
        self.new_counters(tc)
        events = isinstance(xs, tuple)
        if fast.applicable(self, events):  # compiled stepping (sim.fast)
            y, step_sat, _, rec, _ = fast.step_population(self, xs[0] if events else xs, x.weight if events else None,
                                                          None, record_states, t0)
            self.counters["saturations"][:] = step_sat
            self.count_updates(self.words)
            return y, rec
        full = (self.batch, *self.shape)
        y = np.zeros((tc, *full), self.spike_dtype)
        rec = {s: np.zeros((tc, *full), np.int64) for s in self.state_names} if record_states else {}
        for t in range(tc):
            self._step_sat = 0
            xt = (xs[0][t], xs[1]) if isinstance(xs, tuple) else xs[t]
            y[t] = self._step(xt)
            self.counters["saturations"][t] = self._step_sat
            for s in rec:
                rec[s][t] = getattr(self, s)
        self.count_updates(self.words)
        return y, rec



@register_op("if")
class IFOp(NeuronOp):
    """``if``: :math:`V = \\mathrm{ovf}(V + I + B)` (no leak); refused on ``xylo_min1`` targets, whose
    membrane always leaks (the twin refuses them too)."""

    kind = "if"


@register_op("lif")
class LIFOp(NeuronOp):
    """``lif``: membrane leak ``decay_mem``; ``decay_input`` scales the input by :math:`1/\\tau`."""

    kind = "lif"
    has_mem_decay = True


@register_op("cuba")
class CubaOp(LIFOp):
    """``cuba``: a current state ``i`` with decay ``decay_syn`` feeding the ``lif`` membrane."""

    kind = "cuba"
    state_names = ("i", "v")
    words = 2

    def _current(self, x) -> np.ndarray:
        i = self.i
        if self.target.decay.current_order == "decay_then_add":
            i = self._add_input(i - self._decay(i, self.decay_syn, "syn"), x)
        else:  # add_then_decay: the input decays in its own step
            i = self._add_input(i, x)
            i = i - self._decay(i, self.decay_syn, "syn")
        self.i = i
        return i
