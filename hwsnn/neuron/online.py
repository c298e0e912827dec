r"""Online training through time (OTTT, Xiao et al. 2022): :class:`OTTTLIFNode`.

In training mode the neuron keeps a presynaptic trace beside its membrane and returns both:

.. math::
    V \leftarrow \mathrm{detach}(V),\quad (S, V) = \mathrm{LIF}(X, V),\quad
    \hat a \leftarrow \hat a\,(1 - 1/\tau) + S \quad(\text{no gradient})

and the forward returns ``[S, a_hat]``; the next synaptic layer (see
:class:`hwsnn.layer.OTTTSequential`) computes its value from ``S`` and its weight gradient from
the trace, so memory does not grow with T. In eval mode the forward returns ``S`` only.

Built single-step (``step_mode='s'``; another value at construction raises ``ValueError``, as
SpikingJelly asserts). Like SpikingJelly, :func:`hwsnn.functional.set_step_mode` may switch it to
``'m'`` afterwards; a multi-step call then runs the single step over dim 0 and returns
``[S_seq, a_hat_seq]`` (training) or ``S_seq`` (eval), stacked on dim 0 (SpikingJelly 2.0 raises
inside its multi-step forward). The membrane is still detached at every step, so one backward
over the sequence sums the per-step OTTT gradients.
"""

from __future__ import annotations

from typing import Optional, Union

import torch

from ..base import require_time_axis
from ..surrogate import SurrogateFunctionBase
from .nodes import LIFNode, Threshold

__all__ = ["OTTTLIFNode"]


class OTTTLIFNode(LIFNode):
    """LIF neuron for online learning; defaults follow the seed (soft reset, ``decay_input=False``,
    ``detach_reset=True``)."""

    def __init__(
        self,
        tau: float = 2.0,
        decay_input: bool = False,
        v_threshold: Threshold = 1.0,
        v_reset: Optional[float] = None,
        surrogate_function: Optional[SurrogateFunctionBase] = None,
        detach_reset: bool = True,
        step_mode: str = "s",
        store_v_seq: bool = False,
    ) -> None:
        if step_mode != "s":
            raise ValueError(
                f"OTTTLIFNode: step_mode must be 's' at construction (online learning runs step by step); got "
                f"{step_mode!r}"
            )
        super().__init__(tau, decay_input, v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq)
        self.register_memory("trace", None)

    def single_step_forward(self, x: torch.Tensor) -> Union[torch.Tensor, list[torch.Tensor]]:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"OTTTLIFNode expects a tensor; got {type(x).__name__}")
        self.v_float_to_tensor(x)
        if not self.training:
            spike, self.v = self.step(x, self.v)
            return spike
        spike, self.v = self.step(x, self.v.detach())
        trace = self.trace
        if not isinstance(trace, torch.Tensor) or trace.shape != spike.shape:
            trace = torch.zeros_like(spike)
        with torch.no_grad():
            trace = trace * (1.0 - 1.0 / self.tau) + spike
        self.trace = trace
        return [spike, trace]

    def multi_step_forward(self, x_seq: torch.Tensor) -> Union[torch.Tensor, list[torch.Tensor]]:
        """The single step over dim 0: ``[S_seq, a_hat_seq]`` in training, ``S_seq`` in eval."""
        require_time_axis(x_seq, "OTTTLIFNode")
        steps, v_seq = [], []
        for t in range(x_seq.shape[0]):
            steps.append(self.single_step_forward(x_seq[t]))
            if self.store_v_seq:
                v_seq.append(self.v)
        if self.store_v_seq:
            self.v_seq = torch.stack(v_seq)
        if not self.training:
            return torch.stack(steps)
        return [torch.stack([s for s, _ in steps]), torch.stack([a for _, a in steps])]
