r"""``if``, ``lif``, ``cuba``: spiking neuron populations.

States are integers with exponent ``state_exponent``; the input arrives in input units
(exponent ``state_exponent + input_shift``, the twin and the chip apply :math:`x \ll s`). Per step
(the exact rule of each target: ``docs/EXPORT_FORMAT.md`` and the twins in ``hwsnn/fixed``)::

    cuba:  I = decay_syn(I) + input           (the target's current order; I is never reset)
    all:   V = decay_mem(V) + I + (B << bias_exp)        (if: no decay; lif: the input is I)
    fire:  n = [V cmp TH], TH = threshold << threshold_shift
    reset: zero: V = v_reset where n > 0; subtract: while V cmp TH and n < max_spikes: n += 1; V -= TH

Decay parameters are shift exponents :math:`k` (:math:`\tau = 2^k`) or, on ``mul12`` targets,
Loihi's ``du``/``dv`` (:math:`\tau = 4096/d`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..target import Target
from .base import OpSpec, TableFormat, param, register, table

__all__ = ["Neuron", "IF", "LIF", "Cuba", "decay_range", "spike_cap", "NEURON_OPS"]

RESETS = ("subtract", "zero")


def decay_range(target: Target, which: str) -> tuple[int, int]:
    """Allowed decay parameter of the current (``which='syn'``: ``k`` or ``du``) or membrane (``'mem'``: ``k`` or ``dv``)."""
    if target.decay.mechanism == "shift":
        return 0, target.decay.max_shift
    n = target.neuron
    if which == "syn":  # du: factor du + 1 in 0..4096
        return max(n.mul12_min, -1), n.mul12_max - 1
    return max(n.mul12_min, 0), n.mul12_max


def spike_cap(target: Target, readout: bool, reset: str) -> int:
    """Spikes one neuron emits per step: the target's cap (readout or hidden) with the subtractive
    reset, 1 with the zero reset."""
    n = target.neuron
    return (n.readout_max_spikes_per_step if readout else n.max_spikes_per_step) if reset == "subtract" else 1


@dataclass(frozen=True, eq=False, kw_only=True)
class Neuron(OpSpec):
    """Fields shared by the neuron ops (``if``, ``lif``, ``cuba``)."""

    threshold: int = param("threshold mantissa (widths.threshold)")
    threshold_int: int = param("effective threshold TH = threshold << target.neuron.threshold_shift")
    reset: str = param("`subtract` (leftover charge stays) or `zero` (to v_reset)", choices=RESETS)
    v_reset: int = param("membrane value after a zero reset (0 with subtract)")
    max_spikes: int = param("spikes per neuron and step (the target's cap with subtract, 1 with zero)", ge=1)
    readout: bool = param("readout neurons (the target's readout spike cap)")
    bias_exp: int = param("bias exponent: B << bias_exp (floor >> when negative; 0 on targets without one)")
    state_exponent: int = param("exponent of v (and i)")
    input_shift: int = param("the target's input shift s: the input enters as x << s")
    bias: np.ndarray = table("[] (shared) or the neuron shape: bias mantissa (widths.bias, exponent state_exponent + bias_exp)")
    bias_exp_per_neuron: Optional[np.ndarray] = table(
        "the neuron shape: one bias exponent per neuron (targets with a bias exponent; params.bias_exp is then 0): "
        "B = bias << e, floor >> for e < 0", required=False)
    threshold_per_neuron: Optional[np.ndarray] = table(
        "the neuron shape: one threshold mantissa per neuron (targets whose neurons hold their own, limits.layout "
        "xylo_core); params.threshold and threshold_int are then those of the first neuron", required=False)

    #: per-neuron tables -> the parameter each replaces
    PER_NEURON = {"threshold_per_neuron": "threshold"}

    def per_neuron(self, param: str) -> np.ndarray:
        """Parameter ``param`` (``threshold``, ``threshold_int``, ``decay_mem``, ``decay_syn``) of every neuron:
        its per-neuron table (``threshold_int``: shifted by ``threshold_int - threshold``'s shift), else
        the parameter broadcast to the neuron shape (int64)."""
        key = "threshold" if param == "threshold_int" else param
        tab = getattr(self, f"{key}_per_neuron", None)
        if tab is None:
            return np.full(self.output_shape, int(getattr(self, param)), np.int64)
        tab = np.asarray(tab, np.int64)
        if param == "threshold_int":  # TH = mant << threshold_shift, the shift read off the first neuron's
            shift = (int(self.threshold_int) // int(self.threshold)).bit_length() - 1 if self.threshold > 0 else 0
            return tab << shift
        return tab

    @property
    def has_per_neuron(self) -> bool:
        """Whether any parameter has a per-neuron table (threshold, decays)."""
        return any(getattr(self, k, None) is not None for k in self.PER_NEURON)


    def _consistency(self, problems: list[str]) -> None:
        if self.input_shape != self.output_shape:
            problems.append(f"input_shape: {list(self.input_shape)} but output_shape {list(self.output_shape)}: a neuron "
                            "population maps each input to one neuron")
        want = "spikes" if self.max_spikes == 1 else "counts"
        if (self.output_kind, self.output_exponent) != (want, 0):
            problems.append(f"output: a neuron with max_spikes = {self.max_spikes} outputs ({want!r}, exponent 0); got "
                            f"({self.output_kind!r}, {self.output_exponent!r})")
        if self.reset == "zero" and self.max_spikes != 1:
            problems.append(f"params.max_spikes: {self.max_spikes}; the zero reset fires at most once per step")
        if self.reset == "subtract" and self.v_reset != 0:
            problems.append(f"params.v_reset: {self.v_reset}; it must be 0 with the subtractive reset")
        if self.bias is not None and self.bias.shape not in ((), self.output_shape):
            problems.append(f"tables.bias: shape {list(self.bias.shape)}; expected [] or the neuron shape "
                            f"{list(self.output_shape)}")
        if self.bias_exp_per_neuron is not None:
            if self.bias_exp_per_neuron.shape != self.output_shape:
                problems.append(f"tables.bias_exp_per_neuron: shape {list(self.bias_exp_per_neuron.shape)}; expected the "
                                f"neuron shape {list(self.output_shape)}")
            if self.bias_exp != 0:
                problems.append(f"params.bias_exp: {self.bias_exp}; it must be 0 with per-neuron exponents "
                                "(tables.bias_exp_per_neuron)")
        for tab, par in self.PER_NEURON.items():
            arr = getattr(self, tab, None)
            if arr is None:
                continue
            if arr.shape != self.output_shape:
                problems.append(f"tables.{tab}: shape {list(arr.shape)}; expected the neuron shape "
                                f"{list(self.output_shape)}")
            elif arr.size and int(arr.reshape(-1)[0]) != getattr(self, par):
                problems.append(f"params.{par}: {getattr(self, par)} but tables.{tab} starts with "
                                f"{int(arr.reshape(-1)[0])} (the parameter is the first neuron's)")

    def _check_target(self, target: Target, problems: list[str]) -> None:
        n, w = target.neuron, target.widths
        if self.reset not in n.reset:
            problems.append(f"params.reset: {self.reset!r} is not available; the target has {', '.join(n.reset)}")
        elif self.max_spikes != spike_cap(target, self.readout, self.reset):
            problems.append(f"params.max_spikes: {self.max_spikes} but the target's cap for "
                            f"{'readout' if self.readout else 'hidden'} neurons is {spike_cap(target, self.readout, self.reset)}")
        if not w.threshold.fits(self.threshold):
            problems.append(f"params.threshold: {self.threshold} does not fit {w.threshold}")
        if n.threshold_positive and self.threshold <= 0:
            problems.append(f"params.threshold: {self.threshold}; the target needs a threshold > 0")
        if self.threshold_int != self.threshold << n.threshold_shift:
            problems.append(f"params.threshold_int: {self.threshold_int} but threshold << {n.threshold_shift} = "
                            f"{self.threshold << n.threshold_shift}")
        if self.input_shift != n.input_shift:
            problems.append(f"params.input_shift: {self.input_shift} but the target shifts inputs by {n.input_shift}")
        lo, hi = (n.bias_exponent_min, n.bias_exponent_max) if n.bias_exponent else (0, 0)
        if not lo <= self.bias_exp <= hi:
            problems.append(f"params.bias_exp: {self.bias_exp} is outside the target's [{lo}, {hi}]")
        per = self.bias_exp_per_neuron
        if per is not None and per.size:
            if not n.bias_exponent:
                problems.append("tables.bias_exp_per_neuron: the target has no bias exponent")
            elif int(per.min()) < lo or int(per.max()) > hi:
                problems.append(f"tables.bias_exp_per_neuron: values [{int(per.min())}, {int(per.max())}] outside the "
                                f"target's [{lo}, {hi}]")
        if self.reset == "zero" and self.v_reset != 0:
            if target.decay.mechanism == "mul12" or n.membrane_update != "direct":
                problems.append(f"params.v_reset: {self.v_reset}; the target resets the membrane to 0")
            elif not w.membrane.fits(self.v_reset):
                problems.append(f"params.v_reset: {self.v_reset} does not fit {w.membrane}")
        for key in ("decay_syn", "decay_mem"):
            if hasattr(self, key):
                lo, hi = decay_range(target, key[-3:])
                v = getattr(self, key)
                if not lo <= v <= hi:
                    problems.append(f"params.{key}: {v} is outside the target's [{lo}, {hi}]")
        present = [k for k in self.PER_NEURON if getattr(self, k, None) is not None]
        if present and target.limits.layout != "xylo_core":
            problems.append(f"tables.{present[0]}: per-neuron {self.PER_NEURON[present[0]]} values need a target whose "
                            f"neurons hold their own (limits.layout xylo_core); target {target.name!r} has one per layer")
        th = self.threshold_per_neuron
        if th is not None and th.size and n.threshold_positive and int(th.min()) <= 0:
            problems.append(f"tables.threshold_per_neuron: {int(th.min())}; the target needs thresholds > 0")

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role == "bias":  # per-neuron exponents: no one exponent for the table
            exp = None if self.bias_exp_per_neuron is not None else self.state_exponent + self.bias_exp
            return TableFormat.of(target.widths.bias, exp)
        if role == "bias_exp_per_neuron":
            n = target.neuron
            return TableFormat(max(abs(n.bias_exponent_min), abs(n.bias_exponent_max), 1).bit_length() + 1, True, None)
        if role == "threshold_per_neuron":
            return TableFormat.of(target.widths.threshold, None)
        if role in ("decay_mem_per_neuron", "decay_syn_per_neuron"):
            lo, hi = decay_range(target, role[6:9])
            return TableFormat(max(abs(lo), abs(hi), 1).bit_length() + (1 if lo < 0 else 0), lo < 0, None)
        return super().table_format(role, target)


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class IF(Neuron):
    kind = "if"
    summary = "integrate-and-fire: `V = ovf(V + (X << s) + B)`, then fire and reset"

    def _check_target(self, target: Target, problems: list[str]) -> None:
        super()._check_target(target, problems)
        if target.decay.rounding == "xylo_min1":
            problems.append("op: the target has no leak-free membrane (xylo_min1 decay); use lif with a large tau")


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class LIF(Neuron):
    kind = "lif"
    summary = "leaky integrate-and-fire: `V = ovf(V - D(V - V_r, decay_mem) + (X << s) + B)` (Xylo: saturated delta)"

    decay_mem: int = param("membrane decay: k (tau = 2^k), or dv on mul12 targets")
    decay_input: bool = param("the input is decayed too (`x >> k`; direct-update targets without input shift only)")
    decay_mem_per_neuron: Optional[np.ndarray] = table(
        "the neuron shape: one membrane decay per neuron (limits.layout xylo_core; params.decay_mem is then the "
        "first neuron's)", required=False)

    PER_NEURON = {**Neuron.PER_NEURON, "decay_mem_per_neuron": "decay_mem"}

    def _check_target(self, target: Target, problems: list[str]) -> None:
        super()._check_target(target, problems)
        if self.decay_input and (target.neuron.membrane_update != "direct" or target.neuron.input_shift > 0):
            problems.append("params.decay_input: true cannot be computed on this target (fold 1/tau into the weights)")


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Cuba(LIF):
    kind = "cuba"
    summary = "current-based LIF: a synaptic current `I` (decay `decay_syn`) feeds the `lif` membrane"

    decay_syn: int = param("current decay: k (tau = 2^k), or du on mul12 targets")
    decay_syn_per_neuron: Optional[np.ndarray] = table(
        "the neuron shape: one current decay per neuron (limits.layout xylo_core; params.decay_syn is then the "
        "first neuron's)", required=False)

    PER_NEURON = {**LIF.PER_NEURON, "decay_syn_per_neuron": "decay_syn"}

    def _consistency(self, problems: list[str]) -> None:
        super()._consistency(problems)
        if self.decay_input:
            problems.append("params.decay_input: a cuba neuron has no decay_input form; must be false")


#: the neuron op kinds
NEURON_OPS = {c.kind: c for c in (IF, LIF, Cuba)}
