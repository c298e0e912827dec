r"""Pure step functions of the stateful layers (state in, state out)."""

from __future__ import annotations

from typing import Union

import torch

__all__ = ["synapse_filter_step", "delay_step"]


def synapse_filter_step(
    x: torch.Tensor, i: torch.Tensor, inv_tau: Union[float, torch.Tensor]
) -> torch.Tensor:
    r"""Synapse filter :math:`I \leftarrow I - (1 - S)\,I/\tau + S` with input spikes :math:`S`."""
    return i - (1.0 - x) * i * inv_tau + x


def delay_step(
    x_seq: torch.Tensor, fifo: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Push ``x_seq`` (``[T, ...]``) through a FIFO holding the last ``d`` inputs (``[d, ...]``).

    Returns ``(y_seq, fifo_next)`` with :math:`y[t] = x[t-d]` across calls: the FIFO's oldest
    entries come out first, and the last ``d`` inputs stay in for the next call.
    """
    d = fifo.shape[0]
    if d == 0:
        return x_seq, fifo
    stream = torch.cat((fifo, x_seq))
    T = x_seq.shape[0]
    return stream[:T], stream[T:]
