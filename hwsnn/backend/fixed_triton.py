r"""Triton kernels of the integer neuron and synapse-filter sequences (imported lazily: Triton is optional).

One program owns :data:`BLOCK` neurons and loops over the ``T`` steps with the states in
registers; the arithmetic is int64, one ``@triton.jit`` function per twin function, the same
table as the numba kernels (:mod:`hwsnn.backend.fixed`, :mod:`hwsnn.backend.fixed_kernels`).
The rules are compile-time constants (modes, widths, shifts, spike cap; one compilation per
distinct layer configuration); threshold and reset value are run-time scalars.

Integer division and shifts are written so that the CUDA semantics (division truncates) and the
``TRITON_INTERPRET=1`` CPU interpreter (NumPy's floor division) give the same numbers: the
multi-spike count divides by a positive threshold and corrects a negative remainder. Saturation
counts are summed per program and added on the host.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # pragma: no cover - exercised only without triton
    raise ImportError("hwsnn.backend.fixed_triton needs Triton: install it with `pip install hwsnn[triton]`") from exc

from .fixed_rules import EventInput, NeuronRules, SynapseRules, Width

__all__ = ["BLOCK", "neuron_sequence_triton", "synapse_sequence_triton"]

#: neurons per program
BLOCK = 128


@triton.jit
def _ovf(x, MODE: tl.constexpr, LO: tl.constexpr, HI: tl.constexpr, MASK: tl.constexpr, FULL: tl.constexpr,
         HALF: tl.constexpr, SIGNED: tl.constexpr):
    """``arith.overflow`` elementwise: ``(value, 1 where out of range)``."""
    if MODE == 2:  # fold_once
        up = x > HALF
        down = x <= -HALF
        y = tl.where(up, x - FULL, tl.where(down, x + FULL, x))
        n = (up | down).to(tl.int64)
    else:
        out = (x < LO) | (x > HI)
        if MODE == 0:  # saturate
            y = tl.minimum(tl.maximum(x, LO), HI)
        else:  # wrap
            y = x & MASK
            if SIGNED:
                y = tl.where(y > HI, y - FULL, y)
            y = tl.where(out, y, x)
        n = out.to(tl.int64)
    return y, n


@triton.jit
def _wrap_bits(x, BITS: tl.constexpr):
    """Two's complement wrap to ``BITS`` elementwise: ``(value, 1 where it changed)``."""
    y = ((x + (1 << (BITS - 1))) & ((1 << BITS) - 1)) - (1 << (BITS - 1))
    return y, (y != x).to(tl.int64)


@triton.jit
def _store(x, BITS: tl.constexpr):
    """The twin's ``state.to(storage dtype)``: two's complement wrap to ``BITS`` (8/16/32/64)."""
    if BITS >= 64:
        y = x
    else:
        y = x & ((1 << BITS) - 1)
        y = tl.where(y >= (1 << (BITS - 1)), y - (1 << BITS), y)
    return y


@triton.jit
def _shift_right(x, K: tl.constexpr, R: tl.constexpr):
    """``arith.shift_right``: floor (0) or toward zero (1)."""
    if R == 1:
        y = tl.where(x < 0, -((-x) >> K), x >> K)
    else:
        y = x >> K
    return y


@triton.jit
def _decay_amount(x, MECH: tl.constexpr, K: tl.constexpr, R: tl.constexpr):
    """``neuron.decay_amount``: shift :math:`D(x, k)` or mul12 :math:`x - \\mathrm{rnd}(x (4096 - d) \\gg 12)`."""
    if MECH == 1:
        y = x - _shift_right(x * (4096 - K), 12, R)
    elif R == 2:  # xylo_min1
        d = x >> K
        y = tl.where((d == 0) & (x > 0), 1, d)
    else:
        y = _shift_right(x, K, R)
    return y


@triton.jit
def _floordiv_pos(a, b):
    """:math:`\\lfloor a / b \\rfloor` for ``b > 0`` under truncating (CUDA) or flooring (interpreter) ``//``."""
    q = a // b
    r = a - q * b
    return tl.where(r < 0, q - 1, q)


