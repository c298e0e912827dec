r"""Fused multi-step IF/LIF neurons in plain torch: one autograd node per sequence.

The reference (:func:`hwsnn.functional.neuron.neuron_multi_step`) lets autograd record every op
of every time step: ~10 nodes and ~10 saved tensors per step. Here the whole ``[T, N]`` sequence
is one :class:`torch.autograd.Function` whose forward runs under ``no_grad`` with in-place ops
into preallocated buffers, and whose backward is the hand-written BPTT below. Only the charged
membrane :math:`H` is saved (spikes, surrogate gradients and reset derivatives are recomputed
from it), so the saved memory is one ``[T, N]`` tensor instead of ~10.

Neuron forward (state dtype: float32, or float64 for float64 inputs)
--------------------------------------------------------------------
Every neuron charge is affine in the previous membrane and the input,

.. math::
    H_t = a\,V_{t-1} + b\,X_t + c,\qquad
    \begin{array}{lll}
    \text{IF:} & a = 1, & b = 1\\
    \text{LIF, decay\_input:} & a = 1 - 1/\tau, & b = 1/\tau\\
    \text{LIF, not decay\_input:} & a = 1 - 1/\tau, & b = 1
    \end{array}

but the forward evaluates exactly the reference expressions (``v + (x - (v - vr)) / tau`` etc.,
same operations in the same order) so that :math:`H` and therefore the spikes are bit-identical.
Then :math:`u_t = H_t - V_{th}`, :math:`S_t = \Theta(u_t)` (``spiking=False``: :math:`S_t = g(u_t)`,
the surrogate primitive), and the reset
:math:`V_t = S_t V_r + (1 - S_t) H_t` (hard) or :math:`V_t = H_t - S_t V_{th}` (soft).

Neuron backward (BPTT)
----------------------
With :math:`G_t = g'(u_t)` the surrogate gradient (``dS/dH``) and the reset derivative

.. math::
    D_t = \frac{\partial V_t}{\partial H_t} =
    \begin{cases}
    (1 - S_t) + [\lnot\text{detach}]\,(V_r - H_t)\,G_t & \text{hard}\\
    1 - [\lnot\text{detach}]\,V_{th}\,G_t & \text{soft}
    \end{cases}

(``detach_reset`` removes only the spike in the reset, never :math:`G_t` on the emitted spike),
let :math:`w_t = \partial L / \partial V_t` be the total gradient reaching the membrane after step
:math:`t`. Going backwards from :math:`w_{T-1} = \bar V_{last} + \bar V^{seq}_{T-1}`:

.. math::
    \bar H_t = \bar S_t\,G_t + w_t\,D_t,\qquad
    \bar X_t = b\,\bar H_t,\qquad
    w_{t-1} = a\,\bar H_t + \bar V^{seq}_{t-1},\qquad
    \bar V_{init} = a\,\bar H_0 .

The implementation carries :math:`r_t = b\,w_t` so that the per-step output is directly
:math:`\bar X_t = q_t = b\,\bar S_t G_t + r_t D_t` and :math:`r_{t-1} = a\,q_t + b\,\bar V^{seq}_{t-1}`
(one fused ``addcmul`` per term); :math:`\bar V_{init} = r_{-1} / b`.

Surrogate gradients :math:`G = g'(u)` (computed as ``scale * P`` with in-place ops)
-----------------------------------------------------------------------------------
``sigmoid``: :math:`\alpha\,\sigma(\alpha u)(1-\sigma(\alpha u))`;
``atan``: :math:`\tfrac{\alpha}{2} / (1 + (\tfrac\pi2\alpha u)^2)`;
``piecewise_quadratic``: :math:`\alpha\max(0, 1 - \alpha|u|)`. With ``spiking=False`` the
backward also needs :math:`S_t = g(u_t)` (for the hard reset), recomputed from :math:`H_t`.

On CPU the neuron dimension runs in blocks (:mod:`.blocks`) and the ``[T, N]`` streams come
from :class:`~.hostpool.HostPool` (:mod:`.hostpool`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union

import torch

from .blocks import CPU_BLOCK, blocks, row_views
from .hostpool import empty_buffer

__all__ = [
    "Threshold",
    "NeuronConfig",
    "TILED_MAX_BYTES",
    "TILE_BYTES",
    "neuron_forward_torch",
    "neuron_backward_torch",
    "FusedNeuronFunction",
]


#: CPU backward: sequences whose ``[T, N]`` tensors hold at most this many bytes use the tiled schedule
TILED_MAX_BYTES = 8 << 20
#: CPU backward, tiled schedule: bytes per ``[T, block]`` temporary
TILE_BYTES = 1 << 20

Threshold = Union[float, torch.Tensor]


@dataclass(frozen=True)
class NeuronConfig:
    """Static description of a neuron layer for the fused kernels.

    ``tau is None`` selects IF. ``surrogate`` is the built-in surrogate object (its ``name`` and
    ``alpha`` select the derivative; its ``primitive`` serves ``spiking=False``).
    """

    tau: Optional[float]
    decay_input: bool
    v_reset: Optional[float]
    detach_reset: bool
    store_v_seq: bool
    surrogate_name: str
    alpha: float
    spiking: bool
    surrogate: Any = None

    @property
    def a(self) -> float:
        """:math:`\\partial H/\\partial V`."""
        return 1.0 if self.tau is None else 1.0 - 1.0 / self.tau

    @property
    def b(self) -> float:
        """:math:`\\partial H/\\partial X`."""
        return 1.0 / self.tau if (self.tau is not None and self.decay_input) else 1.0


def _charge_(cfg: NeuronConfig, x: torch.Tensor, v: torch.Tensor, h: torch.Tensor, buf: torch.Tensor,
             tau_t: Optional[torch.Tensor], on_cpu: bool) -> None:
    """``h <- charge(v, x)`` with the reference's operations in the reference's order."""
    vr = 0.0 if cfg.v_reset is None else cfg.v_reset
    if cfg.tau is None:
        torch.add(v, x, out=h)  # v + x
        return
    tau = cfg.tau
    if cfg.decay_input:  # v + (x - (v - vr)) / tau
        if vr == 0.0:
            torch.sub(x, v, out=buf)  # v - 0.0 == v exactly
        else:
            torch.sub(v, vr, out=buf)
            torch.sub(x, buf, out=buf)
        if on_cpu:  # CPU addcdiv evaluates v + (1 * buf) / tau: same roundings as the reference
            torch.addcdiv(v, buf, tau_t, out=h)
        else:  # elsewhere use the very kernel of the reference (CUDA divides by a scalar as x * (1/tau))
            torch.div(buf, tau, out=buf)
            torch.add(v, buf, out=h)
    else:  # v - (v - vr) / tau + x
        src = v
        if vr != 0.0:
            torch.sub(v, vr, out=buf)
            src = buf
        if on_cpu:
            torch.addcdiv(v, src, tau_t, value=-1.0, out=h)
        else:
            torch.div(src, tau, out=buf)
            torch.sub(v, buf, out=h)
        h.add_(x)


def neuron_forward_torch(
    x: torch.Tensor,
    v0: torch.Tensor,
    vth: Threshold,
    cfg: NeuronConfig,
    save_h: bool,
    block: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Forward over ``x`` ``[T, N]`` (contiguous) from ``v0`` ``[N]`` (state dtype).

    ``vth`` is a number or a ``[N]`` tensor in the state dtype. Returns ``(spikes [T, N] in x's
    dtype, v_out, H or None)`` where ``v_out`` is ``V`` after every step ``[T, N]`` when
    ``cfg.store_v_seq`` else the last membrane ``[N]``.
    """
    T, N = x.shape
    sdt, dev = v0.dtype, v0.device
    on_cpu = dev.type == "cpu"
    spikes = empty_buffer((T, N), x.dtype, dev)
    H = empty_buffer((T, N), sdt, dev) if save_h else None
    v_out = empty_buffer((T, N) if cfg.store_v_seq else (N,), sdt, dev)
    tau_t = torch.tensor(cfg.tau, dtype=sdt) if (cfg.tau is not None and on_cpu) else None
    vth_tensor = isinstance(vth, torch.Tensor)
    vr = 0.0 if cfg.v_reset is None else cfg.v_reset
    hard = cfg.v_reset is not None
    vr_t = torch.tensor(vr, dtype=sdt, device=dev) if hard else None
    mixed = x.dtype != sdt
    surrogate = cfg.surrogate
    nb = min(N, CPU_BLOCK if (on_cpu and block is None) else (block or N))
    vbuf = torch.empty(nb, dtype=sdt, device=dev)
    buf = torch.empty(nb, dtype=sdt, device=dev)
    hbuf = None if save_h else torch.empty(nb, dtype=sdt, device=dev)
    sbuf = torch.empty(nb, dtype=sdt, device=dev) if (mixed or not cfg.spiking) else None
    for c0, c1 in blocks(N, dev, block):
        n = c1 - c0
        th = vth[c0:c1] if vth_tensor else vth
        if cfg.store_v_seq:
            v = v0[c0:c1]
        else:
            v = vbuf[:n]
            v.copy_(v0[c0:c1])
        b_ = buf[:n]
        # per-step row views, made once per block (cheaper than indexing inside the loop)
        xs = row_views(x, c0, c1)
        ss = row_views(spikes, c0, c1)
        hs = row_views(H, c0, c1) if save_h else [hbuf[:n]] * T
        vs = row_views(v_out, c0, c1) if cfg.store_v_seq else None
        for t in range(T):
            h = hs[t]
            _charge_(cfg, xs[t], v, h, b_, tau_t, on_cpu)
            s_out = ss[t]
            v_next = vs[t] if cfg.store_v_seq else v
            if cfg.spiking:
                s = sbuf[:n] if mixed else s_out
                torch.ge(h, th, out=s)  # (h - vth >= 0) == (h >= vth) for finite floats
                if mixed:
                    s_out.copy_(s)
                if hard:
                    if vr == 0.0:  # s*0 + (1-s)*h == h - s*h exactly for s in {0, 1}
                        torch.addcmul(h, s, h, value=-1.0, out=v_next)
                    else:  # lerp is exact at weights 0 and 1
                        torch.lerp(h, vr_t.expand(n), s, out=v_next)
                elif vth_tensor:  # h - s*vth (the product is exact)
                    torch.addcmul(h, s, th, value=-1.0, out=v_next)
                else:
                    torch.sub(h, s, alpha=th, out=v_next)
            else:  # smooth primitive: reference expressions
                s = sbuf[:n]
                s.copy_(surrogate.primitive(h - th))
                s_out.copy_(s)
                if hard:
                    v_next.copy_(s * vr + (1.0 - s) * h)
                else:
                    v_next.copy_(h - s * th)
            v = v_next
        if not cfg.store_v_seq:
            v_out[c0:c1].copy_(v)
    return spikes, v_out, H


