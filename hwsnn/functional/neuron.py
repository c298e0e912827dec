r"""Pure neuron step functions (state in, state out), shared by the modules and the fused backends.

Notation: :math:`X[t]` input, :math:`V[t-1]` membrane before the step, :math:`H[t]` membrane
after charging, :math:`S[t]` spike, :math:`V_{th}` threshold, :math:`V_r` reset potential
(``v_reset=None`` selects the soft reset, for which :math:`V_r = 0` in the charge equations).

Charge
    IF:  :math:`H = V + X`

    LIF, ``decay_input=True``:  :math:`H = V + \frac{1}{\tau}\bigl(X - (V - V_r)\bigr)`

    LIF, ``decay_input=False``: :math:`H = V - \frac{1}{\tau}(V - V_r) + X`

Fire (inclusive): :math:`S = \Theta(H - V_{th})`, :math:`\Theta(0) = 1`; the surrogate supplies
the gradient of :math:`\Theta`.

Reset
    hard: :math:`V = S\,V_r + (1 - S)\,H`

    soft: :math:`V = H - S\,V_{th}`

``detach_reset=True`` detaches only the :math:`S` used in the reset (the emitted spike keeps its
gradient).

Signatures follow SpikingJelly 2.0's ``activation_based.functional``: input first, then the
membrane (``lif_charge(x, v, tau, decay_input, v_reset)``), and the spike function is the keyword
``surrogate_function``. ``v_threshold`` may also be a tensor broadcastable to ``x`` (hwsnn
extension). ``if_charge``, ``fire``, ``reset`` and ``neuron_multi_step`` are hwsnn's own helpers.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch

__all__ = [
    "if_charge",
    "lif_charge",
    "fire",
    "reset",
    "voltage_reset",
    "if_step",
    "lif_step",
    "neuron_multi_step",
]

Threshold = Union[float, torch.Tensor]
SpikeFn = Callable[[torch.Tensor], torch.Tensor]


def if_charge(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """IF charge :math:`H = V + X` (input first, like :func:`lif_charge`)."""
    return v + x


def lif_charge(
    x: torch.Tensor, v: torch.Tensor, tau: float, decay_input: bool, v_reset: Optional[float]
) -> torch.Tensor:
    r"""LIF charge (input ``x`` first, membrane ``v`` second, as SpikingJelly's).

    ``decay_input=True``: :math:`H = V + (X - (V - V_r))/\tau`; ``decay_input=False``:
    :math:`H = V - (V - V_r)/\tau + X`; :math:`V_r = 0` when ``v_reset`` is ``None``.
    """
    vr = 0.0 if v_reset is None else v_reset
    if decay_input:
        return v + (x - (v - vr)) / tau
    return v - (v - vr) / tau + x


def fire(h: torch.Tensor, v_threshold: Threshold, surrogate_function: SpikeFn) -> torch.Tensor:
    """:math:`S = \\Theta(H - V_{th})` through ``surrogate_function``; ``v_threshold`` may be a tensor."""
    return surrogate_function(h - v_threshold)


def reset(
    h: torch.Tensor, spike: torch.Tensor, v_threshold: Threshold, v_reset: Optional[float], detach_reset: bool
) -> torch.Tensor:
    """Hard (``v_reset`` a number) or soft (``v_reset=None``) reset after a spike."""
    s = spike.detach() if detach_reset else spike
    if v_reset is None:
        return h - s * v_threshold
    return s * v_reset + (1.0 - s) * h


def voltage_reset(
    v: torch.Tensor, spike: torch.Tensor, v_threshold: Threshold, v_reset: Optional[float], detach_reset: bool
) -> torch.Tensor:
    """SpikingJelly's name of :func:`reset`: ``v`` is the charged membrane :math:`H`."""
    return reset(v, spike, v_threshold, v_reset, detach_reset)


def if_step(
    x: torch.Tensor,
    v: torch.Tensor,
    v_threshold: Threshold,
    v_reset: Optional[float],
    surrogate_function: SpikeFn,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One IF step: returns ``(spike, v_next)``."""
    h = if_charge(x, v)
    spike = fire(h, v_threshold, surrogate_function)
    return spike, reset(h, spike, v_threshold, v_reset, detach_reset)


def lif_step(
    x: torch.Tensor,
    v: torch.Tensor,
    tau: float,
    decay_input: bool,
    v_threshold: Threshold,
    v_reset: Optional[float],
    surrogate_function: SpikeFn,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF step: returns ``(spike, v_next)``."""
    h = lif_charge(x, v, tau, decay_input, v_reset)
    spike = fire(h, v_threshold, surrogate_function)
    return spike, reset(h, spike, v_threshold, v_reset, detach_reset)


def neuron_multi_step(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    step: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    store_v_seq: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Reference multi-step loop: ``(spike_seq, v_last, v_seq or None)``.

    ``step(x, v) -> (spike, v)`` is one of the single steps above with its parameters bound.
    Autograd records every step; the fused backends compute the same values in one node.
    """
    spikes = []
    v_seq = [] if store_v_seq else None
    for t in range(x_seq.shape[0]):
        spike, v = step(x_seq[t], v)
        spikes.append(spike)
        if v_seq is not None:
            v_seq.append(v)
    return torch.stack(spikes), v, (torch.stack(v_seq) if v_seq is not None else None)
