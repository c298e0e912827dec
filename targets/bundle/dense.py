r"""``dense``: a fully connected projection, exported as integer weights and a weight shift.

Float :math:`y = w x + b` with :math:`w = W 2^{e_w}`, :math:`x = X 2^{e_x}`. On ``sum`` targets
:math:`A = \mathrm{ovf}(W X)`, :math:`Y = \mathrm{ovf}(\mathrm{shift}(A, s) + B)` with
:math:`e_{out} = e_w + e_x - s`, delivered ``latency`` steps later (and ``delays[o, i]`` more per
synapse where the chip has per-synapse delays). On ``per_event_saturate`` targets (Xylo) the layer
passes capped event counts (``event_cap`` per source and step) to the next neuron, which adds
:math:`\mathrm{wrap}(W \ll s)` one event at a time; there is no bias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..target import Target, Width
from .base import OpSpec, TableFormat, param, register, table
from .signmode import SIGN_MODES, sign_mode_problems

__all__ = ["SynapticSpec", "Dense", "event_cap_of", "delay_width"]

ACCUMULATION = ("sum", "per_event_saturate")


def event_cap_of(target: Target, first_layer: bool) -> int:
    """Largest event count per source and step a per-event layer passes on: the chip's input cap for
    the input projection, else the spike cap of a hidden neuron."""
    cap = target.synapse.max_input_events if first_layer else None
    return int(cap if cap is not None else target.neuron.max_spikes_per_step)


def delay_width(max_delay: int) -> Width:
    """The unsigned width of a delay table on a chip whose deepest delay is ``max_delay``."""
    return Width(bits=max(int(max_delay).bit_length(), 1), signed=False)


@dataclass(frozen=True, eq=False, kw_only=True)
class SynapticSpec(OpSpec):
    """Fields shared by the weighted ops (``dense``, ``conv2d``, ``dropconnect``)."""

    weight_shift: int = param("s: the exponent step from weights x inputs to the output grid (target's range)")
    input_exponent: int = param("e_x: exponent of the inputs")
    weight_exponent: int = param("e_w: exponent of the weights")


    def _synaptic_consistency(self, problems: list[str], weight: Optional[np.ndarray], bias: Optional[np.ndarray],
                              n_out: int) -> None:
        want = self.weight_exponent + self.input_exponent - self.weight_shift
        if self.output_kind == "values" and self.output_exponent != want:
            problems.append(f"output.exponent: {self.output_exponent} but weight_exponent + input_exponent - weight_shift "
                            f"= {want}")
        if bias is not None and bias.shape != (n_out,):
            problems.append(f"tables.bias: shape {list(bias.shape)}; expected [{n_out}]")

    def _synaptic_target(self, target: Target, problems: list[str], sign_mode: bool = False) -> None:
        """Weight shift range and weight grid; ``sign_mode``: the op records a sign mode (the grid is its mode's
        on targets with sign modes, :mod:`targets.bundle.signmode`)."""
        syn = target.synapse
        if not syn.weight_shift_min <= self.weight_shift <= syn.weight_shift_max:
            problems.append(f"params.weight_shift: {self.weight_shift} is outside the target's "
                            f"[{syn.weight_shift_min}, {syn.weight_shift_max}]")
        weight = getattr(self, "weight", None)
        if sign_mode:
            problems.extend(sign_mode_problems(weight, getattr(self, "sign_mode", None), target, "params.sign_mode"))
            if syn.sign_modes:
                return
        if weight is not None and syn.weight_step > 1 and weight.size and bool((weight % syn.weight_step).any()):
            problems.append(f"tables.weight: holds values that are not multiples of the target's weight step {syn.weight_step}")

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role == "weight":
            return TableFormat.of(target.widths.weight, self.weight_exponent)
        if role == "bias":
            return TableFormat.of(target.widths.bias, self.weight_exponent + self.input_exponent - self.weight_shift)
        return super().table_format(role, target)


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Dense(SynapticSpec):
    kind = "dense"
    summary = ("fully connected: `sum` targets add `ovf(shift(ovf(W X), s) + B)` after `latency` steps (plus "
               "`delays`; target `sum_overflow: shifted` (Loihi): `ovf(shift(W X, s) + B)`; `delay_shift: per_slot` "
               "(Loihi's DelayDense): each source step's sum per delay is shifted, then added into the int32 slot); "
               "`per_event_saturate` targets pass capped event counts to the next neuron")

    in_features: int = param("number of inputs", ge=1)
    out_features: int = param("number of outputs", ge=1)
    latency: int = param("steps from an input to its output (the target's latency, or first_latency for the input projection)", ge=0)
    first_layer: bool = param("the input projection of the network")
    accumulation: str = param("`sum` (exact sum, then overflow) or `per_event_saturate` (Xylo: the next neuron adds "
                              "event by event)", choices=ACCUMULATION)
    event_cap: Optional[int] = param("per-event only: largest event count per source and step (input: the chip's "
                                     "input cap, else the hidden spike cap); null for `sum`", ge=1)
    clip_events: bool = param("per-event only: clip larger counts (counted) instead of failing")
    sign_mode: Optional[str] = param("targets with sign modes (Loihi): the mode Lava picks from the weights, `excitatory` "
                                     "(all >= 0: 0..255), `inhibitory` (all <= 0: -255..0) or `mixed` (the weight grid); "
                                     "the table holds the weights as Lava uses them. null elsewhere",
                                     choices=SIGN_MODES, default=None)
    weight: np.ndarray = table("[out, in] integer weights (widths.weight, exponent weight_exponent)")
    bias: Optional[np.ndarray] = table("[out] integer bias in output units (widths.bias)", required=False)
    delays: Optional[np.ndarray] = table("[out, in] per-synapse delays in steps (targets with per-synapse delays; "
                                         "unsigned, bits of max_delay)", required=False)

    def trace_shape(self) -> tuple[int, ...]:
        """A per-event layer hands the next neuron its (capped) input event counts, ``[in]``."""
        return self.input_shape if self.accumulation == "per_event_saturate" else self.output_shape

    def _consistency(self, problems: list[str]) -> None:
        if self.input_shape != (self.in_features,):
            problems.append(f"input_shape: {list(self.input_shape)}; a dense layer with in_features = {self.in_features} "
                            f"takes [{self.in_features}]")
        if self.output_shape != (self.out_features,):
            problems.append(f"output_shape: {list(self.output_shape)}; expected [{self.out_features}] (out_features)")
        if self.weight is not None and self.weight.shape != (self.out_features, self.in_features):
            problems.append(f"tables.weight: shape {list(self.weight.shape)}; expected [{self.out_features}, {self.in_features}]")
        if self.delays is not None:
            if self.weight is not None and self.delays.shape != self.weight.shape:
                problems.append(f"tables.delays: shape {list(self.delays.shape)}; expected the weight's {list(self.weight.shape)}")
            if self.delays.size and int(self.delays.min()) < 0:
                problems.append("tables.delays: negative delays")
        per_event = self.accumulation == "per_event_saturate"
        if per_event:
            if self.event_cap is None:
                problems.append("params.event_cap: required with per_event_saturate accumulation")
            if self.bias is not None:
                problems.append("tables.bias: a per-event layer has no bias (the chip adds events straight into the current)")
            if self.delays is not None:
                problems.append("tables.delays: per-synapse delays are not supported with per-event accumulation")
            if (self.output_kind, self.output_exponent) != ("counts", None):
                problems.append(f"output: a per-event layer outputs event counts (kind 'counts', exponent null); got "
                                f"{self.output_kind!r}, {self.output_exponent!r}")
        else:
            if self.event_cap is not None:
                problems.append("params.event_cap: must be null with sum accumulation")
            if self.output_kind != "values":
                problems.append(f"output.kind: a sum layer outputs 'values'; got {self.output_kind!r}")
            self._synaptic_consistency(problems, self.weight, self.bias, self.out_features)

    def _check_target(self, target: Target, problems: list[str]) -> None:
        syn = target.synapse
        if self.accumulation != syn.accumulation:
            problems.append(f"params.accumulation: {self.accumulation!r} but the target accumulates by {syn.accumulation!r}")
        elif self.accumulation == "per_event_saturate" and self.event_cap != event_cap_of(target, self.first_layer):
            problems.append(f"params.event_cap: {self.event_cap} but the target's cap for "
                            f"{'the input projection' if self.first_layer else 'hidden spikes'} is "
                            f"{event_cap_of(target, self.first_layer)}")
        if self.delays is not None:
            if not syn.per_synapse_delay:
                problems.append("tables.delays: the target has no per-synapse delays")
            elif self.delays.size and int(self.delays.max()) > syn.max_delay:
                problems.append(f"tables.delays: {int(self.delays.max())} exceeds the target's max_delay {syn.max_delay}")
        self._synaptic_target(target, problems, sign_mode=True)

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role == "delays":
            return TableFormat.of(delay_width(target.synapse.max_delay), None)
        if role == "bias":
            return TableFormat.of(target.widths.bias, self.output_exponent)
        return super().table_format(role, target)
