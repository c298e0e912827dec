r"""Straight-through sequences: an exact (integer) forward value with the float layer's fused BPTT gradient.

Quantization-aware training (:mod:`quant.prepare`) runs a stateful layer step by step as

.. math::
    f_t = \mathrm{float\ step}(h_t, \tilde V_{t-1}),\qquad
    \text{out}_t = \hat y_t + (f_t - \mathrm{sg}(f_t)),\qquad
    \tilde V_t = \hat V_t + (V^{f}_t - \mathrm{sg}(V^{f}_t)),

where :math:`\hat y, \hat V` are the integer twin's output and states (dequantized) and
:math:`V^f_t` is the float layer's new state. The *values* are the twin's; the *gradient* is the
float layer's, evaluated at the twin's states. Because every float state entering a step has a
known value (the twin's), the float charges of all steps can be computed at once, and the
gradient is the float layer's own BPTT recurrence over those charges, which the fused kernels
(:mod:`hwsnn.backend.fused`, numba, Triton) already implement:

* IF/LIF: :math:`H_t = \mathrm{charge}(\hat V_{t-1}, h_t)` (with :math:`\hat V_{-1}` the float
  layer's entering state), then the fused neuron backward on :math:`H` (surrogate at
  :math:`H_t - V_{th}`, reset derivative from :math:`S_t = [H_t \ge V_{th}]`, ``detach_reset``).
* CUBA: :math:`I^f_t = \hat I_{t-1} - \hat I_{t-1}/\tau_s + h_t`, :math:`H_t = \mathrm{charge}(\hat V_{t-1}, I^f_t)`;
  the neuron backward gives :math:`\bar H`, then :math:`\bar I^f_t = \bar H_t + a_s \bar I^f_{t+1}`
  (:math:`a_s = 1 - 1/\tau_s`; :math:`\bar I^f_{T-1}` also takes the gradient of the last current),
  :math:`\bar h_t = \bar I^f_t`, :math:`\bar I_{init} = a_s \bar I^f_0`.
* synapse filter: the fused filter backward with the twin's outputs as the previous currents.

The caller computes :math:`H` (and :math:`I^f`) with the float layer's own charge functions, so the
gradients equal the step-by-step construction to float rounding (``tests/test_quant_fused.py``).
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch

from .fused_neuron import FusedNeuronFunction, NeuronConfig
from .fused_synapse import FusedSynapseFunction

__all__ = ["ste_neuron_sequence", "ste_cuba_sequence", "ste_synapse_sequence"]


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(t.shape[0], -1)


def ste_neuron_sequence(
    x_seq: torch.Tensor,
    v0: torch.Tensor,
    H: torch.Tensor,
    value: torch.Tensor,
    v_last: torch.Tensor,
    cfg: NeuronConfig,
    v_threshold: float,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """IF/LIF: ``(out [T, ...], v_last)`` with the values ``value`` / ``v_last`` and the fused BPTT
    gradient of ``cfg`` over the charges ``H`` (``[T, ...]``, no grad) into ``x_seq`` and ``v0``."""
    from . import neuron_backward_impl

    T, shape = x_seq.shape[0], x_seq.shape[1:]
    x2, v1 = _flat(x_seq), v0.reshape(-1)
    Hd, val, vl = _flat(H).detach(), _flat(value).detach(), v_last.detach().reshape(-1)
    bwd = neuron_backward_impl(cfg, x_seq, v_threshold, backend)

    def forward(x, v, vth, c, save_h):  # the values are given; H is what the backward needs
        return val, vl, (Hd if save_h else None)

    if torch.is_grad_enabled() and (x2.requires_grad or v1.requires_grad):
        out, v_out = FusedNeuronFunction.apply(x2, v1, None, float(v_threshold), cfg, (forward, bwd))
    else:
        out, v_out = val, vl
    return out.reshape(x_seq.shape), v_out.reshape(shape)


class _CubaSTE(torch.autograd.Function):
    """Values given; gradient: the LIF backward over ``H`` then the current's linear recurrence."""

    @staticmethod
    def forward(ctx, x, i0, v0, H, value, i_last, v_last, vth, cfg, a_syn, bwd):  # type: ignore[override]
        ctx.save_for_backward(H)
        ctx.vth, ctx.cfg, ctx.a_syn, ctx.bwd = vth, cfg, a_syn, bwd
        ctx.set_materialize_grads(False)
        return value.clone(), i_last.clone(), v_last.clone()

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g_out, g_i, g_v):  # type: ignore[override]
        (H,) = ctx.saved_tensors
        none = (None,) * 8
        if g_out is None and g_i is None and g_v is None:
            return (None, None, None) + none
        T, N = H.shape
        if g_out is None and g_v is None:  # only the last current: no neuron gradient
            gh, gv0 = torch.zeros_like(H), None
        else:
            gh, gv0 = ctx.bwd(H, None if g_out is None else g_out.contiguous(), None if g_v is None else g_v.contiguous(),
                              ctx.vth, ctx.cfg)
        a = ctx.a_syn
        if g_i is not None:
            gh[T - 1] += g_i
        for t in range(T - 2, -1, -1):  # gI_t = gH_t + a_s gI_{t+1}, in place
            gh[t].add_(gh[t + 1], alpha=a)
        gi0 = gh[0] * a if ctx.needs_input_grad[1] else None
        return (gh if ctx.needs_input_grad[0] else None, gi0, gv0 if ctx.needs_input_grad[2] else None) + none


