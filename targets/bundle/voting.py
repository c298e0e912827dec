r"""``voting``: sums over consecutive groups of ``voting_size`` on the last axis.

:math:`s_c = \mathrm{ovf}(\sum_{k<v} x_{cv+k})` (the target's accumulator), then
:math:`s_c \gg \log_2 v` (floor) when ``shift``. In float terms the sum is :math:`v` times the mean:
without ``shift`` the division is an exponent change (output exponent :math:`e_{in} - \log_2 v`),
with it the output keeps :math:`e_{in}`; a divisor that is not a power of two keeps the sum and its
exponent is ``null``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .base import OpSpec, param, register

__all__ = ["Voting", "divided", "divided_exponent", "log2_exact"]


def log2_exact(v: int) -> Optional[int]:
    """:math:`\\log_2 v` when ``v`` is a power of two, else ``None``."""
    return v.bit_length() - 1 if v > 0 and v & (v - 1) == 0 else None


def divided(incoming: Optional[int], log2: Optional[int], shift: bool) -> Optional[int]:
    """Output exponent of a sum of inputs with exponent ``incoming`` divided by ``2^log2``."""
    if incoming is None or log2 is None:
        return None
    return incoming if shift else incoming - log2


def divided_exponent(problems: list[str], op: OpSpec, divisor: int, log2: Optional[int], shift: bool) -> None:
    """Check ``divisor_log2``, ``shift`` and the output exponent of a sum-then-divide op."""
    exact = log2_exact(divisor)
    if log2 != exact:
        problems.append(f"params.divisor_log2: {log2!r} but the divisor {divisor} gives {exact!r}")
    if shift and exact is None:
        problems.append(f"params.shift: true needs a power-of-two divisor; {divisor} is not one")
    if op.output_kind != "values":
        problems.append(f"output.kind: a sum outputs 'values'; got {op.output_kind!r}")


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Voting(OpSpec):
    kind = "voting"
    summary = "group sums on the last axis: `ovf(sum of v inputs)`, then `>> log2 v` when `shift`"

    voting_size: int = param("v, the group size (divides the last input axis)", ge=1)
    shift: bool = param("divide by a right shift (floor) instead of an exponent change")
    divisor_log2: Optional[int] = param("log2 v when v is a power of two, else null", ge=0)

    def passes_exponent(self, incoming: Optional[int]) -> Optional[int]:
        return divided(incoming, self.divisor_log2, self.shift)

    def _consistency(self, problems: list[str]) -> None:
        if not self.input_shape or self.input_shape[-1] % self.voting_size:
            problems.append(f"input_shape: the last axis of {list(self.input_shape)} must be a multiple of "
                            f"voting_size {self.voting_size}")
        else:
            want = (*self.input_shape[:-1], self.input_shape[-1] // self.voting_size)
            if self.output_shape != want:
                problems.append(f"output_shape: {list(self.output_shape)}; expected {list(want)}")
        divided_exponent(problems, self, self.voting_size, self.divisor_log2, self.shift)
