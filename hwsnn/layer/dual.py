r"""A linear projection onto two synapses of every target neuron: :class:`DualLinear`.

.. math::
    y[\dots, j, s] = \sum_i W[s, j, i]\, x[\dots, i] + b[s, j], \qquad s \in \{0, 1\}

``weight`` ``[2, out, in]`` holds one ``nn.Linear``-shaped matrix per synapse (``weight[0]`` feeds
synaptic current 1, ``weight[1]`` current 2); the output carries a trailing synapse axis of size 2,
which :class:`hwsnn.neuron.CubaLIF2Node` takes. On SynSense Xylo the two matrices are the synapse-1
and synapse-2 planes of ``w_in`` / ``w_rec`` (``w[..., 0]`` and ``w[..., 1]``), quantized with one
exponent (one weight shift per matrix on the chip); :func:`quant.convert` lays a network of these
layers out as one Xylo core (``docs/xylo.md``).

Stateless: the same map at every step, so step mode ``'s'`` (``[N, in]``) and ``'m'``
(``[T, N, in]``) differ only in the leading axes.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn as nn

from ..base import StepModule

__all__ = ["DualLinear"]

#: synaptic currents a DualLinear feeds
SYNAPSES = 2


class DualLinear(nn.Module, StepModule):
    r"""Linear map onto two synapses: ``[..., in] -> [..., out, 2]`` (module docstring).

    :param in_features: input features
    :param out_features: target neurons
    :param bias: whether to learn a bias ``[2, out]`` (Xylo has no projection bias: a network for a
        Xylo target uses ``bias=False``)
    :param step_mode: ``'s'`` or ``'m'``
    :param device: torch device of the parameters (keyword-only)
    :param dtype: torch dtype of the parameters (keyword-only)

    Initialised as ``torch.nn.Linear`` is, each synapse's matrix on its own:
    :math:`\mathcal{U}(-1/\sqrt{in}, 1/\sqrt{in})`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False, step_mode: str = "s",
                 *, device: Any = None, dtype: Optional[torch.dtype] = None) -> None:
        for pname, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"DualLinear: {pname} must be an integer >= 1; got {v!r}")
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.synapses = SYNAPSES
        kw = {"device": device, "dtype": dtype}
        self.weight = nn.Parameter(torch.empty(SYNAPSES, out_features, in_features, **kw))
        self.bias = nn.Parameter(torch.empty(SYNAPSES, out_features, **kw)) if bias else None
        self.step_mode = step_mode
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Uniform :math:`\\pm 1/\\sqrt{in}` weights and bias, as ``torch.nn.Linear``."""
        bound = 1.0 / math.sqrt(self.in_features)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"DualLinear expects a tensor; got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"DualLinear expects inputs [..., {self.in_features}]; got shape {tuple(x.shape)}")
        if self.step_mode == "m" and x.dim() < 3:
            raise ValueError(f"DualLinear in step_mode 'm' expects [T, N, ..., {self.in_features}]; got shape "
                             f"{tuple(x.shape)} (is the time axis missing?)")
        y = torch.einsum("...i,soi->...os", x.to(self.weight.dtype), self.weight)
        if self.bias is not None:
            y = y + self.bias.T
        return y

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, synapses={self.synapses}, "
                f"bias={self.bias is not None}, step_mode={self.step_mode}")
