r"""``delay``: a per-element FIFO, :math:`y[t] = x[t - d]` (zeros for :math:`t < d`, zero at reset)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..target import Target
from .base import OpSpec, param, passes_through, register

__all__ = ["Delay"]


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Delay(OpSpec):
    kind = "delay"
    summary = "FIFO of depth d per element: `y[t] = x[t - d]` (d = 0: a wire)"

    delay_steps: int = param("d, in 0 .. target.synapse.max_delay", ge=0)

    def passes_exponent(self, incoming: Optional[int]) -> Optional[int]:
        return incoming

    def _consistency(self, problems: list[str]) -> None:
        passes_through(self, problems)

    def _check_target(self, target: Target, problems: list[str]) -> None:
        if self.delay_steps > target.synapse.max_delay:
            problems.append(f"params.delay_steps: {self.delay_steps} exceeds the target's max_delay {target.synapse.max_delay}")

