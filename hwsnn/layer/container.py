"""Containers that fix how their children see time.

* :class:`MultiStepContainer`: takes ``[T, N, ...]`` and runs its single-step children one step
  at a time (stateful children keep their state across steps).
* :class:`SeqToANNContainer`: takes ``[T, N, ...]``, folds time into the batch and runs stateless
  children once on ``[T*N, ...]``.
* :class:`StepModeContainer`: single-step children; in ``'m'`` mode it behaves like one of the
  two above depending on ``stateful``.

The two sequence containers are :class:`~hwsnn.base.MultiStepModule` s (step mode ``'m'`` only),
as in SpikingJelly.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn as nn

from ..base import MemoryModule, MultiStepModule, StepModule
from ..functional.forward import multi_step_forward, seq_to_ann_forward

__all__ = ["MultiStepContainer", "SeqToANNContainer", "StepModeContainer", "step_modules"]


def step_modules(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Every StepModule below ``module`` (not ``module`` itself), not descending into containers
    that fix their children's step mode."""
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if isinstance(child, StepModule):
            yield path, child
        if not getattr(child, "fixes_child_step_mode", False):
            yield from step_modules(child, path + ".")


def require_single_step_children(container: nn.Module) -> None:
    bad = [f"{path} ({type(m).__name__})" for path, m in step_modules(container) if m.step_mode != "s"]
    if bad:
        raise ValueError(
            f"{type(container).__name__} runs its children one step at a time, so they must be in "
            f"step_mode 's'; in step_mode 'm': {', '.join(bad)}"
        )


class MultiStepContainer(nn.Sequential, MultiStepModule):
    """``y[t] = children(x[t])`` for every t of a ``[T, N, ...]`` input (children in ``'s'`` mode)."""

    fixes_child_step_mode = True

    def __init__(self, *args: nn.Module) -> None:
        super().__init__(*args)
        self.step_mode = "m"
        require_single_step_children(self)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_single_step_children(self)
        return multi_step_forward(x_seq, lambda x: nn.Sequential.forward(self, x))


class SeqToANNContainer(nn.Sequential, MultiStepModule):
    """Stateless children applied to ``[T*N, ...]`` (time folded into the batch) and unfolded back."""

    fixes_child_step_mode = True

    def __init__(self, *args: nn.Module) -> None:
        super().__init__(*args)
        self.step_mode = "m"
        stateful = [f"{name} ({type(m).__name__})" for name, m in self.named_modules() if isinstance(m, MemoryModule)]
        if stateful:
            raise ValueError(
                "SeqToANNContainer folds time into the batch and so only takes stateless modules; "
                f"stateful: {', '.join(stateful)} (use MultiStepContainer for those)"
            )
        require_single_step_children(self)

    def forward(self, x_seq: torch.Tensor) -> Any:
        require_single_step_children(self)
        return seq_to_ann_forward(x_seq, lambda x: nn.Sequential.forward(self, x))


class StepModeContainer(nn.Sequential, StepModule):
    """Single-step children; ``'s'``: plain sequential; ``'m'``: step-by-step loop if ``stateful``,
    else time folded into the batch.

    Signature as SpikingJelly 2.0's ``StepModeContainer(stateful, step_mode='s', *modules)``. The
    earlier form ``StepModeContainer(stateful, *modules)`` still works: a second argument that is
    a module (not a string) is the first child, and the step mode stays ``'s'``.

    :param stateful: ``True`` when a child keeps state across steps (multi-step runs the loop)
    :param step_mode: ``'s'`` or ``'m'``
    :param args: the child modules, in ``'s'`` mode
    """

    fixes_child_step_mode = True

    def __init__(self, stateful: bool, step_mode: Any = "s", *args: nn.Module) -> None:
        if not isinstance(stateful, bool):
            raise TypeError(f"StepModeContainer: the first argument 'stateful' must be a bool; got {stateful!r}")
        if isinstance(step_mode, nn.Module):  # the earlier form StepModeContainer(stateful, *modules)
            args = (step_mode, *args)
            step_mode = "s"
        super().__init__(*args)
        self.stateful = stateful
        self.step_mode = step_mode
        require_single_step_children(self)

    def forward(self, x: torch.Tensor) -> Any:
        require_single_step_children(self)
        run = lambda t: nn.Sequential.forward(self, t)  # noqa: E731
        if self.step_mode == "s":
            return run(x)
        return multi_step_forward(x, run) if self.stateful else seq_to_ann_forward(x, run)
