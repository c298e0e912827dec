r"""Float network -> integer twin network, layer by layer with chained exponents.

``convert(model, target)`` walks an :class:`torch.nn.Sequential` of hwsnn float layers and
converts each with its registered converter (:func:`hwsnn.fixed.to_fixed`), choosing the scales
so that every layer hands the next one integers it can take:

* a neuron is converted first (its state exponent puts the threshold near the top of the
  membrane width, :func:`hwsnn.fixed.neuron.choose_state_exponent`), and the dense/conv layer
  feeding it gets ``output_exponent`` = the neuron's input exponent; a recurrent population
  (:class:`~hwsnn.layer.RecurrentContainer`) counts as a neuron, its input exponent being its
  neuron's (the recurrent weights land in those units, :func:`hwsnn.fixed.recurrent.recurrent_to_fixed`);
* a dropout's :math:`1/(1-p)` is folded into the next synaptic layer's weights
  (:func:`hwsnn.fixed.fold_rescale`) when ``model`` is in training mode (masks active; in eval
  mode dropout is the identity in both worlds and nothing is folded), its mask seed is
  ``seed + layer index``; convert in the mode the twin will run in;
* on a target whose CUBA current takes the input before it decays (Xylo), the weights feeding a
  CUBA neuron are divided by :math:`g = 1 - 1/\tau_{syn}` (:mod:`hwsnn.fixed.current_gain`), so the
  twin's current follows the float neuron's (exact for :math:`\tau_{syn} = 2`: exponent + 1);
* every other layer keeps the exponent of what flows in (synapse filters: their own grid);
* the first synaptic layer is the input projection (``first_layer``: Xylo's latency 0 and
  input-event cap), the last neuron layer is the readout.

A model prepared for quantization-aware training (:func:`quant.prepare`) converts the same way:
its Brevitas layers hand over their quantized weights and power-of-two exponents as they are (the
twin holds exactly the integers the QAT forward used), and calibrated state exponents
(``state_exponents``, from :func:`quant.calibrate`) replace the threshold-based defaults.

The returned :class:`~torch.nn.Sequential` carries ``input_exponents``: the exponent of what flows
into each layer (used to dequantize every layer's output, see :func:`dequantize_output`).
"""

from __future__ import annotations

import copy
import math
from typing import Mapping, Optional, Union

import torch
import torch.nn as nn
from torch.nn.utils import skip_init

from hwsnn.fixed import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedRecurrent, fold_rescale, to_fixed
from hwsnn.fixed.arith import power_of_two_exponent
from hwsnn.fixed.current_gain import fold_input_gain, input_gain
from hwsnn.fixed.recurrent import finest_state_exponent
from hwsnn.fixed.xylo_float import uses_two_synapses, xylo_core_from_float
from hwsnn.functional import set_step_mode
from hwsnn.layer import Dropout, Dropout2d, RecurrentContainer, SynapseFilter
from hwsnn.neuron import BaseNode
from targets import Target

from .joint_shift import share_rec_shift

__all__ = ["convert", "conversion_table", "format_conversion_table", "dequantize_output", "quantized_weight",
           "quantized_integers", "layer_fingerprint"]

_NEURON_TWINS = (FixedIFNode, FixedLIFNode, FixedCubaLIFNode, FixedRecurrent)
_NEURONS = (BaseNode, RecurrentContainer)  # spiking layers: their input exponent is fixed first


def _is_synaptic(m: nn.Module) -> bool:
    return isinstance(m, (nn.Linear, nn.Conv2d))


def _input_exponent(twin: nn.Module) -> int:
    """The input exponent of a neuron twin (a recurrent population: its neuron's)."""
    return twin.neuron.input_exponent if isinstance(twin, FixedRecurrent) else twin.input_exponent


def layer_names(model: nn.Sequential) -> list[str]:
    """The layer names of ``model``: its ``layer_names`` (a prepared model keeps the float model's),
    else ``<class name lowercased><index>``."""
    return list(getattr(model, "layer_names", None) or [f"{type(m).__name__.lower()}{i}" for i, m in enumerate(model)])


