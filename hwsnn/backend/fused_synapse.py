r"""Fused multi-step synapse filter in plain torch: one autograd node per sequence.

Synapse filter
--------------
Forward :math:`I_t = I_{t-1} - (1 - S_t)\,k\,I_{t-1} + S_t` with :math:`k = 1/\tau` (a number, or a
0-dim tensor :math:`\mathrm{sigmoid}(w)` when learnable); evaluated as
:math:`I_t = (1-k) I_{t-1} + S_t + k S_t I_{t-1}` (equal to float tolerance). With
:math:`w_t = \partial L/\partial I_t` (total), :math:`c_t = \partial I_t/\partial I_{t-1} = (1-k) + k S_t`:

.. math::
    w_t = \bar I_t + c_{t+1}\,w_{t+1},\quad
    \bar S_t = w_t\,(1 + k\,I_{t-1}),\quad
    \bar I_{init} = c_0\,w_0,\quad
    \bar k = -\sum_t w_t\,(1 - S_t)\,I_{t-1}.

Saved: the input and the output sequences (the output is needed anyway for :math:`I_{t-1}`).

On CPU the neuron dimension runs in blocks (:mod:`.blocks`) and the ``[T, N]`` streams come
from :class:`~.hostpool.HostPool` (:mod:`.hostpool`).
"""

from __future__ import annotations

from typing import Optional

import torch

from .blocks import blocks, row_views
from .hostpool import empty_buffer

__all__ = ["synapse_forward_torch", "synapse_backward_torch", "FusedSynapseFunction"]


def synapse_forward_torch(x: torch.Tensor, i0: torch.Tensor, k: float, block: Optional[int] = None) -> torch.Tensor:
    """``[T, N]`` output currents from input ``x`` ``[T, N]`` and ``i0`` ``[N]`` (state dtype)."""
    T, N = x.shape
    out = empty_buffer((T, N), i0.dtype, i0.device)
    for c0, c1 in blocks(N, i0.device, block):
        i = i0[c0:c1]
        xs, os_ = row_views(x, c0, c1), row_views(out, c0, c1)
        for t in range(T):
            o = os_[t]
            xt = xs[t]
            torch.add(xt, i, alpha=1.0 - k, out=o)  # (1-k) I + S
            o.addcmul_(xt, i, value=k)  # + k S I
            i = o
    return out


def synapse_backward_torch(
    x: torch.Tensor,
    out: torch.Tensor,
    i0: torch.Tensor,
    k: float,
    grad_out: torch.Tensor,
    need_k: bool,
    block: Optional[int] = None,
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Returns ``(grad_x [T, N], grad_i0 [N], grad_k 0-dim or None)`` in the state dtype."""
    T, N = x.shape
    sdt, dev = out.dtype, out.device
    gx = empty_buffer((T, N), sdt, dev)
    gi0 = torch.empty(N, dtype=sdt, device=dev)
    gk = torch.zeros((), dtype=sdt, device=dev) if need_k else None
    for c0, c1 in blocks(N, dev, block):
        # W (stored in gx): w_t = gO_t + ((1-k) + k S_{t+1}) w_{t+1}
        ws, gos, xs = row_views(gx, c0, c1), row_views(grad_out, c0, c1), row_views(x, c0, c1)
        w = ws[T - 1]
        w.copy_(gos[T - 1])
        for t in range(T - 2, -1, -1):
            wt = ws[t]
            torch.add(gos[t], w, alpha=1.0 - k, out=wt)
            wt.addcmul_(xs[t + 1], w, value=k)
            w = wt
        x0 = x[0, c0:c1]
        torch.add(w * (1.0 - k), x0 * w, alpha=k, out=gi0[c0:c1])  # c_0 w_0
        W = gx[:, c0:c1]
        prev0 = i0[c0:c1]
        if need_k:  # -sum w (1 - S) I_prev
            p0 = W[0] * prev0
            acc = p0.sum() - (p0 * x0).sum()
            if T > 1:
                p = W[1:] * out[:-1, c0:c1]
                acc = acc + p.sum() - (p * x[1:, c0:c1]).sum()
            gk -= acc
        # grad_x = w (1 + k I_prev)
        W[0].addcmul_(W[0], prev0, value=k)
        if T > 1:
            W[1:].addcmul_(W[1:], out[:-1, c0:c1], value=k)
    return gx, gi0, gk


class FusedSynapseFunction(torch.autograd.Function):
    """One autograd node for a whole synapse-filter sequence.

    ``forward(x [T, N], i0 [N], k_tensor or None, k_float, impl)`` returns the output ``[T, N]``.
    ``k_tensor`` is the 0-dim ``1/tau`` carrying the gradient of a learnable time constant.
    """

    @staticmethod
    def forward(ctx, x, i0, k_t, k_f, impl):  # type: ignore[override]
        k = k_f if k_t is None else float(k_t)
        out = impl[0](x, i0, k)
        ctx.impl, ctx.k = impl, k
        ctx.x_dtype, ctx.i_dtype = x.dtype, i0.dtype
        ctx.save_for_backward(x, out, i0, k_t)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):  # type: ignore[override]
        x, out, i0, k_t = ctx.saved_tensors
        need_k = k_t is not None and ctx.needs_input_grad[2]
        gx, gi0, gk = ctx.impl[1](x, out, i0, ctx.k, grad_out.contiguous(), need_k)
        gx = gx.to(ctx.x_dtype) if ctx.needs_input_grad[0] else None
        gi0 = gi0.to(ctx.i_dtype) if ctx.needs_input_grad[1] else None
        if gk is not None:
            gk = gk.to(k_t.dtype).reshape(k_t.shape)
        return gx, gi0, gk, None, None
