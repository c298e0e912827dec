r"""``recurrent``: a neuron population with a recurrent projection onto itself.

The neuron is one of :mod:`targets.bundle.neuron`'s ops (``neuron_op``); its parameters are stored
flat in ``params`` beside the projection's. Per step, with :math:`Y_{t-L}` the population's spikes
``latency`` steps ago: ``sum`` targets add :math:`R_t = \mathrm{ovf}(\mathrm{shift}(\mathrm{ovf}(W Y_{t-L}), s))`
to the input (exact sum) before the neuron's input rule; ``per_event_saturate`` targets add the
input events, then :math:`\min(Y_{t-L}, \text{event\_cap})` events of sources :math:`0..M-1` in
order with weights :math:`\mathrm{wrap}(W \ll s)`, saturating after every event. The weights are
in the neuron's input units: ``weight_exponent`` = the neuron's input exponent + ``weight_shift``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from ..target import Target
from .base import OpSpec, TableFormat, param, register, table
from .neuron import NEURON_OPS, Neuron

#: the per-neuron tables a neuron op may hold (threshold, decays: Xylo)
NEURON_TABLES = tuple(sorted({k for c in NEURON_OPS.values() for k in c.PER_NEURON}))
from .signmode import SIGN_MODES, sign_mode_problems

__all__ = ["Recurrent"]


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Recurrent(OpSpec):
    kind = "recurrent"
    summary = ("a neuron population fed back onto itself: the neuron's rule on `X_t + R_t`, "
               "`R_t = ovf(shift(ovf(W Y[t-L]), s))` (per-event targets: the fed-back events after the input's)")

    neuron: Neuron
    features: int = param("M, the population size", ge=1)
    latency: int = param("L >= 1: a spike returns L steps later", ge=1)
    accumulation: str = param("`sum` or `per_event_saturate` (as dense)", choices=("sum", "per_event_saturate"))
    event_cap: Optional[int] = param("per-event: largest spike count fed back per source (the hidden spike cap); "
                                     "null for sum", ge=1)
    clip_events: bool = param("per-event: clip larger counts instead of failing")
    weight_shift: int = param("s (the target's weight shift range)")
    weight_exponent: int = param("exponent of the weights = the neuron's input exponent + s")
    sign_mode: Optional[str] = param("targets with sign modes (Loihi): the mode Lava picks from the recurrent weights "
                                     "(as dense); null elsewhere", choices=SIGN_MODES, default=None)
    weight: np.ndarray = table("[M, M] recurrent weights (row: target, column: source; widths.weight)")

    # -- the flat params of the manifest: the neuron's, ``neuron_op`` and the projection's -------------
    @classmethod
    def param_names(cls) -> set[str]:
        names = {f.name for f in cls.param_fields()} | {"neuron_op"}
        for ncls in NEURON_OPS.values():
            names |= ncls.param_names()
        return names

    @classmethod
    def required_params(cls) -> dict[str, str]:
        return {**super().required_params(), "neuron_op": "the neuron op: if, lif or cuba"}

    @classmethod
    def table_roles(cls) -> set[str]:
        return {"weight", "bias", "bias_exp_per_neuron", *NEURON_TABLES}

    def params(self) -> dict[str, Any]:
        own = {f.name: getattr(self, f.name) for f in self.param_fields()}
        return {**self.neuron.params(), "neuron_op": self.neuron.kind, **own}

    def tables(self) -> dict[str, np.ndarray]:
        return {**self.neuron.tables(), "weight": self.weight}

    @classmethod
    def _from_params(cls, common: dict, params: dict, tables: dict, problems: list[str]) -> "Recurrent":
        kind = params.pop("neuron_op")
        ncls = NEURON_OPS.get(kind) if isinstance(kind, str) else None
        if ncls is None:
            problems.append(f"params.neuron_op: {kind!r} is not one of {', '.join(NEURON_OPS)}")
            return None  # type: ignore[return-value]
        own_names = {f.name for f in cls.param_fields()}
        own = {k: params.pop(k) for k in list(params) if k in own_names}
        unknown = set(params) - ncls.param_names()
        for key in sorted(unknown):
            problems.append(f"params.{key}: not a parameter of a {kind} neuron")
        for key, doc in ncls.required_params().items():
            if key not in params:
                problems.append(f"params.{key}: missing ({doc})")
        if problems:
            return None  # type: ignore[return-value]
        per = {k: tables[k] for k in ncls.PER_NEURON if k in tables}  # per-neuron threshold/decays (Xylo)
        unknown = sorted(k for k in tables if k in NEURON_TABLES and k not in ncls.PER_NEURON)
        if unknown:
            problems.append(f"tables.{unknown[0]}: not a table of a {kind} neuron")
        neuron = ncls(**common, **params, bias=tables.get("bias"), bias_exp_per_neuron=tables.get("bias_exp_per_neuron"),
                      **per)
        return cls(**common, neuron=neuron, **own, weight=tables.get("weight"))


    # -- validation --------------------------------------------------------------------------------------
    def _consistency(self, problems: list[str]) -> None:
        nrn = self.neuron
        if not isinstance(nrn, Neuron):
            problems.append(f"neuron: expected an if/lif/cuba op; got {type(nrn).__name__}")
            return
        for key in ("name", "input_shape", "input_kind", "output_shape", "output_kind", "output_exponent"):
            if getattr(nrn, key) != getattr(self, key):
                problems.append(f"{key}: {getattr(self, key)!r} but the neuron's is {getattr(nrn, key)!r}")
        if self.output_shape != (self.features,):
            problems.append(f"output_shape: {list(self.output_shape)}; a recurrent population of {self.features} "
                            f"neurons is [{self.features}]")
        if self.weight is not None and self.weight.shape != (self.features, self.features):
            problems.append(f"tables.weight: shape {list(self.weight.shape)}; expected [{self.features}, {self.features}]")
        if (self.accumulation == "per_event_saturate") != (self.event_cap is not None):
            problems.append("params.event_cap: required with per_event_saturate accumulation, null with sum")
        if self.weight_exponent != nrn.state_exponent + nrn.input_shift + self.weight_shift:
            problems.append(f"params.weight_exponent: {self.weight_exponent} but the neuron's input exponent "
                            f"{nrn.state_exponent + nrn.input_shift} + weight_shift {self.weight_shift} = "
                            f"{nrn.state_exponent + nrn.input_shift + self.weight_shift}")

    def _check_target(self, target: Target, problems: list[str]) -> None:
        try:
            self.neuron.check(target)
        except Exception as err:  # SpecError: merge its problems
            problems.extend(getattr(err, "problems", [str(err)]))
        syn = target.synapse
        if self.accumulation != syn.accumulation:
            problems.append(f"params.accumulation: {self.accumulation!r} but the target accumulates by {syn.accumulation!r}")
        elif self.event_cap is not None and self.event_cap != target.neuron.max_spikes_per_step:
            problems.append(f"params.event_cap: {self.event_cap} but the target's hidden spike cap is "
                            f"{target.neuron.max_spikes_per_step}")
        if not syn.weight_shift_min <= self.weight_shift <= syn.weight_shift_max:
            problems.append(f"params.weight_shift: {self.weight_shift} is outside the target's "
                            f"[{syn.weight_shift_min}, {syn.weight_shift_max}]")
        problems.extend(sign_mode_problems(self.weight, self.sign_mode, target, "params.sign_mode"))
        if not syn.sign_modes and syn.weight_step > 1 and self.weight.size and bool((self.weight % syn.weight_step).any()):
            problems.append(f"tables.weight: holds values that are not multiples of the target's weight step {syn.weight_step}")

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role == "weight":
            return TableFormat.of(target.widths.weight, self.weight_exponent)
        return self.neuron.table_format(role, target)

    def replace(self, **changes: Any) -> "Recurrent":
        neuron_keys = {k for k in changes if k in self.neuron.param_names() or k in ("bias", "bias_exp_per_neuron",
                                                                                        *NEURON_TABLES)}
        neuron = self.neuron.replace(**{k: changes.pop(k) for k in neuron_keys}) if neuron_keys else self.neuron
        return dataclasses.replace(self, neuron=neuron, **changes)