def quantized_weight(m: nn.Module, target: Target, qw: object = None) -> Optional[tuple[torch.Tensor, int]]:
    r"""``(w, e)`` of a Brevitas quant layer: its fake-quantized weight (float64, exactly on the grid)
    and the exponent of the twin's integers :math:`W = w\,2^{-e}`; ``None`` for a plain layer.
    ``qw``: the layer's ``quant_weight()`` when the caller has it already.

    A target with a weight step :math:`2^j` (Loihi: even weights) is quantized by Brevitas at
    :math:`b - j` bits and scale :math:`2^{e + j}`, so :math:`e` is the scale's exponent minus :math:`j`."""
    if not hasattr(m, "quant_weight"):
        return None
    qw = m.quant_weight() if qw is None else qw
    return qw.value.detach().to(torch.float64), _weight_exponent(m, target, qw)


def quantized_integers(m: nn.Module, target: Target, qw: object) -> Optional[tuple[torch.Tensor, int]]:
    r"""``(W, e)`` of a Brevitas linear layer: the twin's weight integers :math:`W = w_q\,2^{-e}` (int64)
    straight from its quantized weight ``qw`` (``quant_weight()``), without the float64 round trip of
    :func:`quantized_weight`; ``None`` where that is not exact (a zero point, a dtype other than
    float32/64, more than 24-bit integers). Exact: :math:`w_q` is an integer times the power-of-two
    scale, so the scaling by :math:`2^{-e}` only moves its exponent; the integers equal
    ``round(quantized_weight(m)[0] * 2**-e)``."""
    if not isinstance(m, nn.Linear) or not hasattr(m, "quant_weight"):
        return None
    value, zp = qw.value.detach(), getattr(qw, "zero_point", None)
    if value.dtype not in (torch.float32, torch.float64) or target.widths.weight.bits > 24:
        return None
    if not isinstance(zp, torch.Tensor) or zp.numel() != 1 or float(zp) != 0.0:
        return None
    e = _weight_exponent(m, target, qw)
    return torch.mul(value, 2.0 ** (-e)).to(torch.int64), e


def _weight_exponent(m: nn.Module, target: Target, qw: object) -> int:
    """The exponent of the twin's weight integers (:func:`quantized_weight`)."""
    scale = qw.scale.detach()
    if scale.numel() != 1:
        raise ValueError(f"{type(m).__name__}: per-channel weight scales have no chip equivalent (one weight "
                         "exponent per layer); use a per-tensor quantizer")
    e_scale = math.log2(float(scale))
    if e_scale != round(e_scale):
        raise ValueError(f"{type(m).__name__}: weight scale {float(scale)} is not a power of two")
    j = int(target.synapse.weight_step).bit_length() - 1
    return int(e_scale) - j


def brevitas_clipped(m: nn.Module, qw: object = None) -> int:
    r"""How many weights of Brevitas layer ``m`` its quantizer clamped (more than half a step beyond
    the largest integer: Brevitas scales by :math:`\max|w| / 2^{b-1}` and clamps to :math:`2^{b-1}-1`)."""
    qw = m.quant_weight() if qw is None else qw
    hi = 2.0 ** (float(qw.bit_width) - 1) - 1
    w, scale = m.weight.detach(), qw.scale.detach()
    if w.numel():  # none when the largest |w| is not (dividing by a positive scale keeps the order)
        lo_w, hi_w = torch.aminmax(w)
        if not bool(torch.maximum(-lo_w, hi_w) / scale > hi + 0.5):
            return 0
    return int((w.abs() / scale > hi + 0.5).sum())


def _plain_copy(m: nn.Module, weight: torch.Tensor) -> nn.Module:
    """A plain ``nn.Linear``/``nn.Conv2d`` with ``m``'s geometry and bias and the given weight (for the converters)."""
    bias = getattr(m, "bias", None)
    # large layers skip the random initialisation of weights about to be overwritten (skip_init has
    # a fixed cost of its own, more than initialising a small layer)
    make = skip_init if m.weight.numel() > (1 << 14) else (lambda cls, *a, **k: cls(*a, **k))
    f64 = torch.float64
    if isinstance(m, nn.Linear):
        plain: nn.Module = make(nn.Linear, m.in_features, m.out_features, bias=bias is not None, dtype=f64)
    else:
        plain = make(nn.Conv2d, m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation,
                     m.groups, bias=bias is not None, padding_mode=m.padding_mode, dtype=f64)
    with torch.no_grad():
        plain.weight.copy_(weight)
        if bias is not None:
            plain.bias.copy_(bias.detach())
    return plain