def ste_cuba_sequence(
    x_seq: torch.Tensor,
    i0: torch.Tensor,
    v0: torch.Tensor,
    H: torch.Tensor,
    value: torch.Tensor,
    i_last: torch.Tensor,
    v_last: torch.Tensor,
    cfg: NeuronConfig,
    v_threshold: float,
    tau_syn: float,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CUBA LIF: ``(out, i_last, v_last)`` with the given values and the gradient of the module
    docstring; ``cfg`` is the membrane's (``tau`` = :math:`\\tau_{mem}`, ``decay_input=False``)."""
    from . import neuron_backward_impl

    T, shape = x_seq.shape[0], x_seq.shape[1:]
    x2 = _flat(x_seq)
    args = (_flat(H).detach(), _flat(value).detach(), i_last.detach().reshape(-1), v_last.detach().reshape(-1))
    i1, v1 = i0.reshape(-1), v0.reshape(-1)
    if torch.is_grad_enabled() and (x2.requires_grad or i1.requires_grad or v1.requires_grad):
        bwd = neuron_backward_impl(cfg, x_seq, v_threshold, backend)
        out, il, vl = _CubaSTE.apply(x2, i1, v1, *args, float(v_threshold), cfg, 1.0 - 1.0 / float(tau_syn), bwd)
    else:
        out, il, vl = args[1], args[2], args[3]
    return out.reshape(x_seq.shape), il.reshape(shape), vl.reshape(shape)


def ste_synapse_sequence(
    x_seq: torch.Tensor,
    i0: torch.Tensor,
    value: torch.Tensor,
    inv_tau: Union[float, torch.Tensor],
    backend: str = "auto",
) -> torch.Tensor:
    """Synapse filter: the outputs ``value`` ``[T, ...]`` with the fused filter's gradient taken at
    those values (into ``x_seq``, ``i0`` and a learnable ``inv_tau``)."""
    from . import synapse_backward_impl

    x2, i1, val = _flat(x_seq), i0.reshape(-1), _flat(value).detach()
    k_t: Optional[torch.Tensor] = inv_tau.reshape(()) if isinstance(inv_tau, torch.Tensor) else None
    k_f = 0.0 if k_t is not None else float(inv_tau)
    needs = x2.requires_grad or i1.requires_grad or (k_t is not None and k_t.requires_grad)
    if not (torch.is_grad_enabled() and needs):
        return val.reshape(x_seq.shape)
    bwd: Callable = synapse_backward_impl(x_seq, backend)
    out = FusedSynapseFunction.apply(x2, i1, k_t, k_f, (lambda x, i, k: val, bwd))
    return out.reshape(x_seq.shape)
