r"""``VotingLayer``: population voting, the mean over consecutive groups of ``voting_size`` neurons."""

from __future__ import annotations

import numbers

import torch
import torch.nn as nn

from ..base import StepModule, require_time_axis

__all__ = ["VotingLayer"]


class VotingLayer(nn.Module, StepModule):
    r"""Population voting: the mean over consecutive groups of ``voting_size`` neurons.

    For an input whose last dim has :math:`C v` neurons (:math:`v` = ``voting_size``),

    .. math::
        y[\ldots, c] = \frac{1}{v}\sum_{k=0}^{v-1} x[\ldots, c\,v + k],\qquad c = 0, \ldots, C-1,

    i.e. ``[..., C*v] -> [..., C]`` for any leading dims (the same in both step modes; in
    ``'m'`` the first dim is time). Pairs with :func:`hwsnn.functional.redundant_one_hot`.
    Unlike SpikingJelly (which silently drops the remainder), a last dim that is not a multiple
    of ``voting_size`` raises ``ValueError``.

    :param voting_size: neurons per class (int >= 1)
    :param step_mode: ``'s'`` (input ``[N, C*v]``) or ``'m'`` (input ``[T, N, C*v]``)
    """

    def __init__(self, voting_size: int = 10, step_mode: str = "s") -> None:
        super().__init__()
        if isinstance(voting_size, bool) or not isinstance(voting_size, numbers.Integral):
            raise TypeError(f"VotingLayer: voting_size must be an int >= 1; got {voting_size!r}")
        if voting_size < 1:
            raise ValueError(f"VotingLayer: voting_size must be an int >= 1; got {voting_size}")
        self.voting_size = int(voting_size)
        self.step_mode = step_mode

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"VotingLayer expects a tensor [..., C*voting_size]; got {type(x).__name__}")
        if x.dim() < 1:
            raise ValueError("VotingLayer expects a tensor with at least one dim [..., C*voting_size]; got a scalar")
        v = self.voting_size
        n = x.shape[-1]
        if n % v != 0:
            raise ValueError(
                f"VotingLayer: the last dim ({n}) must be a multiple of voting_size ({v}); got input "
                f"shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        return x.unflatten(-1, (n // v, v)).mean(dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "m":
            require_time_axis(x, "VotingLayer", min_dim=2)
        return self.single_step_forward(x)

    def extra_repr(self) -> str:
        return f"voting_size={self.voting_size}, step_mode={self.step_mode}"