def _surrogate_grad_(name: str, alpha: float, h: torch.Tensor, th: Threshold, c0: torch.Tensor,
                     g: torch.Tensor, one: torch.Tensor) -> float:
    """``g <- P`` with :math:`g'(h - V_{th}) = \\text{scale}\\cdot P`; returns ``scale``.

    ``c0`` is :math:`-\\alpha V_{th}` (0-dim, or the block of a threshold tensor).
    """
    if name == "sigmoid":  # alpha * sg * (1 - sg), sg = sigmoid(alpha u) = sigmoid(alpha h + c0)
        torch.add(c0, h, alpha=alpha, out=g)
        g.sigmoid_()
        torch.addcmul(g, g, g, value=-1.0, out=g)
        return alpha
    if name == "atan":  # (alpha/2) / (1 + (pi/2 alpha u)^2)
        c = math.pi / 2 * alpha
        torch.sub(h, th, out=g)
        torch.addcmul(one, g, g, value=c * c, out=g)
        g.reciprocal_()
        return alpha / 2
    if name == "piecewise_quadratic":  # max(0, alpha - alpha^2 |u|) = alpha * relu(1 - alpha |u|)
        torch.sub(h, th, out=g)
        g.abs_()
        torch.add(one, g, alpha=-alpha, out=g)
        g.clamp_(min=0.0)
        return alpha
    raise ValueError(f"unknown surrogate {name!r}")  # pragma: no cover


