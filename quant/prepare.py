r"""Quantization-aware training: :func:`prepare` a float network so that its forward *is* the chip's.

``prepare(model, target)`` returns a :class:`QATNetwork`: the float layers, with every
``Linear``/``Conv2d`` (plain or step-mode) replaced by a Brevitas quant layer whose weight
quantizer is power-of-two fixed point at the target's weight width (narrow range; a weight grid
step :math:`2^j`, Loihi's even weights, is quantized at :math:`b - j` bits). Its ``state_dict``
keys are the float model's (``0.weight``, ...), so a float checkpoint loads into it.

**Forward = the integer twin, gradient = the float layer (straight-through).** Each call takes a
whole sequence ``[T, N, ...]`` on the input grid :math:`2^{e_{in}}` (spikes: :math:`e_{in} = 0`)
and, layer by layer,

* computes the exact output with the layer's integer twin (:func:`quant.convert` of the current
  weights: the same twin that is exported), :math:`y_q`, and its real value
  :math:`\hat y = y_q\,2^{e}`;
* computes the float layer :math:`f(\cdot)` on the previous layer's output (so the float path
  sees the chip's values) and hands on :math:`\hat y + (f - \mathrm{sg}(f))`: the value of
  :math:`\hat y`, the gradient of :math:`f` (``sg`` = stop-gradient);
* for stateful layers (neurons, synapse filters) does this **every step**, and also replaces the
  float layer's states (membrane :math:`V`, current :math:`I`, filter output) by the twin's
  :math:`V_q 2^{e}` with the same straight-through rule, so the surrogate gradient is taken at
  the chip's membrane. The rounding of the forward is therefore exactly the twin's: floor of the
  arithmetic shifts, toward zero where the target says so, Xylo's minimum decrement, mul12,
  saturation, multi-spikes;
* Loihi's synaptic latency is mirrored by delaying the float path the same number of steps;
  dropout uses the twin's counter-based masks in both paths;
* a recurrent population (:class:`~hwsnn.layer.RecurrentContainer`) is a stateful layer: its
  neuron's states and its fed-back output :math:`y_{t-1}` are replaced by the twin's every step, so
  the gradient reaches the recurrent weights ``rc`` and earlier steps through the chip's values.
  ``rc`` stays a plain ``Linear``: the twin quantizes it each forward
  (:func:`hwsnn.fixed.recurrent.recurrent_to_fixed`, round to nearest on the grid that holds
  :math:`\max|w|`), so the forward is the exported twin's here too.

The stateful layers run fused where they can (:mod:`quant.qat_fused`): the twin's whole sequence
in one integer kernel and the float layer's fused BPTT over the charges taken at the twin's states,
which is the same construction (values identical, gradients equal to float rounding). A dense
layer (:mod:`quant.qat_dense`) hands on the twin's output, computed by one exact float matmul
where bounds prove it exact (:mod:`hwsnn.fixed.dense_float`), through one straight-through node
whose backward is the Brevitas layer's: the float product :math:`f` only fed the gradient, so it
is not computed (values and gradients identical). ``HWSNN_QAT_FUSED=neurons`` keeps the fused
neurons and runs the dense layers as written above; ``HWSNN_QAT_FUSED=0`` runs every step as
written above. The twin is rebuilt after every optimizer step (the dense twins straight from
Brevitas' integers); the twins of layers whose settings did not change are reused.

So ``prepared(x)`` equals the dequantized output of ``quant.convert(prepared, target)(x_int)``
bit for bit (tested for every layer kind and target); QAT optimises exactly what is exported.
Neuron and filter time constants are frozen (the chip has :math:`\tau = 2^k` or
:math:`4096/d`); weights and biases train. ``prepared.to_twin()`` is the twin of the current
weights (what :func:`quant.export` takes).

**Calibration** (:func:`calibrate`): a few batches through the float model choose the state
exponents from the observed ranges (module :mod:`quant.calibrate`); weight exponents are
Brevitas' max statistics, scale :math:`2^{\lceil \log_2(\max|w| / 2^{b-1}) \rceil}` with the
integers clamped to :math:`\pm(2^{b-1}-1)` (the largest weight may lose one step; counted).
"""

from __future__ import annotations

import copy
import warnings
import weakref
from typing import Mapping, Optional, Union

import torch
import torch.nn as nn

from hwsnn.fixed.xylo_float import uses_two_synapses
from hwsnn.functional import reset_net
from hwsnn.layer import Dropout, Dropout2d, RecurrentContainer, SynapseFilter
from hwsnn.layer.seq_to_ann import SeqToANN
from hwsnn.neuron import BaseNode
from targets import Target
from targets import load as load_target

