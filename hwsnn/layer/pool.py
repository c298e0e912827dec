"""``AvgPool2d``, ``MaxPool2d``, ``AdaptiveAvgPool2d`` with a step mode (see :mod:`.seq_to_ann`); in
``'m'`` the input is ``[T, N, C, H, W]``."""

from __future__ import annotations

from typing import Optional, Union

import torch.nn as nn

from .seq_to_ann import SeqToANN, Size2, SizeAny

__all__ = ["AvgPool2d", "MaxPool2d", "AdaptiveAvgPool2d"]


class AvgPool2d(SeqToANN, nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)

    def __init__(
        self, kernel_size: Size2, stride: Optional[Size2] = None, padding: Size2 = 0, ceil_mode: bool = False,
        count_include_pad: bool = True, divisor_override: Optional[int] = None, step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, step_mode=step_mode)


class MaxPool2d(SeqToANN, nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``; with
    ``return_indices=True`` both the values and the indices come back as ``[T, N, C, H', W']``)."""

    seq_dims = (5,)

    def __init__(
        self, kernel_size: SizeAny, stride: Optional[SizeAny] = None, padding: SizeAny = 0, dilation: SizeAny = 1,
        return_indices: bool = False, ceil_mode: bool = False, step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode, step_mode=step_mode)


class AdaptiveAvgPool2d(SeqToANN, nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)

    def __init__(self, output_size: Union[int, None, tuple[Optional[int], ...]], step_mode: str = "s") -> None:
        super().__init__(output_size, step_mode=step_mode)
