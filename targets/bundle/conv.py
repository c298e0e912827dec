r"""``conv2d``: a 2-D convolution (``sum`` targets), exported like ``dense``.

:math:`A = \mathrm{ovf}(W \star X)` is the exact integer cross-correlation of ``torch.conv2d``
(stride, zero padding ``[left, right, top, bottom]``, dilation, groups), then
:math:`Y = \mathrm{ovf}(\mathrm{shift}(A, s) + B)` after ``latency`` steps;
:math:`H_{out} = \lfloor (H + p_t + p_b - d_h (k_h - 1) - 1) / s_h \rfloor + 1` (likewise :math:`W_{out}`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..target import Target
from .base import TableFormat, param, register, table
from .dense import SynapticSpec

__all__ = ["Conv2d", "conv_output_size"]


def conv_output_size(n: int, pad: int, k: int, stride: int, dilation: int) -> int:
    """Output length of one spatial axis (``pad``: both sides together)."""
    return (n + pad - dilation * (k - 1) - 1) // stride + 1


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Conv2d(SynapticSpec):
    kind = "conv2d"
    summary = "2-D convolution (`sum` targets): `ovf(shift(ovf(W * X), s) + B)` after `latency` steps"

    in_channels: int = param("input channels C", ge=1)
    out_channels: int = param("output channels O", ge=1)
    kernel_size: tuple[int, ...] = param("[kh, kw]", ge=1)
    stride: tuple[int, ...] = param("[sh, sw]", ge=1)
    padding: tuple[int, ...] = param("[left, right, top, bottom] zeros", ge=0)
    dilation: tuple[int, ...] = param("[dh, dw]", ge=1)
    groups: int = param("groups (divides C and O)", ge=1)
    latency: int = param("steps from an input to its output", ge=0)
    first_layer: bool = param("the input projection of the network")
    weight: np.ndarray = table("[O, C/groups, kh, kw] integer weights (widths.weight)")
    bias: Optional[np.ndarray] = table("[O] integer bias in output units (widths.bias)", required=False)

    def _consistency(self, problems: list[str]) -> None:
        for key, n in (("kernel_size", 2), ("stride", 2), ("dilation", 2), ("padding", 4)):
            if len(getattr(self, key)) != n:
                problems.append(f"params.{key}: expected {n} integers; got {list(getattr(self, key))}")
        if problems:
            return
        if self.in_channels % self.groups or self.out_channels % self.groups:
            problems.append(f"params.groups: {self.groups} must divide in_channels {self.in_channels} and out_channels "
                            f"{self.out_channels}")
            return
        if len(self.input_shape) != 3 or self.input_shape[0] != self.in_channels:
            problems.append(f"input_shape: {list(self.input_shape)}; expected [{self.in_channels}, H, W]")
            return
        _, h, w = self.input_shape
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        left, right, top, bottom = self.padding
        ho, wo = conv_output_size(h, top + bottom, kh, sh, dh), conv_output_size(w, left + right, kw, sw, dw)
        if self.output_shape != (self.out_channels, ho, wo):
            problems.append(f"output_shape: {list(self.output_shape)}; the geometry gives [{self.out_channels}, {ho}, {wo}]")
        want = (self.out_channels, self.in_channels // self.groups, kh, kw)
        if self.weight is not None and self.weight.shape != want:
            problems.append(f"tables.weight: shape {list(self.weight.shape)}; expected {list(want)}")
        if self.output_kind != "values":
            problems.append(f"output.kind: a convolution outputs 'values'; got {self.output_kind!r}")
        self._synaptic_consistency(problems, self.weight, self.bias, self.out_channels)

    def _check_target(self, target: Target, problems: list[str]) -> None:
        if target.synapse.accumulation != "sum":
            problems.append(f"op: conv2d needs a target that sums its inputs; {target.name!r} accumulates by "
                            f"{target.synapse.accumulation!r}")
        self._synaptic_target(target, problems)

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role == "bias":
            return TableFormat.of(target.widths.bias, self.output_exponent)
        return super().table_format(role, target)
