"""Training helpers of the seed API: threshold margins, redundant one-hot labels, first spikes,
weight initialisation, and the stateless sequence delay."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..base import require_time_axis

if TYPE_CHECKING:  # pragma: no cover
    from ..neuron import BaseNode

__all__ = [
    "set_threshold_margin",
    "redundant_one_hot",
    "first_spike_index",
    "kaiming_normal_conv_linear_weight",
    "delay",
    "check_delay_steps",
]


def set_threshold_margin(
    output_layer: "BaseNode",
    label_one_hot: torch.Tensor,
    eval_threshold: float = 1.0,
    threshold0: float = 0.9,
    threshold1: float = 1.1,
) -> None:
    """Per-class thresholds for the output layer while training.

    Training: ``v_threshold = threshold1`` where ``label_one_hot == 1`` and ``threshold0``
    elsewhere (a tensor shaped like ``label_one_hot``); eval: the scalar ``eval_threshold``.
    """
    if not hasattr(output_layer, "v_threshold"):
        raise TypeError(f"set_threshold_margin: output_layer must be a spiking neuron; got {type(output_layer).__name__}")
    if output_layer.training:
        vth = torch.full(label_one_hot.shape, float(threshold0), device=label_one_hot.device)
        vth[label_one_hot == 1] = float(threshold1)
        output_layer.v_threshold = vth
    else:
        output_layer.v_threshold = float(eval_threshold)


def redundant_one_hot(labels: torch.Tensor, num_classes: int, n: int) -> torch.Tensor:
    """One-hot with each class repeated ``n`` times: ``[..., num_classes * n]`` in the default dtype.

    For labels ``[0, 1]``, 3 classes, ``n = 2``: ``[[1,1,0,0,0,0], [0,0,1,1,0,0]]``.
    Pairs with ``VotingLayer(voting_size=n)``.
    """
    if not isinstance(labels, torch.Tensor) or labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise TypeError("redundant_one_hot: labels must be an integer tensor")
    for name, value in (("num_classes", num_classes), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"redundant_one_hot: {name} must be an int >= 1; got {value!r}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"redundant_one_hot: labels must lie in [0, {num_classes}); got values in "
            f"[{int(labels.min())}, {int(labels.max())}]"
        )
    return F.one_hot(labels.long(), num_classes).repeat_interleave(n, dim=-1).to(torch.get_default_dtype())


def first_spike_index(spikes: torch.Tensor) -> torch.Tensor:
    """Boolean mask of each neuron's first spike along the **last** dim (time last, ``[..., T]``)."""
    fired = spikes != 0
    return fired & (fired.cumsum(dim=-1) == 1)


def kaiming_normal_conv_linear_weight(net: nn.Module) -> None:
    """Kaiming-normal (``a = sqrt(5)``) initialisation of every Conv1d/2d/3d and Linear weight in ``net``."""
    for m in net.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=math.sqrt(5))


def check_delay_steps(delay_steps: object, who: str = "delay") -> int:
    """Validate a delay in steps (an int >= 0)."""
    if isinstance(delay_steps, bool) or not isinstance(delay_steps, int):
        raise TypeError(f"{who}: delay_steps must be an int >= 0; got {delay_steps!r}")
    if delay_steps < 0:
        raise ValueError(f"{who}: delay_steps must be >= 0; got {delay_steps}")
    return delay_steps


def delay(x_seq: torch.Tensor, delay_steps: int) -> torch.Tensor:
    """``y[t] = x[t - d]`` with zeros for ``t < d`` (one sequence, no carried state)."""
    d = check_delay_steps(delay_steps)
    require_time_axis(x_seq, "delay")
    if d == 0:
        return x_seq
    if d >= x_seq.shape[0]:
        return torch.zeros_like(x_seq)
    return torch.cat((torch.zeros_like(x_seq[:d]), x_seq[:-d]))
