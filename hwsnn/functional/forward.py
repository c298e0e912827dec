"""Running modules over the time axis (time is dim 0: ``x_seq`` is ``[T, N, ...]``)."""

from __future__ import annotations

from typing import Any, Callable, Sequence, Union

import torch
import torch.nn as nn

from ..base import require_time_axis

__all__ = ["multi_step_forward", "seq_to_ann_forward"]

Modules = Union[nn.Module, Sequence[nn.Module], Callable[..., Any]]
Tensors = Union[torch.Tensor, tuple[torch.Tensor, ...]]


def _apply(x: Any, modules: Modules) -> Any:
    """Run ``modules`` on ``x``; a tuple ``x`` goes to the first module as positional arguments,
    every later module gets the previous output as its one argument (SpikingJelly's rule)."""
    args = x if isinstance(x, tuple) else (x,)
    if isinstance(modules, (list, tuple)):
        for m in modules:
            x = m(*args)
            args = (x,)
        return x
    return modules(*args)


def multi_step_forward(x_seq: torch.Tensor, single_step_module: Modules) -> torch.Tensor:
    """``y[t] = f(x[t])`` for ``t = 0..T-1``, stacked on dim 0; ``f`` runs step by step (stateful)."""
    require_time_axis(x_seq, "multi_step_forward")
    return torch.stack([_apply(x_seq[t], single_step_module) for t in range(x_seq.shape[0])])


def seq_to_ann_forward(x_seq: Tensors, stateless_module: Modules) -> Tensors:
    """Fold time into the batch: ``[T, N, ...] -> [T*N, ...] -> f -> [T, N, ...]``.

    Only for stateless ``f`` (conv, linear, pooling, BN in eval or with statistics over T*N).
    ``x_seq`` may be a tuple of sequences sharing ``[T, N]`` (e.g. pooled values and their
    indices): each is folded and they go to ``f`` as positional arguments. When ``f`` returns a
    tuple (e.g. ``MaxPool2d(return_indices=True)``) each element is unfolded back to ``[T, N, ...]``.
    """
    if isinstance(x_seq, tuple):
        if not x_seq:
            raise ValueError("seq_to_ann_forward: x_seq is an empty tuple; give one or more tensors [T, N, ...]")
        for k, item in enumerate(x_seq):
            require_time_axis(item, f"seq_to_ann_forward (x_seq[{k}])", min_dim=2)
        T, N = x_seq[0].shape[0], x_seq[0].shape[1]
        if any(tuple(item.shape[:2]) != (T, N) for item in x_seq[1:]):
            raise ValueError(
                "seq_to_ann_forward: the tensors of x_seq must share the leading [T, N] dims; got shapes "
                f"{[tuple(item.shape) for item in x_seq]}"
            )
        folded: Any = tuple(item.flatten(0, 1) for item in x_seq)
    else:
        require_time_axis(x_seq, "seq_to_ann_forward", min_dim=2)
        T, N = x_seq.shape[0], x_seq.shape[1]
        folded = x_seq.flatten(0, 1)
    y = _apply(folded, stateless_module)
    if isinstance(y, tuple):
        return tuple(item.unflatten(0, (T, N)) for item in y)
    return y.unflatten(0, (T, N))
