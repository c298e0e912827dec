r"""A population with a recurrent projection onto itself: :class:`RecurrentContainer`.

.. math::
    y_t = f\big(x_t + W\,y_{t-1} + b\big), \qquad y_{-1} = 0,

where :math:`f` is the wrapped module (a spiking neuron, stepped one step at a time), :math:`W`
``[M, M]`` and :math:`b` the weight and optional bias of ``rc`` (an :class:`torch.nn.Linear`) and
:math:`M` = ``features``. The loop is plain autograd, so BPTT reaches :math:`W` and earlier steps
through :math:`y_{t-1}` (and through :math:`f`'s surrogate gradient and state).

Unlike SpikingJelly's ``LinearRecurrentContainer``, which computes
:math:`f(W' [x_t, y_{t-1}] + b')` with one ``Linear`` of ``in + out`` input features, the input
:math:`x_t` is *not* transformed: the layer before provides the input projection, and :math:`W`
is exactly a chip's recurrent weight matrix (Xylo's hidden-to-hidden weights, a Loihi Dense
projection of a population onto itself). Integer twin: :class:`hwsnn.fixed.recurrent.FixedRecurrent`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..base import MemoryModule, require_time_axis
from .container import require_single_step_children

__all__ = ["RecurrentContainer"]


class RecurrentContainer(MemoryModule):
    r""":math:`y_t = f(x_t + W y_{t-1} + b)` (module docstring); memory ``y`` = :math:`y_{t-1}` (``None`` after reset).

    :param sub_module: :math:`f`, mapping ``[N, features]`` to ``[N, features]`` one step at a time
        (e.g. an ``IFNode``/``LIFNode``/``CubaLIFNode`` in step mode ``'s'``)
    :param features: :math:`M`, the population size (last dimension of input and output)
    :param bias: whether ``rc`` has a bias :math:`b`
    :param step_mode: ``'s'`` (``[N, M]``) or ``'m'`` (``[T, N, M]``); the sub-module stays ``'s'``
    """

    fixes_child_step_mode = True

    def __init__(self, sub_module: nn.Module, features: int, bias: bool = False, step_mode: str = "s") -> None:
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"RecurrentContainer: features must be an integer >= 1; got {features!r}")
        if not isinstance(sub_module, nn.Module):
            raise TypeError(f"RecurrentContainer: sub_module must be an nn.Module; got {type(sub_module).__name__}")
        super().__init__()
        self.sub_module = sub_module
        self.features = features
        self.rc = nn.Linear(features, features, bias=bias)
        self.step_mode = step_mode
        require_single_step_children(self)
        self.register_memory("y", None)

    def reset(self) -> None:
        """Forget :math:`y_{t-1}` and reset the sub-module."""
        super().reset()
        if callable(getattr(self.sub_module, "reset", None)):
            self.sub_module.reset()

    def _check(self, x: object, shape: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"RecurrentContainer expects a tensor {shape}; got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.features:
            raise ValueError(f"RecurrentContainer(features={self.features}) expects {shape} with last dimension "
                             f"{self.features} (the input is not projected: put a Linear before it); got shape "
                             f"{tuple(x.shape)}")

    def feedback(self, x: torch.Tensor) -> torch.Tensor:
        r"""The sub-module's input of this step, :math:`x_t + W y_{t-1} + b` (:math:`y_{t-1} = 0` after a
        reset or when the batch shape changed)."""
        y = self.y
        if isinstance(y, torch.Tensor) and y.shape == x.shape:
            return x + self.rc(y)
        return x if self.rc.bias is None else x + self.rc.bias

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, f"[N, {self.features}]")
        require_single_step_children(self)
        y = self.sub_module(self.feedback(x))
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"RecurrentContainer: the sub_module must keep the shape {tuple(x.shape)} (its output "
                             f"feeds back through the {self.features}x{self.features} weight); got {got}")
        self.y = y
        return y

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, "RecurrentContainer", min_dim=2)
        self._check(x_seq, f"[T, N, {self.features}]")
        return torch.stack([self.single_step_forward(x_seq[t]) for t in range(x_seq.shape[0])])

    def extra_repr(self) -> str:
        return f"features={self.features}, bias={self.rc.bias is not None}, step_mode={self.step_mode}"
