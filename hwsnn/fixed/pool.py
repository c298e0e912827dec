r"""Integer twins of the pooling layers (:mod:`hwsnn.layer.pool` and ``torch.nn``).

* :class:`FixedAvgPool2d`: integer window sum, divided as in :mod:`hwsnn.fixed.voting` (window area
  :math:`2^k`: exact exponent shift, or a floor shift with ``shift=True``; else the sum is kept);
* :class:`FixedMaxPool2d`: integer window maximum (exact, no overflow possible).

:class:`FixedFlatten` (a reshape) lives in :mod:`hwsnn.fixed.flatten`; it is re-exported here
because ``hwsnn.fixed`` imports it from this module.

**Exactness of the computation.** Window sums and maxima are computed with float64 pooling
kernels only when every value is an exact float64 integer and so is every partial sum
(:math:`\max|x| \cdot \text{area} < 2^{53}`); otherwise an ``int64`` path (``Tensor.unfold``)
computes them. Both give the same integers.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from targets import Target
from targets import bundle as fmt

from ..layer.pool import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from . import arith
from .base import FixedModule, spec_twin
from .convert import register
from .fold import per_step
from .voting import SumDivide

__all__ = ["FixedAvgPool2d", "FixedMaxPool2d", "window_sum", "window_max"]

_EXACT = 1 << 53

Pair = Union[int, Sequence[int]]


def _pair(v: Pair, what: str) -> tuple[int, int]:
    if isinstance(v, bool):
        raise TypeError(f"{what} must be an int or a pair of ints; got {v!r}")
    if isinstance(v, int):
        return (v, v)
    t = tuple(v)
    if len(t) != 2 or not all(isinstance(i, int) and not isinstance(i, bool) for i in t):
        raise TypeError(f"{what} must be an int or a pair of ints; got {v!r}")
    return t  # type: ignore[return-value]


def _max_abs(x: torch.Tensor) -> int:
    if x.numel() == 0:
        return 0
    if x.dtype == torch.bool:
        return 1
    return max(abs(int(x.max())), abs(int(x.min())))


def window_sum(
    x: torch.Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    force_int64: bool = False,
) -> torch.Tensor:
    """Integer sum over every pooling window of ``x`` ``[..., H, W]`` (zero padding), ``int64``.

    float64 ``avg_pool2d`` (divisor 1) when exact (:math:`\\max|x| \\cdot k_H k_W < 2^{53}`), else
    ``Tensor.unfold`` in ``int64``.
    """
    kh, kw = kernel
    if not force_int64 and _max_abs(x) * kh * kw < _EXACT:
        lead = x.shape[:-2]
        x4 = x.reshape(-1, 1, *x.shape[-2:]).to(torch.float64)
        s = F.avg_pool2d(x4, kernel, stride, padding, ceil_mode=False, count_include_pad=True, divisor_override=1)
        return s.to(torch.int64).reshape(*lead, *s.shape[-2:])
    xi = x.to(torch.int64)
    ph, pw = padding
    if ph or pw:
        xi = F.pad(xi, (pw, pw, ph, ph))
    return xi.unfold(-2, kh, stride[0]).unfold(-2, kw, stride[1]).sum(dim=(-1, -2))


def _pool_len(length: int, k: int, s: int, p: int, dil: int, ceil_mode: bool) -> int:
    """torch's pooling output length (the last window must start inside the input or left pad)."""
    span = dil * (k - 1) + 1
    num = length + 2 * p - span
    out = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (out - 1) * s >= length + p:
        out -= 1
    return out


def window_max(
    x: torch.Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
    ceil_mode: bool = False,
    force_int64: bool = False,
) -> torch.Tensor:
    """Integer maximum over every pooling window of ``x`` ``[..., H, W]`` (padding never wins),
    in ``x``'s dtype: float64 ``max_pool2d`` when exact (:math:`\\max|x| < 2^{53}`), else ``int64``."""
    if not force_int64 and _max_abs(x) < _EXACT:
        lead = x.shape[:-2]
        x4 = x.reshape(-1, 1, *x.shape[-2:]).to(torch.float64)
        m = F.max_pool2d(x4, kernel, stride, padding, dilation, ceil_mode=ceil_mode)
        return m.to(x.dtype).reshape(*lead, *m.shape[-2:])
    xi = x.to(torch.int64)
    low = torch.iinfo(torch.int64).min
    sizes = []
    for axis, (L, k, s, p, d) in enumerate(zip(x.shape[-2:], kernel, stride, padding, dilation)):
        out = _pool_len(L, k, s, p, d, ceil_mode)
        span = d * (k - 1) + 1
        right = p + max(0, (out - 1) * s + span - (L + 2 * p))
        sizes.append((out, span, p, right))
    (oh, sh_, ph, rh), (ow, sw_, pw, rw) = sizes
    xi = F.pad(xi, (pw, rw, ph, rh), value=low)
    win = xi.unfold(-2, sh_, stride[0])[..., :oh, :, :].unfold(-2, sw_, stride[1])[..., :ow, :, :]
    # win: [..., oh, ow, span_h, span_w]; keep the dilated taps
    win = win[..., :: dilation[0], :: dilation[1]]
    return win.amax(dim=(-1, -2)).to(x.dtype)


