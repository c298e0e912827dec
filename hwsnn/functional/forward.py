"""Running modules over the time axis (time is dim 0: ``x_seq`` is ``[T, N, ...]``)."""

from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn as nn

from ..base import require_time_axis

__all__ = ["multi_step_forward", "seq_to_ann_forward"]

Modules = Union[nn.Module, Sequence[nn.Module], Callable[[torch.Tensor], torch.Tensor]]


def _apply(x: torch.Tensor, modules: Modules) -> torch.Tensor:
    if isinstance(modules, (list, tuple)):
        for m in modules:
            x = m(x)
        return x
    return modules(x)


def multi_step_forward(x_seq: torch.Tensor, single_step_module: Modules) -> torch.Tensor:
    """``y[t] = f(x[t])`` for ``t = 0..T-1``, stacked on dim 0; ``f`` runs step by step (stateful)."""
    require_time_axis(x_seq, "multi_step_forward")
    return torch.stack([_apply(x_seq[t], single_step_module) for t in range(x_seq.shape[0])])


def seq_to_ann_forward(x_seq: torch.Tensor, stateless_module: Modules) -> torch.Tensor:
    """Fold time into the batch: ``[T, N, ...] -> [T*N, ...] -> f -> [T, N, ...]``.

    Only for stateless ``f`` (conv, linear, pooling, BN in eval or with statistics over T*N).
    """
    require_time_axis(x_seq, "seq_to_ann_forward", min_dim=2)
    T, N = x_seq.shape[0], x_seq.shape[1]
    y = _apply(x_seq.flatten(0, 1), stateless_module)
    return y.unflatten(0, (T, N))
