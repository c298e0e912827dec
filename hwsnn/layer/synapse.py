r"""Synapse filter: an exponentially decaying synaptic current driven by spikes."""

from __future__ import annotations

import math
from typing import Union

import torch
import torch.nn as nn

from ..backend import check_backend, fused_state, synapse_multi_step
from ..base import MemoryModule, require_time_axis
from ..functional.layer import synapse_filter_step

__all__ = ["SynapseFilter"]


class SynapseFilter(MemoryModule):
    r"""Low-pass synapse (a LIF neuron with an infinite threshold).

    Float: :math:`I[t] = I[t-1] - (1 - S[t])\,\frac{I[t-1]}{\tau} + S[t]`, :math:`I[-1] = 0`;
    the output is :math:`I[t]`.

    Learnable time constant (``learnable=True``): a parameter :math:`w = -\ln(\tau - 1)` with
    :math:`1/\tau = \mathrm{sigmoid}(w)`, so :math:`\tau > 1` throughout training.

    The integer twin (shift decay :math:`I \leftarrow I - (I \gg k)`, :math:`\tau = 2^k`) comes
    with the targets.

    :param tau: time constant (> 1), or its initial value when ``learnable``
    :param learnable: learn :math:`\tau` through :math:`w`
    :param step_mode: ``'s'`` or ``'m'``
    :param backend: multi-step kernel, ``'auto'`` (Triton on CUDA when installed, else torch),
        ``'torch'`` or ``'triton'``: the whole sequence is one autograd node with a hand-written
        backward (gradients to the input, the entering current and ``w``); see :mod:`hwsnn.backend`.
        float16/bfloat16 inputs run with a float32 current.
    """

    def __init__(
        self, tau: float = 100.0, learnable: bool = False, step_mode: str = "s", backend: str = "auto"
    ) -> None:
        super().__init__()
        self.backend = check_backend(backend, "SynapseFilter")
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau):
            raise TypeError(f"SynapseFilter: tau must be a finite real number > 1; got {tau!r}")
        if tau <= 1:
            raise ValueError(f"SynapseFilter: tau must be > 1 (the decay 1/tau must lie in (0, 1)); got {tau}")
        self.step_mode = step_mode
        self.learnable = bool(learnable)
        if self.learnable:
            self.w = nn.Parameter(torch.as_tensor(-math.log(tau - 1.0)))
        else:
            self.tau = float(tau)
        self.register_memory("out_i", 0.0)

    @property
    def inv_tau(self) -> Union[float, torch.Tensor]:
        r""":math:`1/\tau` (a tensor carrying the gradient when learnable)."""
        return torch.sigmoid(self.w) if self.learnable else 1.0 / self.tau

    @property
    def tau_value(self) -> float:
        """The current time constant as a number."""
        if self.learnable:
            return float(1.0 / torch.sigmoid(self.w.detach()))
        return self.tau

    def _init_state(self, x: torch.Tensor) -> None:
        if not isinstance(self.out_i, torch.Tensor) or self.out_i.shape != x.shape:
            self.out_i = torch.zeros_like(x)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self._init_state(x)
        self.out_i = synapse_filter_step(x, self.out_i, self.inv_tau)
        return self.out_i

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, "SynapseFilter")
        if not x_seq.is_floating_point():
            return super().multi_step_forward(x_seq)
        i = fused_state(self.out_i, x_seq, 0.0)
        if i is None:
            return super().multi_step_forward(x_seq)
        out_seq = synapse_multi_step(x_seq, i, self.inv_tau, backend=self.backend)
        self.out_i = out_seq[-1]
        return out_seq

    def extra_repr(self) -> str:
        return (
            f"tau={self.tau_value:.6g}, learnable={self.learnable}, step_mode={self.step_mode}, "
            f"backend={self.backend}"
        )
