r"""numba CPU kernels of the integer neuron and synapse-filter sequences (imported lazily: extra ``fast``).

Each kernel runs all ``T`` steps of a block of :data:`BLOCK` neurons before the next block
(blocks in parallel on ``torch.get_num_threads()`` threads from :data:`PARALLEL_MIN_WORK`
neuron-steps on, else in the calling thread), with the states of the block in small arrays. The
arithmetic is int64 throughout, as the twins' (:mod:`hwsnn.fixed.arith`), and each small
function below mirrors one twin function; see :mod:`hwsnn.backend.fixed` for the table. The
rules come as one int64 vector (:meth:`hwsnn.backend.fixed.NeuronRules.params`, layout ``P_*``
below), so a new rule is a new slot rather than a new kernel signature.

A neuron step runs as three passes over the block (current, membrane, fire and reset): short
loops whose few run-time rule values stay in registers. Each pass inlines its loop once per
shipped target family with that family's rules as constants (the compiler folds them into a
branch-free loop, ~3x faster) and once with run-time rules for anything else; a change of a
target's arithmetic goes into the helper functions, which every copy shares.

Saturation counts are summed per block (``counts[block, kind]``, kinds ``i``, ``v``, ``dv``) and
added on the host: the totals equal the twin's ``saturations``, which counts one per value
brought back into range per overflow operation.

Compiled code is cached on disk (``cache=True``): the first use in a fresh environment compiles
the serial kernels (about 12 s on the 2-core CI VM; the parallel ones, on the first large
sequence, about 6 s more); later processes load them (under 1 s).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import prange

from .fixed_rules import EventInput, NeuronRules, SynapseRules

__all__ = ["BLOCK", "neuron_sequence_numba", "synapse_sequence_numba"]

#: neurons per block (one block's states stay in L1)
BLOCK = 1024
#: sequences with fewer neuron-steps than this run in the calling thread: a parallel region costs
#: more than it saves there, and much more when the cores are shared with other processes
PARALLEL_MIN_WORK = 1 << 18

_JIT = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)
_INLINE = dict(inline="always", **_JIT)
_SMALL = dict(**_JIT)  # helpers: LLVM inlines them

# layout of the neuron parameter vector (NeuronRules.params)
P_SHIFT = 0
P_CUR = 1  # 7 slots (Width.params): mode, lo, hi, mask, full, half, signed
P_MEM = 8  # 7 slots
P_HAS_SYN, P_SYN = 15, 16  # 3 slots: mechanism, param, rounding
P_ADD_THEN_DECAY = 19
P_HAS_MEM, P_MEMD = 20, 21
P_HAS_IN, P_IN = 24, 25
P_SAT_DELTA, P_GE, P_ZERO, P_VRESET, P_TH, P_CAP = 28, 29, 30, 31, 32, 33
P_V_STORE, P_I_STORE = 34, 35
P_IN_WRAP = 36  # bits of the fixed-width input (Loihi's int32 a_in), 0: exact
N_PARAMS = 37


# ------------------------------------------------------------------------------------------------
# the twin's arithmetic, one function per twin function
# ------------------------------------------------------------------------------------------------
@numba.njit(**_SMALL)
def _ovf(x, w):
    """``arith.overflow`` of one value: ``(value, 1 if it was out of range else 0)``;
    ``w = (mode, lo, hi, 2^bits, signed)`` (:func:`_width`)."""
    mode, lo, hi, full, signed = w
    if mode == 2:  # fold_once: (-2^(b-1), 2^(b-1)] by one fold, never more
        half = full >> 1
        if x > half:
            return x - full, 1
        if x <= -half:
            return x + full, 1
        return x, 0
    if x < lo or x > hi:
        if mode == 0:  # saturate
            return (lo if x < lo else hi), 1
        y = x & (full - 1)  # wrap: two's complement (modulo for unsigned)
        if signed != 0 and y > hi:
            y -= full
        return y, 1
    return x, 0


@numba.njit(**_SMALL)
def _width(p, k):
    """The overflow tuple of the width at ``p[k:k + 7]`` (Width.params()); ``mode`` replaced if >= 0."""
    return (p[k], p[k + 1], p[k + 2], p[k + 4], p[k + 6])


@numba.njit(**_SMALL)
def _store(x, bits):
    """The twin's ``state.to(storage dtype)``: two's complement wrap to ``bits`` (8/16/32/64)."""
    if bits >= 64:
        return x
    y = x & ((1 << bits) - 1)
    return y - (1 << bits) if y >= (1 << (bits - 1)) else y


@numba.njit(**_SMALL)
def _shift_right(x, k, rounding):
    """``arith.shift_right``: floor (0) or toward zero (1)."""
    if rounding == 1 and x < 0:
        return -((-x) >> k)
    return x >> k


@numba.njit(**_SMALL)
def _decay_amount(x, mechanism, param, rounding):
    """``neuron.decay_amount``: shift :math:`D(x, k)` (floor / toward_zero / xylo_min1), or
    mul12 :math:`x - \\mathrm{rnd}(x (4096 - d) \\gg 12)`."""
    if mechanism == 1:
        return x - _shift_right(x * (4096 - param), 12, rounding)
    if rounding == 2:  # xylo_min1: at least 1 for positive values
        d = x >> param
        return 1 if (d == 0 and x > 0) else d
    return _shift_right(x, param, rounding)


@numba.njit(**_SMALL)
def _input_scale(c, mechanism, param, rounding):
    """``FixedLIFNode._current`` with ``decay_input``: :math:`c \\gg k`, or :math:`(c\\,d) \\gg 12` (mul12)."""
    if mechanism == 1:
        return _shift_right(c * param, 12, rounding)
    return _shift_right(c, param, rounding)


@numba.njit(**_SMALL)
def _wrap_bits(x, bits):
    """Two's complement wrap of ``x`` to ``bits``: ``(value, 1 if it changed else 0)``."""
    half = 1 << (bits - 1)
    y = ((x + half) & ((1 << bits) - 1)) - half
    return y, 1 if y != x else 0


