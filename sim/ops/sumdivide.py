r"""The sum-then-divide rule shared by ``voting`` (:mod:`.voting`) and ``avgpool2d`` (:mod:`.pool`).

A sum :math:`s` of :math:`v` terms (the group or window size) stands for :math:`v \cdot` the mean.
After the accumulator overflow :math:`s \leftarrow \mathrm{ovf}(s)` (:func:`.chunk.accumulator_overflow`)
the division is either an exponent change (output exponent :math:`e_{in} - \log_2 v`, the integers
unchanged) or, when ``shift`` is set, the hardware right shift :math:`s \gg \log_2 v` (floor toward
:math:`-\infty`; output exponent :math:`e_{in}`).
"""

from __future__ import annotations

import numpy as np

from .base import Op
from .chunk import accumulator_overflow

__all__ = ["SumDivideOp"]


class SumDivideOp(Op):
    """Shared ``shift``/``divisor_log2`` handling of voting and avgpool2d."""

    def _init_divide(self) -> None:
        self.shift, self.divisor_log2 = self.spec.shift, self.spec.divisor_log2

    def _finish(self, s: np.ndarray) -> np.ndarray:
        s = accumulator_overflow(self, s)
        if self.shift:
            s = s >> self.divisor_log2  # int64 arithmetic shift: floor toward -inf
        return s
