"""Step-mode wrappers of stateless torch layers.

Each class *is* the torch layer (same constructor, same ``state_dict`` keys) plus a
``step_mode``: ``'s'`` takes ``[N, ...]`` as torch does; ``'m'`` takes ``[T, N, ...]`` and
folds time into the batch (``[T*N, ...]``) around the torch forward.
"""

from __future__ import annotations

from typing import Any

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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


class Linear(_SeqToANN, nn.Linear):
    """``torch.nn.Linear`` with a step mode (``'m'``: ``[T, N, in] -> [T, N, out]``)."""


class Conv1d(_SeqToANN, nn.Conv1d):
    """``torch.nn.Conv1d`` with a step mode (``'m'``: ``[T, N, C, L]``)."""

    seq_dims = (4,)


class Conv2d(_SeqToANN, nn.Conv2d):
    """``torch.nn.Conv2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)


class Conv3d(_SeqToANN, nn.Conv3d):
    """``torch.nn.Conv3d`` with a step mode (``'m'``: ``[T, N, C, D, H, W]``)."""

    seq_dims = (6,)


class BatchNorm1d(_SeqToANN, nn.BatchNorm1d):
    """``torch.nn.BatchNorm1d`` with a step mode; in ``'m'`` statistics run over ``T*N``."""

    seq_dims = (3, 4)


class BatchNorm2d(_SeqToANN, nn.BatchNorm2d):
    """``torch.nn.BatchNorm2d`` with a step mode; in ``'m'`` statistics run over ``T*N``."""

    seq_dims = (5,)


class AvgPool2d(_SeqToANN, nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)


class MaxPool2d(_SeqToANN, nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)


class AdaptiveAvgPool2d(_SeqToANN, nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` with a step mode (``'m'``: ``[T, N, C, H, W]``)."""

    seq_dims = (5,)


class Flatten(_SeqToANN, nn.Flatten):
    """``torch.nn.Flatten`` with a step mode; ``start_dim``/``end_dim`` count in the folded ``[T*N, ...]``."""