def _surrogate_and_reset_grad_(cfg: NeuronConfig, h: torch.Tensor, th: Threshold, c0: torch.Tensor,
                               g: torch.Tensor, d: torch.Tensor, one: torch.Tensor) -> tuple[float, bool]:
    r"""The pieces of the backward that depend on :math:`H_t` alone, for a row or a ``[T, n]`` tile.

    ``g <- P`` with :math:`G_t = \text{scale}\cdot P`, and ``d <- D_t`` (the reset derivative of
    the module docstring). Returns ``(scale, d_is_one)``; ``d_is_one`` (soft reset with
    ``detach_reset``) means :math:`D_t = 1` and ``d`` was not written.
    """
    if cfg.spiking:
        scale = _surrogate_grad_(cfg.surrogate_name, cfg.alpha, h, th, c0, g, one)
        s_val = None
    else:
        u = h - th
        g.copy_(cfg.surrogate.derivative(u))
        s_val = cfg.surrogate.primitive(u)
        scale = 1.0
    if cfg.v_reset is not None:  # hard: (1 - S) + (vr - h) G
        if cfg.spiking:
            torch.lt(h, th, out=d)
        else:
            torch.sub(one, s_val, out=d)
        if not cfg.detach_reset:
            d.addcmul_(h if cfg.v_reset == 0.0 else h - cfg.v_reset, g, value=-scale)
        return scale, False
    if cfg.detach_reset:
        return scale, True
    if isinstance(th, torch.Tensor):  # soft: 1 - vth G
        torch.addcmul(one, g, th, value=-scale, out=d)
    else:
        torch.add(one, g, alpha=-scale * th, out=d)
    return scale, False


