"""``BatchNorm1d``, ``BatchNorm2d`` with a step mode (see :mod:`.seq_to_ann`); in ``'m'`` the
statistics run over the folded ``T*N`` samples."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn as nn

from .seq_to_ann import SeqToANN

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(SeqToANN):
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
