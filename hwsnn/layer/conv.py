"""``Conv1d``, ``Conv2d``, ``Conv3d`` with a step mode (see :mod:`.seq_to_ann`); in ``'m'`` the input
is ``[T, N, C, *spatial]``."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
import torch.nn as nn

from .seq_to_ann import SeqToANN, PaddingMode, Size1, Size2, Size3

__all__ = ["Conv1d", "Conv2d", "Conv3d"]


class Conv1d(SeqToANN, nn.Conv1d):
    """``torch.nn.Conv1d`` with a step mode (``'m'``: ``[T, N, C, L]``)."""

    seq_dims = (4,)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size1, stride: Size1 = 1,
        padding: Union[str, Size1] = 0, dilation: Size1 = 1, groups: int = 1, bias: bool = True,
        padding_mode: PaddingMode = "zeros", step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, step_mode=step_mode, device=device, dtype=dtype)


class Conv2d(SeqToANN, nn.Conv2d):
    """``torch.nn.Conv2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size2, stride: Size2 = 1,
        padding: Union[str, Size2] = 0, dilation: Size2 = 1, groups: int = 1, bias: bool = True,
        padding_mode: PaddingMode = "zeros", step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, step_mode=step_mode, device=device, dtype=dtype)


class Conv3d(SeqToANN, nn.Conv3d):
    """``torch.nn.Conv3d`` with a step mode (``'m'``: ``[T, N, C, D, H, W]``)."""

    seq_dims = (6,)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: Size3, stride: Size3 = 1,
        padding: Union[str, Size3] = 0, dilation: Size3 = 1, groups: int = 1, bias: bool = True,
        padding_mode: PaddingMode = "zeros", step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, step_mode=step_mode, device=device, dtype=dtype)
