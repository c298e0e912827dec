r"""Calibration of the two-synapse neurons (Xylo's synapse 2): the ranges :func:`quant.calibrate`
observes for a :class:`~hwsnn.neuron.CubaLIF2Node` or a :class:`~hwsnn.layer.DualRecurrentContainer`
of one.

The neuron runs step by step from its reset state (:mod:`hwsnn.neuron.cuba2`): per step both
currents :math:`I_s = (1 - 1/\tau_s)(I_s + X_s)` (with the container: :math:`X_t + W y_{t-1}`), the
charged membrane :math:`H = V - V/\tau_{mem} + I_1 + I_2`. Observed: :math:`\max|H|` (``h``) and
:math:`\max(|I_1|, |I_2|)` (``i``: both currents share the core's state exponent), the rule of
:func:`quant.calibrate` then picks the exponent as for a one-synapse CUBA neuron.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn

from hwsnn.layer import DualRecurrentContainer
from hwsnn.neuron import CubaLIF2Node

__all__ = ["TWO_SYNAPSE_NEURONS", "two_synapse_cell", "two_synapse_ranges"]

#: the layers whose ranges :func:`two_synapse_ranges` observes
TWO_SYNAPSE_NEURONS = (CubaLIF2Node, DualRecurrentContainer)


def two_synapse_cell(m: nn.Module, name: str) -> CubaLIF2Node:
    """The two-synapse neuron of ``m`` (itself, or a container's); ``TypeError`` naming ``name`` otherwise."""
    cell = m.sub_module if isinstance(m, DualRecurrentContainer) else m
    if not isinstance(cell, CubaLIF2Node):
        raise TypeError(f"calibrate: {name} ({type(m).__name__}) wraps {type(cell).__name__}; a two-synapse population "
                        "needs a CubaLIF2Node")
    return cell


def two_synapse_ranges(m: nn.Module, x_seq: torch.Tensor, name: str) -> tuple[dict[str, float], torch.Tensor]:
    """``({"h": max|H|, "i": max(|I_1|, |I_2|)}, spikes)`` of ``m`` (module docstring) on ``x_seq``
    ``[T, N, ..., 2]``; ``m``'s state is left reset."""
    cell = two_synapse_cell(m, name)
    rec: Optional[DualRecurrentContainer] = m if isinstance(m, DualRecurrentContainer) else None
    if rec is not None:
        rec.reset()
    i1 = torch.zeros_like(x_seq[0][..., 0])
    i2 = torch.zeros_like(i1)
    v: Union[torch.Tensor, float] = torch.full_like(i1, cell.v_init)
    h_max = i_max = 0.0
    spikes = []
    for t in range(x_seq.shape[0]):
        x = x_seq[t] if rec is None else rec.feedback(x_seq[t])
        i1 = cell.current_charge(x[..., 0], i1, cell.tau_syn)
        i2 = cell.current_charge(x[..., 1], i2, cell.tau_syn2)
        i_max = max(i_max, float(i1.abs().max()), float(i2.abs().max()))
        h_max = max(h_max, float(cell.neuronal_charge(i1 + i2, v).abs().max()))
        s, v = cell.step(i1 + i2, v)
        spikes.append(s)
        if rec is not None:
            rec.y = s
    if rec is not None:
        rec.reset()
    cell.reset()
    return {"h": h_max, "i": i_max}, torch.stack(spikes)