from .convert import convert, dequantize_output, layer_names
from .qat_dense import straight_through_dense
from .qat_fused import fused_enabled, fused_stateful

with warnings.catch_warnings():  # brevitas warns about optional packages at import
    warnings.simplefilter("ignore")
    import brevitas.nn as qnn
    from brevitas.quant import Int8WeightPerTensorFixedPoint

__all__ = ["prepare", "QATNetwork", "QuantLinear", "QuantConv2d", "weight_quantizer"]


#: quantized weights primed for the next forward, per layer (outside the module: never copied or pickled)
_PRIMED: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


class _PrimedQuantWeight:
    """Brevitas layer mixin: the quantized weight computed for a twin rebuild (:meth:`prime_quant_weight`,
    with its autograd graph) is handed to the layer's next forward instead of being computed again
    (Brevitas' quantizer costs more than the layer's matmul on small layers). Used once: the call in
    the grad mode it was made in takes it; a ``no_grad`` call (the converter) only reads it. Valid
    only for the same weight tensor, version and mode."""

    def _primed_key(self) -> tuple:
        return (id(self.weight), self.weight._version, self.training)

    def prime_quant_weight(self):
        """``quant_weight()``, kept for the next forward (when the quantizer does not depend on the input)."""
        qw = super().quant_weight()  # type: ignore[misc]
        if not self.weight_quant.requires_quant_input:  # type: ignore[attr-defined]
            _PRIMED[self] = (self._primed_key(), torch.is_grad_enabled(), qw)
        return qw

    def quant_weight(self, quant_input=None, subtensor_slice_list=None):  # noqa: D102 - Brevitas' method
        primed = _PRIMED.get(self)
        if primed is not None and subtensor_slice_list is None and primed[0] == self._primed_key():
            if primed[1] == torch.is_grad_enabled():
                del _PRIMED[self]
                return primed[2]
            if not torch.is_grad_enabled():
                return primed[2]
        return super().quant_weight(quant_input, subtensor_slice_list)  # type: ignore[misc]


class QuantLinear(_PrimedQuantWeight, SeqToANN, qnn.QuantLinear):
    """Brevitas ``QuantLinear`` with a step mode (``'m'``: ``[T, N, in] -> [T, N, out]``)."""