def dequantize_output(twin: nn.Module, y: torch.Tensor, input_exponent: int) -> Optional[torch.Tensor]:
    r"""The real value (float64) of twin layer output ``y`` given the exponent of its input, or ``None``
    when the output is not a tensor (Xylo's synaptic events): :math:`y\,2^{e}` with the layer's output
    exponent (spikes: :math:`e = 0`; pools and votes whose sum is kept: divided in float)."""
    if not torch.is_tensor(y):
        return None
    if isinstance(twin, _NEURON_TWINS):
        return y.to(torch.float64)
    if hasattr(twin, "dequantize_output"):
        return twin.dequantize_output(y, input_exponent)
    e = twin.exponents.get("out_i", twin.exponents.get("output")) if hasattr(twin, "exponents") else None
    if e is None:
        e = getattr(twin, "output_exponent", None)
        e = input_exponent if e is None or callable(e) else e
    return y.to(torch.float64) * 2.0 ** int(e)


def convert(
    model: nn.Sequential,
    target: Union[str, Target],
    *,
    seed: int = 0,
    clip: bool = False,
    input_exponent: int = 0,
    names: Optional[list[str]] = None,
    state_exponents: Optional[Mapping[str, int]] = None,
    reuse: Optional[dict] = None,
) -> nn.Sequential:
    """The twin network of the float ``model`` on ``target`` (module docstring).

    :param model: an :class:`torch.nn.Sequential` of hwsnn float layers (not modified)
    :param target: target name, YAML path or :class:`~targets.Target`
    :param seed: base seed of the dropout masks
    :param clip: clip parameters that do not fit (counted in each twin's ``clipped``) instead of
        raising :class:`~hwsnn.fixed.FitError`
    :param input_exponent: exponent of the network input (0 for spikes)
    :param names: layer names (default ``<class name lowercased><index>``)
    :param state_exponents: state exponent per layer name for neurons and synapse filters
        (calibrated, :func:`quant.calibrate`); others use the defaults
    :param reuse: a dict kept by the caller between conversions of the same model (QAT converts
        after every optimizer step): the twin of a non-synaptic layer is taken from it when the
        layer (its settings, parameters and buffers: :func:`layer_fingerprint`) and the converter's
        arguments are unchanged, its saturation counters cleared; the twin is then shared with
        the previous result. Synaptic layers are always converted.

    Exponents are coarsened (never refined) where a dense/conv layer's weight shift
    :math:`s = e_w + e_x - e_{out}` would leave the target's range: the synapse filter feeding it
    when :math:`s` is below the minimum (Loihi: -8, Xylo: 0; without a filter on Xylo: the layer's
    weights), the neuron it feeds when :math:`s` is above the maximum; the twins report the
    exponents used. On a Xylo core (``limits.layout: xylo_core``) every hidden -> hidden matrix
    gets one shift, ``weight_shift_rec`` (:mod:`quant.joint_shift`: neuron states coarsened first,
    weights only where forced); the result carries ``weight_shift_rec`` and ``conversion_notes``
    (``weight_shift_rec = s, limited by <layer>``), and the conversion table notes each layer.

    A network with Xylo's synapse 2 (:class:`~hwsnn.layer.DualLinear`, :class:`~hwsnn.neuron.CubaLIF2Node`)
    converts as a whole to ``Sequential(FixedXyloCore, *off-chip twins)``
    (:func:`hwsnn.fixed.xylo_core_from_float`; ``reuse`` is not used); other targets refuse it.
    """
    from targets import load as load_target

    tg = load_target(target)
    if isinstance(model, nn.Sequential) and uses_two_synapses(model):  # Xylo's synapse 2: the whole core at once
        return xylo_core_from_float(model, tg, names=names, clip=clip, state_exponents=state_exponents,
                                    input_exponent=input_exponent, seed=seed)
    exps = dict(state_exponents or {})

    def run(w_exps: dict) -> nn.Sequential:
        for _ in range(8):
            try:
                return _convert(model, tg, seed, clip, input_exponent, names, exps, reuse, w_exps)
            except _Coarsen as c:
                exps[c.name] = c.exponent
        return _convert(model, tg, seed, clip, input_exponent, names, exps, reuse, w_exps)

    net = run({})
    if tg.limits.layout == "xylo_core":  # one weight_shift_rec for all hidden -> hidden weights
        net = share_rec_shift(net, tg, exps, run)
    return net


