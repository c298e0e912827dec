r"""Compiled stepping of neuron populations (optional: ``numba``, the ``fast`` extra).

On a per-event target (Xylo) a population is stepped one neuron and one event at a time, which is
what the chip does and what NumPy does badly at batch 1: hundreds of small array operations per
step. :func:`step_population` runs the same integer rules as :class:`sim.ops.neuron.NeuronOp`
(and :class:`sim.ops.recurrent.RecurrentOp`) in one compiled loop over the chunk, written from the
target semantics as a plain per-event loop. Per step :math:`t`, sample :math:`n`:

1. CUBA ``decay_then_add``: :math:`I \mathrel{-}= D(I, k_s)` first. IF/LIF: :math:`I = 0`.
2. Input events: for source :math:`j` in order with count :math:`c > 0`, for each nonzero weight
   :math:`w_{mj}`: :math:`I_m \leftarrow \mathrm{sat}(I_m + c\,w_{mj})` (counted once when it clips;
   :math:`c` equal-signed adds clip like one add of :math:`c\,w`). Or input currents :math:`X`
   (``sum`` targets): :math:`I = \mathrm{sat}(I + (X \ll s))`, then for LIF with ``decay_input``
   :math:`I \gg k_m` (floor, or toward zero on toward-zero targets).
3. Recurrent events (``recurrent`` only): the same with the spikes of step :math:`t - L`, capped.
4. CUBA ``add_then_decay``: :math:`I \mathrel{-}= D(I, k_s)`.
5. Membrane (``direct``: :math:`V = \mathrm{ovf}(V - D(V - V_r) + I + B)`; ``saturated_delta``:
   :math:`\delta = \mathrm{wrap}(-D(V))`, :math:`\delta = \mathrm{sat}(\mathrm{sat}(\delta + I) + B)`,
   :math:`V = \mathrm{sat}(V + \delta)`), fire and reset (``zero`` or ``subtract`` up to the cap),
   :math:`V = \mathrm{ovf}(V)`.

Its results (spikes, states, every saturation counter) are tested equal to the NumPy ops on random
networks with saturation, multi-spikes and both reset kinds. Without numba everything runs in NumPy;
``sim.run(..., jit=False)`` forces NumPy.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

__all__ = ["available", "applicable", "step_population", "csc"]

try:  # optional dependency
    import numba as _numba
except ImportError:  # pragma: no cover - exercised where numba is missing
    _numba = None

_ROUNDING = {"floor": 0, "toward_zero": 1, "xylo_min1": 2}


def _maybe_jit(fn):
    """``numba.njit`` (cached on disk) when numba is installed; the plain function otherwise."""
    return _numba.njit(cache=True, nogil=True)(fn) if _numba is not None else fn


def available() -> bool:
    """True when numba is installed and ``HWSNN_SIM_JIT`` is not ``0``."""
    return _numba is not None and os.environ.get("HWSNN_SIM_JIT", "1") != "0"


def csc(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nonzero weights ``[M, K]`` by source: ``(start [K + 1], target rows, values)``, rows ascending."""
    w = np.asarray(weight, dtype=np.int64)
    cols, rows = np.nonzero(w.T)
    start = np.zeros(w.shape[1] + 1, np.int64)
    np.cumsum(np.bincount(cols, minlength=w.shape[1]), out=start[1:])
    return start, rows.astype(np.int64), w[rows, cols].astype(np.int64)


@_maybe_jit
def _decay(x, k, rounding):
    if rounding == 0:
        return x >> k
    if rounding == 1:
        return -((-x) >> k) if x < 0 else x >> k
    d = x >> k
    if d == 0 and x > 0:
        return 1
    return d