def neuron_backward_torch(
    H: torch.Tensor,
    grad_spikes: Optional[torch.Tensor],
    grad_v: Optional[torch.Tensor],
    vth: Threshold,
    cfg: NeuronConfig,
    block: Optional[int] = None,
    tiled: Optional[bool] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""BPTT over the saved charges ``H`` ``[T, N]``.

    ``grad_v`` is the gradient of ``v_out`` (``[T, N]`` with ``store_v_seq``, else ``[N]``) or
    ``None``. Returns ``(grad_x [T, N], grad_v0 [N])`` in the state dtype.

    Two schedules of the same arithmetic (``tiled=None`` picks): *tiled* computes everything that
    depends on :math:`H_t` alone (:math:`G_t`, :math:`D_t`, the spike term
    :math:`b\,\bar S_t G_t`) for a whole ``[T, block]`` tile at once and runs only the
    recurrence step by step (one ``addcmul`` per step): fewest op dispatches, used on GPUs and for
    small CPU sequences (at most :data:`TILED_MAX_BYTES` per ``[T, N]`` tensor, in tiles of
    :data:`TILE_BYTES`); *per step* runs all 7 ops of a step on a :data:`CPU_BLOCK` slice, whose
    temporaries stay in cache: faster for large CPU sequences.
    """
    T, N = H.shape
    if tiled is None:
        tiled = H.device.type != "cpu" or T * N * H.element_size() <= TILED_MAX_BYTES
    if tiled:
        if block is None and H.device.type == "cpu":
            block = max(1024, TILE_BYTES // (T * H.element_size()))
        return _neuron_backward_tiled(H, grad_spikes, grad_v, vth, cfg, block)
    return _neuron_backward_steps(H, grad_spikes, grad_v, vth, cfg, block)


def _neuron_backward_steps(
    H: torch.Tensor,
    grad_spikes: Optional[torch.Tensor],
    grad_v: Optional[torch.Tensor],
    vth: Threshold,
    cfg: NeuronConfig,
    block: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per-step schedule of :func:`neuron_backward_torch`: per block and step (7 in-place ops for
    the default LIF) :math:`G_t = \text{scale}\cdot P_t` from :math:`H_t`, :math:`D_t`, then
    :math:`q_t = r_t D_t + b\,\bar S_t G_t` written straight into ``grad_x``, and
    :math:`r_{t-1} = a q_t` kept as a scaled alias of that row."""
    T, N = H.shape
    sdt, dev = H.dtype, H.device
    a, b = cfg.a, cfg.b
    vth_tensor = isinstance(vth, torch.Tensor)
    gx = empty_buffer((T, N), sdt, dev)
    gv0 = empty_buffer((N,), sdt, dev)
    one = torch.ones((), dtype=sdt, device=dev)
    zero = torch.zeros((), dtype=sdt, device=dev)
    seq = cfg.store_v_seq
    on_cpu = dev.type == "cpu"
    nb = min(N, CPU_BLOCK if (on_cpu and block is None) else (block or N))
    gbuf = torch.empty(nb, dtype=sdt, device=dev)
    dbuf = torch.empty(nb, dtype=sdt, device=dev)
    rbuf = torch.empty(nb, dtype=sdt, device=dev)
    c0_scalar = None if vth_tensor else torch.tensor(-cfg.alpha * vth, dtype=sdt, device=dev)
    for c0, c1 in blocks(N, dev, block):
        n = c1 - c0
        th = vth[c0:c1] if vth_tensor else vth
        c0_ = th * (-cfg.alpha) if vth_tensor else c0_scalar
        g, d = gbuf[:n], dbuf[:n]
        # r = r_coef * r_tensor is b * w_t (w_t: total gradient reaching V_t)
        r_tensor: Optional[torch.Tensor] = None
        r_coef = b
        if grad_v is not None:
            r_tensor = rbuf[:n]
            r_tensor.copy_(grad_v[T - 1, c0:c1] if seq else grad_v[c0:c1])
        hs, qs = row_views(H, c0, c1), row_views(gx, c0, c1)
        gss = row_views(grad_spikes, c0, c1) if grad_spikes is not None else None
        gvs = row_views(grad_v, c0, c1) if (seq and grad_v is not None) else None
        for t in range(T - 1, -1, -1):
            h = hs[t]
            q = qs[t]
            scale, d_is_one = _surrogate_and_reset_grad_(cfg, h, th, c0_, g, d, one)  # G = scale * g, D = d
            # q = r D + (b scale) gS g
            if r_tensor is None:
                if gss is None:
                    q.zero_()
                else:
                    torch.addcmul(zero, gss[t], g, value=b * scale, out=q)
            else:
                if d_is_one:
                    m = torch.mul(r_tensor, r_coef, out=d)
                else:
                    m = torch.addcmul(zero, d, r_tensor, value=r_coef, out=d)
                if gss is None:
                    q.copy_(m)
                else:
                    torch.addcmul(m, gss[t], g, value=b * scale, out=q)
            # r_{t-1} = a q_t + b gVseq_{t-1}
            if gvs is not None and t > 0:
                r_tensor = rbuf[:n]
                torch.mul(q, a, out=r_tensor)
                r_tensor.add_(gvs[t - 1], alpha=b)
                r_coef = 1.0
            else:
                r_tensor, r_coef = q, a
        # r_{-1} = b * gV_init
        torch.mul(r_tensor, r_coef / b, out=gv0[c0:c1])
    return gx, gv0


def _neuron_backward_tiled(
    H: torch.Tensor,
    grad_spikes: Optional[torch.Tensor],
    grad_v: Optional[torch.Tensor],
    vth: Threshold,
    cfg: NeuronConfig,
    block: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tiled schedule of :func:`neuron_backward_torch` (``block`` neurons per tile; default all)."""
    T, N = H.shape
    sdt, dev = H.dtype, H.device
    a, b = cfg.a, cfg.b
    vth_tensor = isinstance(vth, torch.Tensor)
    gx = empty_buffer((T, N), sdt, dev)
    gv0 = empty_buffer((N,), sdt, dev)
    one = torch.ones((), dtype=sdt, device=dev)
    zero = torch.zeros((), dtype=sdt, device=dev)
    seq = cfg.store_v_seq
    nb = max(1, min(N, block or N))
    pbuf = torch.empty((T, nb), dtype=sdt, device=dev)
    dbuf = torch.empty((T, nb), dtype=sdt, device=dev)
    rbuf = torch.empty(nb, dtype=sdt, device=dev)
    c0_scalar = None if vth_tensor else torch.tensor(-cfg.alpha * vth, dtype=sdt, device=dev)
    for c0, c1 in blocks(N, dev, nb):
        n = c1 - c0
        Hb = H if n == N else H[:, c0:c1]
        th = vth[c0:c1] if vth_tensor else vth
        P = pbuf if n == nb else pbuf[:, :n]
        D = dbuf if n == nb else dbuf[:, :n]
        # P and D_t over the tile, G = scale * P
        c0_ = th * (-cfg.alpha) if vth_tensor else c0_scalar
        scale, d_is_one = _surrogate_and_reset_grad_(cfg, Hb, th, c0_, P, D, one)
        # spike term b gS G straight into grad_x
        Gx = gx if n == N else gx[:, c0:c1]
        if grad_spikes is None:
            Gx.zero_()
        else:
            torch.addcmul(zero, grad_spikes if n == N else grad_spikes[:, c0:c1], P, value=b * scale, out=Gx)
        # recurrence q_t += r D_t, r = r_coef * r_tensor = b * w_t
        qs = Gx.unbind(0)
        ds = D.unbind(0)
        gvs = row_views(grad_v, c0, c1) if (seq and grad_v is not None) else None
        r_tensor: Optional[torch.Tensor] = None
        r_coef = b
        if grad_v is not None:
            r_tensor = rbuf[:n]
            r_tensor.copy_(gvs[T - 1] if seq else grad_v[c0:c1])
        for t in range(T - 1, -1, -1):
            q = qs[t]
            if r_tensor is not None:
                if d_is_one:
                    q.add_(r_tensor, alpha=r_coef)
                else:
                    q.addcmul_(ds[t], r_tensor, value=r_coef)
            if gvs is not None and t > 0:  # r_{t-1} = a q_t + b gVseq_{t-1}
                r_tensor = rbuf[:n]
                torch.mul(q, a, out=r_tensor)
                r_tensor.add_(gvs[t - 1], alpha=b)
                r_coef = 1.0
            else:
                r_tensor, r_coef = q, a
        torch.mul(r_tensor, r_coef / b, out=gv0[c0:c1])  # r_{-1} = b gV_init
    return gx, gv0


class FusedNeuronFunction(torch.autograd.Function):
    """One autograd node for a whole IF/LIF sequence.

    ``forward(x [T, N], v0 [N], vth_tensor or None, vth_float, cfg, impl)`` returns
    ``(spikes [T, N], v_out)``; ``impl`` is a pair ``(forward_fn, backward_fn)`` with the
    signatures of :func:`neuron_forward_torch` / :func:`neuron_backward_torch` (the Triton
    backend supplies its own).
    """

    @staticmethod
    def forward(ctx, x, v0, vth_t, vth_f, cfg, impl):  # type: ignore[override]
        vth = vth_t if vth_t is not None else vth_f
        save = x.requires_grad or v0.requires_grad
        spikes, v_out, H = impl[0](x, v0, vth, cfg, save_h=save)
        ctx.cfg, ctx.impl, ctx.vth_f = cfg, impl, vth_f
        ctx.x_dtype, ctx.v_dtype = x.dtype, v0.dtype
        ctx.set_materialize_grads(False)
        if save:
            ctx.save_for_backward(H, vth_t)
        else:
            ctx.save_for_backward(None, None)
        return spikes, v_out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_spikes, grad_v):  # type: ignore[override]
        H, vth_t = ctx.saved_tensors
        if H is None or (grad_spikes is None and grad_v is None):
            return None, None, None, None, None, None
        vth = vth_t if vth_t is not None else ctx.vth_f
        if grad_spikes is not None:
            grad_spikes = grad_spikes.contiguous()
        if grad_v is not None:
            grad_v = grad_v.contiguous()
        gx, gv0 = ctx.impl[1](H, grad_spikes, grad_v, vth, ctx.cfg)
        gx = gx.to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        gv0 = gv0.to(ctx.v_dtype) if ctx.needs_input_grad[1] else None
        return gx, gv0, None, None, None, None
