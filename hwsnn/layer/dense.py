"""``Linear`` with a step mode (see :mod:`.seq_to_ann`)."""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn as nn

from .seq_to_ann import SeqToANN

__all__ = ["Linear"]


class Linear(SeqToANN, nn.Linear):
    """``torch.nn.Linear`` with a step mode (``'m'``: ``[T, N, in] -> [T, N, out]``)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, step_mode: str = "s",
        *, device: Any = None, dtype: Optional[torch.dtype] = None,
    ) -> None:
        super().__init__(in_features, out_features, bias, step_mode=step_mode, device=device, dtype=dtype)