@_maybe_jit
def _add_source(i_row, c, p0, p1, rows, vals, lo, hi):
    """``c`` events of one source (its nonzero weights ``vals[p0:p1]`` into ``rows``), saturating;
    returns the clipped adds."""
    n_sat = 0
    for p in range(p0, p1):
        m = rows[p]
        raw = i_row[m] + c * vals[p]
        if raw > hi:
            i_row[m] = hi
            n_sat += 1
        elif raw < lo:
            i_row[m] = lo
            n_sat += 1
        else:
            i_row[m] = raw
    return n_sat


@_maybe_jit
def _add_events(i_row, counts, start, rows, vals, lo, hi):
    """Saturating per-source accumulation into ``i_row``, sources in order; returns the clipped adds."""
    n_sat = 0
    for j in range(counts.shape[0]):
        if counts[j] != 0:
            n_sat += _add_source(i_row, counts[j], start[j], start[j + 1], rows, vals, lo, hi)
    return n_sat


@_maybe_jit
def _sat(x, lo, hi):
    if x > hi:
        return hi, 1
    if x < lo:
        return lo, 1
    return x, 0


@_maybe_jit
def _kernel(counts_in, in_start, in_rows, in_vals, rec_start, rec_rows, rec_vals, history, rec_cap, clip_rec,
            i_state, v_state, bias, cuba, decay_then_add, k_syn, k_mem, has_leak, rounding, delta_update,
            cur_lo, cur_hi, mem_lo, mem_hi, mem_bits, th, strict, zero_reset, v_reset, cap, spikes, step_sat,
            state_sat, fed, rec_i, rec_v, record, t0, use_values, in_shift, decay_input, di_rounding):
    """One chunk (module docstring). ``use_values``: ``counts_in`` holds input currents ``[Tc, N, M]``
    (added in one go), not event counts. ``state_sat``: [i, v, dv, clipped fed-back counts]; ``fed``:
    fed-back events per step and source, summed over the batch. Returns 0, or -1 - source of a
    fed-back count above ``rec_cap`` without ``clip_rec`` (the caller raises)."""
    tc, batch, m_count = spikes.shape
    latency = history.shape[0]
    has_rec = rec_start.shape[0] > 1
    full = np.int64(1) << mem_bits
    for t in range(tc):
        sat_t = 0
        n_v = 0
        n_dv = 0
        n_i = 0
        back = history[(t0 + t) % latency]  # spikes of step t - L (ring buffer by global step)
        for n in range(batch):
            i_row = i_state[n]
            x_row = counts_in[t, n]
            if not use_values:  # events (and fed-back spikes) into the current, source by source
                if not cuba:
                    for m in range(m_count):
                        i_row[m] = 0
                elif decay_then_add:
                    for m in range(m_count):
                        i_row[m] -= _decay(i_row[m], k_syn, rounding)
                s = _add_events(i_row, counts_in[t, n], in_start, in_rows, in_vals, cur_lo, cur_hi)
                if has_rec:
                    src = back[n]
                    for j in range(m_count):
                        c = src[j]
                        if c == 0:
                            continue
                        if c > rec_cap:
                            if not clip_rec:
                                return -1 - j
                            c = rec_cap
                            state_sat[3] += 1
                            sat_t += 1
                        fed[t, j] += c
                        s += _add_source(i_row, c, rec_start[j], rec_start[j + 1], rec_rows, rec_vals, cur_lo, cur_hi)
                state_sat[0] += s
                sat_t += s
                if cuba and not decay_then_add:
                    for m in range(m_count):
                        i_row[m] -= _decay(i_row[m], k_syn, rounding)
            for m in range(m_count):
                if use_values:  # input currents: one saturating add (IF/LIF: a fresh current)
                    xv = x_row[m] << in_shift
                    if cuba:
                        ii = i_row[m]
                        if decay_then_add:
                            ii -= _decay(ii, k_syn, rounding)
                        ii, c = _sat(ii + xv, cur_lo, cur_hi)
                        if not decay_then_add:
                            ii -= _decay(ii, k_syn, rounding)
                        i_row[m] = ii
                    else:
                        ii, c = _sat(xv, cur_lo, cur_hi)
                        if decay_input:  # LIF decay_input: the input current scaled by 1/tau = 2^-k
                            ii = _decay(ii, k_mem, di_rounding)
                    n_i += c
                else:
                    ii = i_row[m]
                v = v_state[n, m]
                leak = _decay(v - v_reset, k_mem, rounding) if has_leak else 0
                b = bias[m]
                if delta_update:
                    dv = -leak
                    if dv < mem_lo or dv > mem_hi:  # wrap to the membrane width
                        dv = ((dv - mem_lo) % full) + mem_lo
                        n_dv += 1
                    dv, c1 = _sat(dv + ii, mem_lo, mem_hi)
                    dv, c2 = _sat(dv + b, mem_lo, mem_hi)
                    v, c3 = _sat(v + dv, mem_lo, mem_hi)
                    n_dv += c1 + c2
                    n_v += c3
                else:
                    v, c3 = _sat(v - leak + ii + b, mem_lo, mem_hi)
                    n_v += c3
                fired = v > th if strict else v >= th
                k = 0
                if fired:
                    if zero_reset:
                        k = 1
                        v = v_reset
                    else:
                        if cap == 1:
                            k = 1
                        elif th > 0:
                            k = (v - 1 if strict else v) // th
                            k = 0 if k < 0 else cap if k > cap else k
                        else:
                            k = cap
                        v -= k * th
                v, c4 = _sat(v, mem_lo, mem_hi)
                n_v += c4
                v_state[n, m] = v
                spikes[t, n, m] = k
                if has_rec:
                    back[n, m] = k  # this sample's fed-back spikes are read: they return at t + L
                if record:
                    rec_v[t, n, m] = v
                    rec_i[t, n, m] = ii
        state_sat[0] += n_i
        state_sat[1] += n_v
        state_sat[2] += n_dv
        step_sat[t] = sat_t + n_i + n_v + n_dv
    return 0


