r"""Integer twin of ``Flatten`` (:mod:`hwsnn.layer.flatten` and ``torch.nn.Flatten``): a reshape of
integers, :math:`y = \mathrm{flatten}(x, \mathit{start\_dim}, \mathit{end\_dim})`, exact on every target."""

from __future__ import annotations

from typing import Optional, Union

import torch
import torch.nn as nn

from targets import Target
from targets import bundle as fmt

from ..layer.flatten import Flatten
from . import arith
from .base import FixedModule, spec_twin
from .convert import register
from .fold import per_step

__all__ = ["FixedFlatten"]


@spec_twin("flatten")
class FixedFlatten(FixedModule):
    """Integer twin of ``Flatten``: the same reshape of integers (``'m'``: the dims count in the
    folded ``[T*N, ...]`` tensor, as the float layer's). No arithmetic, every target alike.

    :param start_dim: first dim to flatten
    :param end_dim: last dim to flatten
    :param target: target or its name
    :param name: layer name
    :param step_mode: ``'s'`` or ``'m'``
    """

    def __init__(
        self,
        start_dim: int = 1,
        end_dim: int = -1,
        target: Union[str, Target] = "generic_int8",
        *,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self.step_mode = step_mode

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return arith.require_integer(x, self.layer_name).flatten(self.start_dim, self.end_dim)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        x_seq = arith.require_integer(x_seq, self.layer_name)
        return per_step(self, x_seq, lambda z: z.flatten(self.start_dim, self.end_dim))

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Flatten":
        return fmt.Flatten(**self._ports(name, input_shape, input_kind, self.step_output_shape(input_shape), input_kind,
                                         input_exponent), start_dim=self.start_dim, end_dim=self.end_dim)

    @classmethod
    def from_spec(cls, spec: "fmt.Flatten", target: Target) -> "FixedFlatten":
        return cls(spec.start_dim, spec.end_dim, target, name=spec.name)


@register(Flatten, nn.Flatten)
def _flatten_to_fixed(
    layer: nn.Flatten,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_exponent: Optional[int] = None,
) -> FixedFlatten:
    """:class:`FixedFlatten` with the layer's ``start_dim``/``end_dim``."""
    return FixedFlatten(layer.start_dim, layer.end_dim, target, name=name)
