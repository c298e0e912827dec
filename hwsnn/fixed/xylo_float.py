r"""A float network with Xylo's synapse 2 as the one Xylo core the chip runs: :func:`xylo_core_from_float`.

A two-synapse projection (:class:`~hwsnn.layer.DualLinear`) and neuron
(:class:`~hwsnn.neuron.CubaLIF2Node`) have no layer-by-layer twin: the layered export ops hold one
synapse, and synapse 2 exists only as the second plane of the core's ``w_in`` / ``w_rec``
(``../shared/targets/xylo.md``). So a float network that uses them converts straight to a
:class:`~hwsnn.fixed.FixedXyloCore` with ``synapses = 2``: that twin is what is exported (op
``xylo_core``), simulated and handed to Rockpool, integer for integer.

Accepted float network (``nn.Sequential``, input: event counts, exponent 0)::

    proj_0 -> hidden_0 -> [proj_k -> hidden_k]* -> Linear -> CubaLIFNode (readout) -> [VotingLayer | Flatten | Dropout]*

with ``proj``: :class:`~hwsnn.layer.DualLinear` (feeding a ``CubaLIF2Node``, or a
:class:`~hwsnn.layer.DualRecurrentContainer` of one) or a one-synapse ``nn.Linear`` (feeding a
``CubaLIFNode``, or a :class:`~hwsnn.layer.RecurrentContainer` of one), no projection bias. Layout (as
:func:`targets.bundle.xylo_fuse.fuse_ops` lays out a layered one-synapse network):

===========================================  ==========================================================
float                                        ``xylo_core``
===========================================  ==========================================================
``proj_0.weight[s]`` ``[H0, Nin]``             ``w_in[:, :, s] = weight[s].T`` (a ``Linear``: ``s = 0``)
hidden layer ``k``                           neurons ``blocks[k] .. blocks[k+1]-1``
``proj_k.weight[s]`` (``k >= 1``)              block ``w_rec[b_{k-1}.., b_k.., s]``
recurrent ``rc.weight[s]`` of layer ``k``      diagonal block ``w_rec[b_k.., b_k.., s]``
readout ``Linear`` + ``CubaLIFNode``         ``w_out = weight.T``; ``dash_syn_out``, ``dash_mem_out``, ``threshold_out``
``tau_syn``, ``tau_syn2``, ``tau_mem``       ``dash_syn``, ``dash_syn2``, ``dash_mem`` per neuron, :math:`k = \mathrm{round}(\log_2 \tau)`
===========================================  ==========================================================

(a one-synapse hidden layer gets ``dash_syn2 = dash_syn``: nothing reaches its second current). A
``CubaLIF2Node`` has ``max_spikes`` 1 (binary: the chip may burst where it fires once) or the chip's
31 (the same spike counts).

Scales: each neuron layer's state exponent :math:`e_k` (from its threshold,
:func:`~hwsnn.fixed.neuron.choose_state_exponent`, or ``state_exponents``); the weights of a
projection share one exponent :math:`e_w` over both synapses (one shift per matrix), the finest
grid holding :math:`\max |W|`; the shift is :math:`s = e_w - e_k` (the input and the spikes have
exponent 0). A shift above the target's maximum coarsens the neuron (:math:`e_k = e_w - s_{max}`);
one below the minimum coarsens the weights (a recurrent layer: the coarser of its two matrices
decides). All hidden -> hidden matrices (later projections and recurrent ones) share
``weight_shift_rec``: the largest of their shifts, each matrix quantized on
:math:`e_k + s_{rec}` (never finer than its own grid, so nothing overflows).

As on the chip (and as the layered one-synapse twins), every hidden -> hidden hop and the readout
take one step; the float feed-forward layers do not model that latency (the recurrent containers do:
their feedback is last step's spikes, as on the chip).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn

from targets import Target
from targets.bundle.xylo_fuse import FuseError

from ..functional import set_step_mode
from ..layer import DualLinear, DualRecurrentContainer, Dropout, Dropout2d, Flatten, RecurrentContainer, VotingLayer
from ..neuron import CubaLIF2Node, CubaLIFNode
from . import arith
from .base import resolve_target
from .convert import register, to_fixed
from .neuron_convert import common_options, cuba_to_fixed, scalar_tau
from .decay import tau_to_decay
from .xylo_core import FixedXyloCore

__all__ = ["TWO_SYNAPSE_LAYERS", "uses_two_synapses", "two_synapse_target_problem", "xylo_core_from_float"]

#: float layers that feed or hold Xylo's second synaptic current
TWO_SYNAPSE_LAYERS = (DualLinear, CubaLIF2Node, DualRecurrentContainer)
#: float layers that may follow the readout (they run off the chip)
_OFF_CHIP = (VotingLayer, Flatten, Dropout, Dropout2d)


def uses_two_synapses(model: nn.Module) -> bool:
    """Whether ``model`` (or a layer inside it) is a two-synapse layer (:data:`TWO_SYNAPSE_LAYERS`)."""
    return any(isinstance(m, TWO_SYNAPSE_LAYERS) for m in model.modules())


def _label(name: str, layer: nn.Module) -> str:
    return f"{name} ({type(layer).__name__})"


def two_synapse_target_problem(target: Target, name: str, layer: nn.Module) -> Optional[str]:
    """Why ``target`` cannot run two-synapse layer ``layer`` (named ``name``); ``None`` when it can
    (a Xylo core with ``limits.hidden_synapses >= 2``: XyloAudio 2 and 3)."""
    lim = target.limits
    if lim.layout != "xylo_core":
        return (f"{_label(name, layer)}: two synaptic currents per neuron (synapse 2) exist only on a Xylo core "
                f"(XyloAudio 2 / 3); target {target.name!r} has none (limits.layout: {lim.layout}): use "
                "Linear + CubaLIFNode")
    if (lim.hidden_synapses or 1) < 2:
        return (f"{_label(name, layer)}: uses synapse 2, but {target.name} has {lim.hidden_synapses or 1} synaptic current "
                "per hidden neuron (XyloIMU: no synapse 2): use Linear + CubaLIFNode, or XyloAudio 2 / 3")
    return None


@register(*TWO_SYNAPSE_LAYERS)
def _no_layer_twin(layer: nn.Module, target: Target, *, name: Optional[str] = None, **options: object) -> nn.Module:
    """Refused: a two-synapse layer has no twin of its own (module docstring)."""
    name = name or type(layer).__name__
    problem = two_synapse_target_problem(target, name, layer)
    if problem:
        raise ValueError(problem)
    raise TypeError(f"{_label(name, layer)}: Xylo's synapse 2 exists only inside the whole core, so this layer has no "
                    f"twin of its own: convert the whole network (quant.convert(model, {target.name!r}) or "
                    "hwsnn.fixed.xylo_core_from_float)")


def _weights(proj: nn.Module) -> torch.Tensor:
    """``[S, out, in]`` float64 weights of a projection (``S`` = 2 for a DualLinear, else 1)."""
    w = proj.weight.detach().to(torch.float64)
    return w if isinstance(proj, DualLinear) else w.unsqueeze(0)


def _cell(nrn: nn.Module) -> tuple[nn.Module, Optional[nn.Module]]:
    """``(neuron, recurrent projection or None)`` of a hidden layer."""
    if isinstance(nrn, (RecurrentContainer, DualRecurrentContainer)):
        return nrn.sub_module, nrn.rc
    return nrn, None


class _Hidden:
    """One neuron layer's integers on the core (threshold, decays) for state exponent ``e``."""

    def __init__(self, layer: nn.Module, name: str, tg: Target, clip: bool, e: Optional[int], readout: bool) -> None:
        self.layer, self.name = layer, name
        self.clipped: dict[str, int] = {}
        if isinstance(layer, CubaLIF2Node):
            cap = tg.neuron.max_spikes_per_step
            if layer.max_spikes not in (1, cap):
                raise FuseError(f"{_label(name, layer)}: max_spikes {layer.max_spikes}; a hidden neuron of {tg.name} emits up "
                                f"to {cap} spikes per step: use max_spikes={cap} (the chip's bursts) or 1 (binary)")
            kw, n = common_options(layer, tg, name, clip, {"state_exponent": e, "readout": readout})
            self.e, th = kw["state_exponent"], kw["threshold"]
            if kw["reset"] != "subtract":
                raise FuseError(f"{_label(name, layer)}: the Xylo core resets by subtraction (v_reset=None)")
            taus = {}
            for attr, which in (("tau_syn", "syn"), ("tau_syn2", "syn"), ("tau_mem", "mem")):
                tau = scalar_tau(layer, attr, name)
                taus[attr], n[attr] = tau_to_decay(tau, tg, which, layer=name, parameter=attr, clip=clip)
            self.dash_syn, self.dash_syn2, self.dash_mem = taus["tau_syn"], taus["tau_syn2"], taus["tau_mem"]
            self.threshold = int(th) << tg.neuron.threshold_shift
            self.clipped = {k: v for k, v in n.items() if v}
        else:
            twin = cuba_to_fixed(layer, tg, name=name, clip=clip, state_exponent=e, readout=readout)
            if twin.reset_kind != "subtract":
                raise FuseError(f"{_label(name, layer)}: the Xylo core resets by subtraction (v_reset=None)")
            self.e, self.threshold = twin.state_exponent, twin.threshold_int
            self.dash_syn, self.dash_mem = twin.decay_syn, twin.decay_mem
            self.dash_syn2 = twin.decay_syn
            self.clipped = dict(twin.clipped)
        self.e_in = self.e + tg.neuron.input_shift