def _check_pool_input(x: object, who: str, ranks: tuple[int, ...], shape: str) -> torch.Tensor:
    x = arith.require_integer(x, who)
    if x.dim() not in ranks:
        raise ValueError(f"{who} expects {shape}; got shape {tuple(x.shape)}")
    return x


class _WindowStep:
    """Both step modes of a 2-d pooling twin around its ``_step`` (one step ``[N, C, H, W]``)."""

    layer_name: str

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _check_pool_input(x, self.layer_name, (3, 4), "a step [N, C, H, W] (or [C, H, W])")
        return self._step(x)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        x_seq = _check_pool_input(x_seq, self.layer_name, (5,), "[T, N, C, H, W] in step_mode 'm'")
        return per_step(self, x_seq, self._step)


@spec_twin("avgpool2d")
class FixedAvgPool2d(_WindowStep, SumDivide):
    r"""Integer twin of ``AvgPool2d`` (zero padding counted, ``ceil_mode=False``).

    * float layer: :math:`y = \frac1{A}\sum_{(i,j)\in\text{window}} x_{ij}`;
    * integer twin: :math:`s = \mathrm{ovf}(\sum_{\text{window}} x_{q,ij})`,

    with :math:`A = k_H k_W` (or ``divisor_override``). ``ovf``: the target's accumulator overflow
    into the accumulator width, counted in ``saturations["accumulator"]``. :math:`A = 2^k`: the
    output :math:`s` has exponent :math:`e_{in}-k` (exact), or with ``shift=True`` the output is
    :math:`s \gg k` (floor) at exponent :math:`e_{in}`; otherwise the sum is kept (``divides =
    False``, reported as "sum kept (window area not a power of two)"). :meth:`dequantize_output`
    gives the float mean. Output dtype: the accumulator's storage dtype.

    :param kernel_size: window ``k`` or ``(kH, kW)``
    :param target: target or its name
    :param stride: default ``kernel_size``
    :param padding: zero padding (counted in the divisor, as ``count_include_pad=True``)
    :param divisor_override: divisor instead of the area
    :param shift: floor right shift instead of the exponent change
    :param input_exponent: :math:`e_{in}`
    :param name: layer name
    :param step_mode: ``'s'`` (``[N, C, H, W]``) or ``'m'`` (``[T, N, C, H, W]``)
    """

    def __init__(
        self,
        kernel_size: Pair,
        target: Union[str, Target],
        stride: Optional[Pair] = None,
        padding: Pair = 0,
        *,
        divisor_override: Optional[int] = None,
        shift: bool = False,
        input_exponent: int = 0,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if divisor_override is not None and (isinstance(divisor_override, bool) or int(divisor_override) < 1):
            raise ValueError(f"{self.layer_name}: divisor_override must be an int >= 1; got {divisor_override!r}")
        self.divisor_override = None if divisor_override is None else int(divisor_override)
        area = self.kernel_size[0] * self.kernel_size[1]
        self._init_divide(area if self.divisor_override is None else self.divisor_override, shift, input_exponent)
        self.step_mode = step_mode

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        return self._divide(window_sum(x, self.kernel_size, self.stride, self.padding))

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.AvgPool2d":
        exp = None if input_exponent is None else self.output_exponent(input_exponent)
        return fmt.AvgPool2d(**self._ports(name, input_shape, input_kind, self.step_output_shape(input_shape), "values", exp),
                             kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                             divisor=self.divisor, divisor_log2=self.divisor_log2, shift=self.shift)

    @classmethod
    def from_spec(cls, spec: "fmt.AvgPool2d", target: Target) -> "FixedAvgPool2d":
        area = spec.kernel_size[0] * spec.kernel_size[1]
        return cls(spec.kernel_size, target, spec.stride, spec.padding,
                   divisor_override=None if spec.divisor == area else spec.divisor, shift=spec.shift, name=spec.name)

    def fixed_report(self) -> dict:
        """Base report plus the window and the division rule."""
        rep = super().fixed_report()
        rep.update(self._divide_report())
        rep.update(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding)
        rep["rule"] = rep["rule"].format("window area" if self.divisor_override is None else "divisor_override")
        return rep

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"divisor={self.divisor}, shift={self.shift}, {super().extra_repr()}"
        )


