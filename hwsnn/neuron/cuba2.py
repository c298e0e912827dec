r"""CUBA LIF neuron with two synaptic currents (Xylo's synapse 2): :class:`CubaLIF2Node`.

Each neuron has two synaptic currents :math:`I_1`, :math:`I_2` with their own time constants and one
membrane :math:`V`. The input carries a trailing synapse axis of size 2 (``x[..., 0]`` feeds
:math:`I_1`, ``x[..., 1]`` feeds :math:`I_2`; :class:`hwsnn.layer.DualLinear` produces it). One step,
in SynSense Xylo's order (``../shared/targets/xylo.md``: the input events are added, *then* the
currents decay; :math:`V_r = 0` for the soft reset ``v_reset=None``):

.. math::
    I_1[t] &= \Bigl(1 - \tfrac{1}{\tau_{syn}}\Bigr)\bigl(I_1[t-1] + X_1[t]\bigr) \\
    I_2[t] &= \Bigl(1 - \tfrac{1}{\tau_{syn2}}\Bigr)\bigl(I_2[t-1] + X_2[t]\bigr) \\
    H[t] &= V[t-1] - \tfrac{1}{\tau_{mem}}\bigl(V[t-1] - V_r\bigr) + I_1[t] + I_2[t] \\
    S[t] &= \sum_{k=1}^{K} \Theta(H[t] - k V_{th}) = \min\bigl(\lfloor H[t] / V_{th} \rfloor, K\bigr)^{+} \\
    V[t] &= H - S V_{th} \ \text{(soft)}, \quad V[t] = V_r \text{ if } S > 0 \text{ else } H \ \text{(hard)}

The currents decay separately and are never reset by a spike; the membrane integrates their sum.
:math:`\tau = 1` erases a current in the step its input arrives (Xylo's ``dash = 0``). On Xylo a
time constant maps to :math:`\tau = 2^{k}` (``dash_syn``, ``dash_syn2``, ``dash_mem``), so powers of
two convert exactly; the integer decay :math:`D(x, k)` rounds (``../shared/targets/xylo.md``).

Unlike :class:`~hwsnn.neuron.CubaLIFNode` (Loihi's order: decay, then add), the input here decays in
its own step, as on Xylo, so the float network and its Xylo twin agree up to the integer rounding.
:math:`K` = ``max_spikes``: 1 (the default) is SpikingJelly's binary spike; a Xylo hidden neuron
emits up to :math:`K = 31` spikes in one step (``while V >= th and n < 31: n += 1; V -= th``), which
``max_spikes=31`` reproduces: the spike count is then the sum of :math:`K` shifted Heaviside steps,
each with the surrogate gradient. With ``max_spikes=1`` a neuron driven far above threshold fires once
per step where the chip bursts, so what it feeds downstream differs from the chip's.

Plain torch loop in both step modes: multi-step runs the single step over dim 0.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from ..functional import neuron as F
from .nodes import BaseNode, Threshold, TimeConstant, check_tau, tau_for, tau_repr

__all__ = ["CubaLIF2Node"]


class CubaLIF2Node(BaseNode):
    r"""CUBA LIF neuron with two synaptic currents (module docstring for the equations).

    Input ``[..., 2]`` (one step; ``[T, ..., 2]`` in step mode ``'m'``): the last axis is the synapse.
    Output spikes ``[...]`` (the synapse axis removed).

    :param tau_syn: time constant of synaptic current 1, :math:`\ge 1`
    :param tau_syn2: time constant of synaptic current 2, :math:`\ge 1`
    :param tau_mem: membrane time constant, :math:`\ge 1` (1: no memory beyond the currents)
    :param v_threshold: firing threshold :math:`V_{th}` (number, or tensor broadcastable to one step
        without the synapse axis)
    :param v_reset: reset potential; ``None`` (the default: Xylo's only reset) selects the soft reset
        :math:`V = H - S V_{th}`
    :param surrogate_function: spike function with surrogate gradient (default ``Sigmoid()``)
    :param detach_reset: detach the spike used in the reset from the graph
    :param step_mode: ``'s'`` (input ``[N, ..., 2]``) or ``'m'`` (input ``[T, N, ..., 2]``)
    :param store_v_seq: in multi-step mode, keep the membrane after every step in ``self.v_seq``
    :param max_spikes: :math:`K`, the most spikes one step emits (1: binary; 31: a Xylo hidden neuron)

    A time constant may also be a floating tensor of per-neuron values broadcastable to one step
    without the synapse axis (no integer twin). Memories: ``i`` and ``i2`` (the currents, start at 0)
    and ``v`` (membrane, starts at ``v_reset`` or 0).
    """

    def __init__(
        self,
        tau_syn: TimeConstant = 2.0,
        tau_syn2: TimeConstant = 2.0,
        tau_mem: TimeConstant = 2.0,
        v_threshold: Threshold = 1.0,
        v_reset: Optional[float] = None,
        surrogate_function: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        detach_reset: bool = False,
        step_mode: str = "s",
        store_v_seq: bool = False,
        max_spikes: int = 1,
    ) -> None:
        owner = type(self).__name__
        if isinstance(max_spikes, bool) or not isinstance(max_spikes, int) or max_spikes < 1:
            raise ValueError(f"{owner}: max_spikes must be an integer >= 1; got {max_spikes!r}")
        taus = {pname: check_tau(pname, tau, owner, low=1.0, inclusive=True)
                for pname, tau in (("tau_syn", tau_syn), ("tau_syn2", tau_syn2), ("tau_mem", tau_mem))}
        super().__init__(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq, backend="torch")
        self.tau_syn = taus["tau_syn"]
        self.tau_syn2 = taus["tau_syn2"]
        self.tau_mem = taus["tau_mem"]
        self.max_spikes = max_spikes
        self.register_memory("i", 0.0)
        self.register_memory("i2", 0.0)

    # -- equations ----------------------------------------------------------------------------
    @staticmethod
    def current_charge(x: torch.Tensor, i: torch.Tensor, tau: TimeConstant) -> torch.Tensor:
        r""":math:`I[t] = (1 - 1/\tau)(I[t-1] + X[t])`: the input is added, then the current decays."""
        s = i + x
        return s - s / tau_for(tau, x)

    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        r""":math:`H = V - (V - V_r)/\tau_{mem} + x` where ``x`` is :math:`I_1[t] + I_2[t]`."""
        vr = 0.0 if self.v_reset is None else self.v_reset
        return v - (v - vr) / tau_for(self.tau_mem, x) + x

    def step(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step ``(x, v) -> (spikes, v_next)``: charge, up to ``max_spikes`` spikes, reset."""
        vth = self.threshold_for(x)
        h = self.neuronal_charge(x, v)
        first = F.fire(h, vth, self.spike_fn)
        n = first
        for k in range(2, self.max_spikes + 1):
            n = n + F.fire(h, k * vth, self.spike_fn)
        return n, F.reset(h, n if self.v_reset is None else first, vth, self.v_reset, self.detach_reset)

    def _fused_charge(self) -> Optional[dict]:
        return None  # no fused kernel: the reference loop runs

    # -- stepping -----------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a tensor; got {type(x).__name__}")
        if x.dim() < 2 or x.shape[-1] != 2:
            raise ValueError(f"{type(self).__name__} expects one step [N, ..., 2] with a trailing synapse axis of size 2 "
                             f"(e.g. from hwsnn.layer.DualLinear); got shape {tuple(x.shape)}")
        x1, x2 = x[..., 0], x[..., 1]
        self.v_float_to_tensor(x1)
        for key in ("i", "i2"):
            cur = getattr(self, key)
            if not isinstance(cur, torch.Tensor) or cur.shape != x1.shape:
                setattr(self, key, torch.zeros_like(x1))
        self.i = self.current_charge(x1, self.i, self.tau_syn)
        self.i2 = self.current_charge(x2, self.i2, self.tau_syn2)
        spike, self.v = self.step(self.i + self.i2, self.v)
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.step_by_step(x_seq)

    def extra_repr(self) -> str:
        return (f"tau_syn={tau_repr(self.tau_syn)}, tau_syn2={tau_repr(self.tau_syn2)}, tau_mem={tau_repr(self.tau_mem)}, "
                f"max_spikes={self.max_spikes}, " + super().extra_repr())
