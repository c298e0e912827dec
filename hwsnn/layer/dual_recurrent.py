r"""A two-synapse population with a recurrent projection onto itself: :class:`DualRecurrentContainer`.

.. math::
    y_t = f\big(x_t + W\,y_{t-1}\big), \qquad (W y)[\dots, j, s] = \sum_i W[s, j, i]\, y[\dots, i], \qquad y_{-1} = 0,

where :math:`f` is a two-synapse neuron (:class:`~hwsnn.neuron.CubaLIF2Node`: input ``[..., M, 2]``,
spikes ``[..., M]``), :math:`x_t` ``[..., M, 2]`` its feed-forward input (a
:class:`~hwsnn.layer.DualLinear` before it) and :math:`W` ``[2, M, M]`` the weight of ``rc`` (a
``DualLinear(M, M)``): last step's spikes reach both synaptic currents, each through its own matrix.
This is :class:`~hwsnn.layer.RecurrentContainer` with a synapse axis; on SynSense Xylo :math:`W[s]`
is the diagonal block of ``w_rec[..., s]`` (the recurrent events of step :math:`t-1`, as here).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..base import MemoryModule, require_time_axis
from .container import require_single_step_children
from .dual import DualLinear

__all__ = ["DualRecurrentContainer"]


class DualRecurrentContainer(MemoryModule):
    r""":math:`y_t = f(x_t + W y_{t-1})` with two synapses (module docstring); memory ``y`` = :math:`y_{t-1}`.

    :param sub_module: :math:`f`, mapping ``[N, features, 2]`` to spikes ``[N, features]`` one step at a
        time (a :class:`~hwsnn.neuron.CubaLIF2Node` in step mode ``'s'``)
    :param features: :math:`M`, the population size
    :param step_mode: ``'s'`` (``[N, M, 2]``) or ``'m'`` (``[T, N, M, 2]``); the sub-module stays ``'s'``

    ``rc`` (a :class:`~hwsnn.layer.DualLinear` without bias, Xylo has none) holds :math:`W`.
    """

    fixes_child_step_mode = True

    def __init__(self, sub_module: nn.Module, features: int, step_mode: str = "s") -> None:
        if isinstance(features, bool) or not isinstance(features, int) or features < 1:
            raise ValueError(f"DualRecurrentContainer: features must be an integer >= 1; got {features!r}")
        if not isinstance(sub_module, nn.Module):
            raise TypeError(f"DualRecurrentContainer: sub_module must be an nn.Module; got {type(sub_module).__name__}")
        super().__init__()
        self.sub_module = sub_module
        self.features = features
        self.rc = DualLinear(features, features)
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
            raise TypeError(f"DualRecurrentContainer expects a tensor {shape}; got {type(x).__name__}")
        if x.dim() < 2 or tuple(x.shape[-2:]) != (self.features, 2):
            raise ValueError(f"DualRecurrentContainer(features={self.features}) expects {shape} (a DualLinear before it); "
                             f"got shape {tuple(x.shape)}")

    def feedback(self, x: torch.Tensor) -> torch.Tensor:
        r"""The sub-module's input of this step, :math:`x_t + W y_{t-1}` (:math:`y_{t-1} = 0` after a reset
        or when the batch shape changed)."""
        y = self.y
        if isinstance(y, torch.Tensor) and y.shape == x.shape[:-1]:
            return x + self.rc(y)
        return x

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x, f"[N, {self.features}, 2]")
        require_single_step_children(self)
        y = self.sub_module(self.feedback(x))
        if not isinstance(y, torch.Tensor) or y.shape != x.shape[:-1]:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"DualRecurrentContainer: the sub_module must map {tuple(x.shape)} to {tuple(x.shape[:-1])} "
                             f"(its spikes feed back through the two {self.features}x{self.features} weights); got {got}")
        self.y = y
        return y

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, "DualRecurrentContainer", min_dim=3)
        self._check(x_seq, f"[T, N, {self.features}, 2]")
        return torch.stack([self.single_step_forward(x_seq[t]) for t in range(x_seq.shape[0])])

    def extra_repr(self) -> str:
        return f"features={self.features}, step_mode={self.step_mode}"
