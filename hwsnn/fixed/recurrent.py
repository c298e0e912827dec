r"""Integer twin of a recurrent neuron population: :class:`FixedRecurrent`.

A population of :math:`M` neurons whose spikes come back to its own input through a recurrent
weight matrix :math:`W_r` ``[M, M]`` after :math:`L \ge 1` steps (Xylo's hidden layer, a Loihi
population with a Dense projection onto itself):

=================================================  ===================================================================
float (:class:`hwsnn.layer.RecurrentContainer`)    integer twin
=================================================  ===================================================================
:math:`y_t = f(x_t + w_r\,y_{t-1})`                ``sum`` targets: :math:`R_t = \mathrm{ovf}(\mathrm{shift}(\mathrm{ovf}(W_r Y_{t-L}), s))`,
                                                   :math:`Y_t = f_q(X_t + R_t)` (the exact sum, then the neuron's input rule)
:math:`w_r = W_r\,2^{e_r}`                         ``per_event_saturate`` (Xylo): the neuron adds the input events of step
                                                   :math:`t`, then :math:`\min(Y_{t-L,j}, \mathit{cap})` events of each
                                                   source :math:`j = 0..M-1` in order, with weights
                                                   :math:`\mathrm{wrap}_{16}(W_r \ll s)`, saturating after every event
=================================================  ===================================================================

:math:`f_q` is the neuron twin (IF, LIF or CUBA, :mod:`hwsnn.fixed.neuron`); :math:`\mathrm{ovf}`
and :math:`\mathrm{shift}` are the dense layer's (:class:`~hwsnn.fixed.dense.FixedLinear`, whose
checks and weight grid the recurrent matrix shares). :math:`R_t` is in the neuron's input units, so
the recurrent weight exponent is :math:`e_r = e_{in} + s` (:math:`e_{in}` the neuron's input
exponent, :math:`s` the weight shift). The latency :math:`L` defaults to
``max(1, target.synapse.latency)``: a population cannot see its own spikes in the step that makes
them. On Xylo the input must come as :class:`~hwsnn.fixed.events.SynapticEvents` from a dense twin
(the chip's input projection), and the order "inputs, then hidden 0..M-1" is the chip's.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from targets import Target
from targets import bundle as fmt

from ..base import require_time_axis
from ..layer.recurrent import RecurrentContainer
from ..neuron import BaseNode, CubaLIFNode, LIFNode
from . import arith
from .arith import FitError
from .base import FixedModule, spec_tensor, spec_twin, twin_from_spec
from .convert import register, to_fixed
from .dense import FixedLinear
from .events import SynapticEvents
from .neuron import FixedNeuron

__all__ = ["FixedRecurrent", "recurrent_to_fixed", "recurrent_weight_exponent", "finest_state_exponent"]


@spec_twin("recurrent")
class FixedRecurrent(FixedModule):
    r"""A neuron twin with a recurrent projection onto itself (module docstring).

    :param neuron: the population's neuron twin (:class:`FixedIFNode`, :class:`FixedLIFNode` or
        :class:`FixedCubaLIFNode`; one-dimensional, ``[N, M]`` per step)
    :param weight_int: recurrent integer weights ``[M, M]`` (row: target neuron, column: source)
    :param weight_shift: :math:`s` (the target's ``weight_shift_min .. max``)
    :param latency: :math:`L \ge 1` steps from a spike to its recurrent input (default
        ``max(1, synapse.latency)``)
    :param name: layer name (default: the neuron's name)
    :param clip: clip weights (and, on Xylo, spike counts above the event cap) instead of raising
    """

    def __init__(
        self,
        neuron: FixedNeuron,
        weight_int: torch.Tensor,
        weight_shift: int = 0,
        latency: Optional[int] = None,
        *,
        name: Optional[str] = None,
        clip: bool = False,
    ) -> None:
        if not isinstance(neuron, FixedNeuron):
            raise TypeError(f"FixedRecurrent: neuron must be an integer neuron twin (FixedIFNode, FixedLIFNode, "
                            f"FixedCubaLIFNode); got {type(neuron).__name__}")
        super().__init__(neuron.target, name or neuron.layer_name)
        tg, lname = self.target, self.layer_name
        w = torch.as_tensor(weight_int)
        if w.dim() != 2 or w.shape[0] != w.shape[1]:
            raise ValueError(f"{lname}: the recurrent weight must be square [M, M]; got shape {tuple(w.shape)}")
        self.features = int(w.shape[0])
        self.latency = max(1, int(tg.synapse.latency)) if latency is None else int(latency)
        if self.latency < 1:
            raise ValueError(f"{lname}: the recurrent latency must be >= 1 (a spike cannot return in its own step); "
                             f"got {self.latency}")
        self.neuron = neuron
        self.projection = FixedLinear(
            w, tg, None, weight_shift, latency=0, name=f"{lname}.recurrent",
            input_exponent=0, weight_exponent=neuron.input_exponent + int(weight_shift), clip=clip,
        )
        self.per_event = self.projection.per_event
        self.exponents = dict(neuron.exponents)
        self.register_memory("history", None)  # [L, N, M] spikes of steps t-L .. t-1
        self.step_mode = neuron.step_mode

    # -- counters: the neuron's and the projection's, as one layer ----------------------------------
    @property
    def saturations(self) -> dict[str, int]:
        """The neuron's saturation counters plus the recurrent sum's ``accumulator`` (``sum`` targets)."""
        if "neuron" not in self._modules:
            return {}
        return {**self.neuron.saturations, **self.projection.saturations}

    @saturations.setter
    def saturations(self, value: dict[str, int]) -> None:  # FixedModule.__init__ assigns {}: nothing to keep
        if "neuron" in self._modules:
            raise AttributeError(f"{self.layer_name}: saturations are the neuron's and the projection's; use clear_counts()")

    @property
    def clipped(self) -> dict[str, int]:
        """Parameters clipped at conversion: the neuron's, and the recurrent projection's as ``recurrent_<name>``."""
        if "neuron" not in self._modules:
            return {}
        return {**self.neuron.clipped, **{f"recurrent_{k}": v for k, v in self.projection.clipped.items()}}

    @clipped.setter
    def clipped(self, value: dict[str, int]) -> None:
        if "neuron" in self._modules:
            raise AttributeError(f"{self.layer_name}: clipped counts are the neuron's and the projection's")

    def count_clipped(self, name: str, n: int) -> None:
        self.neuron.count_clipped(name, n)

    def clear_counts(self) -> None:
        self.neuron.clear_counts()
        self.projection.clear_counts()

    # -- properties of the projection ----------------------------------------------------------------
    @property
    def weight(self) -> torch.Tensor:
        return self.projection.weight

    @property
    def weight_shift(self) -> int:
        return self.projection.weight_shift

    @property
    def weight_exponent(self) -> int:
        return self.projection.weight_exponent

    def reset(self) -> None:
        super().reset()
        self.neuron.reset()
        self.projection.reset()

    # -- one step --------------------------------------------------------------------------------
    def _combine(self, x: Union[torch.Tensor, SynapticEvents], fed_back: torch.Tensor) -> Union[torch.Tensor, SynapticEvents]:
        """The neuron's input of one step: ``x`` plus the recurrent input of the spikes ``fed_back``."""
        if self.per_event:
            if not isinstance(x, SynapticEvents):
                raise TypeError(f"{self.layer_name}: on target {self.target.name!r} (per-event accumulation) the "
                                "input must be SynapticEvents from a dense twin (the chip's input projection); got "
                                f"{type(x).__name__}")
            rec = self.projection.single_step_forward(fed_back)
            return SynapticEvents(torch.cat([x.counts.to(torch.int64), rec.counts.to(torch.int64)], dim=-1),
                                  torch.cat([x.weight.to(torch.int64), rec.weight.to(torch.int64)], dim=1))
        if isinstance(x, SynapticEvents):  # pragma: no cover - only per-event targets make events
            raise TypeError(f"{self.layer_name}: SynapticEvents on a target that sums")
        x = arith.require_integer(x, self.layer_name)
        r = self.projection.single_step_forward(fed_back)
        return x.to(torch.int64) + r

    def single_step_forward(self, x: Union[torch.Tensor, SynapticEvents]) -> torch.Tensor:
        shape = x.shape if isinstance(x, SynapticEvents) else tuple(x.shape)
        if len(shape) != 2 or shape[-1] != self.features:
            raise ValueError(f"{self.layer_name}: expects one step [N, {self.features}]; got {tuple(shape)}")
        device = x.counts.device if isinstance(x, SynapticEvents) else x.device
        hist = self.history
        if not isinstance(hist, torch.Tensor) or tuple(hist.shape[1:]) != tuple(shape) or hist.device != device:
            if isinstance(hist, torch.Tensor):
                raise ValueError(f"{self.layer_name}: the batch shape changed from {tuple(hist.shape[1:])} to "
                                 f"{tuple(shape)} while spikes are in flight; call reset() between sequences")
            hist = torch.zeros((self.latency, *shape), dtype=torch.int64, device=device)
        y = self.neuron.single_step_forward(self._combine(x, hist[0]))
        self.history = torch.cat([hist[1:], y.to(torch.int64).unsqueeze(0)], dim=0)
        return y

    def multi_step_forward(self, x_seq: Union[torch.Tensor, SynapticEvents]) -> torch.Tensor:
        if not isinstance(x_seq, SynapticEvents):
            require_time_axis(x_seq, self.layer_name)
        return torch.stack([self.single_step_forward(x_seq[t]) for t in range(len(x_seq))])

    # -- report ----------------------------------------------------------------------------------
    def dequantize(self, name: Optional[str] = None):
        return self.neuron.dequantize(name)

    def fixed_report(self) -> dict:
        rep = self.neuron.fixed_report()
        rep.update(layer=self.layer_name, kind=type(self).__name__, recurrent_weight_shift=self.weight_shift,
                   recurrent_latency=self.latency, recurrent_weight_exponent=self.weight_exponent,
                   saturations=self.saturations, clipped=self.clipped)
        return rep

    def extra_repr(self) -> str:
        return f"features={self.features}, weight_shift={self.weight_shift}, latency={self.latency}"

    # -- the export format -------------------------------------------------------------------------
    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Recurrent":
        neuron = self.neuron.to_spec(name, input_shape, input_kind, input_exponent)
        ports = {k: getattr(neuron, k) for k in ("name", "input_shape", "input_kind", "output_shape", "output_kind",
                                                  "output_exponent")}
        return fmt.Recurrent(**ports, neuron=neuron, features=self.features, latency=self.latency,
                             accumulation=self.target.synapse.accumulation,
                             event_cap=self.target.neuron.max_spikes_per_step if self.per_event else None,
                             clip_events=self.projection.clip, weight_shift=self.weight_shift,
                             weight_exponent=self.weight_exponent, sign_mode=self.projection.sign_mode, weight=self.weight)

    @classmethod
    def from_spec(cls, spec: "fmt.Recurrent", target: Target) -> "FixedRecurrent":
        return cls(twin_from_spec(spec.neuron, target), spec_tensor(spec.weight), spec.weight_shift, spec.latency,
                   name=spec.name, clip=spec.clip_events)


# -- converter -------------------------------------------------------------------------------------


def recurrent_weight_exponent(layer: RecurrentContainer, target: Target) -> int:
    r""":math:`e_w`: the smallest exponent whose grid holds :math:`\max|W|` in the target's weight width
    (as :func:`~hwsnn.fixed.dense.linear_to_fixed`)."""
    w = layer.rc.weight.detach()
    return arith.power_of_two_exponent(float(w.abs().max()) if w.numel() else 0.0, target.widths.weight,
                                       target.synapse.weight_step)


def finest_state_exponent(layer: RecurrentContainer, target: Target, weight_exponent: Optional[int] = None) -> int:
    r"""The finest neuron state exponent at which the weight shift still reaches the recurrent weights:
    :math:`s = e_w - e_{in} \le s_{max}` with :math:`e_{in} = e + \text{input\_shift}`."""
    e_w = recurrent_weight_exponent(layer, target) if weight_exponent is None else int(weight_exponent)
    return e_w - target.synapse.weight_shift_max - target.neuron.input_shift


def _fold_bias(neuron: FixedNeuron, layer: RecurrentContainer, clip: bool) -> None:
    r"""Fold ``rc``'s bias :math:`b` into the neuron twin's bias (state units, :math:`B = \mathit{mant} \ll \mathit{exp}`):
    IF/LIF add :math:`b` (``decay_input=True``: :math:`b/\tau`) to the membrane every step; a CUBA current
    would filter it, which no neuron bias reproduces."""
    b = layer.rc.bias
    if b is None or not bool((b != 0).any()):
        return
    tg, sub = neuron.target, layer.sub_module
    if isinstance(sub, CubaLIFNode):
        raise FitError(neuron.layer_name, "recurrent bias", "a nonzero bias",
                       "it would enter the CUBA current, and no neuron bias of the twin reproduces a filtered "
                       "constant input; build the RecurrentContainer with bias=False", tg.name)
    real = b.detach().to(torch.float64)
    if isinstance(sub, LIFNode) and sub.decay_input:
        real = real / sub.tau
    nn_ = tg.neuron
    exp = 0
    if nn_.bias_exponent:  # the smallest exponent >= 0 whose mantissa fits
        e_b = arith.power_of_two_exponent(float(real.abs().max()), tg.widths.bias)
        exp = min(max(e_b - neuron.state_exponent, 0), nn_.bias_exponent_max)
    mant, n = arith.quantize(real, neuron.state_exponent + exp, tg.widths.bias, layer=neuron.layer_name,
                             parameter="bias (recurrent bias folded into the neuron)", target=tg.name, clip=clip)
    neuron.bias, neuron.bias_exp = neuron._fit_bias(mant, exp)
    neuron.bias_int = neuron._bias_value()
    neuron.count_clipped("bias", n)


@register(RecurrentContainer)
def recurrent_to_fixed(
    layer: RecurrentContainer,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    state_exponent: Optional[int] = None,
    input_exponent: Optional[int] = None,
    readout: bool = False,
    weight_exponent: Optional[int] = None,
    weight_shift: Optional[int] = None,
) -> FixedRecurrent:
    r"""Float :class:`~hwsnn.layer.RecurrentContainer` to :class:`FixedRecurrent`.

    The neuron is converted by its own converter (``state_exponent`` / ``input_exponent``, ``readout``,
    ``clip``). The recurrent sum lands in the neuron's input units, so the recurrent weights have the
    exponent :math:`e_r = e_{in} + s`, :math:`W_r = \mathrm{round}(w\,2^{-e_r})` on the weight grid:

    * default: :math:`e_w` = the smallest exponent whose grid holds :math:`\max|w|` in the weight width,
      :math:`s = e_w - e_{in}`; below ``weight_shift_min`` the shift is raised to it (small weights on a
      coarser grid); above ``weight_shift_max`` the neuron's state exponent is coarsened until it fits,
      unless it was given (then :class:`~hwsnn.fixed.arith.FitError`);
    * ``weight_exponent`` :math:`e_r` or ``weight_shift`` :math:`s` pins the grid (one of them; a shift
      outside the target's range raises ``FitError``).

    A bias on ``rc`` is folded into the neuron's bias (IF, LIF; refused for CUBA).
    """
    name = name or "RecurrentContainer"
    sub = layer.sub_module
    if not isinstance(sub, BaseNode):
        raise TypeError(f"{name}: the integer twin needs a spiking neuron (IFNode, LIFNode, CubaLIFNode) as "
                        f"sub_module; got {type(sub).__name__}")
    if weight_exponent is not None and weight_shift is not None:
        raise ValueError(f"{name}: give weight_exponent or weight_shift, not both (e_r = e_in + s)")
    syn = target.synapse
    opts = dict(clip=clip, name=name, readout=readout)
    neuron = to_fixed(sub, target, state_exponent=state_exponent, input_exponent=input_exponent, **opts)
    if state_exponent is None and input_exponent is None and weight_shift is None:
        finest = finest_state_exponent(layer, target, weight_exponent)
        if neuron.state_exponent < finest:  # the shift cannot reach the weights from this fine a grid
            neuron = to_fixed(sub, target, state_exponent=finest, **opts)
    e_in = neuron.input_exponent
    if weight_shift is not None:
        s = int(weight_shift)
    elif weight_exponent is not None:
        s = int(weight_exponent) - e_in
    else:
        s = max(recurrent_weight_exponent(layer, target) - e_in, syn.weight_shift_min)
    if not syn.weight_shift_min <= s <= syn.weight_shift_max:
        raise FitError(name, "recurrent weight shift (weight exponent - neuron input exponent)", s,
                       f"allowed [{syn.weight_shift_min}, {syn.weight_shift_max}] (e_in={e_in}, e_r={e_in + s})",
                       target.name)
    w, n_w = arith.quantize(layer.rc.weight, e_in + s, target.widths.weight, layer=f"{name}.recurrent",
                            parameter="weight", target=target.name, clip=clip, step=syn.weight_step)
    _fold_bias(neuron, layer, clip)
    twin = FixedRecurrent(neuron, w, s, name=name, clip=clip)
    twin.projection.count_clipped("weight", n_w)
    return twin
