r"""SpikingJelly 2.0's teaching interface for custom neurons: :class:`SimpleBaseNode`.

A subclass writes only the charge, updating the membrane memory in place of returning it:

.. code-block:: python

    class SquareIFNode(SimpleBaseNode):
        def neuronal_charge(self, x):
            self.v = self.v + x ** 2          # H[t] = V[t-1] + X[t]^2

One step is ``neuronal_charge(x)`` (``self.v`` becomes :math:`H`), then
``neuronal_fire()`` :math:`S = \Theta(H - V_{th})` through the surrogate, then
``neuronal_reset(S)``: hard :math:`V = S V_r + (1 - S) H`, soft (``v_reset=None``)
:math:`V = H - S V_{th}`, with ``detach_reset`` detaching the :math:`S` of the reset. Multi-step
runs the step over dim 0 (plain autograd, no fused kernel).

As in SpikingJelly the membrane starts at ``0.0`` (not at ``v_reset``). hwsnn additions: ``v`` is
made a tensor shaped like the input before the first charge and re-initialised (to 0) when the
input shape changes, ``v_threshold`` may be a tensor broadcastable to the input, and bad arguments
raise ``TypeError``/``ValueError``. :class:`SimpleIFNode` and :class:`SimpleLIFNode` are the
built-in examples; this family has no integer twin (use :class:`~hwsnn.neuron.IFNode` /
:class:`~hwsnn.neuron.LIFNode` for hardware).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..base import MemoryModule, require_time_axis
from .nodes import Threshold, check_node_args, check_real

__all__ = ["SimpleBaseNode", "SimpleIFNode", "SimpleLIFNode"]

SpikeFn = Callable[[torch.Tensor], torch.Tensor]


class SimpleBaseNode(MemoryModule):
    """Charge / fire / reset as three overridable methods; subclasses define :meth:`neuronal_charge`.

    :param v_threshold: firing threshold :math:`V_{th}` (number, or tensor broadcastable to the input)
    :param v_reset: reset potential :math:`V_r`; ``None`` selects the soft reset
    :param surrogate_function: spike function with surrogate gradient (default: a new ``Sigmoid()``)
    :param detach_reset: detach the spike used in the reset from the graph
    :param step_mode: ``'s'`` or ``'m'``
    """

    def __init__(
        self,
        v_threshold: Threshold = 1.0,
        v_reset: Optional[float] = 0.0,
        surrogate_function: Optional[SpikeFn] = None,
        detach_reset: bool = False,
        step_mode: str = "s",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        v_threshold, v_reset, surrogate_function = check_node_args(v_threshold, v_reset, surrogate_function, owner)
        self.v_threshold = v_threshold
        self.v_reset = v_reset
        self.surrogate_function = surrogate_function
        self.detach_reset = bool(detach_reset)
        self.step_mode = step_mode
        self.register_memory("v", 0.0)

    # -- the three parts of a step ----------------------------------------------------------------
    def neuronal_charge(self, x: torch.Tensor) -> None:
        """Update ``self.v`` from :math:`V[t-1]` to :math:`H[t]` with input ``x`` (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must define neuronal_charge(self, x), updating self.v")

    def neuronal_fire(self) -> torch.Tensor:
        r""":math:`S = \Theta(H - V_{th})` through the surrogate."""
        return self.surrogate_function(self.v - self.v_threshold)

    def neuronal_reset(self, spike: torch.Tensor) -> None:
        """Hard (``v_reset`` a number) or soft (``v_reset=None``) reset of ``self.v`` after ``spike``."""
        s = spike.detach() if self.detach_reset else spike
        if self.v_reset is None:
            self.v = self.v - self.v_threshold * s
        else:
            self.v = s * self.v_reset + (1.0 - s) * self.v

    # -- stepping -----------------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a tensor; got {type(x).__name__}")
        v = self.v
        if not isinstance(v, torch.Tensor):
            self.v = torch.full_like(x, float(v))
        elif v.shape != x.shape:
            self.v = torch.zeros_like(x)
        self.neuronal_charge(x)
        spike = self.neuronal_fire()
        self.neuronal_reset(spike)
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, type(self).__name__)
        return torch.stack([self.single_step_forward(x_seq[t]) for t in range(x_seq.shape[0])])

    def extra_repr(self) -> str:
        vth = self.v_threshold
        vth_repr = f"tensor{tuple(vth.shape)}" if isinstance(vth, torch.Tensor) else vth
        return (
            f"v_threshold={vth_repr}, v_reset={self.v_reset}, detach_reset={self.detach_reset}, "
            f"step_mode={self.step_mode}"
        )


class SimpleIFNode(SimpleBaseNode):
    r"""IF neuron on the :class:`SimpleBaseNode` interface: :math:`H[t] = V[t-1] + X[t]`."""

    def neuronal_charge(self, x: torch.Tensor) -> None:
        self.v = self.v + x


class SimpleLIFNode(SimpleBaseNode):
    r"""LIF neuron on the :class:`SimpleBaseNode` interface.

    ``decay_input=True``: :math:`H = V + (V_r - V + X)/\tau`; ``decay_input=False``:
    :math:`H = V + (V_r - V)/\tau + X`. With the soft reset (``v_reset=None``) :math:`V_r = 0`
    in the charge (SpikingJelly's ``SimpleLIFNode`` fails there).

    :param tau: membrane time constant, > 1 (required, as in SpikingJelly)
    :param decay_input: whether the input is divided by :math:`\tau` too (required)
    """

    def __init__(
        self,
        tau: float,
        decay_input: bool,
        v_threshold: Threshold = 1.0,
        v_reset: Optional[float] = 0.0,
        surrogate_function: Optional[SpikeFn] = None,
        detach_reset: bool = False,
        step_mode: str = "s",
    ) -> None:
        tau = check_real("tau", tau, type(self).__name__)
        if tau <= 1.0:
            raise ValueError(f"{type(self).__name__}: tau must be > 1 (the decay 1/tau must lie in (0, 1)); got {tau}")
        super().__init__(v_threshold, v_reset, surrogate_function, detach_reset, step_mode)
        self.tau = tau
        self.decay_input = bool(decay_input)

    def neuronal_charge(self, x: torch.Tensor) -> None:
        vr = 0.0 if self.v_reset is None else self.v_reset
        if self.decay_input:
            self.v = self.v + (vr - self.v + x) / self.tau
        else:
            self.v = self.v + (vr - self.v) / self.tau + x

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()
