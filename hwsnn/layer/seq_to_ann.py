"""The step-mode base of the wrappers of stateless torch layers (:mod:`.dense`, :mod:`.conv`,
:mod:`.norm`, :mod:`.pool`, :mod:`.flatten`; also the QAT layers of :mod:`quant.prepare`).

Each wrapper *is* the torch layer (same ``state_dict`` keys) plus a ``step_mode``: ``'s'`` takes
``[N, ...]`` as torch does; ``'m'`` takes ``[T, N, ...]`` and folds time into the batch
(``[T*N, ...]``) around the torch forward, :math:`y[t] = f(x[t])` for every step :math:`t`
(a tuple output, e.g. ``MaxPool2d(return_indices=True)``, is unfolded element by element).
Constructors are SpikingJelly 2.0's: the torch arguments in torch's order, then ``step_mode``
(so ``Linear(3, 2, True, 'm')`` works); torch's ``device`` and ``dtype`` are keyword-only extras.

The size annotations below are torch's own; :mod:`hwsnn.config` checks run-file values against
the constructors' annotations.
"""

from __future__ import annotations

from typing import Any, Literal, Union

import torch

from ..base import StepModule
from ..functional.forward import seq_to_ann_forward

__all__ = ["SeqToANN", "Size1", "Size2", "Size3", "SizeAny", "PaddingMode"]


class SeqToANN(StepModule):
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
Size1 = Union[int, tuple[int]]
Size2 = Union[int, tuple[int, int]]
Size3 = Union[int, tuple[int, int, int]]
SizeAny = Union[int, tuple[int, ...]]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
