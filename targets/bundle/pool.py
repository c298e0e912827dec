r"""``avgpool2d`` and ``maxpool2d`` over steps ``[N, C, H, W]``, with torch's geometry.

Output length of an axis: :math:`\lfloor (L + 2p - d(k-1) - 1)/s \rfloor + 1` (ceil with
``ceil_mode``, dropping a last window that would start in the right padding); padding at most half
the kernel. ``avgpool2d``: :math:`s = \mathrm{ovf}(\sum_{\text{window}} x)` (zero padding counted),
then :math:`s \gg \log_2 \mathit{divisor}` when ``shift``; ``maxpool2d``: the window maximum
(padding never wins).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .base import OpSpec, param, register
from .voting import divided, divided_exponent

__all__ = ["AvgPool2d", "MaxPool2d", "pool_output_size"]


def pool_output_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Output length of a pooling axis (torch's rule)."""
    room = n + 2 * p - (d * (k - 1) + 1)
    if room < 0:
        return 0
    out = (room + s - 1) // s + 1 if ceil_mode else room // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _window(op: OpSpec, problems: list[str], dilation: tuple, ceil_mode: bool) -> None:
    for key in ("kernel_size", "stride", "padding"):
        if len(getattr(op, key)) != 2:
            problems.append(f"params.{key}: expected 2 integers; got {list(getattr(op, key))}")
            return
    if len(op.input_shape) != 3:
        problems.append(f"input_shape: pooling takes [C, H, W]; got {list(op.input_shape)}")
        return
    if any(2 * p > k for p, k in zip(op.padding, op.kernel_size)):
        problems.append(f"params.padding: {list(op.padding)} exceeds half the kernel {list(op.kernel_size)}")
        return
    c, h, w = op.input_shape
    out = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip((h, w), op.kernel_size, op.stride, op.padding, dilation))
    if min(out) < 1:
        problems.append(f"input_shape: a {h}x{w} input gives no window")
    elif op.output_shape != (c, *out):
        problems.append(f"output_shape: {list(op.output_shape)}; the geometry gives {[c, *out]}")


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class AvgPool2d(OpSpec):
    kind = "avgpool2d"
    summary = "window sums `ovf(sum)` (zero padding counted), then `>> log2 divisor` when `shift`"

    kernel_size: tuple[int, ...] = param("[kh, kw]", ge=1)
    stride: tuple[int, ...] = param("[sh, sw]", ge=1)
    padding: tuple[int, ...] = param("[ph, pw] zeros on each side", ge=0)
    divisor: int = param("kh*kw, or the float layer's divisor_override", ge=1)
    divisor_log2: Optional[int] = param("log2 divisor when a power of two, else null", ge=0)
    shift: bool = param("divide by a right shift (floor) instead of an exponent change")

    def passes_exponent(self, incoming: Optional[int]) -> Optional[int]:
        return divided(incoming, self.divisor_log2, self.shift)

    def _consistency(self, problems: list[str]) -> None:
        _window(self, problems, (1, 1), False)
        divided_exponent(problems, self, self.divisor, self.divisor_log2, self.shift)


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class MaxPool2d(OpSpec):
    kind = "maxpool2d"
    summary = "window maximum (dilation, ceil_mode as torch; padding never wins)"

    kernel_size: tuple[int, ...] = param("[kh, kw]", ge=1)
    stride: tuple[int, ...] = param("[sh, sw]", ge=1)
    padding: tuple[int, ...] = param("[ph, pw]", ge=0)
    dilation: tuple[int, ...] = param("[dh, dw]", ge=1)
    ceil_mode: bool = param("ceil instead of floor for the output size")

    def passes_exponent(self, incoming: Optional[int]) -> Optional[int]:
        return incoming

    def _consistency(self, problems: list[str]) -> None:
        if len(self.dilation) != 2:
            problems.append(f"params.dilation: expected 2 integers; got {list(self.dilation)}")
            return
        _window(self, problems, self.dilation, self.ceil_mode)
        if self.output_kind != self.input_kind:
            problems.append(f"output.kind: {self.output_kind!r}; maxpool passes its input kind {self.input_kind!r} on")
