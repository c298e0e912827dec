r"""Integer twin of :class:`~hwsnn.layer.VotingLayer`, and the sum-then-divide rule shared with
:mod:`hwsnn.fixed.pool`.

**Dividing a sum by** :math:`v` (a group size or a window area). The twin sums in integers
(brought into the accumulator width by the target's overflow mode, counted). Then:

* :math:`v = 2^k`, ``shift=False`` (default): the sum is the output and the division is exact as
  an exponent change, output exponent :math:`e_{out} = e_{in} - k`;
* :math:`v = 2^k`, ``shift=True``: the hardware right shift :math:`s \gg k` (floor, toward
  :math:`-\infty`), output exponent :math:`e_{in}`;
* otherwise the sum is kept (``divides = False``): the output is :math:`v` times the mean; the
  report says so and :meth:`~SumDivide.dequantize_output` divides in float for comparison.
"""

from __future__ import annotations

import numbers
from typing import Optional, Union

import torch

from targets import Target
from targets import bundle as fmt

from ..base import require_time_axis
from ..layer.voting import VotingLayer
from . import arith
from .base import FixedModule, spec_twin
from .convert import register

__all__ = ["FixedVotingLayer", "SumDivide"]


def _log2_exact(v: int) -> Optional[int]:
    return v.bit_length() - 1 if v > 0 and v & (v - 1) == 0 else None


class SumDivide(FixedModule):
    """Mixin for twins whose float layer divides an integer sum by ``divisor`` (module docstring)."""

    divisor: int
    shift: bool
    input_exponent: int

    def _init_divide(self, divisor: int, shift: bool, input_exponent: int) -> None:
        self.divisor = int(divisor)
        self.shift = bool(shift)
        self.input_exponent = int(input_exponent)
        self.divisor_log2 = _log2_exact(self.divisor)
        if self.shift and self.divisor_log2 is None:
            raise ValueError(
                f"{self.layer_name}: shift=True needs a power-of-two divisor; {self.divisor} is not one"
            )

    @property
    def divides(self) -> bool:
        """Whether the output equals the float mean (exactly, or floored with ``shift``)."""
        return self.divisor_log2 is not None

    def output_exponent(self, input_exponent: Optional[int] = None) -> Optional[int]:
        """Exponent of the output for an input exponent (``None`` when the sum is kept)."""
        e = self.input_exponent if input_exponent is None else int(input_exponent)
        if self.divisor_log2 is None:
            return None
        return e if self.shift else e - self.divisor_log2

    def dequantize_output(self, y: torch.Tensor, input_exponent: Optional[int] = None) -> torch.Tensor:
        r"""The float mean the output stands for: :math:`y\,2^{e_{out}}`, or
        :math:`y\,2^{e_{in}}/v` when the sum is kept (float64)."""
        e = self.input_exponent if input_exponent is None else int(input_exponent)
        y = y.to(torch.float64)
        e_out = self.output_exponent(e)
        if e_out is None:
            return y * 2.0**e / self.divisor
        return y * 2.0**e_out

    def _divide(self, s: torch.Tensor) -> torch.Tensor:
        s, n = arith.overflow(s, self.target.widths.accumulator, self.target.overflow.accumulator)
        self.count_saturations("accumulator", n)
        if self.shift:
            s = arith.shift_right(s, self.divisor_log2, "floor")
        return s.to(arith.storage_dtype(self.target.widths.accumulator))

    def _divide_report(self) -> dict:
        if self.divisor_log2 is None:
            rule = "sum kept ({} not a power of two)"
        elif self.shift:
            rule = "floor right shift by log2({})"
        else:
            rule = "exact: exponent shift by -log2({})"
        return {
            "divisor": self.divisor,
            "divides": self.divides,
            "shift": self.shift,
            "input_exponent": self.input_exponent,
            "output_exponent": self.output_exponent(),
            "rule": rule,
        }


