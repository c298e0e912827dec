"""``Flatten`` with a step mode (see :mod:`.seq_to_ann`)."""

from __future__ import annotations

import torch.nn as nn

from .seq_to_ann import SeqToANN

__all__ = ["Flatten"]


class Flatten(SeqToANN, nn.Flatten):
    """``torch.nn.Flatten`` with a step mode; ``start_dim``/``end_dim`` count in the folded ``[T*N, ...]``."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1, step_mode: str = "s") -> None:
        super().__init__(start_dim, end_dim, step_mode=step_mode)
