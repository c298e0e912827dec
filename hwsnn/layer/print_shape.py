"""``PrintShapeModule``: a debugging aid that prints the input's shape and returns the input, :math:`y = x`."""

from __future__ import annotations

import torch
import torch.nn as nn

__all__ = ["PrintShapeModule"]


class PrintShapeModule(nn.Module):
    """Debugging aid: prints ``ext_str`` and the input's shape, returns the input unchanged.

    :param ext_str: text printed before the shape
    """

    def __init__(self, ext_str: str = "PrintShapeModule") -> None:
        super().__init__()
        self.ext_str = ext_str

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print(self.ext_str, x.shape)
        return x

    def extra_repr(self) -> str:
        return f"ext_str={self.ext_str!r}"