@spec_twin("voting")
class FixedVotingLayer(SumDivide):
    r"""Integer twin of :class:`~hwsnn.layer.VotingLayer` (``[..., C*v] -> [..., C]``).

    * float layer: :math:`y_c = \frac1v \sum_{k<v} x_{cv+k}`;
    * integer twin: :math:`s_c = \mathrm{ovf}(\sum_{k<v} x_{q,cv+k})`.

    ``ovf``: the target's accumulator overflow into the accumulator width (counted in
    ``saturations["accumulator"]``). Then, :math:`v = 2^k`: output :math:`s_c` with exponent
    :math:`e_{in}-k` (exact), or with ``shift=True`` :math:`s_c \gg k` (floor) with exponent
    :math:`e_{in}`; :math:`v` not a power of two: the sum :math:`s_c` is kept (``divides = False``,
    the report says "sum kept (voting_size not a power of two)"). :meth:`dequantize_output` gives
    the float mean in every case. Output dtype: the accumulator's storage dtype. A last dim that
    is not a multiple of ``v`` raises ``ValueError`` (as the float layer).

    :param voting_size: :math:`v \ge 1`
    :param target: target or its name
    :param shift: floor right shift instead of the exponent change (power-of-two ``v`` only)
    :param input_exponent: :math:`e_{in}` (for :meth:`dequantize_output` and the report)
    :param name: layer name
    :param step_mode: ``'s'`` (``[N, C*v]``) or ``'m'`` (``[T, N, C*v]``)
    """

    def __init__(
        self,
        voting_size: int,
        target: Union[str, Target],
        *,
        shift: bool = False,
        input_exponent: int = 0,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        if isinstance(voting_size, bool) or not isinstance(voting_size, numbers.Integral) or voting_size < 1:
            raise ValueError(f"{self.layer_name}: voting_size must be an int >= 1; got {voting_size!r}")
        self.voting_size = int(voting_size)
        self._init_divide(self.voting_size, shift, input_exponent)
        self.step_mode = step_mode

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = arith.require_integer(x, self.layer_name)
        if x.dim() < 1:
            raise ValueError(f"{self.layer_name} expects a tensor [..., C*voting_size]; got a scalar")
        v, n = self.voting_size, x.shape[-1]
        if n % v != 0:
            raise ValueError(
                f"{self.layer_name}: the last dim ({n}) must be a multiple of voting_size ({v}); got input "
                f"shape {tuple(x.shape)}"
            )
        s = x.to(torch.int64).unflatten(-1, (n // v, v)).sum(dim=-1)
        return self._divide(s)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, self.layer_name, min_dim=2)
        return self.single_step_forward(x_seq)

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Voting":
        out = (*input_shape[:-1], input_shape[-1] // self.voting_size) if input_shape else ()
        exp = None if input_exponent is None else self.output_exponent(input_exponent)
        return fmt.Voting(**self._ports(name, input_shape, input_kind, out, "values", exp), voting_size=self.voting_size,
                          shift=self.shift, divisor_log2=self.divisor_log2)

    @classmethod
    def from_spec(cls, spec: "fmt.Voting", target: Target) -> "FixedVotingLayer":
        return cls(spec.voting_size, target, shift=spec.shift, name=spec.name)

    def fixed_report(self) -> dict:
        """Base report plus ``voting_size`` and the division rule."""
        rep = super().fixed_report()
        rep.update(self._divide_report())
        rep["voting_size"] = self.voting_size
        rep["rule"] = rep["rule"].format("voting_size")
        return rep

    def extra_repr(self) -> str:
        return f"voting_size={self.voting_size}, shift={self.shift}, {super().extra_repr()}"


@register(VotingLayer)
def _voting_to_fixed(
    layer: VotingLayer,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_exponent: int = 0,
    shift: bool = False,
) -> FixedVotingLayer:
    """:class:`FixedVotingLayer` with the layer's ``voting_size`` (``clip``: nothing to clip)."""
    return FixedVotingLayer(layer.voting_size, target, shift=shift, input_exponent=input_exponent, name=name)