@triton.jit
def _neuron_kernel(
    x_ptr, pos_ptr, neg_ptr, cnt_ptr, w_ptr, i0_ptr, v0_ptr, b_ptr, s_ptr, v_ptr, i_ptr, counts_ptr,
    T, N, NIN, NOUT, vr, th,
    SHIFT: tl.constexpr, C_MODE: tl.constexpr, C_LO: tl.constexpr, C_HI: tl.constexpr, C_MASK: tl.constexpr,
    C_FULL: tl.constexpr, C_HALF: tl.constexpr, C_SIGNED: tl.constexpr,
    M_MODE: tl.constexpr, M_LO: tl.constexpr, M_HI: tl.constexpr, M_MASK: tl.constexpr, M_FULL: tl.constexpr,
    M_HALF: tl.constexpr, M_SIGNED: tl.constexpr,
    HAS_SYN: tl.constexpr, SYN_M: tl.constexpr, SYN_K: tl.constexpr, SYN_R: tl.constexpr, ADD_FIRST: tl.constexpr,
    HAS_MEM: tl.constexpr, MEM_M: tl.constexpr, MEM_K: tl.constexpr, MEM_R: tl.constexpr,
    HAS_IN: tl.constexpr, IN_M: tl.constexpr, IN_K: tl.constexpr, IN_R: tl.constexpr,
    SAT_DELTA: tl.constexpr, GE: tl.constexpr, ZERO: tl.constexpr, CAP: tl.constexpr,
    V_BITS: tl.constexpr, I_BITS: tl.constexpr, EVENTS: tl.constexpr, STORE: tl.constexpr, BLOCK: tl.constexpr,
    WRAP: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = (pid * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    mask = offs < N
    v = tl.load(v0_ptr + offs, mask=mask, other=0)
    cur = tl.load(i0_ptr + offs, mask=mask, other=0)
    b = tl.load(b_ptr + offs, mask=mask, other=0)
    n_i = tl.zeros([BLOCK], dtype=tl.int64)
    n_v = tl.zeros([BLOCK], dtype=tl.int64)
    n_dv = tl.zeros([BLOCK], dtype=tl.int64)
    row = offs // NOUT
    col = offs % NOUT
    R = N // NOUT
    for t in range(0, T):
        at = t * N + offs
        # -- current (_current / _add_input)
        if HAS_SYN:
            i = cur
            if not ADD_FIRST:
                i = i - _decay_amount(i, SYN_M, SYN_K, SYN_R)
        else:
            i = tl.zeros([BLOCK], dtype=tl.int64)
        if EVENTS:  # events.accumulate_events: per-event saturation where a partial sum can leave the width
            p = tl.load(pos_ptr + at, mask=mask, other=0)
            q = tl.load(neg_ptr + at, mask=mask, other=0)
            risky = ((i + p > C_HI) | (i + q < C_LO)) & mask
            plain = i + p + q
            if tl.sum(risky.to(tl.int32), axis=0) > 0:
                acc = i
                base = (t * R + row) * NIN
                for src in range(0, NIN):
                    c = tl.load(cnt_ptr + base + src, mask=risky, other=0)
                    wv = tl.load(w_ptr + col * NIN + src, mask=risky, other=0)
                    raw = acc + c * wv
                    clipped = tl.minimum(tl.maximum(raw, C_LO), C_HI)
                    n_i += ((clipped != raw) & risky).to(tl.int64)
                    acc = clipped
                i = tl.where(risky, acc, plain)
            else:
                i = plain
        else:  # ovf(i + (x << s)); WRAP bits (Loihi's int32 a_in): ovf(wrap(i + wrap(wrap(x) << s)))
            xv = tl.load(x_ptr + at, mask=mask, other=0)
            if WRAP > 0:
                xv, w1 = _wrap_bits(xv, WRAP)
                xv, w2 = _wrap_bits(xv << SHIFT, WRAP)
                i, w3 = _wrap_bits(i + xv, WRAP)
                n_i += tl.where(mask, w1 + w2 + w3, 0)
                i, c = _ovf(i, C_MODE, C_LO, C_HI, C_MASK, C_FULL, C_HALF, C_SIGNED)
            else:
                i, c = _ovf(i + (xv << SHIFT), C_MODE, C_LO, C_HI, C_MASK, C_FULL, C_HALF, C_SIGNED)
            n_i += tl.where(mask, c, 0)
        if HAS_SYN:
            if ADD_FIRST:
                i = i - _decay_amount(i, SYN_M, SYN_K, SYN_R)
            cur = _store(i, I_BITS)  # the next step reads the stored current
        elif HAS_IN:  # LIF decay_input: c >> k, or (c d) >> 12
            if IN_M == 1:
                i = _shift_right(i * IN_K, 12, IN_R)
            else:
                i = _shift_right(i, IN_K, IN_R)
        # -- membrane (_membrane)
        if HAS_MEM:
            dec = _decay_amount(v - vr, MEM_M, MEM_K, MEM_R)
        else:
            dec = tl.zeros([BLOCK], dtype=tl.int64)
        if SAT_DELTA:
            dv, c1 = _ovf(-dec, 1, M_LO, M_HI, M_MASK, M_FULL, M_HALF, M_SIGNED)
            dv, c2 = _ovf(dv + i, M_MODE, M_LO, M_HI, M_MASK, M_FULL, M_HALF, M_SIGNED)
            dv, c3 = _ovf(dv + b, M_MODE, M_LO, M_HI, M_MASK, M_FULL, M_HALF, M_SIGNED)
            n_dv += tl.where(mask, c1 + c2 + c3, 0)
            v, c = _ovf(v + dv, M_MODE, M_LO, M_HI, M_MASK, M_FULL, M_HALF, M_SIGNED)
        else:
            v, c = _ovf(v - dec + i + b, M_MODE, M_LO, M_HI, M_MASK, M_FULL, M_HALF, M_SIGNED)
        n_v += tl.where(mask, c, 0)
        # -- fire and reset (fire_and_reset), then the membrane overflow
        if GE:
            fired = v >= th
        else:
            fired = v > th
        nf = fired.to(tl.int64)
        if ZERO:
            n = nf
            v = tl.where(fired, vr, v)
        else:
            if CAP == 1:
                n = nf
            else:
                if GE:
                    num = v
                else:
                    num = v - 1
                q = _floordiv_pos(num, tl.maximum(th, 1))
                q = tl.minimum(tl.maximum(q, 0), CAP)
                n = tl.where(th > 0, q, nf * CAP)
            v = v - n * th
        v, c = _ovf(v, M_MODE, M_LO, M_HI, M_MASK, M_FULL, M_HALF, M_SIGNED)
        n_v += tl.where(mask, c, 0)
        v = _store(v, V_BITS)
        tl.store(s_ptr + at, n.to(tl.int8), mask=mask)
        if STORE:
            tl.store(v_ptr + at, v, mask=mask)
            tl.store(i_ptr + at, cur, mask=mask)
    if not STORE:
        tl.store(v_ptr + offs, v, mask=mask)
        tl.store(i_ptr + offs, cur, mask=mask)
    tl.store(counts_ptr + pid * 3, tl.sum(n_i, axis=0))
    tl.store(counts_ptr + pid * 3 + 1, tl.sum(n_v, axis=0))
    tl.store(counts_ptr + pid * 3 + 2, tl.sum(n_dv, axis=0))


@triton.jit
def _synapse_kernel(
    s_ptr, i0_ptr, o_ptr, counts_ptr, T, N,
    ONE: tl.constexpr, MECH: tl.constexpr, K: tl.constexpr, R: tl.constexpr,
    C_MODE: tl.constexpr, C_LO: tl.constexpr, C_HI: tl.constexpr, C_MASK: tl.constexpr, C_FULL: tl.constexpr,
    C_HALF: tl.constexpr, C_SIGNED: tl.constexpr, BITS: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = (pid * BLOCK + tl.arange(0, BLOCK)).to(tl.int64)
    mask = offs < N
    i = tl.load(i0_ptr + offs, mask=mask, other=0)
    n_sat = tl.zeros([BLOCK], dtype=tl.int64)
    n_bad = tl.zeros([BLOCK], dtype=tl.int64)
    for t in range(0, T):
        at = t * N + offs
        s = tl.load(s_ptr + at, mask=mask, other=0).to(tl.int64)
        n_bad += ((s != 0) & (s != 1)).to(tl.int64)
        new = tl.where(s != 0, i + ONE, i - _decay_amount(i, MECH, K, R))
        new, c = _ovf(new, C_MODE, C_LO, C_HI, C_MASK, C_FULL, C_HALF, C_SIGNED)
        n_sat += tl.where(mask, c, 0)
        tl.store(o_ptr + at, new, mask=mask)  # the step's output is the uncast value
        i = _store(new, BITS)
    tl.store(counts_ptr + pid * 2, tl.sum(n_sat, axis=0))
    tl.store(counts_ptr + pid * 2 + 1, tl.sum(n_bad, axis=0))


def _width_args(prefix: str, w: Width) -> dict:
    mode, lo, hi, mask, full, half, signed = w.params()
    return {f"{prefix}_MODE": mode, f"{prefix}_LO": lo, f"{prefix}_HI": hi, f"{prefix}_MASK": mask,
            f"{prefix}_FULL": full, f"{prefix}_HALF": half, f"{prefix}_SIGNED": bool(signed)}


def _decay_args(prefix: str, d) -> dict:
    if d is None:
        return {f"HAS_{prefix}": False, f"{prefix}_M": 0, f"{prefix}_K": 0, f"{prefix}_R": 0}
    m, k, r = d.params()
    return {f"HAS_{prefix}": True, f"{prefix}_M": m, f"{prefix}_K": k, f"{prefix}_R": r}


def _i64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.int64).contiguous()


def neuron_sequence_triton(
    x: torch.Tensor | None, events: EventInput | None, i0: torch.Tensor, v0: torch.Tensor, bias: torch.Tensor,
    rules: NeuronRules, store: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """See :func:`hwsnn.backend.fixed.neuron_sequence` (CUDA tensors, or CPU under the interpreter)."""
    dev = i0.device
    if events is not None:
        pos, neg = events.sums()
        T, N = pos.shape
        xs, cnt, w = pos, _i64(events.counts), _i64(events.weight)
        nin, nout = int(w.shape[1]), int(w.shape[0])
        pos, neg = _i64(pos), _i64(neg)
    else:
        T, N = x.shape
        xs = _i64(x)
        pos = neg = cnt = w = xs
        nin, nout = 1, 1
    rows = T if store else 1
    spikes = torch.empty((T, N), dtype=torch.int8, device=dev)
    vout = torch.empty((rows, N), dtype=torch.int64, device=dev)
    iout = torch.empty((rows, N), dtype=torch.int64, device=dev)
    grid = (triton.cdiv(N, BLOCK),)
    counts = torch.zeros((grid[0], 3), dtype=torch.int64, device=dev)
    _neuron_kernel[grid](
        xs, pos, neg, cnt, w, _i64(i0), _i64(v0), _i64(bias), spikes, vout, iout, counts,
        T, N, nin, nout, rules.v_reset, rules.threshold,
        SHIFT=rules.input_shift, **_width_args("C", rules.current), **_width_args("M", rules.membrane),
        **_decay_args("SYN", rules.syn_decay), ADD_FIRST=rules.add_then_decay,
        **_decay_args("MEM", rules.mem_decay), **_decay_args("IN", rules.input_decay),
        SAT_DELTA=rules.saturated_delta, GE=rules.compare_ge, ZERO=rules.reset_zero, CAP=rules.cap,
        V_BITS=rules.v_storage_bits, I_BITS=rules.i_storage_bits,
        EVENTS=events is not None, STORE=store, BLOCK=BLOCK, WRAP=rules.input_wrap_bits,
    )
    return spikes, vout, iout, [int(c) for c in counts.sum(0).tolist()]


def synapse_sequence_triton(s: torch.Tensor, i0: torch.Tensor, rules: SynapseRules) -> tuple[torch.Tensor, int, int]:
    """See :func:`hwsnn.backend.fixed.synapse_sequence` (CUDA tensors, or CPU under the interpreter)."""
    T, N = s.shape
    out = torch.empty((T, N), dtype=torch.int64, device=s.device)
    grid = (triton.cdiv(N, BLOCK),)
    counts = torch.zeros((grid[0], 2), dtype=torch.int64, device=s.device)
    m, k, r = rules.decay.params()
    s = s.contiguous()
    if s.dtype == torch.bool:
        s = s.to(torch.int8)
    _synapse_kernel[grid](s, _i64(i0), out, counts, T, N, ONE=rules.one, MECH=m, K=k, R=r,
                          **_width_args("C", rules.current), BITS=rules.storage_bits, BLOCK=BLOCK)
    n_sat, n_bad = counts.sum(0).tolist()
    return out, int(n_sat), int(n_bad)