class _Coarsen(Exception):
    """Internal: retry the conversion with a coarser state exponent for layer ``name`` (filter or neuron)."""

    def __init__(self, name: str, exponent: int) -> None:
        super().__init__(name, exponent)
        self.name, self.exponent = name, exponent


_PLAIN = (int, float, bool, str, type(None))


def layer_fingerprint(m: nn.Module) -> tuple:
    """What a converter reads from float layer ``m``: the plain settings (numbers, strings, flags,
    tuples and lists of them) of ``m`` and its submodules, and the identity and version of every parameter
    and buffer (and tensor setting); memories are left out. Equal fingerprints: equal twins."""
    out = []
    for sub in m.modules():
        items = []
        for k, v in vars(sub).items():  # (containers: memories, parameters, hooks, are not plain)
            if isinstance(v, _PLAIN):
                items.append((k, v))
            elif isinstance(v, (tuple, list)) and all(isinstance(e, _PLAIN) for e in v):
                items.append((k, tuple(v)))
            elif isinstance(v, torch.Tensor):
                items.append((k, id(v), v._version))
        tensors = [(k, id(t), t._version) for k, t in (*sub._parameters.items(), *sub._buffers.items()) if t is not None]
        out.append((type(sub), tuple(items), tuple(tensors)))
    return tuple(out)


def _reused(reuse: Optional[dict], key: tuple, m: nn.Module, make) -> nn.Module:
    """The twin ``make()`` of layer ``m``, from ``reuse`` when its fingerprint and ``key`` match."""
    if reuse is None:
        return make()
    full = (key, id(m), layer_fingerprint(m))
    twin = reuse.get(full)
    if twin is None:
        twin = make()
        reuse[full] = twin
        if len(reuse) > 256:  # stale entries (changed settings): keep the newest ones
            for k in list(reuse)[:128]:
                del reuse[k]
    elif hasattr(twin, "clear_counts"):
        twin.clear_counts()
    return twin


