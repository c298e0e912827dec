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
from .decay import tau_to_decay
from .neuron import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedNeuron, choose_state_exponent
from .per_neuron import holds_per_neuron

__all__ = ["if_to_fixed", "lif_to_fixed", "cuba_to_fixed", "scalar_tau", "neuron_taus", "common_options", "finish_twin"]
def common_options(layer: object, target: Target, name: str, clip: bool, options: dict,
                   per_neuron: bool = False) -> tuple[dict, dict[str, int]]:
    """Twin keyword arguments from a float neuron: exponent, threshold mantissa, reset, v_reset.

    ``per_neuron``: a tensor ``v_threshold`` (trainable or not) becomes one mantissa per neuron on targets
    that hold them (:func:`~hwsnn.fixed.per_neuron.holds_per_neuron`), all on the grid of the largest."""
    allowed = {"state_exponent", "input_exponent", "readout"}
    if set(options) - allowed:
        raise TypeError(f"{name}: unknown conversion option(s) {sorted(set(options) - allowed)}; "
                        f"known: clip, name, {', '.join(sorted(allowed))}")
    vth = layer.v_threshold
    vth_t = None
    if isinstance(vth, torch.Tensor):
        vth_t = vth.detach().to(torch.float64)
        flat = vth_t.reshape(-1)
        if vth.numel() == 1 or bool((flat == flat[0]).all()):
            vth, vth_t = float(flat[0]), None
        elif not (per_neuron and holds_per_neuron(target)):
            where = ("its twin has one threshold per layer" if not per_neuron else
                     f"target {target.name!r} holds one threshold per layer (only Xylo cores hold one per neuron)")
            raise ValueError(f"{name}: per-neuron v_threshold (shape {tuple(vth.shape)}, values {float(flat.min()):g} .. "
                             f"{float(flat.max()):g}) cannot be converted: {where}; set one v_threshold before converting")
        else:
            vth = float(vth_t.abs().max())
    e, e_in = options.get("state_exponent"), options.get("input_exponent")
    if e_in is not None:
        if e is not None and e != e_in - target.neuron.input_shift:
            raise ValueError(f"{name}: state_exponent {e} and input_exponent {e_in} disagree (input_shift "
                             f"{target.neuron.input_shift})")
        e = e_in - target.neuron.input_shift
    e = choose_state_exponent(vth, target) if e is None else int(e)
    low = vth if vth_t is None else float(vth_t.min())
    if target.neuron.threshold_positive and low <= 0 and not clip:
        raise FitError(name, "v_threshold", low, "must be > 0 (threshold_positive)", target.name)
    th, n_th = arith.quantize(torch.tensor(vth) if vth_t is None else vth_t, e + target.neuron.threshold_shift,
                              target.widths.threshold, layer=name, parameter="v_threshold", target=target.name, clip=clip)
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
    kw = dict(threshold=int(th) if vth_t is None else th.to(torch.int64), state_exponent=e, reset=reset, v_reset=vr, readout=bool(options.get("readout", False)),
              clip=clip, name=name)
    return kw, {"v_threshold": n_th, "v_reset": n_vr}


def scalar_tau(layer: object, attr: str, name: str, target: Optional[Target] = None) -> float:
    """The float layer's time constant ``attr`` as one number: per-neuron tensors (an hwsnn extension,
    e.g. imported from NIR) are refused (``target``: named in the message; see :func:`neuron_taus`)."""
    tau = getattr(layer, attr)
    if isinstance(tau, torch.Tensor):
        if tau.numel() != 1 and bool((tau != tau.reshape(-1)[0]).any()):
            where = (f"target {target.name!r} holds one decay per layer (only Xylo cores hold one per neuron)"
                     if target is not None else "a neuron layer has one decay on the chip")
            raise ValueError(f"{name}: per-neuron {attr} (shape {tuple(tau.shape)}, values {float(tau.min()):g} .. "
                             f"{float(tau.max()):g}) has no integer twin: {where}; give the layer one {attr}")
        return float(tau.reshape(-1)[0])
    return float(tau)


def neuron_taus(layer: object, attr: str, target: Target, which: str, name: str, clip: bool) -> tuple[object, int, object]:
    r"""``(decay, clipped, requested)`` of time constant ``attr``: one decay parameter (:func:`tau_to_decay`),
    or, for per-neuron values on a target that holds them, an int64 tensor of one per neuron
    (:math:`k_j = \mathrm{round}(\log_2 \tau_j)`; ``requested``: ``(min, max)``); elsewhere refused naming the layer."""
    tau = getattr(layer, attr)
    if not (isinstance(tau, torch.Tensor) and tau.numel() > 1 and bool((tau != tau.reshape(-1)[0]).any())
            and holds_per_neuron(target)):
        t = scalar_tau(layer, attr, name, target)
        k, n = tau_to_decay(t, target, which, layer=name, parameter=attr, clip=clip)
        return k, n, t
    flat = tau.detach().to(torch.float64).reshape(-1)
    found = {float(v): tau_to_decay(float(v), target, which, layer=name, parameter=attr, clip=clip)
             for v in flat.unique()}
    ks = torch.tensor([found[float(v)][0] for v in flat], dtype=torch.int64).reshape(tau.shape)
    clipped = sum(found[float(v)][1] for v in flat)
    return ks, clipped, (float(flat.min()), float(flat.max()))


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
    tau = scalar_tau(layer, "tau", name, target)
    k, n_tau = tau_to_decay(tau, target, "mem", layer=name, parameter="tau", clip=clip)
    twin = FixedLIFNode(target, decay_mem=k, decay_input=layer.decay_input, **kw)
    return finish_twin(twin, {**n, "tau": n_tau}, {"tau": tau})


@register(CubaLIFNode)
def cuba_to_fixed(layer: CubaLIFNode, target: Target, *, clip: bool = False, name: Optional[str] = None,
                  **options: object) -> FixedCubaLIFNode:
    """Float :class:`~hwsnn.neuron.CubaLIFNode` to :class:`FixedCubaLIFNode` (``du = round(4096/tau_syn) - 1``,
    ``dv = round(4096/tau_mem)`` on ``mul12`` targets, else nearest :math:`k`). Options as :func:`if_to_fixed`."""
    name = name or "CubaLIFNode"
    kw, n = common_options(layer, target, name, clip, options, per_neuron=True)
    ks, n_s, tau_syn = neuron_taus(layer, "tau_syn", target, "syn", name, clip)
    km, n_m, tau_mem = neuron_taus(layer, "tau_mem", target, "mem", name, clip)
    twin = FixedCubaLIFNode(target, decay_syn=ks, decay_mem=km, **kw)
    return finish_twin(twin, {**n, "tau_syn": n_s, "tau_mem": n_m}, {"tau_syn": tau_syn, "tau_mem": tau_mem})
