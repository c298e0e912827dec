r"""Surrogate gradients for the spike non-linearity.

Forward, every surrogate emits the Heaviside step :math:`\Theta(x) = 1` for :math:`x \ge 0`
(inclusive: :math:`\Theta(0) = 1`), else 0. Backward it returns the derivative of a smooth
*primitive* :math:`g(x)` in place of the Dirac delta:

================================  ==========================================  ================================================
surrogate (default)               primitive :math:`g(x)`                      surrogate gradient :math:`g'(x)`
================================  ==========================================  ================================================
``Sigmoid(alpha=4.0)``            :math:`\sigma(\alpha x)`                    :math:`\alpha\,\sigma(\alpha x)(1-\sigma(\alpha x))`
``ATan(alpha=2.0)``               :math:`\tfrac1\pi\arctan(\tfrac\pi2\alpha x)+\tfrac12`  :math:`\dfrac{\alpha/2}{1+(\tfrac\pi2\alpha x)^2}`
``PiecewiseQuadratic(alpha=1.0)`` :math:`0` for :math:`x<-1/\alpha`, :math:`1` for :math:`x>1/\alpha`,
                                  else :math:`-\tfrac{\alpha^2}2 x|x| + \alpha x + \tfrac12`  :math:`\max(0,\ \alpha - \alpha^2|x|)`
================================  ==========================================  ================================================

With ``spiking=False`` a surrogate returns the primitive :math:`g(x)` itself in the forward pass
(a smooth, differentiable network: used by ``gradcheck`` tests and for ANN-style pre-training).

Each neuron builds its own surrogate instance (no shared mutable default argument).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

__all__ = ["heaviside", "SurrogateFunctionBase", "Sigmoid", "ATan", "PiecewiseQuadratic", "SurrogateSpike"]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    r""":math:`\Theta(x)`: 1 where ``x >= 0`` (inclusive), else 0, in ``x``'s dtype."""
    return (x >= 0).to(x.dtype)


class SurrogateSpike(torch.autograd.Function):
    """``Θ(x)`` forward; ``grad · surrogate.derivative(x)`` backward.

    One autograd function serves every surrogate: the surrogate object passed as the second
    argument supplies its documented derivative.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: "SurrogateFunctionBase") -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        grad_x = grad_output * ctx.surrogate.derivative(x) if ctx.needs_input_grad[0] else None
        return grad_x, None


class SurrogateFunctionBase(nn.Module):
    """A spike function with a surrogate gradient.

    Subclasses define :meth:`primitive` (the smooth stand-in :math:`g`) and :meth:`derivative`
    (:math:`g'`, the gradient used in the backward pass). ``alpha`` scales the sharpness.
    """

    #: short name used by the fused backends to select the same derivative in their kernels
    name: str = ""

    def __init__(self, alpha: float, spiking: bool = True) -> None:
        super().__init__()
        if not isinstance(alpha, (int, float)) or isinstance(alpha, bool) or not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"{type(self).__name__}: alpha must be a finite number > 0; got {alpha!r}")
        self.alpha = float(alpha)
        self.spiking = bool(spiking)

    def set_spiking_mode(self, spiking: bool) -> None:
        self.spiking = bool(spiking)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spiking:
            return SurrogateSpike.apply(x, self)
        return self.primitive(x)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, spiking={self.spiking}"


class Sigmoid(SurrogateFunctionBase):
    r"""Sigmoid surrogate: :math:`g(x) = \sigma(\alpha x)`, :math:`g'(x) = \alpha\sigma(\alpha x)(1-\sigma(\alpha x))`."""

    name = "sigmoid"

    def __init__(self, alpha: float = 4.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.alpha * x)

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1.0 - s)


class ATan(SurrogateFunctionBase):
    r"""Arc-tangent surrogate: :math:`g(x) = \arctan(\tfrac\pi2\alpha x)/\pi + \tfrac12`,
    :math:`g'(x) = \tfrac{\alpha}{2} / (1 + (\tfrac\pi2\alpha x)^2)`."""

    name = "atan"

    def __init__(self, alpha: float = 2.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        return torch.atan((math.pi / 2) * self.alpha * x) / math.pi + 0.5

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2) / (1.0 + ((math.pi / 2) * self.alpha * x) ** 2)


class PiecewiseQuadratic(SurrogateFunctionBase):
    r"""Piecewise quadratic surrogate (Esser et al.):
    :math:`g'(x) = \max(0, \alpha - \alpha^2 |x|)` (zero outside :math:`|x| \le 1/\alpha`),
    :math:`g(x)` its integral, 0 below :math:`-1/\alpha` and 1 above :math:`1/\alpha`."""

    name = "piecewise_quadratic"

    def __init__(self, alpha: float = 1.0, spiking: bool = True) -> None:
        super().__init__(alpha, spiking)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        a = self.alpha
        inside = -(a * a / 2) * x * x.abs() + a * x + 0.5
        return torch.where(x > 1.0 / a, torch.ones_like(x), torch.where(x < -1.0 / a, torch.zeros_like(x), inside))

    def derivative(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(self.alpha - self.alpha * self.alpha * x.abs(), min=0.0)
