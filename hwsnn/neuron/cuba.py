r"""Current-based leaky integrate-and-fire neuron (CUBA LIF), as Loihi and Xylo have it.

Two states per neuron: the synaptic current :math:`I` and the membrane :math:`V`. One step, with
:math:`V_r = 0` for the soft reset (``v_reset=None``):

.. math::
    I[t] &= I[t-1] - \frac{1}{\tau_{syn}} I[t-1] + X[t] \\
    H[t] &= V[t-1] - \frac{1}{\tau_{mem}} \bigl(V[t-1] - V_r\bigr) + I[t] \\
    S[t] &= \Theta(H[t] - V_{th}) \\
    V[t] &= S V_r + (1 - S) H \ \text{(hard)}, \quad V[t] = H - S V_{th} \ \text{(soft)}

The current decays *then* takes the input (``current_order: decay_then_add``, Loihi's order); the
current is never reset by a spike. The membrane part is :class:`~hwsnn.neuron.LIFNode`'s charge with
``decay_input=False`` and the current as input, so fire and reset are exactly those of
:mod:`hwsnn.functional.neuron` (inclusive :math:`\Theta`, surrogate gradient, ``detach_reset``).

Plain torch loop in both step modes (no fused kernel): multi-step runs the single step over dim 0.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .nodes import BaseNode, Threshold, TimeConstant, tau_repr, check_tau, tau_for

__all__ = ["CubaLIFNode"]


class CubaLIFNode(BaseNode):
    r"""CUBA LIF neuron: a first-order synaptic current feeding a leaky membrane.

    :param tau_syn: synaptic current time constant, :math:`\ge 1` (1: the current is this step's input)
    :param tau_mem: membrane time constant, :math:`\ge 1` (1: no memory beyond the current)

    Either time constant may be a floating tensor of per-neuron values broadcastable to one step
    of the input (hwsnn extension, e.g. imported from NIR; no integer twin).
    :param v_threshold: firing threshold :math:`V_{th}` (number, or tensor broadcastable to the input)
    :param v_reset: reset potential; ``None`` selects the soft reset :math:`V = H - S V_{th}`
    :param surrogate_function: spike function with surrogate gradient (default ``Sigmoid()``)
    :param detach_reset: detach the spike used in the reset from the graph
    :param step_mode: ``'s'`` (input ``[N, ...]``) or ``'m'`` (input ``[T, N, ...]``)
    :param store_v_seq: in multi-step mode, keep the membrane after every step in ``self.v_seq``

    Memories: ``i`` (current, starts at 0) and ``v`` (membrane, starts at ``v_reset`` or 0).
    """

    def __init__(
        self,
        tau_syn: TimeConstant = 2.0,
        tau_mem: TimeConstant = 2.0,
        v_threshold: Threshold = 1.0,
        v_reset: Optional[float] = 0.0,
        surrogate_function: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        detach_reset: bool = False,
        step_mode: str = "s",
        store_v_seq: bool = False,
    ) -> None:
        owner = type(self).__name__
        taus = {pname: check_tau(pname, tau, owner, low=1.0, inclusive=True)
                for pname, tau in (("tau_syn", tau_syn), ("tau_mem", tau_mem))}
        super().__init__(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq, backend="torch")
        self.tau_syn = taus["tau_syn"]
        self.tau_mem = taus["tau_mem"]
        self.register_memory("i", 0.0)

    # -- equations ----------------------------------------------------------------------------
    def current_charge(self, x: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        r""":math:`I[t] = I[t-1] - I[t-1]/\tau_{syn} + X[t]`."""
        return i - i / tau_for(self.tau_syn, x) + x

    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        r""":math:`H = V - (V - V_r)/\tau_{mem} + I` where ``x`` is this step's current :math:`I[t]`."""
        vr = 0.0 if self.v_reset is None else self.v_reset
        return v - (v - vr) / tau_for(self.tau_mem, x) + x

    def i_float_to_tensor(self, x: torch.Tensor) -> None:
        """Make ``self.i`` a zero tensor shaped like one step of ``x`` (re-initialised on a shape change)."""
        if not isinstance(self.i, torch.Tensor) or self.i.shape != x.shape:
            self.i = torch.zeros_like(x)

    def _fused_charge(self) -> Optional[dict]:
        return None  # no fused kernel: the reference loop runs

    # -- stepping -----------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a tensor; got {type(x).__name__}")
        self.v_float_to_tensor(x)
        self.i_float_to_tensor(x)
        self.i = self.current_charge(x, self.i)
        spike, self.v = self.step(self.i, self.v)
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.step_by_step(x_seq)

    def extra_repr(self) -> str:
        return f"tau_syn={tau_repr(self.tau_syn)}, tau_mem={tau_repr(self.tau_mem)}, " + super().extra_repr()
