r"""The decay parameters of a target's neurons: shift-based (:math:`D(x, k)`, :math:`\tau = 2^k`) or
Loihi's 12-bit multiply (:math:`\tau = 4096/d`, ``du = d - 1`` for the current, ``dv = d`` for the
membrane), converted both ways and applied to a state."""

from __future__ import annotations

import math

import torch

from targets import Target

from . import arith
from .arith import FitError

__all__ = ["decay_limits", "decay_amount", "tau_of", "tau_to_decay"]


def decay_limits(target: Target, which: str) -> tuple[int, int, str]:
    """``(lo, hi, name)`` of the decay parameter of the current (``which='syn'``) or membrane (``'mem'``)."""
    if target.decay.mechanism == "shift":
        return 0, target.decay.max_shift, f"k_{which}"
    n = target.neuron
    if which == "syn":  # du: factor du + 1 in 0..4096
        return max(n.mul12_min, -1), n.mul12_max - 1, "du"
    return max(n.mul12_min, 0), n.mul12_max, "dv"


def decay_amount(x: torch.Tensor, param: int, target: Target, which: str) -> torch.Tensor:
    """What one step of decay removes from ``x`` (int64): :math:`D(x, k)`, or ``x - mul12(x)`` (``param``: one
    value, or a tensor with one per neuron)."""
    if isinstance(param, torch.Tensor):
        param = param.to(x.device)
    if target.decay.mechanism == "shift":
        return arith.decay_amount(x, param, target.decay.rounding)
    d = param + 1 if which == "syn" else param
    return x.to(torch.int64) - arith.mul12_decay(x, d, target.decay.rounding)


def tau_of(param: int, target: Target, which: str) -> float:
    r"""The time constant a decay parameter implements: :math:`2^k`, or :math:`4096/d` (inf for :math:`d = 0`)."""
    if target.decay.mechanism == "shift":
        return float(2**param)
    d = param + 1 if which == "syn" else param
    return math.inf if d == 0 else 4096.0 / d


def tau_to_decay(tau: float, target: Target, which: str, *, layer: str, parameter: str, clip: bool = False) -> tuple[int, int]:
    r"""Float :math:`\tau` to the target's decay parameter; returns ``(param, number clipped)``.

    ``shift``: :math:`k = \mathrm{round}(\log_2 \tau)`; ``mul12``: :math:`d = \mathrm{round}(4096/\tau)`,
    ``du = d - 1`` (current) or ``dv = d`` (membrane). Out of range: :class:`FitError` unless ``clip``.
    """
    if not (math.isfinite(tau) and tau > 0):
        raise FitError(layer, parameter, tau, "tau must be a finite number > 0", target.name)
    if target.decay.mechanism == "shift":
        p = int(round(math.log2(tau)))
    else:
        p = int(round(4096.0 / tau)) - (1 if which == "syn" else 0)
    lo, hi, pname = decay_limits(target, which)
    if lo <= p <= hi:
        return p, 0
    if not clip:
        rule = "tau = 2^k" if target.decay.mechanism == "shift" else "tau = 4096/d"
        raise FitError(layer, parameter, tau, f"{rule} needs {pname} = {p}, allowed [{lo}, {hi}]", target.name)
    return min(max(p, lo), hi), 1