class QuantConv2d(_PrimedQuantWeight, SeqToANN, qnn.QuantConv2d):
    """Brevitas ``QuantConv2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)


def weight_quantizer(target: Union[str, Target]) -> dict:
    r"""Brevitas keyword arguments of the target's weight quantizer: per-tensor power-of-two fixed
    point, narrow range, :math:`b - j` bits for weight width :math:`b` and grid step :math:`2^j`."""
    tg = load_target(target)
    width, step = tg.widths.weight, int(tg.synapse.weight_step)
    if not width.signed:
        raise ValueError(f"target {tg.name!r}: unsigned weights have no Brevitas fixed-point quantizer here")
    if step < 1 or step & (step - 1):
        raise ValueError(f"target {tg.name!r}: weight_step {step} is not a power of two")
    bits = width.bits - (step.bit_length() - 1)
    if bits < 2:
        raise ValueError(f"target {tg.name!r}: {width.bits}-bit weights on a grid of {step} leave {bits} bit(s)")
    return dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits)


def quant_layer(m: nn.Module, quantizer: dict) -> nn.Module:
    """The Brevitas twin of a float ``Linear``/``Conv2d`` with the same weights and step mode."""
    step_mode = getattr(m, "step_mode", "s")
    bias = m.bias is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(m, nn.Linear):
            q: nn.Module = QuantLinear(m.in_features, m.out_features, bias=bias, step_mode=step_mode, **quantizer)
        else:
            q = QuantConv2d(m.in_channels, m.out_channels, m.kernel_size, stride=m.stride, padding=m.padding,
                            dilation=m.dilation, groups=m.groups, bias=bias, padding_mode=m.padding_mode,
                            step_mode=step_mode, **quantizer)
    q.load_state_dict(m.state_dict())
    return q.to(m.weight.device)


_STATEFUL = (BaseNode, SynapseFilter, RecurrentContainer)


class QATNetwork(nn.Sequential):
    """A float network whose forward is its integer twin's (module docstring). Multi-step only.

    Build it with :func:`prepare`. Attributes: ``target``, ``seed``, ``clip``, ``input_exponent``,
    ``state_exponents`` (calibrated, or ``{}``), ``layer_names`` (the float model's names, used by
    the twin and the export), ``last_integer_output`` (the twin's integer output of the last call).
    """

    def __init__(self, layers: list[nn.Module], target: Target, *, seed: int, clip: bool, input_exponent: int,
                 state_exponents: Mapping[str, int], layer_names: list[str]) -> None:
        super().__init__(*layers)
        self.target = target
        self.seed = int(seed)
        self.clip = bool(clip)
        self.input_exponent = int(input_exponent)
        self.state_exponents = dict(state_exponents)
        self.layer_names = list(layer_names)
        self.last_integer_output: Optional[torch.Tensor] = None
        self._twin: Optional[nn.Sequential] = None
        self._twin_key: Optional[tuple] = None
        self._reuse: dict = {}  # twins of unchanged non-synaptic layers, kept between rebuilds

    # -- the twin --------------------------------------------------------------------------------
    def to_twin(self) -> nn.Sequential:
        """The integer twin network of the current weights (:func:`quant.convert`), in this module's mode."""
        with torch.no_grad():
            twin = convert(self, self.target, seed=self.seed, clip=self.clip, input_exponent=self.input_exponent,
                           names=self.layer_names, state_exponents=self.state_exponents)
        return twin

    def _current_twin(self) -> nn.Sequential:
        """The twin of the current weights, rebuilt when a parameter changed (optimizer step) or the
        mode did (the twins of layers whose settings did not change are reused, see
        :func:`quant.convert`'s ``reuse``); dropout draw counters carry over so every call gets fresh masks."""
        key = (self.training, tuple((id(p), p._version) for p in self.parameters()))
        if self._twin is None or key != self._twin_key:
            reuse = self._reuse if fused_enabled() else None  # HWSNN_QAT_FUSED=0: the previous path, all of it
            if reuse is not None:
                for m in self:
                    if isinstance(m, _PrimedQuantWeight):
                        m.prime_quant_weight()  # computed once for the converter and the next forward
            with torch.no_grad():
                twin = convert(self, self.target, seed=self.seed, clip=self.clip, input_exponent=self.input_exponent,
                               names=self.layer_names, state_exponents=self.state_exponents, reuse=reuse)
            if self._twin is not None:
                for new, old in zip(twin, self._twin):
                    if hasattr(old, "draws"):
                        new.draws = old.draws
            object.__setattr__(self, "_twin", twin)  # a cache, not a submodule (no state_dict keys)
            self._twin_key = key
        return self._twin

    # -- forward ---------------------------------------------------------------------------------
    def _input_integers(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x):
            raise TypeError(f"QATNetwork expects a tensor [T, N, ...]; got {type(x).__name__}")
        if x.dim() < 2:
            raise ValueError(f"QATNetwork expects a sequence [T, N, ...]; got shape {tuple(x.shape)}")
        xd = x.detach()
        if self.input_exponent == 0 and xd.is_floating_point():  # on the grid: finite and integral (frac = 0)
            if x.numel() and int(torch.count_nonzero(torch.frac(xd))):
                self._off_grid()
            return xd.to(_compact_integer_dtype(xd))
        q = xd.to(torch.float64) * 2.0 ** (-self.input_exponent)
        if not torch.isfinite(q).all() or not torch.equal(q, torch.round(q)):
            self._off_grid()
        return q.to(torch.int64)

    def _off_grid(self) -> None:
        raise ValueError(
            f"QATNetwork: inputs must lie on the input grid 2^{self.input_exponent} (spikes/counts for "
            "exponent 0); quantize them first (e.g. torch.round(x * 2**-e) * 2**e)"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102 - see the class docstring
        q = self._input_integers(x)
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        twin = self._current_twin()
        reset_net(twin)
        for m in self:
            if hasattr(m, "reset"):
                m.reset()
        h, h_int = x, q
        for m, tw, e_in in zip(self, twin, twin.input_exponents):
            if isinstance(m, _STATEFUL):
                fused = fused_stateful(m, tw, h, h_int)  # one kernel + one straight-through node, or None
                h, h_int = fused if fused is not None else _stepwise(m, tw, h, h_int, e_in)
                continue
            dense = straight_through_dense(m, tw, h, h_int, e_in)  # no float matmul, or None
            if dense is not None:
                h, h_int = dense
                continue
            y_int = tw(h_int)
            if isinstance(m, (Dropout, Dropout2d)) and m.training:
                mask = tw.mask().to(device=h.device, dtype=h.dtype) * (1.0 / (1.0 - m.p))
                m.mask = mask.reshape(m.mask_shape(h[0]))
            f = m(h)
            latency = getattr(tw, "latency", 0) or 0
            if latency:  # the chip's synaptic latency, mirrored on the gradient path
                f = torch.cat([torch.zeros_like(f[:latency]), f[:-latency]]) if latency < f.shape[0] else torch.zeros_like(f)
            value = dequantize_output(tw, y_int, e_in)
            h = f if value is None else value.to(f.dtype) + (f - f.detach())
            h_int = y_int
        self.last_integer_output = h_int if torch.is_tensor(h_int) else None
        return h

    def extra_repr(self) -> str:
        return f"target={self.target.name}, input_exponent={self.input_exponent}, state_exponents={self.state_exponents}"


def _compact_integer_dtype(x: torch.Tensor) -> torch.dtype:
    """The smallest of int8/16/32/64 that holds the (integral) values of ``x`` (the twins take any integer dtype;
    spikes as int8 are an eighth of the memory traffic of int64)."""
    if x.numel() == 0:
        return torch.int64
    lo, hi = (float(v) for v in torch.aminmax(x))
    for dt in (torch.int8, torch.int16, torch.int32):
        info = torch.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return dt
    return torch.int64


def _stepwise(m: nn.Module, tw: nn.Module, h: torch.Tensor, h_int, e_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One stateful layer step by step: the twin's value, the float layer's gradient, the float
    states replaced by the twin's after every step (straight-through); a recurrent population's
    states are its neuron's, and its fed-back output becomes the step's straight-through output."""
    cell = m.sub_module if isinstance(m, RecurrentContainer) else m
    memories = dict(cell.named_memories())
    states = [k for k in tw.exponents if k in memories]
    outs, ints = [], []
    for t in range(h.shape[0]):
        y_int = tw.single_step_forward(h_int[t])
        f = m.single_step_forward(h[t])
        for k in states:
            cur = getattr(cell, k)
            exact = tw.dequantize(k).to(device=f.device, dtype=f.dtype)
            setattr(cell, k, exact + (cur - cur.detach()) if torch.is_tensor(cur) else exact)
        value = dequantize_output(tw, y_int, e_in).to(f.dtype)
        outs.append(value + (f - f.detach()))
        if cell is not m:
            m.y = outs[-1]
        ints.append(y_int)
    return torch.stack(outs), torch.stack(ints)


def prepare(
    model: nn.Sequential,
    target: Union[str, Target],
    *,
    seed: int = 0,
    clip: bool = True,
    input_exponent: int = 0,
    state_exponents: Optional[Mapping[str, int]] = None,
    names: Optional[list[str]] = None,
) -> QATNetwork:
    """The QAT network of the float ``model`` on ``target`` (module docstring); ``model`` is not modified.

    :param model: an :class:`torch.nn.Sequential` of hwsnn float layers (multi-step)
    :param target: target name, YAML path or :class:`~targets.Target`
    :param seed: base seed of the dropout masks (as :func:`quant.convert`)
    :param clip: clip parameters that do not fit (counted in the twins' ``clipped``) instead of raising
    :param input_exponent: exponent of the input grid (0 for spikes)
    :param state_exponents: calibrated state exponents per layer name (:func:`quant.calibrate`)
    :param names: layer names (default ``<class name lowercased><index>`` of the float layers)
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"prepare: expected an nn.Sequential of hwsnn layers; got {type(model).__name__}")
    tg = load_target(target)
    layers = list(model)
    if names is None:
        names = layer_names(model)
    if len(names) != len(layers):
        raise ValueError(f"prepare: {len(names)} names for {len(layers)} layers")
    for i, m in enumerate(layers):
        mode = getattr(m, "step_mode", "m")
        if mode != "m":
            raise ValueError(f"prepare: layer {i} ({type(m).__name__}) is in step_mode {mode!r}; QAT runs whole "
                             "sequences: call hwsnn.functional.set_step_mode(model, 'm') first")
    two = [f"{nm} ({type(m).__name__})" for nm, m in zip(names, layers) if uses_two_synapses(m)]
    if two:
        raise ValueError(f"prepare: quantization-aware training of two-synapse layers (Xylo's synapse 2) is not supported: "
                         f"{', '.join(two)}; train in float and convert with quant.convert(model, {tg.name!r})")
    quantizer = weight_quantizer(tg)
    new: list[nn.Module] = []
    for m in layers:
        if isinstance(m, (nn.Linear, nn.Conv2d)) and not hasattr(m, "quant_weight"):
            new.append(quant_layer(m, quantizer))
            continue
        c = copy.deepcopy(m)
        if isinstance(c, _STATEFUL):  # tau = 2^k / 4096/d on the chip: frozen during QAT (not rc's weights)
            for p in (c.sub_module if isinstance(c, RecurrentContainer) else c).parameters():
                p.requires_grad_(False)
        new.append(c)
    net = QATNetwork(new, tg, seed=seed, clip=clip, input_exponent=input_exponent,
                     state_exponents=state_exponents or {}, layer_names=names)
    net.train(model.training)
    net.to_twin()  # refuse what cannot be converted now, with the converter's message
    return net