def _parse(layers: list[nn.Module], names: list[str], tg: Target) -> tuple[list[tuple[int, int]], int]:
    """The ``(projection index, neuron index)`` pairs of the on-chip part and the index where the
    off-chip layers start; :class:`FuseError` naming the layer that does not fit the pattern."""
    pairs, i = [], 0
    while i + 1 < len(layers) and isinstance(layers[i], (nn.Linear, DualLinear)):
        pairs.append((i, i + 1))
        i += 2
    for j in range(len(layers)):
        m = layers[j]
        if isinstance(m, TWO_SYNAPSE_LAYERS):
            problem = two_synapse_target_problem(tg, names[j], m)
            if problem:
                raise FuseError(problem)
    if len(pairs) < 2:
        bad = layers[i] if i < len(layers) else None
        where = f"; {_label(names[i], bad)} is not a projection followed by a neuron" if bad is not None else ""
        raise FuseError("a Xylo core needs an input projection, at least one hidden layer and a readout (Linear + "
                        f"CubaLIFNode){where}; the network has {[_label(n, m) for n, m in zip(names, layers)]}")
    for j in range(i, len(layers)):
        if not isinstance(layers[j], _OFF_CHIP):
            raise FuseError(f"{_label(names[j], layers[j])}: only projections and CUBA neurons run on the Xylo core, and "
                            "after the readout only VotingLayer, Flatten, Dropout (off the chip)")
    last = len(pairs) - 1
    for k, (p, q) in enumerate(pairs):
        proj, nrn = layers[p], layers[q]
        cell, rc = _cell(nrn)
        if k == last:
            if not (isinstance(proj, nn.Linear) and not isinstance(proj, DualLinear) and type(nrn) is CubaLIFNode):
                raise FuseError(f"{_label(names[p], proj)} -> {_label(names[q], nrn)}: the Xylo readout has one synaptic "
                                "current and no recurrence: end the network with Linear + CubaLIFNode")
        elif (isinstance(proj, DualLinear) != isinstance(cell, CubaLIF2Node) or type(cell) not in (CubaLIFNode, CubaLIF2Node)
              or isinstance(nrn, DualRecurrentContainer) != isinstance(cell, CubaLIF2Node) and rc is not None):
            raise FuseError(f"{_label(names[p], proj)} -> {_label(names[q], nrn)}: a hidden layer on the Xylo core is "
                            "DualLinear + CubaLIF2Node (two synaptic currents; recurrent: DualRecurrentContainer) or "
                            "Linear + CubaLIFNode (one; recurrent: RecurrentContainer)")
        if rc is not None and rc.in_features != proj.out_features:
            raise FuseError(f"{_label(names[q], nrn)}: {rc.in_features} recurrent features; {names[p]} feeds "
                            f"{proj.out_features}")
        for what, lin in ((names[p], proj), (f"{names[q]}.rc", rc)):
            if getattr(lin, "bias", None) is not None and bool(torch.any(lin.bias != 0)):
                raise FuseError(f"{what} ({type(lin).__name__}): a projection bias has no place on Xylo (bias=False)")
        if k and proj.in_features != layers[pairs[k - 1][0]].out_features:
            raise FuseError(f"{_label(names[p], proj)}: reads {proj.in_features} features; the layer before has "
                            f"{layers[pairs[k - 1][0]].out_features}")
    return pairs, i


