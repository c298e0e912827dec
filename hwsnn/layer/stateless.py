"""Step-mode wrappers of stateless torch layers.

Each class *is* the torch layer (same ``state_dict`` keys) plus a ``step_mode``: ``'s'`` takes
``[N, ...]`` as torch does; ``'m'`` takes ``[T, N, ...]`` and folds time into the batch
(``[T*N, ...]``) around the torch forward (a tuple output, e.g. ``MaxPool2d(return_indices=True)``,
is unfolded element by element). Constructors are SpikingJelly 2.0's: the torch arguments in
torch's order, then ``step_mode`` (so ``Linear(3, 2, True, 'm')`` works); torch's ``device`` and
``dtype`` are keyword-only extras.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

import torch
import torch.nn as nn

from ..base import StepModule
from ..functional.forward import seq_to_ann_forward

__all__ = [
    "Linear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "BatchNorm1d",
    "BatchNorm2d",
    "AvgPool2d",
    "MaxPool2d",
    "AdaptiveAvgPool2d",
    "Flatten",
]


class _SeqToANN(StepModule):
    """Mixin: dispatch on ``step_mode``; ``seq_dims`` lists the input ranks accepted in ``'m'`` mode."""

    seq_dims: tuple[int, ...] = ()  # empty: any rank >= 2

    def __init__(self, *args: Any, step_mode: str = "s", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> Any:
        if self.step_mode == "s":
            return super().forward(x)
        if self.seq_dims and (not isinstance(x, torch.Tensor) or x.dim() not in self.seq_dims):
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} in step_mode 'm' expects [T, N, ...] inputs of rank "
                f"{' or '.join(map(str, self.seq_dims))}; got {got} (is the time axis missing?)"
            )
        return seq_to_ann_forward(x, super().forward)

    def extra_repr(self) -> str:
        base = super().extra_repr()
        return f"{base}, step_mode={self.step_mode}" if base else f"step_mode={self.step_mode}"


# torch's own annotations (``hwsnn.config`` checks run-file values against them)
_Size1 = Union[int, tuple[int]]
_Size2 = Union[int, tuple[int, int]]
_Size3 = Union[int, tuple[int, int, int]]
_SizeAny = Union[int, tuple[int, ...]]
_PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]


class Linear(_SeqToANN, nn.Linear):
    """``torch.nn.Linear`` with a step mode (``'m'``: ``[T, N, in] -> [T, N, out]``)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, step_mode=step_mode, device=device, dtype=dtype)


class Conv1d(_SeqToANN, nn.Conv1d):
    """``torch.nn.Conv1d`` with a step mode (``'m'``: ``[T, N, C, L]``)."""

    seq_dims = (4,)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: _Size1, stride: _Size1 = 1,
        padding: Union[str, _Size1] = 0, dilation: _Size1 = 1, groups: int = 1, bias: bool = True,
        padding_mode: _PaddingMode = "zeros", step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, step_mode=step_mode, device=device, dtype=dtype)


class Conv2d(_SeqToANN, nn.Conv2d):
    """``torch.nn.Conv2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: _Size2, stride: _Size2 = 1,
        padding: Union[str, _Size2] = 0, dilation: _Size2 = 1, groups: int = 1, bias: bool = True,
        padding_mode: _PaddingMode = "zeros", step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, step_mode=step_mode, device=device, dtype=dtype)


class Conv3d(_SeqToANN, nn.Conv3d):
    """``torch.nn.Conv3d`` with a step mode (``'m'``: ``[T, N, C, D, H, W]``)."""

    seq_dims = (6,)

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: _Size3, stride: _Size3 = 1,
        padding: Union[str, _Size3] = 0, dilation: _Size3 = 1, groups: int = 1, bias: bool = True,
        padding_mode: _PaddingMode = "zeros", step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, step_mode=step_mode, device=device, dtype=dtype)


class _BatchNorm(_SeqToANN):
    """Shared constructor of the step-mode batch norms (torch's arguments, then ``step_mode``)."""

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
        track_running_stats: bool = True, step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None, bias: bool = True,
    ) -> None:
        extra = {} if bias is True else {"bias": bias}  # torch's keyword-only ``bias`` (torch >= 2.6)
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, step_mode=step_mode, device=device, dtype=dtype,
            **extra,
        )


class BatchNorm1d(_BatchNorm, nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` with a step mode; in ``'m'`` statistics run over ``T*N``."""

    seq_dims = (3, 4)


class BatchNorm2d(_BatchNorm, nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` with a step mode; in ``'m'`` statistics run over ``T*N``."""

    seq_dims = (5,)


class AvgPool2d(_SeqToANN, nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)

    def __init__(
        self, kernel_size: _Size2, stride: Optional[_Size2] = None, padding: _Size2 = 0, ceil_mode: bool = False,
        count_include_pad: bool = True, divisor_override: Optional[int] = None, step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, step_mode=step_mode)


class MaxPool2d(_SeqToANN, nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``; with
    ``return_indices=True`` both the values and the indices come back as ``[T, N, C, H', W']``)."""

    seq_dims = (5,)

    def __init__(
        self, kernel_size: _SizeAny, stride: Optional[_SizeAny] = None, padding: _SizeAny = 0, dilation: _SizeAny = 1,
        return_indices: bool = False, ceil_mode: bool = False, step_mode: str = "s",
    ) -> None:
        super().__init__(kernel_size, stride, padding, dilation, return_indices, ceil_mode, step_mode=step_mode)


class AdaptiveAvgPool2d(_SeqToANN, nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)

    def __init__(self, output_size: Union[int, None, tuple[Optional[int], ...]], step_mode: str = "s") -> None:
        super().__init__(output_size, step_mode=step_mode)


class Flatten(_SeqToANN, nn.Flatten):
    """``torch.nn.Flatten`` with a step mode; ``start_dim``/``end_dim`` count in the folded ``[T*N, ...]``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1, step_mode: str = "s") -> None:
        super().__init__(start_dim, end_dim, step_mode=step_mode)
