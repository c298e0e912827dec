r"""Numba CPU kernels for the fused IF/LIF neuron (imported lazily: numba is the optional extra ``fast``).

The equations are those of :mod:`hwsnn.backend.fused`; here each thread owns blocks of
:data:`BLOCK` neurons and runs all ``T`` steps of a block before the next one, with the state and
the per-step temporaries in small block-sized buffers that stay in L1/L2. Every ``[T, N]`` stream
is touched exactly once per pass: the forward reads :math:`X` and writes :math:`S` and :math:`H`,
the backward reads :math:`H` and :math:`\bar S` and writes :math:`\bar X`. Outputs go to memory with
non-temporal (cache-bypassing) 64-byte stores, which saves the read-for-ownership of every written
line (the same trick ``memcpy`` uses for large copies).

forward, per neuron and step (float32 state, ``fastmath`` off, no FMA contraction)
    :math:`H_t` = the reference's charge expression in the reference's order (IF: ``v + x``; LIF:
    ``v + (x - (v - vr)) / tau`` or ``v - (v - vr) / tau + x``), :math:`S_t = [H_t \ge V_{th}]`,
    :math:`V_t = V_r` (hard) or :math:`H_t - V_{th}` (soft) where :math:`S_t = 1`, else :math:`H_t`.
    The spikes are therefore bit-identical to the torch path and to the reference.
backward, from :math:`w = \bar V_{last}` (+ :math:`\bar V^{seq}_{T-1}`), for :math:`t = T-1 \dots 0`
    :math:`u = H_t - V_{th}`, :math:`G = g'(u)`,
    :math:`D = \mathrm{base} + k_d\,m\,G` with (hard) :math:`\mathrm{base} = 1 - S_t`,
    :math:`m = V_r - H_t`, (soft) :math:`\mathrm{base} = 1`, :math:`m = -V_{th}`, and
    :math:`k_d = 0` for ``detach_reset`` else 1; :math:`\bar H = \bar S_t G + w D`,
    :math:`\bar X_t = b \bar H`, :math:`w \leftarrow a \bar H + \bar V^{seq}_{t-1}`; finally
    :math:`\bar V_{init} = w`.
surrogate gradients :math:`G`
    ``sigmoid``: :math:`\alpha e / (1 + e)^2` with :math:`e = \exp(-|\alpha u|)` (equal to
    :math:`\alpha\sigma(\alpha u)(1 - \sigma(\alpha u))`, without its cancellation; :func:`_exp_neg` is a
    vectorisable float32 exponential, |z| clamped at 87 where :math:`G < 10^{-37}`);
    ``atan``: :math:`\tfrac\alpha2 / (1 + (\tfrac\pi2\alpha u)^2)`;
    ``piecewise_quadratic``: :math:`\alpha \max(0, 1 - \alpha|u|)`.

Supported (:func:`supports`): spiking built-in surrogates, scalar thresholds, both resets,
``decay_input`` both ways, ``detach_reset``, ``store_v_seq``, float32 / float16 / bfloat16 inputs
(half inputs and spike gradients are converted to float32 around the kernels, one extra pass each;
spikes come back in the input dtype). Everything else runs on the torch kernels. Threads:
``torch.get_num_threads()`` (capped by ``NUMBA_NUM_THREADS``). Compiled code is cached on disk
(``cache=True``, see ``NUMBA_CACHE_DIR``): only the first call in a fresh environment compiles (~8 s).
"""

from __future__ import annotations

import math
from typing import Optional

import numba
import numpy as np
import torch
from llvmlite import ir
from numba import prange, types
from numba.extending import intrinsic

from .fused_neuron import NeuronConfig, Threshold
from .hostpool import empty_buffer

__all__ = ["BLOCK", "supports", "neuron_forward_numba", "neuron_backward_numba"]

#: neurons per block (the block's state and temporaries, 32 KiB each, stay in L2)
BLOCK = 8192

_SURR = {"sigmoid": 0, "atan": 1, "piecewise_quadratic": 2}
_CHARGE_IF, _CHARGE_LIF_DECAY, _CHARGE_LIF = 0, 1, 2
_JIT = dict(parallel=True, cache=True, fastmath=False, error_model="numpy", boundscheck=False, nogil=True)


# ------------------------------------------------------------------------------------------------
# LLVM intrinsics
# ------------------------------------------------------------------------------------------------
@intrinsic
def _stream16(typingctx, dst, di, src, si):
    """``dst[di:di+16] = src[si:si+16]`` (float32) with one 64-byte non-temporal store; ``&dst[di]``
    must be 64-byte aligned."""

    def codegen(context, builder, sig, args):
        d = context.make_array(sig.args[0])(context, builder, args[0])
        s = context.make_array(sig.args[2])(context, builder, args[2])
        vec = ir.VectorType(ir.FloatType(), 16)
        val = builder.load(builder.bitcast(builder.gep(s.data, [args[3]]), vec.as_pointer()), align=4)
        st = builder.store(val, builder.bitcast(builder.gep(d.data, [args[1]]), vec.as_pointer()), align=64)
        st.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))
        return context.get_dummy_value()

    return types.void(dst, di, src, si), codegen


