r"""The fused QAT forward of the stateful layers: one integer kernel and one straight-through node per layer.

:class:`quant.prepare.QATNetwork` runs every stateful layer with the integer twin's values and the
float layer's gradient, the float states replaced by the twin's after every step (straight-through,
see :mod:`quant.prepare`). Step by step that is ~40 small torch ops per step and layer. Here the
same construction runs as

1. the twin's whole sequence in one kernel (:meth:`hwsnn.fixed.fused.FusedNeuronSequence.fused_sequence`,
   bit-identical to its step function, states after every step kept);
2. the float layer's charges of all steps at once from those states, with the float layer's own
   charge functions (:math:`H_t = \mathrm{charge}(\hat V_{t-1}, h_t)`; CUBA also
   :math:`I^f_t = \mathrm{current}(\hat I_{t-1}, h_t)`);
3. one autograd node whose forward value is the twin's and whose backward is the float layer's
   fused BPTT over those charges (:mod:`hwsnn.backend.ste`).

Values are identical to the step-by-step path (the twin's), gradients equal to float rounding
(``tests/test_quant_fused.py``). Covered: :class:`~hwsnn.neuron.IFNode`, :class:`~hwsnn.neuron.LIFNode`,
:class:`~hwsnn.neuron.CubaLIFNode` (exactly these classes, built-in surrogate, scalar threshold) and
:class:`~hwsnn.layer.SynapseFilter`, with their twins; tensor or :class:`~hwsnn.fixed.SynapticEvents`
inputs. Everything else (recurrent populations, custom neurons or surrogates, no kernel available)
returns ``None`` and runs step by step. ``HWSNN_QAT_FUSED=0`` forces the step-by-step path;
``HWSNN_QAT_FUSED=neurons`` keeps this one and turns off only the dense fast path
(:mod:`quant.qat_dense`).
"""

from __future__ import annotations

import os
from typing import Optional

import torch
import torch.nn as nn

from hwsnn.backend import neuron_config, surrogate_spec
from hwsnn.backend.ste import ste_cuba_sequence, ste_neuron_sequence, ste_synapse_sequence
from hwsnn.fixed import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedSynapseFilter
from hwsnn.fixed.arith import storage_dtype
from hwsnn.layer import SynapseFilter
from hwsnn.neuron import CubaLIFNode, IFNode, LIFNode

__all__ = ["fused_enabled", "fused_stateful"]

_TWIN_OF = {IFNode: FixedIFNode, LIFNode: FixedLIFNode, CubaLIFNode: FixedCubaLIFNode, SynapseFilter: FixedSynapseFilter}


def fused_enabled() -> bool:
    """Whether the fused QAT path may run (environment variable ``HWSNN_QAT_FUSED`` not ``0``)."""
    return os.environ.get("HWSNN_QAT_FUSED", "1").strip().lower() not in ("0", "false", "off", "no")


def _dequantize(q: torch.Tensor, e: int, like: torch.Tensor, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """:math:`q\\,2^{e}` in ``like``'s dtype, equal to the twin's ``dequantize`` (float64, then cast):
    converting the integer straight to the float dtype rounds it once, as the cast of the exact
    float64 value does, and a power-of-two scale commutes with that rounding (no under/overflow)."""
    if out is None:
        out = torch.empty(q.shape, dtype=like.dtype, device=like.device)
    return torch.mul(q.to(like.device), 2.0**e, out=out)


def _states_before(q: torch.Tensor, e: int, first: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``[T + 1, ...]``: the float state entering the sequence, then the twin's after every step."""
    buf = torch.empty((q.shape[0] + 1, *q.shape[1:]), dtype=like.dtype, device=like.device)
    buf[0] = first.detach()
    _dequantize(q, e, like, out=buf[1:])
    return buf


def _entering(state: object, like: torch.Tensor, init: float) -> torch.Tensor:
    """The float state entering the sequence (as the step would make it: ``full_like(x, init)``)."""
    if isinstance(state, torch.Tensor) and state.shape == like.shape[1:] and state.dtype == like.dtype:
        return state
    return torch.full(like.shape[1:], init, dtype=like.dtype, device=like.device)


def fused_stateful(m: nn.Module, tw: nn.Module, h: torch.Tensor, h_int: object) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """``(h_out, h_int_out)`` of stateful layer ``m`` with twin ``tw`` on the whole sequence (module
    docstring), or ``None`` (nothing changed) when the fused path does not cover it."""
    if not fused_enabled() or _TWIN_OF.get(type(m)) is not type(tw):
        return None
    if not (isinstance(h, torch.Tensor) and h.dtype in (torch.float32, torch.float64)) or h.dim() < 2:
        return None
    if isinstance(m, SynapseFilter):
        return _filter(m, tw, h, h_int)
    return _neuron(m, tw, h, h_int)


def _neuron(m: nn.Module, tw: nn.Module, h: torch.Tensor, h_int: object) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    vth = m.v_threshold
    if isinstance(vth, torch.Tensor) or surrogate_spec(m.surrogate_function) is None or tw.kernel_rules() is None:
        return None
    cuba = isinstance(m, CubaLIFNode)
    v0 = _entering(m.v, h, m.v_init)
    i0 = _entering(m.i, h, 0.0) if cuba else None
    res = tw.fused_sequence(h_int, store_states=True)
    if res is None:
        return None
    spikes, states = res
    with torch.no_grad():
        V = _states_before(states["v"], tw.exponents["v"], v0, h)  # V[t] enters step t, V[T] is the last
        if cuba:
            I = _states_before(states["i"], tw.exponents["i"], i0, h)
            H = m.neuronal_charge(m.current_charge(h.detach(), I[:-1]), V[:-1])
        else:
            H = m.neuronal_charge(h.detach(), V[:-1])
        value = spikes.to(device=h.device, dtype=h.dtype)
    if cuba:
        cfg = neuron_config(m.surrogate_function, tau=m.tau_mem, decay_input=False, v_reset=m.v_reset,
                            detach_reset=m.detach_reset)
        out, m.i, m.v = ste_cuba_sequence(h, i0, v0, H, value, I[-1], V[-1], cfg, float(vth), m.tau_syn)
    else:
        tau = getattr(m, "tau", None)
        cfg = neuron_config(m.surrogate_function, tau=tau, decay_input=getattr(m, "decay_input", True),
                            v_reset=m.v_reset, detach_reset=m.detach_reset)
        out, m.v = ste_neuron_sequence(h, v0, H, value, V[-1], cfg, float(vth), backend=m.backend)
    return out, spikes


def _filter(m: SynapseFilter, tw: FixedSynapseFilter, h: torch.Tensor, s: object) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    width = tw.target.widths.current
    if tw.target.overflow.current == "fold_once" and storage_dtype(width).itemsize * 8 <= width.bits:
        # a folded value may leave the storage dtype, and then the stored state (where the step-by-step
        # path takes the gradient) differs from the output value: not covered here (no shipped target)
        return None
    if not isinstance(s, torch.Tensor):
        return None
    out_int = tw.fused_sequence(s)
    if out_int is None:
        return None
    value = _dequantize(out_int, tw.exponents["out_i"], h)
    i0 = _entering(m.out_i, h, 0.0)
    out = ste_synapse_sequence(h, i0, value, m.inv_tau, backend=m.backend)
    m.out_i = out[-1]
    return out, out_int
