r"""Float modules for the NIR nodes that have no hwsnn layer: ``Scale``, ``LI``, ``CubaLI``, ``Threshold``.

They run in both step modes like hwsnn's layers and export back to their node, but have no
integer twin (no chip computes a non-spiking leaky integrator or a free gain): converting one
raises ``TypeError`` naming it. :func:`hwsnn.nir.import_from_nir` with ``fold=True`` folds
``Scale`` into the weights before it instead.

Per step (parameters are per neuron, broadcast to one step of the input):

* :class:`Scale`: :math:`y = s \odot x`;
* :class:`LeakyIntegrator` (NIR ``LI``): :math:`V \leftarrow V - (V - V_{leak})/\tau + X`, output :math:`V`;
* :class:`CubaLeakyIntegrator` (NIR ``CubaLI``): :math:`I \leftarrow I - I/\tau_{syn} + X`,
  :math:`V \leftarrow V - (V - V_{leak})/\tau_{mem} + I`, output :math:`V`;
* :class:`Threshold` (NIR ``Threshold``): :math:`y = [x > \theta]` (NIR's strict compare), no state.

Time constants are in steps (:math:`\tau/dt`, :mod:`hwsnn.nir.conventions`); ``V`` and ``I`` start at 0.
"""

from __future__ import annotations

from typing import Callable, Optional, Union

import torch
import torch.nn as nn

from ..base import MemoryModule, StepModule, require_time_axis
from ..surrogate import Sigmoid

__all__ = ["Scale", "LeakyIntegrator", "CubaLeakyIntegrator", "Threshold", "as_param"]

Value = Union[float, torch.Tensor]


def as_param(value: Value, name: str, owner: str, *, low: Optional[float] = None) -> torch.Tensor:
    """A float64 tensor copy of a number or tensor (finite; every value ``>= low`` when given)."""
    t = torch.as_tensor(value, dtype=torch.float64).detach().clone()
    if t.numel() == 0 or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{owner}: {name} must be finite numbers; got {value!r}")
    if low is not None and bool((t < low).any()):
        raise ValueError(f"{owner}: {name} must be >= {low:g} for every neuron; got min {float(t.min()):g}")
    return t


def _cast(p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return p.to(dtype=x.dtype, device=x.device)


class Scale(nn.Module, StepModule):
    r""":math:`y = s \odot x` with ``scale`` broadcast to one step (NIR ``Scale``; an input gain)."""

    def __init__(self, scale: Value, step_mode: str = "s") -> None:
        super().__init__()
        self.register_buffer("scale", as_param(scale, "scale", "Scale"))
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "m":
            require_time_axis(x, "Scale")
        return x * _cast(self.scale, x)

    def extra_repr(self) -> str:
        return f"scale=tensor{tuple(self.scale.shape)}, step_mode={self.step_mode}"


class Threshold(nn.Module, StepModule):
    r""":math:`y = [x > \theta]` (NIR ``Threshold``), the surrogate gradient of ``surrogate_function``."""

    def __init__(self, threshold: Value, surrogate_function: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
                 step_mode: str = "s") -> None:
        super().__init__()
        self.register_buffer("threshold", as_param(threshold, "threshold", "Threshold"))
        self.surrogate_function = surrogate_function or Sigmoid()
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "m":
            require_time_axis(x, "Threshold")
        h = x - _cast(self.threshold, x)
        return strict_fire(h, self.surrogate_function)

    def extra_repr(self) -> str:
        return f"threshold=tensor{tuple(self.threshold.shape)}, step_mode={self.step_mode}"


def strict_fire(h: torch.Tensor, surrogate_function: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    r""":math:`\Theta(h)` with :math:`\Theta(0) = 0` (NIR's and snnTorch's ``>``) and the surrogate's gradient."""
    return surrogate_function(h) * (h != 0).to(h.dtype)


class LeakyIntegrator(MemoryModule):
    r"""NIR ``LI``: :math:`V \leftarrow V - (V - V_{leak})/\tau + X`; the output is :math:`V` (no spikes).

    :param tau: time constant in steps (>= 1; number or per-neuron tensor)
    :param v_leak: leak potential :math:`V_{leak}` (number or per-neuron tensor)
    """

    def __init__(self, tau: Value, v_leak: Value = 0.0, step_mode: str = "s") -> None:
        super().__init__()
        self.register_buffer("tau", as_param(tau, "tau", "LeakyIntegrator", low=1.0))
        self.register_buffer("v_leak", as_param(v_leak, "v_leak", "LeakyIntegrator"))
        self.register_memory("v", 0.0)
        self.step_mode = step_mode

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        v = self.v if isinstance(self.v, torch.Tensor) and self.v.shape == x.shape else torch.zeros_like(x)
        self.v = v - (v - _cast(self.v_leak, x)) / _cast(self.tau, x) + x
        return self.v

    def extra_repr(self) -> str:
        return f"tau=tensor{tuple(self.tau.shape)}, step_mode={self.step_mode}"


class CubaLeakyIntegrator(MemoryModule):
    r"""NIR ``CubaLI``: :math:`I \leftarrow I - I/\tau_{syn} + X`, :math:`V \leftarrow V - (V - V_{leak})/\tau_{mem} + I`;
    the output is :math:`V`.

    :param tau_syn: current time constant in steps (>= 1)
    :param tau_mem: membrane time constant in steps (>= 1)
    :param v_leak: leak potential
    """

    def __init__(self, tau_syn: Value, tau_mem: Value, v_leak: Value = 0.0, step_mode: str = "s") -> None:
        super().__init__()
        self.register_buffer("tau_syn", as_param(tau_syn, "tau_syn", "CubaLeakyIntegrator", low=1.0))
        self.register_buffer("tau_mem", as_param(tau_mem, "tau_mem", "CubaLeakyIntegrator", low=1.0))
        self.register_buffer("v_leak", as_param(v_leak, "v_leak", "CubaLeakyIntegrator"))
        self.register_memory("i", 0.0)
        self.register_memory("v", 0.0)
        self.step_mode = step_mode

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        fresh = not (isinstance(self.v, torch.Tensor) and self.v.shape == x.shape)
        i = torch.zeros_like(x) if fresh else self.i
        v = torch.zeros_like(x) if fresh else self.v
        self.i = i - i / _cast(self.tau_syn, x) + x
        self.v = v - (v - _cast(self.v_leak, x)) / _cast(self.tau_mem, x) + self.i
        return self.v

    def extra_repr(self) -> str:
        return f"tau_syn=tensor{tuple(self.tau_syn.shape)}, tau_mem=tensor{tuple(self.tau_mem.shape)}, step_mode={self.step_mode}"
