r"""Dropout for spiking networks: masks that stay fixed over the time steps of one sample.

* :class:`Dropout`: element-wise mask, drawn once per simulation (until :meth:`reset`).
* :class:`Dropout2d`: one mask value per (sample, channel), drawn once per simulation.
* :class:`DropConnectLinear`: a linear layer whose *weights* are dropped per sample, with the
  Gaussian moment-matching inference of Wan et al. 2013 in eval mode.

Dropping different neurons at different time steps of one sample would turn the dropout noise
into spike noise; the SpikingJelly layers (and these) therefore draw the mask on the first step
after a reset and keep it until the next reset.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..base import MemoryModule, require_time_axis

__all__ = ["Dropout", "Dropout2d", "DropConnectLinear"]


def check_p(p: object, owner: str) -> float:
    """Validate a drop probability: a real number in ``[0, 1)``."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(float(p)):
        raise TypeError(f"{owner}: p (the drop probability) must be a real number in [0, 1); got {p!r}")
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{owner}: p (the drop probability) must lie in [0, 1); got {p}")
    return p


def _check_positive_int(name: str, value: object, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an int >= 1; got {value!r}")
    if value < 1:
        raise ValueError(f"{owner}: {name} must be an int >= 1; got {value}")
    return int(value)


def _float_dtype(x: torch.Tensor) -> torch.dtype:
    return x.dtype if x.is_floating_point() else torch.get_default_dtype()


class Dropout(MemoryModule):
    r"""Dropout with one mask per simulation.

    Training: on the first step after :meth:`reset` a mask :math:`M` shaped like one step of
    input is drawn,

    .. math::
        M = \frac{B}{1-p},\qquad B \sim \mathrm{Bernoulli}(1-p)\ \text{element-wise},

    and every step is multiplied by the same mask, :math:`y[t] = x[t] \odot M`, until
    :meth:`reset`. So :math:`\mathbb{E}[y[t]] = x[t]`. Eval: :math:`y[t] = x[t]`.

    The mask is drawn with ``torch.rand`` (``torch.manual_seed`` makes it reproducible); a
    single-step run over ``T`` steps and a multi-step run on the same ``[T, ...]`` input give the
    same outputs and gradients for the same seed. A step of another shape before :meth:`reset`
    raises ``ValueError`` (the mask is never broadcast silently).

    :param p: drop probability, a real number in :math:`[0, 1)`
    :param step_mode: ``'s'`` (input ``[N, ...]``) or ``'m'`` (input ``[T, N, ...]``)
    """

    def __init__(self, p: float = 0.5, step_mode: str = "s") -> None:
        super().__init__()
        self.p = check_p(p, type(self).__name__)
        self.step_mode = step_mode
        self.register_memory("mask", None)

    # -- mask ---------------------------------------------------------------------------------
    def mask_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """Shape of the mask for one step ``x`` (element-wise: the shape of ``x``)."""
        return tuple(x.shape)

    def create_mask(self, x: torch.Tensor) -> None:
        """Draw ``self.mask`` (values ``0`` or ``1/(1-p)``) for one step ``x``."""
        shape = self.mask_shape(x)
        keep = torch.rand(shape, device=x.device) >= self.p
        self.mask = keep.to(_float_dtype(x)) * (1.0 / (1.0 - self.p))

    def _mask_for(self, x: torch.Tensor) -> torch.Tensor:
        if self.mask is None:
            self.create_mask(x)
        else:
            expected = self.mask_shape(x)
            if tuple(self.mask.shape) != expected:
                raise ValueError(
                    f"{type(self).__name__}: got a step of shape {tuple(x.shape)}, but the mask drawn "
                    f"since the last reset() has shape {tuple(self.mask.shape)} (this step needs "
                    f"{expected}); call reset() (e.g. hwsnn.functional.reset_net) between samples"
                )
        return self.mask

    # -- stepping -----------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a tensor; got {type(x).__name__}")
        if not self.training:
            return x
        return x * self._mask_for(x)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, type(self).__name__)
        if not self.training:
            return x_seq
        return x_seq * self._mask_for(x_seq[0])

    def extra_repr(self) -> str:
        return f"p={self.p}, step_mode={self.step_mode}"