def _convert(model: nn.Sequential, tg: Target, seed: int, clip: bool, input_exponent: int,
             names: Optional[list[str]], state_exponents: dict, reuse: Optional[dict] = None,
             weight_exponents: Optional[Mapping[str, int]] = None) -> nn.Sequential:
    """One conversion pass (:func:`convert`); raises :class:`_Coarsen` to ask for a retry.
    ``weight_exponents``: coarser weight exponents per layer name (dense layers, recurrent matrices)."""
    w_exps = dict(weight_exponents or {})
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"convert: expected an nn.Sequential of hwsnn layers; got {type(model).__name__}")
    layers = list(model)
    if names is None:
        names = layer_names(model)
    if len(names) != len(layers):
        raise ValueError(f"convert: {len(names)} names for {len(layers)} layers")
    neuron_idx = [i for i, m in enumerate(layers) if isinstance(m, _NEURONS)]
    last_neuron = neuron_idx[-1] if neuron_idx else None
    twins: list[Optional[nn.Module]] = [None] * len(layers)
    # neurons first: their input exponents fix the output exponents of the layers feeding them
    unknown = set(state_exponents) - set(names)
    if unknown:
        raise ValueError(f"convert: state_exponents names {sorted(unknown)} are not layers; layers: {names}")
    for i in neuron_idx:
        e = state_exponents.get(names[i])
        if e is not None and isinstance(layers[i], RecurrentContainer):  # never finer than its weight shift reaches
            e = max(e, finest_state_exponent(layers[i], tg))
        kw = {"weight_exponent": w_exps[names[i]]} if names[i] in w_exps else {}  # (a recurrent matrix)
        twins[i] = _reused(reuse, (i, id(tg), names[i], clip, i == last_neuron, e, *kw.values()), layers[i],
                           lambda: to_fixed(layers[i], tg, name=names[i], clip=clip, readout=(i == last_neuron),
                                            state_exponent=e, **kw))
    e_x = int(input_exponent)
    first_synaptic = True
    fold_p: Optional[float] = None
    input_exponents: list[int] = []
    source: Optional[int] = None  # the synapse filter that set e_x (through dropout/delay/pooling)
    for i, m in enumerate(layers):
        input_exponents.append(e_x)
        if isinstance(m, _NEURONS):
            e_x, source = 0, None
            continue
        if _is_synaptic(m):
            j = next((j for j in range(i + 1, len(layers)) if isinstance(layers[j], _NEURONS) or _is_synaptic(layers[j])), None)
            e_out = _input_exponent(twins[j]) if j is not None and isinstance(layers[j], _NEURONS) else None
            layer, e_w = m, None
            qw = m.quant_weight() if hasattr(m, "quant_weight") else None  # once: Brevitas' quantizer is slow
            direct = quantized_integers(m, tg, qw) if qw is not None and fold_p is None else None
            quantized = quantized_weight(m, tg, qw) if direct is None else None
            if quantized is not None:  # Brevitas: its grid and exponent as they are
                layer, e_w = _plain_copy(m, quantized[0]), quantized[1]
            elif direct is not None:  # the same integers, without the float64 copy
                e_w = direct[1]
            if fold_p is not None:
                layer = copy.deepcopy(layer) if layer is m else layer  # (a plain copy is ours already)
                with torch.no_grad():
                    layer.weight.copy_(fold_rescale(layer.weight, fold_p))
                fold_p, e_w = None, None
            gain = input_gain(twins[j]) if e_out is not None else None
            if gain is not None:  # the chip's current takes the input before it decays: W / g (hwsnn.fixed.current_gain)
                layer = copy.deepcopy(layer) if layer is m else layer
                with torch.no_grad():
                    layer.weight.copy_(fold_input_gain(layer.weight, gain))
                e_w = e_w + 1 if e_w is not None and not isinstance(gain, torch.Tensor) and gain == 0.5 else None
            if e_w is None:  # the smallest exponent whose grid holds max |w| (as the layer converter)
                w = layer.weight.detach()
                e_w = power_of_two_exponent(float(w.abs().max()) if w.numel() else 0.0, tg.widths.weight,
                                            tg.synapse.weight_step)
            e_w = max(e_w, w_exps.get(names[i], e_w))  # a coarser grid for a shared weight shift (Xylo)
            below = 0
            if tg.limits.layout == "xylo_core" and source is None and e_out is not None:
                below = max(0, tg.synapse.weight_shift_min - (e_w + e_x - e_out))  # small weights: a coarser grid
                e_w += below
            if source is not None and e_out is not None:
                deficit = tg.synapse.weight_shift_min - (e_w + e_x - e_out)
                if deficit > 0:
                    raise _Coarsen(names[source], twins[source].exponents["out_i"] + deficit)
            if e_out is not None:
                excess = (e_w + e_x - e_out) - tg.synapse.weight_shift_max
                if excess > 0:  # the neuron's grid is finer than the shift can reach: coarsen it
                    raise _Coarsen(names[j], _input_exponent(twins[j]) - tg.neuron.input_shift + excess)
            source = None
            twins[i] = to_fixed(layer, tg, name=names[i], clip=clip, input_exponent=e_x, output_exponent=e_out,
                                first_layer=first_synaptic, weight_exponent=e_w,
                                **({} if direct is None else {"weight_int": direct[0]}))
            if quantized is not None or direct is not None:
                twins[i].count_clipped("weight", brevitas_clipped(m, qw))
            if below:
                twins[i].conversion_note = f"weights coarsened by {below} bit(s): the shift was below the minimum"
            first_synaptic = False
            e_x = twins[i].output_exponent
        elif isinstance(m, SynapseFilter):
            e_f = state_exponents.get(names[i])
            twins[i] = _reused(reuse, (i, id(tg), names[i], e_f), m,
                               lambda: to_fixed(m, tg, name=names[i], state_exponent=e_f))
            e_x, source = twins[i].exponents["out_i"], i
        elif isinstance(m, (Dropout, Dropout2d)):
            twins[i] = _reused(reuse, (i, id(tg), names[i], seed + i), m, lambda: to_fixed(m, tg, name=names[i], seed=seed + i))
            # the twin drops without 1/(1-p); fold it into the next weights only when masks are
            # active (training mode): an eval-mode dropout is the identity in both worlds
            fold_p = m.p if model.training else None
        else:
            twins[i] = _reused(reuse, (i, id(tg), names[i], e_x), m,  # delay, pooling, flatten, voting
                               lambda: to_fixed(m, tg, name=names[i], input_exponent=e_x))
            e_out = getattr(twins[i], "output_exponent", None)
            if callable(e_out):
                e_out = e_out(e_x)
            if e_out is not None:
                e_x = e_out
    net = nn.Sequential(*twins)
    set_step_mode(net, getattr(layers[0], "step_mode", "m") if layers else "m")
    net.train(model.training)
    net.input_exponents = input_exponents
    return net


