r"""The gain a chip's CUBA current puts on its input, relative to the float neuron, and its fold.

Float :class:`~hwsnn.neuron.CubaLIFNode`: :math:`I_f[t] = (1 - a) I_f[t-1] + W x[t]`,
:math:`a = 1/\tau_{syn}`. A target whose current takes the input **before** it decays
(``decay.current_order: add_then_decay``, Xylo) computes
:math:`I[t] = (1 - a)\,(I[t-1] + W' x[t])` (up to the rounding of the decay). With
:math:`W' = W / (1 - a)` the two recursions are the same:
:math:`I[t] = (1 - a) I[t-1] + W x[t] = I_f[t]`, and so is the membrane. :func:`input_gain` is that
factor :math:`g = 1 - a = 1 - 2^{-k_s}`; the converter divides the weights feeding such a neuron by
it (``quant.convert``), so the twin's current and membrane follow the float neuron's on the same
grid. For :math:`k_s = 1` (:math:`g = 1/2`) the fold is exact: the integers stay, the weight
exponent grows by one.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn

from .neuron import FixedCubaLIFNode, tau_of
from .recurrent import FixedRecurrent

__all__ = ["input_gain", "fold_input_gain"]


def input_gain(twin: nn.Module) -> Optional[Union[float, torch.Tensor]]:
    r""":math:`g = 1 - 1/\tau_{syn}` of a CUBA neuron twin on an ``add_then_decay`` target, per neuron
    when its decay is a tensor; ``None`` where the twin's current takes its input after the decay
    (the float form) or the twin is no plain CUBA neuron layer. A recurrent population
    (:class:`~hwsnn.fixed.FixedRecurrent`) is ``None`` too: its fed-back weights would need the same
    fold as its input weights, which its converter does not do yet, and folding one of the two would
    change their balance. ``g`` of 0 (:math:`\tau_{syn} = 1`: the chip erases the input) is ``None``:
    nothing to fold."""
    if isinstance(twin, FixedRecurrent):
        return None
    nrn = twin
    if not isinstance(nrn, FixedCubaLIFNode) or nrn.target.decay.current_order != "add_then_decay":
        return None
    k = nrn.decay_syn
    if isinstance(k, torch.Tensor):
        g = 1.0 - 1.0 / torch.tensor([tau_of(int(v), nrn.target, "syn") for v in k.reshape(-1)], dtype=torch.float64)
        g = g.reshape(k.shape)
        return None if bool((g <= 0).any()) else g
    g = 1.0 - 1.0 / tau_of(int(k), nrn.target, "syn")
    return None if g <= 0 else g


def fold_input_gain(weight: torch.Tensor, gain: Union[float, torch.Tensor]) -> torch.Tensor:
    """``weight`` ``[out, in, ...]`` divided by ``gain`` (a number, or one value per output neuron)."""
    if isinstance(gain, torch.Tensor):
        g = gain.reshape(-1).to(device=weight.device, dtype=weight.dtype)
        return weight / g.reshape(-1, *([1] * (weight.dim() - 1)))
    return weight / gain