class Dropout2d(Dropout):
    r"""Channel dropout with one mask per simulation.

    Like :class:`Dropout`, but one mask value per (sample, channel): for a step ``[N, C, ...]``
    the mask has shape ``[N, C, 1, ..., 1]``, so whole feature maps are zeroed (kept ones are
    scaled by :math:`1/(1-p)`). The same mask is used for every step until :meth:`reset`.

    :param p: drop probability, a real number in :math:`[0, 1)`
    :param step_mode: ``'s'`` (input ``[N, C, ...]``) or ``'m'`` (input ``[T, N, C, ...]``)
    """

    def __init__(self, p: float = 0.2, step_mode: str = "s") -> None:
        super().__init__(p, step_mode)

    def mask_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        if x.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} expects steps shaped [N, C, ...] (rank >= 2; [T, N, C, ...] in "
                f"step_mode 'm'); got a step of shape {tuple(x.shape)}"
            )
        return tuple(x.shape[:2]) + (1,) * (x.dim() - 2)


_DEFAULT_ACTIVATION: Any = object()  # sentinel: "no activation argument given" -> a fresh nn.ReLU()

Activation = Optional[Union[nn.Module, Callable[[torch.Tensor], torch.Tensor]]]


class DropConnectLinear(MemoryModule):
    r"""Linear layer with DropConnect (Wan et al. 2013), a SpikingJelly layer.

    Training: for every sample :math:`n` of the batch, unscaled masks
    :math:`M_n \in \{0,1\}^{out \times in}` and :math:`m_n \in \{0,1\}^{out}` with
    :math:`P(1) = 1 - p` (drawn as ``rand >= p``) give

    .. math::
        y_n = a\big((W \odot M_n)\,x_n + b \odot m_n\big)

    with the activation :math:`a` (default ``nn.ReLU()``; ``activation=None``: identity). The
    masks are redrawn on every call (every time step), or, with ``invariant=True``, kept until
    :meth:`reset`. The masked weights of the last call are in the memories ``dropped_w``
    (``[N, out, in]``) and ``dropped_b`` (``[N, out]``); the masks themselves in ``mask_w`` and
    ``mask_b``. The masked weights are recomputed from the masks on every call, so they follow
    optimiser updates of :math:`W` and :math:`b` in invariant mode.

    Eval: the pre-activation is a sum of many independent masked terms, approximated by a
    Gaussian with the same mean and variance,

    .. math::
        \mu = (1-p)(W x + b),\qquad
        \sigma^2 = p(1-p)\big((x \odot x)(W \odot W)^\top + b \odot b\big),

    and the output is the Monte-Carlo mean :math:`\frac1S\sum_{s=1}^{S} a(\mu + \sigma\,\epsilon_s)`,
    :math:`\epsilon_s \sim \mathcal N(0, 1)`, over ``S = samples_num`` draws.

    :param in_features: input size (int >= 1)
    :param out_features: output size (int >= 1)
    :param bias: learn a bias
    :param p: drop probability of every weight (and bias), a real number in :math:`[0, 1)`
    :param samples_num: number of Gaussian samples in eval mode (int >= 1)
    :param invariant: keep the training masks until :meth:`reset` instead of redrawing per call
    :param activation: module or callable applied to the result; default a new ``nn.ReLU()``;
        ``None`` for no activation
    :param step_mode: ``'s'`` (input ``[N, in]``) or ``'m'`` (input ``[T, N, in]``)
    """

    # The activation is applied to one step per call: set_step_mode must not switch it to 'm'.
    fixes_child_step_mode = True

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        p: float = 0.5,
        samples_num: int = 1024,
        invariant: bool = False,
        activation: Activation = _DEFAULT_ACTIVATION,
        step_mode: str = "s",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.in_features = _check_positive_int("in_features", in_features, owner)
        self.out_features = _check_positive_int("out_features", out_features, owner)
        self.p = check_p(p, owner)
        self.samples_num = _check_positive_int("samples_num", samples_num, owner)
        self.invariant = bool(invariant)
        self.step_mode = step_mode
        if activation is _DEFAULT_ACTIVATION:
            activation = nn.ReLU()
        elif activation is not None and not callable(activation):
            raise TypeError(f"{owner}: activation must be an nn.Module, a callable or None; got {activation!r}")
        self.activation = activation

        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

        self.register_memory("mask_w", None)
        self.register_memory("mask_b", None)
        self.register_memory("dropped_w", None)
        self.register_memory("dropped_b", None)

    def reset_parameters(self) -> None:
        r"""Initialise like ``torch.nn.Linear``: Kaiming-uniform (``a = sqrt(5)``) weight, bias
        uniform in :math:`\pm 1/\sqrt{\mathrm{fan\_in}}`."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = nn.init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(self.bias, -bound, bound)

    def reset(self) -> None:
        """Forget the masks; also reset the activation if it has a ``reset``."""
        super().reset()
        reset = getattr(self.activation, "reset", None)
        if callable(reset):
            reset()

    # -- masks --------------------------------------------------------------------------------
    def drop(self, batch_size: int) -> None:
        """Draw new unscaled masks ``rand >= p`` for ``batch_size`` samples."""
        device = self.weight.device
        self.mask_w = torch.rand((batch_size, self.out_features, self.in_features), device=device) >= self.p
        if self.bias is not None:
            self.mask_b = torch.rand((batch_size, self.out_features), device=device) >= self.p

    def _check_input(self, x: object) -> torch.Tensor:
        owner = type(self).__name__
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{owner} expects a tensor [N, {self.in_features}]; got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.in_features:
            mode = f" per step ([T, N, {self.in_features}] in step_mode 'm')" if self.step_mode == "m" else ""
            raise ValueError(
                f"{owner} expects an input of shape [N, in_features] = [N, {self.in_features}]{mode}; "
                f"got a step of shape {tuple(x.shape)}"
            )
        return x

    def _activate(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.activation is None else self.activation(y)

    # -- stepping -----------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_input(x)
        if self.training:
            return self._train_forward(x)
        return self._eval_forward(x)

    def _train_forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if not self.invariant or self.mask_w is None:
            self.drop(n)
        elif self.mask_w.shape[0] != n:
            raise ValueError(
                f"{type(self).__name__} (invariant=True): got a batch of {n} samples, but the masks "
                f"drawn since the last reset() are for {self.mask_w.shape[0]}; call reset() between samples"
            )
        self.dropped_w = self.weight * self.mask_w  # [N, out, in]
        y = torch.bmm(self.dropped_w, x.unsqueeze(-1).to(self.dropped_w.dtype)).squeeze(-1)
        if self.bias is not None:
            self.dropped_b = self.bias * self.mask_b  # [N, out]
            y = y + self.dropped_b
        return self._activate(y)

    def _eval_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.weight.dtype)
        p = self.p
        mu = (1.0 - p) * F.linear(x, self.weight, self.bias)
        b2 = None if self.bias is None else self.bias.square()
        sigma2 = p * (1.0 - p) * F.linear(x.square(), self.weight.square(), b2)
        # clamp keeps sqrt (and its gradient) finite where the variance is exactly 0
        sigma = sigma2.clamp_min(torch.finfo(sigma2.dtype).tiny).sqrt()
        eps = torch.randn((self.samples_num,) + tuple(mu.shape), device=mu.device, dtype=mu.dtype)
        samples = mu + sigma * eps
        return self._activate(samples).mean(dim=0)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"p={self.p}, samples_num={self.samples_num}, invariant={self.invariant}, step_mode={self.step_mode}"
        )