def _fmt_tau(requested: object, used: object) -> str:
    if isinstance(used, dict):
        return ", ".join(f"{k} {_fmt_tau((requested or {}).get(k), u)}" for k, u in used.items())
    if used is None:
        return ""
    if isinstance(used, (tuple, list)) or isinstance(requested, (tuple, list)):  # per neuron: (min, max)
        span = lambda v: "?" if v is None else "..".join(f"{float(x):g}" for x in (v if isinstance(v, (tuple, list)) else [v]))  # noqa: E731
        return f"{span(requested)} -> {span(used)}"
    req = "?" if requested is None else f"{float(requested):g}"
    return f"{req} -> {float(used):g}"


def conversion_table(twin: nn.Sequential) -> list[dict]:
    """Per twin layer: name, kind, exponents, clipped parameter values, and the time constants
    requested vs actually used (``tau 3 -> 4``: the chip's :math:`2^k` or :math:`4096/d`).

    Each row is plain data: ``layer, kind, exponents, clipped, tau, weight_shift``, and ``note`` where
    the conversion left one (Xylo: ``weight_shift_rec = s, limited by this layer``, coarsened grids)."""
    rows = []
    for m in twin:
        rep = m.fixed_report() if hasattr(m, "fixed_report") else {"layer": type(m).__name__, "kind": type(m).__name__}
        tau_used = rep.get("tau_used")
        tau_req = rep.get("tau_requested")
        if tau_used is not None and not isinstance(tau_used, dict):
            tau_used = float(tau_used)
        rows.append(dict(
            layer=rep.get("layer"), kind=rep.get("kind"), exponents=dict(rep.get("exponents", {})),
            clipped=dict(rep.get("clipped", {})), tau=_fmt_tau(tau_req, tau_used),
            weight_shift=rep.get("weight_shift"),
        ))
        if getattr(m, "conversion_note", ""):
            rows[-1]["note"] = m.conversion_note
    return rows


def format_conversion_table(rows: list[dict]) -> str:
    """``conversion_table`` rows as aligned text (one line per layer)."""
    notes = any(r.get("note") for r in rows)
    head = ("layer", "kind", "exponents", "tau used", "shift", "clipped") + (("note",) if notes else ())
    body = [(r["layer"], r["kind"], " ".join(f"{k}={v}" for k, v in r["exponents"].items()), r["tau"],
             "" if r["weight_shift"] is None else str(r["weight_shift"]),
             " ".join(f"{k}={v}" for k, v in r["clipped"].items()) or "-") + ((r.get("note", ""),) if notes else ())
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in (head, *body))
