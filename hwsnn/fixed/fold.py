r"""Time folding for the stateless twins (pooling, flatten): a ``'m'`` sequence ``[T, N, ...]`` is
folded to ``[T*N, ...]``, the per-step function runs once, and the result is unfolded:
:math:`y[t] = f(x[t])` for every step :math:`t`."""

from __future__ import annotations

from typing import Callable

import torch

from ..base import require_time_axis
from .base import FixedModule

__all__ = ["per_step"]


def per_step(module: FixedModule, x_seq: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Apply the stateless ``fn`` to ``[T, N, ...]`` folded to ``[T*N, ...]``, then unfold."""
    require_time_axis(x_seq, module.layer_name, min_dim=2)
    T, N = x_seq.shape[0], x_seq.shape[1]
    return fn(x_seq.flatten(0, 1)).unflatten(0, (T, N))