@numba.njit(**_SMALL)
def _input_add(i, x, shift, cw, wb):
    """``_FixedNeuron._add_input`` for a tensor input: ``ovf(i + (x << s))`` in the current width; with a
    fixed-width input (``wb`` bits, Loihi's int32 ``a_in``): ``ovf(wrap(i + wrap(wrap(x) << s)))``,
    every wrap counted with the overflow."""
    if wb == 0:
        return _ovf(i + (x << shift), cw)
    x, n1 = _wrap_bits(x, wb)
    x, n2 = _wrap_bits(x << shift, wb)
    y, n3 = _wrap_bits(i + x, wb)
    y, n4 = _ovf(y, cw)
    return y, n1 + n2 + n3 + n4


@numba.njit(**_SMALL)
def _events_risky(i, pos, neg, lo, hi):
    """``events.accumulate_events``, first part: whether a partial sum of this neuron's events can
    leave ``[lo, hi]`` (``pos``/``neg``: the sums of its positive / negative terms); if not, the
    plain sum ``i + pos + neg`` is exact."""
    return i + pos > hi or i + neg < lo


@numba.njit(**_SMALL)
def _events_replay(i, cnt, w, t, r, o, lo, hi):
    """``events.accumulate_events``, second part: the events in source order, saturating after every
    one; ``(value, saturating adds)``."""
    acc, n = i, 0
    for src in range(cnt.shape[2]):
        raw = acc + cnt[t, r, src] * w[o, src]
        clipped = min(max(raw, lo), hi)
        if clipped != raw:
            n += 1
        acc = clipped
    return acc, n


@numba.njit(**_SMALL)
def _membrane(v, dec, i, b, saturated_delta, mw, mw_wrap):
    """``_FixedNeuron._membrane``: ``(v, n_v, n_dv)``; ``dec`` is the leak :math:`D` (0 for IF)."""
    if saturated_delta == 0:
        v, nv = _ovf(v - dec + i + b, mw)
        return v, nv, 0
    dv, n1 = _ovf(-dec, mw_wrap)
    dv, n2 = _ovf(dv + i, mw)
    dv, n3 = _ovf(dv + b, mw)
    v, nv = _ovf(v + dv, mw)
    return v, nv, n1 + n2 + n3


