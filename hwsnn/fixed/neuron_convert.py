r"""The converters of the float neurons to their twins (:mod:`hwsnn.fixed.neuron`): ``IFNode`` ->
:class:`~hwsnn.fixed.neuron.FixedIFNode`, ``LIFNode`` -> :class:`~hwsnn.fixed.neuron.FixedLIFNode`,
``CubaLIFNode`` -> :class:`~hwsnn.fixed.neuron.FixedCubaLIFNode`, registered with
:func:`hwsnn.fixed.convert.register`. Time constants become the target's decay parameters
(:func:`~hwsnn.fixed.neuron.tau_to_decay`), thresholds and resets integers on the state grid
(:func:`~hwsnn.fixed.neuron.choose_state_exponent` unless given)."""

from __future__ import annotations

from typing import Optional

import torch

from targets import Target

from ..neuron import CubaLIFNode, IFNode, LIFNode
from . import arith
from .arith import FitError
from .convert import register
from .neuron import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedNeuron, choose_state_exponent, tau_to_decay

__all__ = ["if_to_fixed", "lif_to_fixed", "cuba_to_fixed", "scalar_tau", "common_options", "finish_twin"]
def common_options(layer: object, target: Target, name: str, clip: bool, options: dict) -> tuple[dict, dict[str, int]]:
    """Twin keyword arguments from a float neuron: exponent, threshold mantissa, reset, v_reset."""
    allowed = {"state_exponent", "input_exponent", "readout"}
    if set(options) - allowed:
        raise TypeError(f"{name}: unknown conversion option(s) {sorted(set(options) - allowed)}; "
                        f"known: clip, name, {', '.join(sorted(allowed))}")
    vth = layer.v_threshold
    if isinstance(vth, torch.Tensor):
        if vth.numel() != 1:
            raise ValueError(f"{name}: tensor thresholds (shape {tuple(vth.shape)}) are not supported by the integer "
                             "twins yet; set a scalar v_threshold before converting")
        vth = float(vth)
    e, e_in = options.get("state_exponent"), options.get("input_exponent")
    if e_in is not None:
        if e is not None and e != e_in - target.neuron.input_shift:
            raise ValueError(f"{name}: state_exponent {e} and input_exponent {e_in} disagree (input_shift "
                             f"{target.neuron.input_shift})")
        e = e_in - target.neuron.input_shift
    e = choose_state_exponent(vth, target) if e is None else int(e)
    if target.neuron.threshold_positive and vth <= 0 and not clip:
        raise FitError(name, "v_threshold", vth, "must be > 0 (threshold_positive)", target.name)
    th, n_th = arith.quantize(torch.tensor(vth), e + target.neuron.threshold_shift, target.widths.threshold,
                              layer=name, parameter="v_threshold", target=target.name, clip=clip)
    reset = "subtract" if layer.v_reset is None else "zero"
    if reset not in target.neuron.reset:
        what = "soft reset (v_reset=None)" if reset == "subtract" else f"hard reset (v_reset={layer.v_reset})"
        raise ValueError(f"{name}: {what} needs reset {reset!r}, not available on target {target.name!r}; "
                         f"allowed reset kinds: {', '.join(target.neuron.reset)}")
    vr, n_vr = 0, 0
    if reset == "zero":
        q, n_vr = arith.quantize(torch.tensor(layer.v_reset), e, target.widths.membrane,
                                 layer=name, parameter="v_reset", target=target.name, clip=clip)
        vr = int(q)
    kw = dict(threshold=int(th), state_exponent=e, reset=reset, v_reset=vr, readout=bool(options.get("readout", False)),
              clip=clip, name=name)
    return kw, {"v_threshold": n_th, "v_reset": n_vr}


def scalar_tau(layer: object, attr: str, name: str) -> float:
    """The float layer's time constant ``attr`` as one number: per-neuron tensors (an hwsnn extension,
    e.g. imported from NIR) have no twin, since the export format holds one decay per layer."""
    tau = getattr(layer, attr)
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1 and bool((tau != tau.reshape(-1)[0]).any()):
            raise ValueError(f"{name}: per-neuron {attr} (shape {tuple(tau.shape)}, values {float(tau.min()):g} .. "
                             f"{float(tau.max()):g}) has no integer twin: a neuron layer has one decay on the chip; "
                             f"give the layer one {attr}")
        return float(tau.reshape(-1)[0])
    return float(tau)


def finish_twin(twin: FixedNeuron, clipped: dict[str, int], taus: dict[str, float]) -> FixedNeuron:
    """Record the converter's clip counts and the requested time constants on the twin."""
    for k, n in clipped.items():
        twin.count_clipped(k, n)
    twin.tau_requested = dict(taus)
    return twin


@register(IFNode)
def if_to_fixed(layer: IFNode, target: Target, *, clip: bool = False, name: Optional[str] = None,
                **options: object) -> FixedIFNode:
    """Float :class:`~hwsnn.neuron.IFNode` to :class:`FixedIFNode` (options: ``state_exponent`` or
    ``input_exponent``, ``readout``; ``state_exponent=None`` uses :func:`choose_state_exponent`)."""
    name = name or "IFNode"
    kw, n = common_options(layer, target, name, clip, options)
    return finish_twin(FixedIFNode(target, **kw), n, {})


@register(LIFNode)
def lif_to_fixed(layer: LIFNode, target: Target, *, clip: bool = False, name: Optional[str] = None,
                 **options: object) -> FixedLIFNode:
    r"""Float :class:`~hwsnn.neuron.LIFNode` to :class:`FixedLIFNode`; :math:`\tau \to k` (nearest power
    of two in log2) or ``dv = round(4096/tau)`` via :func:`tau_to_decay`. Options as :func:`if_to_fixed`."""
    name = name or type(layer).__name__
    kw, n = common_options(layer, target, name, clip, options)
    tau = scalar_tau(layer, "tau", name)
    k, n_tau = tau_to_decay(tau, target, "mem", layer=name, parameter="tau", clip=clip)
    twin = FixedLIFNode(target, decay_mem=k, decay_input=layer.decay_input, **kw)
    return finish_twin(twin, {**n, "tau": n_tau}, {"tau": tau})


@register(CubaLIFNode)
def cuba_to_fixed(layer: CubaLIFNode, target: Target, *, clip: bool = False, name: Optional[str] = None,
                  **options: object) -> FixedCubaLIFNode:
    """Float :class:`~hwsnn.neuron.CubaLIFNode` to :class:`FixedCubaLIFNode` (``du = round(4096/tau_syn) - 1``,
    ``dv = round(4096/tau_mem)`` on ``mul12`` targets, else nearest :math:`k`). Options as :func:`if_to_fixed`."""
    name = name or "CubaLIFNode"
    kw, n = common_options(layer, target, name, clip, options)
    tau_syn, tau_mem = scalar_tau(layer, "tau_syn", name), scalar_tau(layer, "tau_mem", name)
    ks, n_s = tau_to_decay(tau_syn, target, "syn", layer=name, parameter="tau_syn", clip=clip)
    km, n_m = tau_to_decay(tau_mem, target, "mem", layer=name, parameter="tau_mem", clip=clip)
    twin = FixedCubaLIFNode(target, decay_syn=ks, decay_mem=km, **kw)
    return finish_twin(twin, {**n, "tau_syn": n_s, "tau_mem": n_m}, {"tau_syn": tau_syn, "tau_mem": tau_mem})