@intrinsic
def _fence(typingctx):
    """A full memory fence: orders the non-temporal stores before the thread joins."""

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def _f32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the int32 ``bits``."""

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.int32), codegen


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
@numba.njit(inline="always", cache=True, error_model="numpy")
def _put(dst, buf):
    """``dst[:] = buf[:len(dst)]`` (float32): plain stores up to the first 64-byte boundary, then
    non-temporal 64-byte chunks, then plain stores for the tail."""
    n = dst.shape[0]
    head = min(n, (-(dst.ctypes.data // 4)) % 16)
    for j in range(head):
        dst[j] = buf[j]
    j = head
    while j + 16 <= n:
        _stream16(dst, j, buf, j)
        j += 16
    for k in range(j, n):
        dst[k] = buf[k]


@numba.njit(inline="always", cache=True, error_model="numpy")
def _exp_neg(z):
    r"""float32 :math:`e^{-z}` for :math:`z \ge 0` (clamped at 87), ~1 ulp: :math:`2^{-k} e^{-r}`,
    :math:`k = \lfloor z/\ln 2 + 1/2 \rceil`, :math:`r = z - k \ln 2` (Cody-Waite), degree-6 Taylor polynomial."""
    z = min(z, np.float32(87.0))
    k = np.floor(z * np.float32(1.4426950408889634) + np.float32(0.5))
    r = (k * np.float32(0.693145751953125) - z) + k * np.float32(1.428606765330187e-06)  # -(z - k ln2)
    p = np.float32(1.0) + r * (np.float32(1.0) + r * (np.float32(0.5) + r * (np.float32(1.0 / 6) + r * (
        np.float32(1.0 / 24) + r * (np.float32(1.0 / 120) + r * np.float32(1.0 / 720))))))
    return p * _f32_from_bits(np.int32((127 - np.int32(k)) << 23))


@numba.njit(inline="always", cache=True, error_model="numpy")
def _charge(v, x, charge, vr, tau):
    """:math:`H` from the membrane and the input, with the reference's operations in its order."""
    if charge == _CHARGE_IF:
        return v + x
    if charge == _CHARGE_LIF_DECAY:
        return v + (x - (v - vr)) / tau
    return v - (v - vr) / tau + x


@numba.njit(inline="always", cache=True, error_model="numpy")
def _surrogate_grad(u, surr, alpha):
    """:math:`G = g'(u)` of the built-in surrogate number ``surr`` (see the module docstring)."""
    if surr == 0:  # sigmoid
        e = _exp_neg(abs(alpha * u))
        d = np.float32(1.0) + e
        return alpha * e / (d * d)
    if surr == 1:  # atan
        cu = np.float32(math.pi / 2) * alpha * u
        return alpha / np.float32(2.0) / (np.float32(1.0) + cu * cu)
    return alpha * max(np.float32(0.0), np.float32(1.0) - alpha * abs(u))  # piecewise quadratic


