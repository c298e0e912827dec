r"""``synapse_filter``: an exponentially decaying trace of 0/1 spikes, :math:`\tau = 2^k`.

Float :math:`I \leftarrow I - (1 - S) I / \tau + S`; integer :math:`I \leftarrow \mathrm{ovf}(I + \mathit{one})`
where :math:`S = 1`, :math:`\mathrm{ovf}(I - D(I, k))` where :math:`S = 0` (``mul12`` targets:
:math:`I - D = \mathrm{tz}(I (4096 - \mathit{decay\_factor}) / 4096)`), with :math:`\mathit{one} = 2^{-e}`
and the state's exponent :math:`e \le 0`; the output is the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..target import Target
from .base import OpSpec, param, register

__all__ = ["SynapseFilter"]


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class SynapseFilter(OpSpec):
    kind = "synapse_filter"
    summary = "spike trace: `I = ovf(I + one)` on a spike, else `I - D(I, k)`; the output is `I` (exponent state_exponent)"

    k: int = param("decay shift, tau = 2^k", ge=0)
    state_exponent: int = param("exponent e <= 0 of the trace", le=0)
    one: int = param("what one spike adds: 2^-state_exponent", ge=1)
    decay_factor: Optional[int] = param("mul12 targets: 4096 >> k; null on shift targets", ge=0)

    def _consistency(self, problems: list[str]) -> None:
        if self.input_shape != self.output_shape:
            problems.append(f"input_shape: {list(self.input_shape)} but output_shape {list(self.output_shape)}")
        if self.one != 1 << -self.state_exponent:
            problems.append(f"params.one: {self.one} but 2^-state_exponent = {1 << -self.state_exponent}")
        if (self.output_kind, self.output_exponent) != ("values", self.state_exponent):
            problems.append(f"output: a synapse filter outputs ('values', state_exponent {self.state_exponent}); got "
                            f"({self.output_kind!r}, {self.output_exponent!r})")
        if self.input_kind != "spikes":
            problems.append(f"input_kind: a synapse filter takes 0/1 spikes; got {self.input_kind!r}")

    def _check_target(self, target: Target, problems: list[str]) -> None:
        if self.k > target.decay.max_shift:
            problems.append(f"params.k: {self.k} is outside the target's [0, {target.decay.max_shift}]")
        if self.one > target.widths.current.hi:
            problems.append(f"params.one: {self.one} does not fit the current width {target.widths.current}")
        want = (4096 >> self.k) if target.decay.mechanism == "mul12" else None
        if self.decay_factor != want:
            problems.append(f"params.decay_factor: {self.decay_factor!r}; the target needs {want!r}"
                            + (" (4096 >> k)" if want is not None else " (a shift-decay target)"))