def step_population(op, counts_in: np.ndarray, w_in: np.ndarray, rec: Optional[dict], record: bool, t0: int = 0):
    """Step ``op`` (a :class:`~sim.ops.neuron.NeuronOp`) over a chunk of event counts ``[Tc, N, K]``
    through the effective weights ``w_in`` ``[M, K]`` (``w_in=None``: ``counts_in`` are input currents
    ``[Tc, N, M]`` in input units, added in one go as ``sat(I + (X << input_shift))``); ``rec``: the recurrent part (``csc`` of the
    recurrent weights, ``history`` ring ``[L, N, M]`` indexed by global step mod L, ``cap``, ``clip``)
    or None; ``t0`` the chunk's first global step.

    Updates ``op``'s states and saturation counters; returns ``(spikes, step saturations, fed-back
    counts [Tc, M] or None, recorded states, clipped fed-back counts)``."""
    tg = op.target
    tc = counts_in.shape[0]
    m = int(np.prod(op.shape, dtype=np.int64))  # any neuron shape runs flat (C order)
    full = (op.batch, m)
    use_values = w_in is None
    if use_values:
        counts_in = counts_in.reshape(tc, *full)
    if use_values:
        in_start, in_rows, in_vals = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    else:
        cache = op.__dict__.setdefault("_csc_cache", {})
        if cache.get("key") != id(w_in):
            cache.update(key=id(w_in), value=csc(w_in), ref=w_in)
        in_start, in_rows, in_vals = cache["value"]
    if rec is None:
        rec_start, rec_rows, rec_vals = np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        history, rec_cap, clip_rec = np.zeros((1, op.batch, m), np.int64), 0, False
    else:
        (rec_start, rec_rows, rec_vals), history = rec["csc"], rec["history"]
        rec_cap, clip_rec = rec["cap"], rec["clip"]
    spikes = np.zeros((tc, op.batch, m), np.int64)
    step_sat = np.zeros(tc, np.int64)
    state_sat = np.zeros(4, np.int64)
    fed = np.zeros((tc, m), np.int64)
    rec_shape = (tc, op.batch, m) if record else (0, 0, 0)
    rec_i, rec_v = np.zeros(rec_shape, np.int64), np.zeros(rec_shape, np.int64)
    i_state = np.ascontiguousarray(op.i, np.int64).reshape(full) if "i" in op.state_names else np.zeros(full, np.int64)
    v_state = np.ascontiguousarray(op.v, np.int64).reshape(full)
    bias = np.broadcast_to(np.asarray(op.bias_int, np.int64), op.shape).ravel().copy()
    cur, mem = tg.widths.current, tg.widths.membrane
    status = _kernel(
        np.ascontiguousarray(counts_in, np.int64), in_start, in_rows, in_vals, rec_start, rec_rows, rec_vals,
        history, int(rec_cap), bool(clip_rec), i_state, v_state, bias, "i" in op.state_names,
        tg.decay.current_order == "decay_then_add", int(op.decay_syn or 0), int(op.decay_mem or 0),
        bool(op.has_mem_decay), _ROUNDING[tg.decay.rounding], tg.neuron.membrane_update == "saturated_delta",
        int(cur.lo), int(cur.hi), int(mem.lo), int(mem.hi), int(mem.bits), int(op.threshold_int),
        tg.neuron.compare == ">", op.reset_kind == "zero", int(op.v_reset), int(op.max_spikes),
        spikes, step_sat, state_sat, fed, rec_i, rec_v, bool(record), int(t0),
        use_values, int(op.input_shift), bool(op.decay_input), 1 if tg.decay.rounding == "toward_zero" else 0,
    )
    if status < 0:
        raise op.error(f"neuron {-1 - status} fed back more spikes in one step than the event cap {rec_cap} "
                       "(params.event_cap; export with clip_events to clip)")
    for name, n in zip(("i", "v", "dv"), state_sat[:3]):
        if n:
            op.count_saturations(name, int(n))
    shape = (op.batch, *op.shape)
    op.v = v_state.reshape(shape)
    if "i" in op.state_names:
        op.i = i_state.reshape(shape)
    recorded = {}
    if record:
        recorded = {"v": rec_v.reshape(tc, *shape)}
        if "i" in op.state_names:
            recorded["i"] = rec_i.reshape(tc, *shape)
    return (spikes.reshape(tc, *shape).astype(op.spike_dtype), step_sat, (fed if rec is not None else None), recorded,
            int(state_sat[3]))


