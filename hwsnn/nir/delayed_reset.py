r"""snnTorch's neurons as hwsnn float modules: the reset decided by the previous step's membrane.

snnTorch's ``Leaky``, ``Synaptic``, ``RLeaky`` and ``RSynaptic`` (default ``reset_delay=True``) keep
the membrane *before* the reset, :math:`m`, and apply the reset of a spike in the next step. With
:math:`R_t = [m_{t-1} > \theta]` and the step's input :math:`x_t` (for the recurrent ones the
recurrent input is part of :math:`x_t`):

========================  ==================================================================================
``Leaky``                 subtract: :math:`m_t = \beta m_{t-1} + x_t - R_t\theta`;
                          zero: :math:`m_t = \beta (1 - R_t) m_{t-1} + x_t`
``RLeaky``                subtract as ``Leaky``; zero: :math:`m_t = (1 - R_t)(\beta m_{t-1} + x_t)` (the
                          step's input is lost too: ``wipe_input=True``)
``Synaptic``/``RSynaptic``  :math:`c_t = \alpha c_{t-1} + x_t`, then the membrane as ``RLeaky`` with
                          :math:`c_t` as input (the current is never reset)
========================  ==================================================================================

and the spike :math:`S_t = [m_t > \theta]` (strict, snnTorch's Heaviside). The subtractive reset is
*not* decayed (unlike NIR 1.0.4's, hwsnn's soft reset and the chips', which subtract at the spike
and decay the rest), and snnTorch's zero reset of the recurrent and synaptic neurons discards the
input of the step after a spike. These modules reproduce snnTorch's spikes exactly (the
arithmetic is snnTorch's, in its order: ``beta * mem + input``); they are float only, with no
integer twin. For a chip, import with ``source='nir'`` (the reset at the spike) and retrain (QAT).

:math:`\beta = 1 - dt/\tau` and :math:`\alpha = 1 - dt/\tau_{syn}`, as snnTorch's exporter writes them.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch

from ..base import MemoryModule
from ..surrogate import Sigmoid
from .modules import as_param, strict_fire

__all__ = ["DelayedResetLIF", "DelayedResetCuba", "RESET_KINDS"]

RESET_KINDS = ("subtract", "zero")
Value = Union[float, torch.Tensor]


def _check_reset(reset: str, owner: str) -> str:
    if reset not in RESET_KINDS:
        raise ValueError(f"{owner}: reset must be one of {', '.join(map(repr, RESET_KINDS))} (snnTorch's "
                         f"reset_mechanism); got {reset!r}")
    return reset


def _cast(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return p.to(dtype=x.dtype, device=x.device)


class DelayedResetLIF(MemoryModule):
    r"""snnTorch's ``Leaky`` (``wipe_input=False``) or the neuron of ``RLeaky`` (``wipe_input=True``).

    :param beta: membrane decay :math:`\beta \in [0, 1]` (number or per-neuron tensor)
    :param v_threshold: :math:`\theta` (number or per-neuron tensor)
    :param reset: ``'subtract'`` or ``'zero'`` (snnTorch's ``reset_mechanism``)
    :param wipe_input: the zero reset discards the step's input too (``RLeaky``)
    :param surrogate_function: gradient of the Heaviside (default ``Sigmoid()``)
    """

    def __init__(self, beta: Value, v_threshold: Value = 1.0, reset: str = "subtract", wipe_input: bool = False,
                 surrogate_function: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 step_mode: str = "s") -> None:
        super().__init__()
        owner = type(self).__name__
        self.register_buffer("beta", as_param(beta, "beta", owner, low=0.0))
        if bool((self.beta > 1).any()):
            raise ValueError(f"{owner}: beta must lie in [0, 1]; got max {float(self.beta.max())}")
        self.register_buffer("v_threshold", as_param(v_threshold, "v_threshold", owner))
        self.reset_kind = _check_reset(reset, owner)
        self.wipe_input = bool(wipe_input)
        self.surrogate_function = surrogate_function or Sigmoid()
        self.register_memory("mem", 0.0)
        self.step_mode = step_mode

    def _state(self, name: str, x: torch.Tensor) -> torch.Tensor:
        s = getattr(self, name)
        return s if isinstance(s, torch.Tensor) and s.shape == x.shape else torch.zeros_like(x)

    def _membrane(self, base_input: torch.Tensor, mem: torch.Tensor, th: torch.Tensor) -> torch.Tensor:
        """snnTorch's state function with its delayed reset (module docstring)."""
        beta = _cast(self.beta, base_input)
        r = (mem - th > 0).to(base_input.dtype)
        if self.reset_kind == "subtract":
            return beta * mem + base_input - r * th
        if self.wipe_input:
            base = beta * mem + base_input
            return base - r * base
        return beta * ((1 - r) * mem) + base_input

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        th = _cast(self.v_threshold, x)
        self.mem = self._membrane(x, self._state("mem", x), th)
        return strict_fire(self.mem - th, self.surrogate_function)

    def extra_repr(self) -> str:
        return (f"beta=tensor{tuple(self.beta.shape)}, reset={self.reset_kind}, wipe_input={self.wipe_input}, "
                f"step_mode={self.step_mode}")


class DelayedResetCuba(DelayedResetLIF):
    r"""snnTorch's ``Synaptic`` (and the neuron of ``RSynaptic``): :math:`c_t = \alpha c_{t-1} + x_t`, then
    :class:`DelayedResetLIF` with ``wipe_input=True`` on :math:`c_t`.

    :param alpha: current decay :math:`\alpha \in [0, 1]`
    """

    def __init__(self, alpha: Value, beta: Value, v_threshold: Value = 1.0, reset: str = "subtract",
                 surrogate_function: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 step_mode: str = "s") -> None:
        super().__init__(beta, v_threshold, reset, True, surrogate_function, step_mode)
        self.register_buffer("alpha", as_param(alpha, "alpha", type(self).__name__, low=0.0))
        if bool((self.alpha > 1).any()):
            raise ValueError(f"{type(self).__name__}: alpha must lie in [0, 1]; got max {float(self.alpha.max())}")
        self.register_memory("syn", 0.0)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        th = _cast(self.v_threshold, x)
        self.syn = _cast(self.alpha, x) * self._state("syn", x) + x
        self.mem = self._membrane(self.syn, self._state("mem", x), th)
        return strict_fire(self.mem - th, self.surrogate_function)

    def extra_repr(self) -> str:
        return f"alpha=tensor{tuple(self.alpha.shape)}, " + super().extra_repr()