def xylo_core_from_float(
    model: nn.Sequential,
    target: Union[str, Target],
    *,
    names: Optional[Sequence[str]] = None,
    clip: bool = False,
    state_exponents: Optional[Mapping[str, int]] = None,
    input_exponent: int = 0,
    seed: int = 0,
    name: str = "xylo_core",
) -> nn.Sequential:
    """``Sequential(FixedXyloCore, *off-chip twins)``: the float ``model`` with two-synapse layers as
    one Xylo core on ``target`` (module docstring); its ``input_exponents`` lists 0 per layer.

    :param names: layer names (default ``<class name lowercased><index>``), used in errors and as
        the core's block names
    :param clip: clip parameters that do not fit (counted in the core's ``clipped``) and input
        counts above the chip's 15 (the chip's rule) instead of refusing them
    :param state_exponents: state exponent per neuron layer name (calibrated), else from the threshold
    :param input_exponent: must be 0 (the core takes input event counts)
    :param seed: base seed of the dropout masks after the readout (``seed + layer index``)
    :raises FuseError: a layer the core cannot hold (named), a target without synapse 2
    """
    tg = resolve_target(target)
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"xylo_core_from_float: expected an nn.Sequential of hwsnn layers; got {type(model).__name__}")
    layers = list(model)
    names = list(names) if names is not None else [f"{type(m).__name__.lower()}{i}" for i, m in enumerate(layers)]
    if len(names) != len(layers):
        raise ValueError(f"xylo_core_from_float: {len(names)} names for {len(layers)} layers")
    if int(input_exponent) != 0:
        raise ValueError(f"xylo_core_from_float: input_exponent {input_exponent}; the Xylo core takes input event counts "
                         "(exponent 0)")
    pairs, stop = _parse(layers, names, tg)
    exps = dict(state_exponents or {})
    unknown = set(exps) - set(names)
    if unknown:
        raise ValueError(f"xylo_core_from_float: state_exponents names {sorted(unknown)} are not layers; layers: {names}")
    syn = tg.synapse
    smin, smax = syn.weight_shift_min, syn.weight_shift_max
    wbits = tg.widths.weight
    nrns: list[_Hidden] = []
    mats: list[tuple[str, torch.Tensor, int, bool]] = []  # (name, weights, neuron layer they feed, recurrent)
    for k, (p, q) in enumerate(pairs):
        cell, rc = _cell(layers[q])
        mats.append((names[p], _weights(layers[p]), k, False))
        if rc is not None:
            mats.append((f"{names[q]}.rc", _weights(rc), k, True))
        e_nat = max(arith.power_of_two_exponent(float(w.abs().max()) if w.numel() else 0.0, wbits, syn.weight_step)
                    for _, w, j, _ in mats if j == k)
        h = _Hidden(cell, names[q], tg, clip, exps.get(names[q]), k == len(pairs) - 1)
        if e_nat - h.e_in > smax:  # the neuron's grid is finer than the shift reaches: coarsen it
            h = _Hidden(cell, names[q], tg, clip, e_nat - smax - tg.neuron.input_shift, k == len(pairs) - 1)
        nrns.append(h)
    e_ws = [max(arith.power_of_two_exponent(float(w.abs().max()) if w.numel() else 0.0, wbits, syn.weight_step),
                nrns[j].e_in + smin) for _, w, j, _ in mats]
    hidden = list(range(len(pairs) - 1))
    # every hidden -> hidden matrix (later projections, recurrent ones) shares weight_shift_rec: the largest
    on_rec = [n for n, (_, _, j, recurrent) in enumerate(mats) if recurrent or 0 < j < len(pairs) - 1]
    shift_rec = max((e_ws[n] - nrns[mats[n][2]].e_in for n in on_rec), default=0)
    for n in on_rec:
        e_ws[n] = nrns[mats[n][2]].e_in + shift_rec
    clipped: dict[str, int] = {}
    ints: dict[str, torch.Tensor] = {}
    for (nm, w, _, _), e_w in zip(mats, e_ws):
        q, n = arith.quantize(w, e_w, wbits, layer=nm, parameter="weight", target=tg.name, clip=clip, step=syn.weight_step)
        ints[nm] = q
        if n:
            clipped[f"{nm}.weight"] = n
    e_w_of = {nm: e for (nm, _, _, _), e in zip(mats, e_ws)}
    for h in nrns:
        clipped.update({f"{h.name}.{key}": v for key, v in h.clipped.items()})
    sizes = [int(layers[pairs[k][0]].out_features) for k in hidden]
    blocks = [0]
    for s in sizes:
        blocks.append(blocks[-1] + s)
    n_hid, nin = blocks[-1], int(layers[pairs[0][0]].in_features)
    w_in = torch.zeros(nin, sizes[0], 2, dtype=torch.int64)
    first = ints[names[pairs[0][0]]]
    w_in[:, :, :first.shape[0]] = first.permute(2, 1, 0)
    w_rec = torch.zeros(n_hid, n_hid, 2, dtype=torch.int64)
    for k in hidden:
        a, b = blocks[k], blocks[k + 1]
        if k:
            w = ints[names[pairs[k][0]]]
            w_rec[blocks[k - 1]:a, a:b, :w.shape[0]] = w.permute(2, 1, 0)
        w = ints.get(f"{names[pairs[k][1]]}.rc")
        if w is not None:
            w_rec[a:b, a:b, :w.shape[0]] = w.permute(2, 1, 0)
    w_out = ints[names[pairs[-1][0]]][0].T.contiguous()
    per = lambda attr: torch.cat([torch.full((s,), int(getattr(nrns[k], attr)), dtype=torch.int64)  # noqa: E731
                                  for k, s in zip(hidden, sizes)])
    hid = {key: per(key) for key in ("dash_syn", "dash_syn2", "dash_mem", "threshold")}
    hid.update(bias=torch.zeros(n_hid, dtype=torch.int64), alias=torch.full((n_hid,), -1, dtype=torch.int64))
    ro, m = nrns[-1], int(layers[pairs[-1][0]].out_features)
    full = lambda v: torch.full((m,), int(v), dtype=torch.int64)  # noqa: E731
    out = {"dash_syn_out": full(ro.dash_syn), "dash_mem_out": full(ro.dash_mem), "threshold_out": full(ro.threshold),
           "bias_out": full(0)}
    shifts = (e_w_of[names[pairs[0][0]]] - nrns[0].e_in, shift_rec, e_w_of[names[pairs[-1][0]]] - ro.e_in)
    core = FixedXyloCore(tg, w_in, w_rec, w_out, shifts, hid, out, blocks=blocks,
                         block_names=[nrns[k].name for k in hidden], state_exponents=[nrns[k].e for k in hidden],
                         readout_exponent=ro.e, clip_events=clip, name=name)
    for key, v in clipped.items():
        core.count_clipped(key, v)
    twins: list[nn.Module] = [core]
    for j in range(stop, len(layers)):
        m_ = layers[j]
        if isinstance(m_, (Dropout, Dropout2d)):
            twins.append(to_fixed(m_, tg, name=names[j], seed=seed + j))
        else:
            twins.append(to_fixed(m_, tg, name=names[j], input_exponent=0))
    net = nn.Sequential(*twins)
    set_step_mode(net, getattr(layers[0], "step_mode", "m") if layers else "m")
    net.train(model.training)
    net.input_exponents = [0] * len(twins)
    return net