# ------------------------------------------------------------------------------------------------
# kernels: one loop over the neurons of a block per step (the loop-invariant branches are unswitched)
# ------------------------------------------------------------------------------------------------
@numba.njit(**_JIT)
def _forward(x, v0, S, H, V, charge, hard, save_h, seq, vth, vr, tau, block):
    """``x`` [T, N], ``v0`` [N]; writes ``S`` [T, N], ``H`` [T, N] if ``save_h``, ``V`` [T, N] if
    ``seq`` else [1, N] (all float32)."""
    T, N = x.shape
    zero, one = np.float32(0.0), np.float32(1.0)
    for ib in prange((N + block - 1) // block):
        c0 = ib * block
        n = min(N - c0, block)
        v = v0[c0:c0 + n].copy()
        hb = np.empty(n, np.float32)
        sb = np.empty(n, np.float32)
        for t in range(T):
            xr = x[t, c0:c0 + n]
            for j in range(n):
                h = _charge(v[j], xr[j], charge, vr, tau)
                s = h >= vth
                hb[j] = h
                sb[j] = one if s else zero
                v[j] = (vr if hard else h - vth) if s else h
            _put(S[t, c0:c0 + n], sb)
            if save_h:
                _put(H[t, c0:c0 + n], hb)
            if seq:
                _put(V[t, c0:c0 + n], v)
        if not seq:
            V[0, c0:c0 + n] = v
        _fence()


@numba.njit(**_JIT)
def _backward(H, gs, gv, gx, gv0, has_gs, has_gv, seq, hard, detach, surr, alpha, vth, vr, a, b, block):
    """BPTT over ``H`` [T, N]; ``gs`` [T, N] if ``has_gs``, ``gv`` [T, N] if ``seq`` else [1, N] if
    ``has_gv``; writes ``gx`` [T, N] and ``gv0`` [N] (all float32)."""
    T, N = H.shape
    f0, f1 = np.float32(0.0), np.float32(1.0)
    kd = f0 if detach else f1
    for ib in prange((N + block - 1) // block):
        c0 = ib * block
        n = min(N - c0, block)
        w = gv[gv.shape[0] - 1, c0:c0 + n].copy() if has_gv else np.zeros(n, np.float32)
        q = np.empty(n, np.float32)
        for t in range(T - 1, -1, -1):
            hr = H[t, c0:c0 + n]
            gr = gs[t if has_gs else 0, c0:c0 + n]
            for j in range(n):
                h = hr[j]
                g = _surrogate_grad(h - vth, surr, alpha)
                base = f0 if (hard and h >= vth) else f1
                m = (vr - h) if hard else -vth
                gh = w[j] * (base + kd * m * g)
                if has_gs:
                    gh += gr[j] * g
                q[j] = b * gh
                w[j] = a * gh
            if seq and t > 0:
                w += gv[t - 1, c0:c0 + n]
            _put(gx[t, c0:c0 + n], q)
        gv0[c0:c0 + n] = w
        _fence()


# ------------------------------------------------------------------------------------------------
# torch wrappers (the contract of hwsnn.backend.fused_neuron.neuron_forward_torch / neuron_backward_torch)
# ------------------------------------------------------------------------------------------------
def supports(cfg: NeuronConfig, dtype: torch.dtype, vth: Threshold) -> bool:
    """Whether these kernels run ``cfg`` exactly: spiking built-in surrogate, scalar threshold,
    float32 / float16 / bfloat16 input."""
    return (
        cfg.spiking
        and cfg.surrogate_name in _SURR
        and not isinstance(vth, torch.Tensor)
        and dtype in (torch.float32, torch.float16, torch.bfloat16)
    )


def _np(t: torch.Tensor) -> np.ndarray:
    """A zero-copy numpy view of a float32 CPU tensor."""
    return t.detach().numpy()


def _float32(t: torch.Tensor) -> torch.Tensor:
    """``t`` as float32 (a pooled copy for half tensors)."""
    return t if t.dtype == torch.float32 else empty_buffer(tuple(t.shape), torch.float32, t.device).copy_(t)


def _set_threads() -> None:
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))


def neuron_forward_numba(
    x: torch.Tensor, v0: torch.Tensor, vth: float, cfg: NeuronConfig, save_h: bool, block: Optional[int] = None
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Same contract as :func:`hwsnn.backend.fused_neuron.neuron_forward_torch` (CPU, :func:`supports` true)."""
    T, N = x.shape
    f32, cpu = torch.float32, x.device
    spikes = empty_buffer((T, N), f32, cpu)
    H = empty_buffer((T, N), f32, cpu) if save_h else torch.empty((1, 1), dtype=f32)
    v_out = empty_buffer((T, N) if cfg.store_v_seq else (N,), f32, cpu)
    charge = _CHARGE_IF if cfg.tau is None else (_CHARGE_LIF_DECAY if cfg.decay_input else _CHARGE_LIF)
    _set_threads()
    _forward(
        _np(_float32(x)), _np(v0), _np(spikes), _np(H), _np(v_out).reshape(T if cfg.store_v_seq else 1, N), charge,
        cfg.v_reset is not None, save_h, cfg.store_v_seq, np.float32(vth), np.float32(cfg.v_reset or 0.0),
        np.float32(cfg.tau or 1.0), block or BLOCK,
    )
    if x.dtype != f32:  # 0 / 1 are exact in every dtype
        spikes = empty_buffer((T, N), x.dtype, cpu).copy_(spikes)
    return spikes, v_out, (H if save_h else None)


def neuron_backward_numba(
    H: torch.Tensor,
    grad_spikes: Optional[torch.Tensor],
    grad_v: Optional[torch.Tensor],
    vth: float,
    cfg: NeuronConfig,
    block: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same contract as :func:`hwsnn.backend.fused_neuron.neuron_backward_torch` (CPU, :func:`supports` true)."""
    T, N = H.shape
    gx = empty_buffer((T, N), torch.float32, H.device)
    gv0 = torch.empty(N, dtype=torch.float32)
    gs = _float32(grad_spikes) if grad_spikes is not None else H[:1]
    gv = grad_v.reshape(-1, N) if grad_v is not None else H[:1]
    _set_threads()
    _backward(
        _np(H), _np(gs), _np(gv), _np(gx), _np(gv0), grad_spikes is not None, grad_v is not None,
        cfg.store_v_seq, cfg.v_reset is not None, cfg.detach_reset, _SURR[cfg.surrogate_name],
        np.float32(cfg.alpha), np.float32(vth), np.float32(cfg.v_reset or 0.0), np.float32(cfg.a),
        np.float32(cfg.b), block or BLOCK,
    )
    return gx, gv0
