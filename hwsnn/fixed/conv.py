r"""Integer twin of the 2-D convolution: :class:`FixedConv2d`.

Same rules as the dense twin (:mod:`hwsnn.fixed.dense`) on ``sum`` targets: the exact integer
convolution :math:`A = W \star X` (exponent :math:`e_w + e_x`), then
:math:`Y = \mathrm{ovf}(\mathrm{shift}(\mathrm{ovf}(A), s) + B)` with :math:`e_{out} = e_w + e_x - s`,
the shift flooring for :math:`s < 0`, overflow by the accumulator width/mode (counted in
``saturations['accumulator']``), and a latency FIFO of :math:`L` steps.

:math:`W \star X` is computed by a float64 convolution while
:math:`\max|W|\,\max|X|\,C_{in}/g\,k_h k_w < 2^{53}` (then every partial sum is an exactly held
integer), else by an int64 unfold + matmul (im2col with ``Tensor.unfold``). Padding is zeros only.

Targets with per-event saturation (Xylo) have no convolution: constructing a conv twin for them
raises ``ValueError``.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from targets import Target
from targets import bundle as fmt

from .base import resolve_target, spec_tensor, spec_twin
from .convert import register
from .synaptic import F64_EXACT, I64_LIMIT, FixedSynapticLayer, check_fan, max_abs, quantize_synaptic

__all__ = ["FixedConv2d", "conv2d_to_fixed", "int_conv2d"]

_Pair = Union[int, tuple[int, int]]


def _pair(v: _Pair, what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{what} must be an int or a pair; got {v!r}")
    return t  # type: ignore[return-value]


def _pad4(padding: Union[str, _Pair], kernel: tuple[int, int], dilation: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` zero padding, as torch's ``padding`` (int, pair, 'valid', 'same')."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' needs stride 1 (as in torch)")
            out = []
            for k, d in ((kernel[1], dilation[1]), (kernel[0], dilation[0])):
                total = d * (k - 1)
                out += [total // 2, total - total // 2]
            return tuple(out)  # type: ignore[return-value]
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same'; got {padding!r}")
    ph, pw = _pair(padding, "padding")
    return (pw, pw, ph, ph)


def int_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    stride: _Pair = 1,
    padding: Union[str, _Pair] = 0,
    dilation: _Pair = 1,
    groups: int = 1,
    force_int64: bool = False,
) -> torch.Tensor:
    r"""Exact integer 2-D convolution (cross-correlation, as torch) of ``x`` ``[B, C, H, W]``, int64 out.

    Float64 ``conv2d`` when :math:`\max|X|\,\max|W|\,C/g\,k_h k_w < 2^{53}` (and not
    ``force_int64``), else int64 im2col + matmul on the CPU. ``OverflowError`` at :math:`\ge 2^{63}`.
    """
    o, cg, kh, kw = weight.shape
    st, dl = _pair(stride, "stride"), _pair(dilation, "dilation")
    pad = _pad4(padding, (kh, kw), dl, st)
    bound = max_abs(x) * max_abs(weight) * max(cg * kh * kw, 1)
    xp = F.pad(x, pad) if any(pad) else x
    if bound < F64_EXACT and not force_int64:
        y = F.conv2d(xp.to(torch.float64), weight.to(torch.float64), None, st, 0, dl, groups)
        return y.to(torch.int64)
    if bound >= I64_LIMIT:
        raise OverflowError(f"int_conv2d: max|X| * max|W| * fan-in = {bound} >= 2^63; the sum could overflow int64")
    dev = x.device
    xp = xp.to("cpu", torch.int64)
    w = weight.to("cpu", torch.int64)
    b, c = xp.shape[:2]
    ekh, ekw = dl[0] * (kh - 1) + 1, dl[1] * (kw - 1) + 1
    patches = xp.unfold(2, ekh, st[0]).unfold(3, ekw, st[1])[..., :: dl[0], :: dl[1]]  # [B, C, Ho, Wo, kh, kw]
    ho, wo = patches.shape[2:4]
    patches = patches.reshape(b, groups, cg, ho, wo, kh, kw).permute(0, 1, 3, 4, 2, 5, 6)
    patches = patches.reshape(b, groups, ho * wo, cg * kh * kw)  # [B, G, HoWo, K]
    wg = w.reshape(groups, o // groups, cg * kh * kw).transpose(1, 2)  # [G, K, Og]
    y = torch.matmul(patches, wg)  # [B, G, HoWo, Og]
    y = y.permute(0, 1, 3, 2).reshape(b, o, ho, wo)
    return y.to(dev)


@spec_twin("conv2d")
class FixedConv2d(FixedSynapticLayer):
    r"""Integer twin of :class:`torch.nn.Conv2d` / :class:`hwsnn.layer.Conv2d` (``sum`` targets only).

    ==============================  ==========================================================
    float                           integer twin
    ==============================  ==========================================================
    :math:`y = w \star x + b`       :math:`Y = \mathrm{ovf}(\mathrm{shift}(\mathrm{ovf}(W \star X), s) + B)`
    :math:`w = W 2^{e_w}`           :math:`e_{out} = e_w + e_x - s`, :math:`b \approx B\,2^{e_{out}}`
    ==============================  ==========================================================

    Rounding: the shift floors (:math:`s < 0`); overflow: the accumulator width and mode, counted.
    Step modes: ``'s'`` ``[N, C, H, W]``, ``'m'`` ``[T, N, C, H, W]``; latency :math:`L`: step
    :math:`t` outputs the result of step :math:`t - L` (zeros first).

    Fan-in is the number of nonzero weights of an output channel's filter; fan-out of an input
    channel the number of nonzero weights reading it (exact for stride 1 away from the border, an
    upper bound otherwise).

    :param weight_int: integer weights ``[C_out, C_in / groups, k_h, k_w]``
    :param bias_int: integer bias ``[C_out]`` in output units, or ``None``
    :param force_int64: always use the int64 im2col path (testing)
    (other parameters as :class:`~hwsnn.fixed.dense.FixedLinear`; ``stride``, ``padding``,
    ``dilation``, ``groups`` as torch)
    """

    def __init__(
        self,
        weight_int: torch.Tensor,
        target: Union[str, Target],
        bias_int: Optional[torch.Tensor] = None,
        weight_shift: int = 0,
        stride: _Pair = 1,
        padding: Union[str, _Pair] = 0,
        dilation: _Pair = 1,
        groups: int = 1,
        latency: Optional[int] = None,
        first_layer: bool = False,
        name: Optional[str] = None,
        *,
        input_exponent: int = 0,
        weight_exponent: int = 0,
        clip: bool = False,
        force_int64: bool = False,
    ) -> None:
        tg = resolve_target(target)
        lname = name or "FixedConv2d"
        if tg.synapse.accumulation != "sum":
            raise ValueError(
                f"{lname}: target {tg.name!r} accumulates synaptic events one by one "
                f"({tg.synapse.accumulation}) and has no convolution; only dense layers map to it "
                "(flatten the convolution into a dense layer if the sizes allow)"
            )
        super().__init__(
            weight_int, tg, bias_int, weight_shift, latency, first_layer, lname,
            input_exponent=input_exponent, weight_exponent=weight_exponent, clip=clip,
        )
        if self.weight.dim() != 4:
            raise ValueError(f"{lname}: weight must be [C_out, C_in/groups, kh, kw]; got {tuple(self.weight.shape)}")
        self.out_channels, cg, kh, kw = self.weight.shape
        self.groups = int(groups)
        if self.groups < 1 or self.out_channels % self.groups:
            raise ValueError(f"{lname}: groups={groups} must divide C_out={self.out_channels}")
        self.in_channels = cg * self.groups
        self.kernel_size = (kh, kw)
        self.stride, self.dilation = _pair(stride, "stride"), _pair(dilation, "dilation")
        self.padding = padding if isinstance(padding, str) else _pair(padding, "padding")
        _pad4(self.padding, self.kernel_size, self.dilation, self.stride)  # validate
        self.force_int64 = bool(force_int64)
        if self.bias is not None and tuple(self.bias.shape) != (self.out_channels,):
            raise ValueError(f"{lname}: bias must have shape ({self.out_channels},); got {tuple(self.bias.shape)}")
        nz = self.weight != 0
        fan_in = nz.flatten(1).sum(1)
        og = self.out_channels // self.groups
        fan_out = nz.reshape(self.groups, og, cg, kh * kw).sum((1, 3)).reshape(-1)  # per input channel
        check_fan(lname, tg, fan_in, fan_out, note=" (conv channel)")

    def _bias_view(self, y: torch.Tensor) -> torch.Tensor:
        return self.bias.to(torch.int64).view(-1, 1, 1)

    def _raw_sum(self, x_seq: torch.Tensor) -> torch.Tensor:
        t = x_seq.shape[0]
        x = x_seq.reshape(-1, *x_seq.shape[2:])
        y = int_conv2d(x, self.weight, self.stride, self.padding, self.dilation, self.groups, self.force_int64)
        return y.reshape(t, -1, *y.shape[1:])

    def _run(self, x_seq: torch.Tensor) -> torch.Tensor:
        if x_seq.dim() != 5 or x_seq.shape[2] != self.in_channels:
            got = tuple(x_seq.shape[1:]) if self.step_mode == "s" else tuple(x_seq.shape)
            want = "[N, C, H, W]" if self.step_mode == "s" else "[T, N, C, H, W]"
            raise ValueError(f"{self.layer_name}: expects {want} with C = {self.in_channels}; got {got}")
        return self._sum_sequence(x_seq)

    # -- the export format ---------------------------------------------------------------------
    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Conv2d":
        return fmt.Conv2d(
            **self._ports(name, input_shape, input_kind, self.step_output_shape(input_shape), "values", self.output_exponent),
            in_channels=int(self.in_channels), out_channels=int(self.out_channels), kernel_size=self.kernel_size,
            stride=self.stride, padding=_pad4(self.padding, self.kernel_size, self.dilation, self.stride),
            dilation=self.dilation, groups=self.groups, latency=self.latency, first_layer=self.first_layer,
            weight_shift=self.weight_shift, input_exponent=self.input_exponent, weight_exponent=self.weight_exponent,
            weight=self.weight, bias=self.bias,
        )

    @classmethod
    def from_spec(cls, spec: "fmt.Conv2d", target: Target) -> "FixedConv2d":
        left, right, top, bottom = spec.padding
        if left != right or top != bottom:
            raise ValueError(f"{spec.name}: asymmetric padding {list(spec.padding)} cannot be rebuilt as a FixedConv2d")
        return cls(spec_tensor(spec.weight), target, spec_tensor(spec.bias), spec.weight_shift, spec.stride, (top, left),
                   spec.dilation, spec.groups, latency=spec.latency, first_layer=spec.first_layer, name=spec.name,
                   input_exponent=spec.input_exponent, weight_exponent=spec.weight_exponent)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, {super().extra_repr()}"
        )


@register(nn.Conv2d)
def conv2d_to_fixed(
    layer: nn.Conv2d,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_exponent: int = 0,
    weight_exponent: Optional[int] = None,
    output_exponent: Optional[int] = None,
    latency: Optional[int] = None,
    first_layer: bool = False,
) -> FixedConv2d:
    r"""Convert a float :class:`torch.nn.Conv2d` (or :class:`hwsnn.layer.Conv2d`) to :class:`FixedConv2d`.

    Quantization as :func:`~hwsnn.fixed.dense.linear_to_fixed`; stride, padding, dilation and groups
    are taken from the layer; ``padding_mode`` must be ``'zeros'``.
    """
    lname = name or "Conv2d"
    tg = resolve_target(target)
    if getattr(layer, "padding_mode", "zeros") != "zeros":
        raise ValueError(f"{lname}: only zero padding has an integer twin; got padding_mode={layer.padding_mode!r}")
    if tg.synapse.accumulation != "sum":
        raise ValueError(
            f"{lname}: target {tg.name!r} accumulates synaptic events one by one and has no convolution"
        )
    q = quantize_synaptic(layer, tg, lname, clip, input_exponent, weight_exponent, output_exponent)
    twin = FixedConv2d(
        q["weight"], tg, q["bias"], q["shift"], layer.stride, layer.padding, layer.dilation, layer.groups,
        latency=latency, first_layer=first_layer, name=lname, input_exponent=q["e_x"], weight_exponent=q["e_w"],
        clip=clip,
    )
    twin.count_clipped("weight", q["clipped_w"])
    twin.count_clipped("bias", q["clipped_b"])
    return twin