#: input currents (``sum`` targets) take the compiled loop only up to this many neurons x samples:
#: beyond it NumPy's vectorised steps are faster (measured: 0.4 vs 1.4 ms at 256, 6.5 vs 3.8 ms at
#: 8192 neuron-samples over 64 steps); per-event input always takes it (NumPy replays events)
MAX_VALUE_ELEMENTS = 4096


def applicable(op, events: bool) -> bool:
    """Whether :func:`step_population` computes ``op``'s rules (shift decays, saturating states of at
    most 48 bits so that no int64 intermediate overflows, ``direct`` or ``saturated_delta`` updates;
    per-event input needs ``input_shift`` 0) and is the faster path (:data:`MAX_VALUE_ELEMENTS`)."""
    tg = op.target
    small = op.batch * int(np.prod(op.shape, dtype=np.int64)) <= MAX_VALUE_ELEMENTS
    return (available() and getattr(op, "jit", True) and not getattr(op, "per_neuron", False) and (events or small) and (len(op.shape) == 1 or not events) and tg.decay.mechanism == "shift"
            and tg.decay.rounding in _ROUNDING and tg.overflow.current == "saturate"
            and tg.overflow.membrane == "saturate" and tg.neuron.membrane_update in ("direct", "saturated_delta")
            and max(tg.widths.current.bits, tg.widths.membrane.bits, tg.widths.bias.bits) <= 48
            and op.input_shift <= 8 and (op.input_shift == 0 or not events) and op.reset_kind in ("zero", "subtract"))