@spec_twin("maxpool2d")
class FixedMaxPool2d(_WindowStep, FixedModule):
    r"""Integer twin of ``MaxPool2d``: :math:`y = \max_{\text{window}} x` on both sides,
    :math:`y_q = \max_{\text{window}} x_q` (padding never wins; exponent and dtype of the input;
    no rounding or overflow on any target).

    :param kernel_size: window
    :param target: target or its name
    :param stride: default ``kernel_size``
    :param padding: implicit padding (never selected)
    :param dilation: tap spacing
    :param ceil_mode: torch's ``ceil_mode`` output size
    :param name: layer name
    :param step_mode: ``'s'`` (``[N, C, H, W]``) or ``'m'`` (``[T, N, C, H, W]``)
    """

    def __init__(
        self,
        kernel_size: Pair,
        target: Union[str, Target],
        stride: Optional[Pair] = None,
        padding: Pair = 0,
        dilation: Pair = 1,
        ceil_mode: bool = False,
        *,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        self.dilation = _pair(dilation, "dilation")
        self.ceil_mode = bool(ceil_mode)
        self.step_mode = step_mode

    def _step(self, x: torch.Tensor) -> torch.Tensor:
        return window_max(x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode)

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.MaxPool2d":
        return fmt.MaxPool2d(**self._ports(name, input_shape, input_kind, self.step_output_shape(input_shape), input_kind,
                                           input_exponent),
                             kernel_size=self.kernel_size, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, ceil_mode=self.ceil_mode)

    @classmethod
    def from_spec(cls, spec: "fmt.MaxPool2d", target: Target) -> "FixedMaxPool2d":
        return cls(spec.kernel_size, target, spec.stride, spec.padding, spec.dilation, spec.ceil_mode, name=spec.name)

    def fixed_report(self) -> dict:
        """Base report plus the window."""
        rep = super().fixed_report()
        rep.update(kernel_size=self.kernel_size, stride=self.stride, padding=self.padding, dilation=self.dilation)
        return rep


# -- converters ---------------------------------------------------------------------------------
@register(AvgPool2d, nn.AvgPool2d)
def _avgpool_to_fixed(
    layer: nn.AvgPool2d,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_exponent: int = 0,
    shift: bool = False,
) -> FixedAvgPool2d:
    """:class:`FixedAvgPool2d` (``ceil_mode`` and ``count_include_pad=False`` with padding are not
    twinned: their divisor varies over the border windows)."""
    who = name or type(layer).__name__
    padding = _pair(layer.padding, "padding")
    if layer.ceil_mode:
        raise ValueError(f"{who}: AvgPool2d with ceil_mode=True has no integer twin (border divisors vary)")
    if not layer.count_include_pad and any(padding):
        raise ValueError(f"{who}: AvgPool2d with padding and count_include_pad=False has no integer twin (border divisors vary)")
    return FixedAvgPool2d(
        layer.kernel_size, target, layer.stride, padding, divisor_override=layer.divisor_override,
        shift=shift, input_exponent=input_exponent, name=name,
    )


@register(AdaptiveAvgPool2d, nn.AdaptiveAvgPool2d)
def _adaptive_avgpool_to_fixed(
    layer: nn.AdaptiveAvgPool2d,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_size: Optional[Sequence[int]] = None,
    input_exponent: int = 0,
    shift: bool = False,
) -> FixedAvgPool2d:
    """:class:`FixedAvgPool2d` for an adaptive pool whose windows are all equal: needs
    ``input_size=(H, W)`` with ``H`` and ``W`` multiples of the output size."""
    who = name or type(layer).__name__
    if input_size is None:
        raise TypeError(f"{who}: converting AdaptiveAvgPool2d needs input_size=(H, W) (its windows depend on it)")
    H, W = _pair(tuple(input_size)[-2:], "input_size")
    out = layer.output_size
    oh, ow = (out, out) if isinstance(out, int) else tuple(out)
    oh = H if oh is None else oh
    ow = W if ow is None else ow
    if H % oh or W % ow:
        raise ValueError(
            f"{who}: input {H}x{W} is not a multiple of the output {oh}x{ow}: the adaptive windows differ in "
            "size and have no integer twin"
        )
    k = (H // oh, W // ow)
    return FixedAvgPool2d(k, target, k, 0, shift=shift, input_exponent=input_exponent, name=name)


@register(MaxPool2d, nn.MaxPool2d)
def _maxpool_to_fixed(
    layer: nn.MaxPool2d,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_exponent: Optional[int] = None,
) -> FixedMaxPool2d:
    """:class:`FixedMaxPool2d` with the layer's window (``return_indices`` is not twinned)."""
    if layer.return_indices:
        raise ValueError(f"{name or type(layer).__name__}: MaxPool2d with return_indices=True has no integer twin")
    return FixedMaxPool2d(
        layer.kernel_size, target, layer.stride, layer.padding, layer.dilation, layer.ceil_mode, name=name
    )
