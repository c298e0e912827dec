r"""The QAT forward of a dense layer without the float matmul: :func:`straight_through_dense`.

:class:`quant.prepare.QATNetwork` hands on, for a synaptic layer, :math:`\hat y + (f - \mathrm{sg}(f))`
with :math:`\hat y = Y\,2^{e}` the twin's dequantized output and :math:`f = h\,w_q^T + b` the
Brevitas layer (:math:`w_q`: its fake-quantized weight). The value is :math:`\hat y`; the float
product :math:`f` is computed only for its gradient. Here one autograd node has the value
:math:`\hat y` and the backward of :math:`f` (the same products autograd forms for ``F.linear`` on
the time-folded input ``[T*N, K]``):

.. math::
    \frac{\partial L}{\partial h} = g\,w_q, \qquad \frac{\partial L}{\partial w_q} = g^T h, \qquad
    \frac{\partial L}{\partial b} = \textstyle\sum_{t,n} g,

with :math:`g` the incoming gradient, shifted by the synaptic latency :math:`L` when the target has
one (:math:`\partial L / \partial f_t = g_{t+L}`: the float path is delayed as the twin's output).
The gradient of :math:`w_q` goes on into Brevitas' quantizer (straight-through to the weight), as
before. So the forward skips one float matmul per layer; the values are the twin's bit for bit
and the gradients are the same products (``tests/test_quant_dense.py``).

The twin's output itself comes from :func:`hwsnn.fixed.dense_float.dense_sum_float` (one exact
float matmul, no overflow bookkeeping, where its bounds prove it exact) or else from the twin.

Covered: Brevitas linear layers with only the weight quantized (what :func:`quant.prepare`
builds), without hooks, whose twin is a :class:`~hwsnn.fixed.FixedLinear` on a ``sum`` target
(Xylo's per-event layers hand on the float product itself and keep the previous path), with a
latency below the sequence length. Anything else returns ``None`` and runs as before.
``HWSNN_QAT_FUSED=0`` (everything step by step) or ``=neurons`` (the fused neurons only) turn it off.
"""

from __future__ import annotations

import os
from typing import Optional

import torch
import torch.nn as nn

from hwsnn.fixed import FixedLinear
from hwsnn.fixed.dense_float import dense_sum_float

from .convert import dequantize_output

__all__ = ["dense_enabled", "straight_through_dense", "StraightThroughLinear"]


def dense_enabled() -> bool:
    """Whether the dense fast path may run (``HWSNN_QAT_FUSED`` not ``0`` and not ``neurons``)."""
    return os.environ.get("HWSNN_QAT_FUSED", "1").strip().lower() not in ("0", "false", "off", "no", "neurons")


class StraightThroughLinear(torch.autograd.Function):
    """Value ``value`` ``[T, ..., M]``; gradient of ``F.linear(h, weight, bias)`` delayed by ``latency`` steps."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], value: torch.Tensor,
                latency: int) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        ctx.latency = int(latency)
        return value

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        h, weight = ctx.saved_tensors
        lat = ctx.latency
        if lat:  # f was delayed: f_t reached the output at step t + L
            g = torch.cat([g[lat:], torch.zeros_like(g[:lat])])
        g2 = g.reshape(-1, g.shape[-1])
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        gh = g2.mm(weight).reshape(h.shape) if need_h else None
        gw = g2.t().mm(h.reshape(-1, h.shape[-1])) if need_w else None
        gb = g2.sum(0) if need_b and ctx.has_bias else None
        return gh, gw, gb, None, None


def _covered(m: nn.Module, tw: nn.Module, h: object) -> bool:
    if type(tw) is not FixedLinear or tw.per_event or not isinstance(m, nn.Linear) or not hasattr(m, "quant_weight"):
        return False
    if m._forward_hooks or m._forward_pre_hooks or getattr(m, "return_quant_tensor", False):
        return False
    for name in ("input_quant", "output_quant", "bias_quant"):
        proxy = getattr(m, name, None)
        if proxy is None or getattr(proxy, "is_quant_enabled", True):
            return False
    if not isinstance(h, torch.Tensor) or h.dtype not in (torch.float32, torch.float64) or h.dim() < 2:
        return False
    return h.shape[-1] == m.in_features and tw.latency < h.shape[0] and getattr(m, "step_mode", "m") == "m"


def straight_through_dense(m: nn.Module, tw: nn.Module, h: object, h_int: object,
                           e_in: int) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """``(h_out, y_int)`` of Brevitas dense layer ``m`` with twin ``tw`` on the whole sequence (module
    docstring), or ``None`` (nothing changed) when this path does not cover it."""
    if not dense_enabled() or not _covered(m, tw, h):
        return None
    qw = m.quant_weight()
    weight = getattr(qw, "value", None)
    if not isinstance(weight, torch.Tensor) or weight.dtype != h.dtype:
        return None
    hooked = bool(tw._forward_hooks or tw._forward_pre_hooks)
    fast = None if hooked else dense_sum_float(tw, h_int, h.dtype, tw.output_exponent)
    if fast is not None:
        y_int, value = fast
    else:
        y_int = tw(h_int)
        value = dequantize_output(tw, y_int, e_in)
        if value is None:  # pragma: no cover - a sum layer returns a tensor
            raise RuntimeError(f"{tw.layer_name}: the dense twin returned no tensor")
        value = value.to(h.dtype)
    return StraightThroughLinear.apply(h, weight, m.bias, value, tw.latency), y_int
