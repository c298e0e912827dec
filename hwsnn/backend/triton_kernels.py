r"""Triton kernels for the fused neurons and synapse filter (imported lazily: Triton is optional).

One program owns ``BLOCK`` neurons and loops over the ``T`` time steps with the state in registers;
the equations and the BPTT recurrences are those of :mod:`hwsnn.backend.fused`:

forward
    :math:`H_t = \mathrm{charge}(V_{t-1}, X_t)`, :math:`S_t = \Theta(H_t - V_{th})` (or the
    primitive :math:`g`), :math:`V_t = \mathrm{reset}(H_t, S_t)`; stores :math:`S_t`, optionally
    :math:`H_t` (for the backward) and :math:`V_t` (``store_v_seq``), and the last membrane.
backward
    from :math:`w_{T-1} = \bar V_{last}` (+ :math:`\bar V^{seq}_{T-1}`), for :math:`t = T-1 \dots 0`:
    :math:`\bar H_t = \bar S_t G_t + w_t D_t`, :math:`\bar X_t = b \bar H_t`,
    :math:`w_{t-1} = a \bar H_t + \bar V^{seq}_{t-1}`; finally :math:`\bar V_{init} = w_{-1}`.
synapse
    :math:`I_t = I_{t-1} - (1 - S_t) I_{t-1} k + S_t`; backward
    :math:`w_t = \bar I_t + ((1-k) + k S_{t+1}) w_{t+1}`, :math:`\bar S_t = w_t (1 + k I_{t-1})`,
    :math:`\bar k = -\sum_t w_t (1 - S_t) I_{t-1}` (per-program partial sums, added on the host in a
    fixed order: deterministic).

Bit-exact spikes: the charge uses the reference's operations in its order. On CUDA the reference
``(x - v) / tau`` runs as ``x * (1/tau)`` with ``1/tau`` rounded to float32 (PyTorch divides by a
CPU scalar that way), so the kernel multiplies by the same float32 reciprocal and is compiled with
FMA contraction off (``enable_fp_fusion=False``); elsewhere (the ``TRITON_INTERPRET=1`` CPU
interpreter) it divides with round-to-nearest (``div_rn``). The state is float32; inputs may be
float16/bfloat16/float32 and the spikes are stored in the input dtype.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np
import torch

try:
    import triton
    import triton.language as tl
except ImportError as exc:  # pragma: no cover - exercised only without triton
    raise ImportError(
        "hwsnn.backend.triton_kernels needs Triton: install it with `pip install hwsnn[triton]`"
    ) from exc

from .fused_neuron import NeuronConfig

__all__ = [
    "neuron_forward_triton",
    "neuron_backward_triton",
    "synapse_forward_triton",
    "synapse_backward_triton",
    "BLOCK",
]

#: neurons per program
BLOCK = 256

_SURR = {"sigmoid": 0, "atan": 1, "piecewise_quadratic": 2}


@triton.jit
def _primitive(u, ALPHA: tl.constexpr, SURR: tl.constexpr):
    if SURR == 0:
        y = tl.sigmoid(ALPHA * u)
    elif SURR == 1:
        y = _atan((3.141592653589793 / 2) * ALPHA * u) / 3.141592653589793 + 0.5
    else:
        inside = -(ALPHA * ALPHA / 2) * u * tl.abs(u) + ALPHA * u + 0.5
        y = tl.where(u > 1.0 / ALPHA, 1.0, tl.where(u < -1.0 / ALPHA, 0.0, inside))
    return y


@triton.jit
def _atan(z):
    # arctan (portable: CUDA and the interpreter) by range reduction: atan(z) = sign(z) (pi/2 - atan(1/|z|))
    # for |z| > 1, then the half-angle step atan(y) = 2 atan(y / (1 + sqrt(1 + y^2))) leaves |y| <= tan(pi/8),
    # where the odd Taylor series to y^15 is accurate to ~2e-8.
    az = tl.abs(z)
    big = az > 1.0
    y = tl.where(big, 1.0 / tl.maximum(az, 1e-30), az)
    y = y / (1.0 + tl.sqrt(1.0 + y * y))
    y2 = y * y
    p = y * (1.0 + y2 * (-1.0 / 3 + y2 * (1.0 / 5 + y2 * (-1.0 / 7 + y2 * (1.0 / 9 + y2 * (-1.0 / 11 + y2 * (1.0 / 13 - y2 / 15)))))))
    r = 2.0 * p
    r = tl.where(big, 1.5707963267948966 - r, r)
    return tl.where(z < 0, -r, r)


@triton.jit
def _derivative(u, ALPHA: tl.constexpr, SURR: tl.constexpr):
    if SURR == 0:
        sg = tl.sigmoid(ALPHA * u)
        d = ALPHA * sg * (1.0 - sg)
    elif SURR == 1:
        z = (3.141592653589793 / 2) * ALPHA * u
        d = (ALPHA / 2) / (1.0 + z * z)
    else:
        d = tl.maximum(ALPHA - ALPHA * ALPHA * tl.abs(u), 0.0)
    return d


@triton.jit
def _neuron_fwd_kernel(
    x_ptr, v0_ptr, vth_ptr, s_ptr, h_ptr, v_ptr,
    T, N, vth_s, v_reset, tau, inv_tau,
    IS_LIF: tl.constexpr, DECAY_INPUT: tl.constexpr, HARD: tl.constexpr, VR_ZERO: tl.constexpr,
    VTH_TENSOR: tl.constexpr, SPIKING: tl.constexpr, SURR: tl.constexpr, ALPHA: tl.constexpr,
    SAVE_H: tl.constexpr, STORE_V: tl.constexpr, DIV_BY_MUL: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    v = tl.load(v0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    if VTH_TENSOR:
        vth = tl.load(vth_ptr + offs, mask=mask, other=1.0).to(tl.float32)
    else:
        vth = vth_s
    xp = x_ptr + offs
    sp = s_ptr + offs
    hp = h_ptr + offs
    vp = v_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
        if IS_LIF:
            if DECAY_INPUT:  # v + (x - (v - vr)) / tau
                if VR_ZERO:
                    d = x - v
                else:
                    d = x - (v - v_reset)
                if DIV_BY_MUL:
                    q = d * inv_tau
                else:
                    q = tl.math.div_rn(d, tau)
                h = v + q
            else:  # v - (v - vr) / tau + x
                if VR_ZERO:
                    d = v
                else:
                    d = v - v_reset
                if DIV_BY_MUL:
                    q = d * inv_tau
                else:
                    q = tl.math.div_rn(d, tau)
                h = (v - q) + x
        else:
            h = v + x
        u = h - vth
        if SPIKING:
            s = tl.where(u >= 0.0, 1.0, 0.0)
        else:
            s = _primitive(u, ALPHA, SURR)
        if HARD:
            v = s * v_reset + (1.0 - s) * h
        else:
            v = h - s * vth
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        if SAVE_H:
            tl.store(hp, h, mask=mask)
            hp += N
        if STORE_V:
            tl.store(vp, v, mask=mask)
            vp += N
        xp += N
        sp += N
    if not STORE_V:
        tl.store(vp, v, mask=mask)


@triton.jit
def _neuron_bwd_kernel(
    h_ptr, gs_ptr, gv_ptr, vth_ptr, gx_ptr, gv0_ptr,
    T, N, vth_s, v_reset, a, b,
    HAS_GS: tl.constexpr, HAS_GV: tl.constexpr, GV_SEQ: tl.constexpr,
    HARD: tl.constexpr, DETACH: tl.constexpr, VTH_TENSOR: tl.constexpr,
    SPIKING: tl.constexpr, SURR: tl.constexpr, ALPHA: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if VTH_TENSOR:
        vth = tl.load(vth_ptr + offs, mask=mask, other=1.0).to(tl.float32)
    else:
        vth = vth_s
    last = tl.cast(T, tl.int64) * N - N  # int64: T*N may exceed 2**31 (T may arrive as constexpr 1)
    hp = h_ptr + last + offs
    gsp = gs_ptr + last + offs
    gxp = gx_ptr + last + offs
    w = tl.zeros([BLOCK], dtype=tl.float32)
    if HAS_GV:
        if GV_SEQ:
            gvp = gv_ptr + last + offs
        else:
            w = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    for _i in range(T):
        if HAS_GV:
            if GV_SEQ:
                w += tl.load(gvp, mask=mask, other=0.0).to(tl.float32)
                gvp -= N
        h = tl.load(hp, mask=mask, other=0.0)
        u = h - vth
        g = _derivative(u, ALPHA, SURR)
        if SPIKING:
            s = tl.where(u >= 0.0, 1.0, 0.0)
        else:
            s = _primitive(u, ALPHA, SURR)
        if HARD:
            dvdh = 1.0 - s
            if not DETACH:
                dvdh += (v_reset - h) * g
        else:
            if DETACH:
                dvdh = tl.full([BLOCK], 1.0, tl.float32)
            else:
                dvdh = 1.0 - vth * g
        gh = w * dvdh
        if HAS_GS:
            gh += tl.load(gsp, mask=mask, other=0.0).to(tl.float32) * g
            gsp -= N
        tl.store(gxp, (b * gh).to(gx_ptr.dtype.element_ty), mask=mask)
        w = a * gh
        hp -= N
        gxp -= N
    tl.store(gv0_ptr + offs, w, mask=mask)


@triton.jit
def _synapse_fwd_kernel(x_ptr, i0_ptr, o_ptr, T, N, k, BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    i = tl.load(i0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    xp = x_ptr + offs
    op = o_ptr + offs
    for _t in range(T):
        x = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
        i = i - (1.0 - x) * i * k + x
        tl.store(op, i, mask=mask)
        xp += N
        op += N


@triton.jit
def _synapse_bwd_kernel(
    x_ptr, o_ptr, i0_ptr, go_ptr, gx_ptr, gi0_ptr, gk_ptr, T, N, k,
    NEED_K: tl.constexpr, BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    last = tl.cast(T, tl.int64) * N - N  # int64: T*N may exceed 2**31 (T may arrive as constexpr 1)
    xp = x_ptr + last + offs
    gop = go_ptr + last + offs
    gxp = gx_ptr + last + offs
    op = o_ptr + last + offs - N  # I_{t-1} for t = T-1 (valid while t >= 1)
    w = tl.zeros([BLOCK], dtype=tl.float32)
    x_next = tl.zeros([BLOCK], dtype=tl.float32)
    gk = tl.zeros([BLOCK], dtype=tl.float32)
    for i in range(T):
        t = T - 1 - i
        w = tl.load(gop, mask=mask, other=0.0).to(tl.float32) + ((1.0 - k) + k * x_next) * w
        x = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
        if t > 0:
            prev = tl.load(op, mask=mask, other=0.0)
        else:
            prev = tl.load(i0_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        tl.store(gxp, w * (1.0 + k * prev), mask=mask)
        if NEED_K:
            gk += w * (1.0 - x) * prev
        x_next = x
        xp -= N
        gop -= N
        gxp -= N
        op -= N
    tl.store(gi0_ptr + offs, ((1.0 - k) + k * x_next) * w, mask=mask)
    if NEED_K:
        tl.store(gk_ptr + pid, -tl.sum(tl.where(mask, gk, 0.0), axis=0))


def _launch_opts(device: torch.device) -> dict:
    # exact float32 roundings on GPU: no FMA contraction (the reference runs one op per kernel)
    if device.type == "cuda" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        return {"enable_fp_fusion": False}
    return {}


def _check_state(t: torch.Tensor) -> None:
    if t.dtype != torch.float32:
        raise TypeError(f"the Triton kernels run a float32 state; got {t.dtype}")


def neuron_forward_triton(
    x: torch.Tensor, v0: torch.Tensor, vth, cfg: NeuronConfig, save_h: bool, block: Optional[int] = None
):
    """Same contract as :func:`hwsnn.backend.fused_neuron.neuron_forward_torch`."""
    _check_state(v0)
    T, N = x.shape
    dev = x.device
    spikes = torch.empty((T, N), dtype=x.dtype, device=dev)
    H = torch.empty((T, N), dtype=torch.float32, device=dev) if save_h else spikes  # dummy pointer if unused
    v_out = torch.empty((T, N) if cfg.store_v_seq else (N,), dtype=torch.float32, device=dev)
    vth_tensor = isinstance(vth, torch.Tensor)
    tau = 2.0 if cfg.tau is None else cfg.tau
    div_by_mul = dev.type == "cuda"
    inv_tau = float(np.float32(1.0) / np.float32(tau))
    vr = 0.0 if cfg.v_reset is None else cfg.v_reset
    blk = block or BLOCK
    grid = (triton.cdiv(N, blk),)
    _neuron_fwd_kernel[grid](
        x, v0, vth if vth_tensor else v0, spikes, H, v_out,
        T, N, 0.0 if vth_tensor else float(vth), vr, tau, inv_tau,
        IS_LIF=cfg.tau is not None, DECAY_INPUT=cfg.decay_input, HARD=cfg.v_reset is not None,
        VR_ZERO=vr == 0.0, VTH_TENSOR=vth_tensor, SPIKING=cfg.spiking, SURR=_SURR[cfg.surrogate_name],
        ALPHA=cfg.alpha, SAVE_H=save_h, STORE_V=cfg.store_v_seq, DIV_BY_MUL=div_by_mul, BLOCK=blk,
        **_launch_opts(dev),
    )
    return spikes, v_out, (H if save_h else None)


def neuron_backward_triton(H: torch.Tensor, grad_spikes, grad_v, vth, cfg: NeuronConfig, block: Optional[int] = None):
    """Same contract as :func:`hwsnn.backend.fused_neuron.neuron_backward_torch`."""
    T, N = H.shape
    dev = H.device
    gx = torch.empty((T, N), dtype=torch.float32, device=dev)
    gv0 = torch.empty(N, dtype=torch.float32, device=dev)
    vth_tensor = isinstance(vth, torch.Tensor)
    vr = 0.0 if cfg.v_reset is None else cfg.v_reset
    blk = block or BLOCK
    grid = (triton.cdiv(N, blk),)
    _neuron_bwd_kernel[grid](
        H, grad_spikes if grad_spikes is not None else H, grad_v if grad_v is not None else H,
        vth if vth_tensor else H, gx, gv0,
        T, N, 0.0 if vth_tensor else float(vth), vr, cfg.a, cfg.b,
        HAS_GS=grad_spikes is not None, HAS_GV=grad_v is not None, GV_SEQ=cfg.store_v_seq,
        HARD=cfg.v_reset is not None, DETACH=cfg.detach_reset, VTH_TENSOR=vth_tensor,
        SPIKING=cfg.spiking, SURR=_SURR[cfg.surrogate_name], ALPHA=cfg.alpha, BLOCK=blk,
        **_launch_opts(dev),
    )
    return gx, gv0


def synapse_forward_triton(x: torch.Tensor, i0: torch.Tensor, k: float, block: Optional[int] = None) -> torch.Tensor:
    """Same contract as :func:`hwsnn.backend.fused_synapse.synapse_forward_torch`."""
    _check_state(i0)
    T, N = x.shape
    out = torch.empty((T, N), dtype=torch.float32, device=x.device)
    blk = block or BLOCK
    _synapse_fwd_kernel[(triton.cdiv(N, blk),)](x, i0, out, T, N, float(k), BLOCK=blk, **_launch_opts(x.device))
    return out


def synapse_backward_triton(x, out, i0, k: float, grad_out, need_k: bool, block: Optional[int] = None):
    """Same contract as :func:`hwsnn.backend.fused_synapse.synapse_backward_torch`."""
    T, N = x.shape
    dev = x.device
    blk = block or BLOCK
    nprog = triton.cdiv(N, blk)
    gx = torch.empty((T, N), dtype=torch.float32, device=dev)
    gi0 = torch.empty(N, dtype=torch.float32, device=dev)
    gk_part = torch.empty(nprog if need_k else 1, dtype=torch.float32, device=dev)
    _synapse_bwd_kernel[(nprog,)](
        x, out, i0, grad_out, gx, gi0, gk_part, T, N, float(k), NEED_K=need_k, BLOCK=blk, **_launch_opts(dev)
    )
    return gx, gi0, (gk_part.sum() if need_k else None)