@numba.njit(**_SMALL)
def _fire_reset(v, th, ge, zero, vr, cap):
    """``neuron.fire_and_reset``: ``(spike count, membrane)``; the subtractive loop in closed form."""
    fired = v >= th if ge != 0 else v > th
    if zero != 0:
        return (1 if fired else 0), (vr if fired else v)
    if cap == 1 or not fired:
        n = 1 if fired else 0
    elif th > 0:  # loop turns: floor(v / th) for '>=', ceil(v / th) - 1 = floor((v - 1) / th) for '>'
        num = v if ge != 0 else v - 1
        n = 1 if num - th < th else min(num // th, cap)  # (the division only for two or more spikes)
    else:  # th <= 0: the comparison stays true, the cap ends the loop
        n = cap
    return n, v - n * th


# ------------------------------------------------------------------------------------------------
# kernels
# ------------------------------------------------------------------------------------------------
@numba.njit(**_INLINE)
def _current_loop(n, t, c0, x_row, p_row, q_row, cnt, w, events, cur, ibuf, risky, shift, cw, has_syn, syn_m,
                  syn_k, syn_r, add_first, wb):
    """The input loop of :func:`_pass_current` (inlined with constant rules where it can be). Events:
    the plain sums in the loop, the (rare) neurons whose partial sums may saturate replayed after it."""
    n_i = 0
    n_risky = 0
    lo, hi = cw[1], cw[2]
    for jj in range(n):
        i = cur[jj] if has_syn != 0 else 0
        if has_syn != 0 and add_first == 0:
            i = i - _decay_amount(i, syn_m, syn_k, syn_r)
        if events != 0:
            if _events_risky(i, p_row[jj], q_row[jj], lo, hi):
                risky[n_risky] = jj
                n_risky += 1
            else:
                i = i + p_row[jj] + q_row[jj]
        else:
            i, c = _input_add(i, x_row[jj], shift, cw, wb)
            n_i += c
        ibuf[jj] = i
    nout = w.shape[0]
    for k in range(n_risky):
        jj = risky[k]
        j = c0 + jj
        i, c = _events_replay(ibuf[jj], cnt, w, t, j // nout, j % nout, lo, hi)
        n_i += c
        ibuf[jj] = i
    return n_i


@numba.njit(**_JIT)
def _pass_current(n, t, c0, x_row, p_row, q_row, cnt, w, has_events, cur, ibuf, risky, p):
    """This step's current entering the membrane, ``ibuf[:n]`` (``_current`` / ``_add_input``); CUBA
    keeps its current in ``cur`` (stored dtype). Returns the current's saturation count. The
    shipped targets' rules get their own compiled input loop; any other combination the generic one."""
    shift = p[P_SHIFT]
    cw = _width(p, P_CUR)
    lo, hi, full, signed = cw[1], cw[2], cw[3], cw[4]
    has_syn, syn_m, syn_k, syn_r = p[P_HAS_SYN], p[P_SYN], p[P_SYN + 1], p[P_SYN + 2]
    add_first = p[P_ADD_THEN_DECAY]
    wb = p[P_IN_WRAP]
    sat = (0, lo, hi, full, signed)
    fold = (2, lo, hi, full, signed)
    if wb == 0 and cw[0] == 0 and has_events == 0 and has_syn == 0 and shift == 0:  # IF/LIF on generic_int8 / ideal
        n_i = _current_loop(n, t, c0, x_row, p_row, q_row, cnt, w, 0, cur, ibuf, risky, 0, sat, 0, 0, 0, 0, 0, 0)
    elif wb == 0 and cw[0] == 0 and has_events == 0 and has_syn != 0 and add_first == 0 and syn_m == 0 and syn_r == 0 and shift == 0:
        n_i = _current_loop(n, t, c0, x_row, p_row, q_row, cnt, w, 0, cur, ibuf, risky, 0, sat, 1, 0, syn_k, 0, 0, 0)  # CUBA, shift decay, floor
    elif cw[0] == 2 and has_events == 0 and has_syn != 0 and add_first == 0 and syn_m == 1 and syn_r == 1:
        n_i = _current_loop(n, t, c0, x_row, p_row, q_row, cnt, w, 0, cur, ibuf, risky, shift, fold, 1, 1, syn_k, 1, 0, wb)  # Loihi CUBA
    elif wb == 0 and cw[0] == 0 and has_events != 0 and has_syn == 0:  # Xylo LIF
        n_i = _current_loop(n, t, c0, x_row, p_row, q_row, cnt, w, 1, cur, ibuf, risky, 0, sat, 0, 0, 0, 0, 0, 0)
    elif wb == 0 and cw[0] == 0 and has_events != 0 and has_syn != 0 and add_first != 0 and syn_m == 0 and syn_r == 2:
        n_i = _current_loop(n, t, c0, x_row, p_row, q_row, cnt, w, 1, cur, ibuf, risky, 0, sat, 1, 0, syn_k, 2, 1, 0)  # Xylo CUBA
    else:
        n_i = _current_loop(n, t, c0, x_row, p_row, q_row, cnt, w, has_events, cur, ibuf, risky, shift, cw, has_syn, syn_m, syn_k, syn_r, add_first, wb)
    if has_syn != 0:
        i_bits = p[P_I_STORE]
        for jj in range(n):
            i = ibuf[jj]
            if add_first != 0:
                i = i - _decay_amount(i, syn_m, syn_k, syn_r)
                ibuf[jj] = i
            cur[jj] = _store(i, i_bits)  # the next step reads the stored current
    elif p[P_HAS_IN] != 0:  # LIF decay_input
        in_m, in_k, in_r = p[P_IN], p[P_IN + 1], p[P_IN + 2]
        for jj in range(n):
            ibuf[jj] = _input_scale(ibuf[jj], in_m, in_k, in_r)
    return n_i


@numba.njit(**_INLINE)
def _membrane_loop(n, v, ibuf, b_row, has_mem, mem_m, mem_k, mem_r, vr, sat_delta, mw, mw_wrap):
    """The loop of :func:`_pass_membrane`; inlined at call sites with constant rules, which the
    compiler then folds into a short branch-free loop."""
    n_v = 0
    n_dv = 0
    for jj in range(n):
        vj = v[jj]
        dec = _decay_amount(vj - vr, mem_m, mem_k, mem_r) if has_mem != 0 else 0
        vj, a, b = _membrane(vj, dec, ibuf[jj], b_row[jj], sat_delta, mw, mw_wrap)
        n_v += a
        n_dv += b
        v[jj] = vj
    return n_v, n_dv


@numba.njit(**_JIT)
def _pass_membrane(n, v, ibuf, b_row, p):
    """``_membrane`` on ``v[:n]`` in place (int64, not yet stored); returns ``(n_v, n_dv)``.
    The shipped targets' rules get their own compiled loop; any other combination the generic one."""
    mw = _width(p, P_MEM)
    lo, hi, full, signed = mw[1], mw[2], mw[3], mw[4]
    has_mem, mem_m, mem_k, mem_r = p[P_HAS_MEM], p[P_MEMD], p[P_MEMD + 1], p[P_MEMD + 2]
    sat_delta, vr = p[P_SAT_DELTA], p[P_VRESET]
    if mw[0] == 0 and has_mem != 0 and sat_delta == 0 and mem_m == 0 and mem_r == 0:  # shift, floor, saturate
        return _membrane_loop(n, v, ibuf, b_row, 1, 0, mem_k, 0, vr, 0, (0, lo, hi, full, signed), (1, lo, hi, full, signed))
    if mw[0] == 0 and has_mem != 0 and sat_delta != 0 and mem_m == 0 and mem_r == 2:  # Xylo
        return _membrane_loop(n, v, ibuf, b_row, 1, 0, mem_k, 2, vr, 1, (0, lo, hi, full, signed), (1, lo, hi, full, signed))
    if mw[0] == 0 and has_mem != 0 and sat_delta == 0 and mem_m == 1 and mem_r == 1:  # Loihi
        return _membrane_loop(n, v, ibuf, b_row, 1, 1, mem_k, 1, vr, 0, (0, lo, hi, full, signed), (1, lo, hi, full, signed))
    mw_wrap = (np.int64(1), lo, hi, full, signed)
    return _membrane_loop(n, v, ibuf, b_row, has_mem, mem_m, mem_k, mem_r, vr, sat_delta, mw, mw_wrap)


@numba.njit(**_INLINE)
def _fire_loop(n, v, s_row, th, ge, zero, vr, cap, mw, v_bits):
    """The loop of :func:`_pass_fire` (inlined with constant rules where it can be)."""
    n_v = 0
    for jj in range(n):
        s, vj = _fire_reset(v[jj], th, ge, zero, vr, cap)
        vj, a = _ovf(vj, mw)
        n_v += a
        v[jj] = _store(vj, v_bits)
        s_row[jj] = s
    return n_v


@numba.njit(**_JIT)
def _pass_fire(n, v, s_row, p):
    """``fire_and_reset``, the membrane overflow and the stored dtype on ``v[:n]``; spikes to ``s_row``.
    Returns the membrane's saturation count."""
    mw = _width(p, P_MEM)
    sat = (0, mw[1], mw[2], mw[3], mw[4])
    ge, zero, vr, th, cap, v_bits = p[P_GE], p[P_ZERO], p[P_VRESET], p[P_TH], p[P_CAP], p[P_V_STORE]
    if mw[0] == 0 and ge != 0 and zero == 0:  # '>=', subtract (generic_int8, ideal, Xylo)
        return _fire_loop(n, v, s_row, th, 1, 0, vr, cap, sat, v_bits)
    if mw[0] == 0 and ge != 0 and zero != 0:  # '>=', zero reset
        return _fire_loop(n, v, s_row, th, 1, 1, vr, 1, sat, v_bits)
    if mw[0] == 0 and ge == 0 and zero != 0:  # '>', zero reset (Loihi)
        return _fire_loop(n, v, s_row, th, 0, 1, vr, 1, sat, v_bits)
    return _fire_loop(n, v, s_row, th, ge, zero, vr, cap, mw, v_bits)


@numba.njit(**_JIT)
def _neuron_block(ib, block, x, pos, neg, cnt, w, has_events, i0, v0, bias, p, spikes, vout, iout, counts, store):
    """All ``T`` steps of neuron block ``ib``: ``spikes`` [T, N] int8; ``vout``/``iout`` [T, N] if
    ``store`` else [1, N] (the stored states after every step / the last); ``counts[ib]`` = (i, v, dv).

    Each step runs as three passes over the block (current, membrane, fire and reset), each a
    short loop whose few run-time rule values stay in registers."""
    T, N = spikes.shape
    c0 = ib * block
    n = min(N - c0, block)
    has_syn = p[P_HAS_SYN] != 0
    v = v0[c0:c0 + n].copy()
    cur = i0[c0:c0 + n].copy()
    ibuf = np.empty(n, np.int64)
    risky = np.empty(n, np.int64)
    b_row = bias[c0:c0 + n]
    n_i = 0
    n_v = 0
    n_dv = 0
    for t in range(T):
        tx = 0 if has_events != 0 else t  # the unused inputs are (1, 1) placeholders
        tp = t if has_events != 0 else 0
        n_i += _pass_current(n, t, c0, x[tx, c0:c0 + n], pos[tp, c0:c0 + n], neg[tp, c0:c0 + n], cnt, w,
                             has_events, cur, ibuf, risky, p)
        a, b = _pass_membrane(n, v, ibuf, b_row, p)
        n_v += a
        n_dv += b
        n_v += _pass_fire(n, v, spikes[t, c0:c0 + n], p)
        if store:  # element loops: ~4x faster than numba's slice assignment here
            for jj in range(n):
                vout[t, c0 + jj] = v[jj]
            if has_syn:  # (IF/LIF have no current to keep)
                for jj in range(n):
                    iout[t, c0 + jj] = cur[jj]
    if not store:
        vout[0, c0:c0 + n] = v
        iout[0, c0:c0 + n] = cur
    counts[ib, 0] = n_i
    counts[ib, 1] = n_v
    counts[ib, 2] = n_dv


@numba.njit(parallel=True, **_JIT)
def _neuron_parallel(x, pos, neg, cnt, w, has_events, i0, v0, bias, p, spikes, vout, iout, counts, store, block):
    """:func:`_neuron_block` over all blocks, in parallel."""
    for ib in prange((spikes.shape[1] + block - 1) // block):
        _neuron_block(ib, block, x, pos, neg, cnt, w, has_events, i0, v0, bias, p, spikes, vout, iout, counts, store)


@numba.njit(**_JIT)
def _neuron_serial(x, pos, neg, cnt, w, has_events, i0, v0, bias, p, spikes, vout, iout, counts, store, block):
    """:func:`_neuron_block` over all blocks, in this thread (small sequences: no fork/join)."""
    for ib in range((spikes.shape[1] + block - 1) // block):
        _neuron_block(ib, block, x, pos, neg, cnt, w, has_events, i0, v0, bias, p, spikes, vout, iout, counts, store)


@numba.njit(**_JIT)
def _synapse_block(ib, block, s, i0, p, out, counts):
    """``FixedSynapseFilter.single_step_forward`` over ``T`` for block ``ib``: ``out`` [T, N];
    ``counts[ib]`` = (saturations, non-binary inputs)."""
    T, N = s.shape
    one, mech, k, rnd = p[0], p[1], p[2], p[3]
    cw = _width(p, 4)
    bits = p[11]
    c0 = ib * block
    n = min(N - c0, block)
    cur = i0[c0:c0 + n].copy()
    n_sat = 0
    n_bad = 0
    for t in range(T):
        for jj in range(n):
            i = cur[jj]
            sj = s[t, c0 + jj]
            if sj != 0 and sj != 1:
                n_bad += 1
            new = i + one if sj != 0 else i - _decay_amount(i, mech, k, rnd)
            new, c = _ovf(new, cw)
            n_sat += c
            cur[jj] = _store(new, bits)  # the stored state; the step's output is the uncast value
            out[t, c0 + jj] = new
    counts[ib, 0] = n_sat
    counts[ib, 1] = n_bad


@numba.njit(parallel=True, **_JIT)
def _synapse_parallel(s, i0, p, out, counts, block):
    for ib in prange((s.shape[1] + block - 1) // block):
        _synapse_block(ib, block, s, i0, p, out, counts)


@numba.njit(**_JIT)
def _synapse_serial(s, i0, p, out, counts, block):
    for ib in range((s.shape[1] + block - 1) // block):
        _synapse_block(ib, block, s, i0, p, out, counts)


# ------------------------------------------------------------------------------------------------
# torch wrappers
# ------------------------------------------------------------------------------------------------
def _run(serial, parallel, work: int, *args) -> None:
    """``parallel(*args)`` on ``torch.get_num_threads()`` threads (capped by ``NUMBA_NUM_THREADS``) when
    there are at least :data:`PARALLEL_MIN_WORK` neuron-steps and more than one thread, else ``serial``.

    numba's OpenMP layer may share its thread-count setting with torch's (one ``libgomp``): torch's
    count is restored after a parallel call, and the serial path never starts numba's threads."""
    n = torch.get_num_threads()
    threads = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    if work < PARALLEL_MIN_WORK or threads == 1:
        serial(*args)
        return
    numba.set_num_threads(threads)
    try:
        parallel(*args)
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _i64(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.int64).contiguous().numpy()


_DUMMY2 = np.zeros((1, 1), np.int64)
_DUMMY3 = np.zeros((1, 1, 1), np.int64)
_ONES2 = np.ones((1, 1), np.int64)  # a (1, 1) weight: N_out = 1 when there are no events


def neuron_sequence_numba(
    x: torch.Tensor | None, events: EventInput | None, i0: torch.Tensor, v0: torch.Tensor, bias: torch.Tensor,
    rules: NeuronRules, store: bool, block: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """See :func:`hwsnn.backend.fixed.neuron_sequence` (CPU tensors)."""
    if events is not None:
        pos, neg = events.sums()
        T, N = pos.shape
        args = (_DUMMY2, _i64(pos), _i64(neg), _i64(events.counts), _i64(events.weight), 1)
    else:
        T, N = x.shape
        args = (_i64(x), _DUMMY2, _DUMMY2, _DUMMY3, _ONES2, 0)
    block = block or BLOCK
    spikes = torch.empty((T, N), dtype=torch.int8)
    rows = T if store else 1
    params = np.asarray(rules.params(), np.int64)
    vout = torch.empty((rows, N), dtype=torch.int64)
    i0_64 = _i64(i0)
    # IF/LIF keep no current: the kernel never changes it, so every stored row is i0 (a broadcast view)
    keep_i = not store or params[P_HAS_SYN] != 0
    iout = torch.empty((rows, N), dtype=torch.int64) if keep_i else torch.from_numpy(i0_64.copy()).reshape(1, N)
    counts = np.zeros(((N + block - 1) // block, 3), np.int64)
    _run(_neuron_serial, _neuron_parallel, T * N, *args, i0_64, _i64(v0), _i64(bias),
         params, spikes.numpy(), vout.numpy(), iout.numpy() if keep_i else _DUMMY2, counts, store, block)
    return spikes, vout, (iout if keep_i else iout.expand(T, N)), [int(c) for c in counts.sum(0)]


def synapse_sequence_numba(
    s: torch.Tensor, i0: torch.Tensor, rules: SynapseRules, block: int | None = None
) -> tuple[torch.Tensor, int, int]:
    """See :func:`hwsnn.backend.fixed.synapse_sequence` (CPU tensors; ``s`` of any integer or bool dtype)."""
    T, N = s.shape
    block = block or BLOCK
    out = torch.empty((T, N), dtype=torch.int64)
    counts = np.zeros(((N + block - 1) // block, 2), np.int64)
    _run(_synapse_serial, _synapse_parallel, T * N, s.detach().contiguous().numpy(), _i64(i0),
         np.asarray(rules.params(), np.int64), out.numpy(), counts, block)
    n_sat, n_bad = counts.sum(0)
    return out, int(n_sat), int(n_bad)
