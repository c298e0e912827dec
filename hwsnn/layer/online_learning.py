r"""Online training through time (OTTT, Xiao et al. 2022): layers that learn from traces.

An :class:`~hwsnn.neuron.OTTTLIFNode` in training mode returns ``[S, a_hat]``: its spikes
:math:`S[t]` and the presynaptic trace :math:`\hat a[t] = \hat a[t-1](1 - 1/\tau) + S[t]`. OTTT
propagates the *values* of the spikes forward but takes the weight gradient of the next synaptic
layer :math:`u = f_W(\cdot)` from the trace:

.. math::
    u[t] = f_W(S[t]),\qquad
    \frac{\partial L[t]}{\partial W} \leftarrow
        \frac{\partial L[t]}{\partial u[t]}\,\frac{\partial f_W(\hat a[t])}{\partial W},

which for a linear layer :math:`u = W S + b` is
:math:`\partial L/\partial W = (\partial L/\partial u)^\top \hat a` (an outer product with the
trace, summed over the batch). The trace summarises the past spikes, so the memory of training
does not grow with the number of time steps :math:`T` (no BPTT graph).

* :class:`ReplaceforGrad`: value of one tensor, gradient to two.
* :class:`GradwithTrace`: the rule above for a module with parameters.
* :class:`SpikeTraceOp`: a parameter-free module (pooling, dropout, flatten) applied to both.
* :class:`OTTTSequential`: a ``Sequential`` that picks the right one per module.
"""

from __future__ import annotations

from typing import Any, Union

import torch
import torch.nn as nn

from ..neuron.online import OTTTLIFNode

__all__ = ["ReplaceforGrad", "GradwithTrace", "SpikeTraceOp", "OTTTSequential"]

SpikeTrace = Union[list, tuple]


def _split(x: object, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(x, (list, tuple)) or len(x) != 2:
        got = f"a {type(x).__name__} of length {len(x)}" if isinstance(x, (list, tuple)) else type(x).__name__
        raise TypeError(f"{owner} expects the pair [spike, trace] (as returned by OTTTLIFNode in training); got {got}")
    return x[0], x[1]


class ReplaceforGrad(torch.autograd.Function):
    r"""Forward: the value of ``x_r``; backward: the incoming gradient to both inputs.

    .. math::
        \mathrm{out} = x_r,\qquad
        \frac{\partial L}{\partial x} = \frac{\partial L}{\partial x_r} = \frac{\partial L}{\partial \mathrm{out}}

    So ``ReplaceforGrad.apply(x, x_r)`` *looks like* ``x_r`` but routes gradients to ``x`` (and
    to ``x_r`` if it needs any).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, x_r: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return x_r

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        return grad, grad


class GradwithTrace(nn.Module):
    r"""Apply a module with parameters to ``[spike, trace]``: value from the spike, weight
    gradient from the trace.

    .. math::
        \mathrm{out} = f_W(S)\ \text{(no graph)},\qquad
        \tilde x = \mathrm{Replace}(S \to \hat a),\qquad
        y = \mathrm{Replace}\big(f_W(\tilde x) \to \mathrm{out}\big)

    where :math:`\mathrm{Replace}(a \to b)` is :class:`ReplaceforGrad` (value :math:`b`, gradient
    to :math:`a`). The value of :math:`y` is :math:`f_W(S)`; the gradient reaching :math:`y`
    flows back through :math:`f_W(\hat a)`, so :math:`W` gets
    :math:`\partial L/\partial y\cdot\partial f_W(\hat a)/\partial W` and the input gradient
    goes to the spike (and so through the neuron's surrogate to earlier layers).

    :param module: the synaptic module (``Linear``, ``Conv2d``, ...)
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: SpikeTrace) -> torch.Tensor:
        spike, trace = _split(x, "GradwithTrace")
        with torch.no_grad():
            out = self.module(spike).detach()
        in_for_grad = ReplaceforGrad.apply(spike, trace)
        out_for_grad = self.module(in_for_grad)
        return ReplaceforGrad.apply(out_for_grad, out)


class SpikeTraceOp(nn.Module):
    r"""Apply a parameter-free module to both halves of ``[spike, trace]``.

    .. math::
        [S, \hat a] \mapsto [f(S),\ f(\hat a)]\quad(f(\hat a)\ \text{without graph})

    :param module: a module without parameters (pooling, dropout, flatten, ...)
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: SpikeTrace) -> list[torch.Tensor]:
        spike, trace = _split(x, "SpikeTraceOp")
        spike = self.module(spike)
        with torch.no_grad():
            trace = self.module(trace)
        return [spike, trace]


def _has_parameters(module: nn.Module) -> bool:
    return next(iter(module.parameters()), None) is not None


class OTTTSequential(nn.Sequential):
    r"""``Sequential`` for OTTT networks.

    The modules run in order; while the running value is a tensor, a module is called plainly.
    While it is a pair ``[spike, trace]`` (an :class:`~hwsnn.neuron.OTTTLIFNode` in training):

    * an ``OTTTLIFNode`` gets the spike ``x[0]``;
    * a module with parameters gets :class:`GradwithTrace` semantics (value :math:`f_W(S)`,
      weight gradient through :math:`f_W(\hat a)`), returning a tensor;
    * a module without parameters gets :class:`SpikeTraceOp` semantics, keeping the pair.

    In eval mode the neurons return spikes only, so the network runs as a plain ``Sequential``.
    Train single-step with one backward per time step. After ``set_step_mode(net, 'm')`` the pairs
    are whole sequences ``[S_seq, a_hat_seq]`` and one backward sums the per-step gradients.
    """

    def forward(self, input: Union[torch.Tensor, SpikeTrace]) -> Union[torch.Tensor, list[torch.Tensor]]:  # type: ignore[override]  # noqa: A002
        x = input  # ``input``: nn.Sequential's (and SpikingJelly's) parameter name
        for module in self:
            if not isinstance(x, (list, tuple)):
                x = module(x)
            elif isinstance(module, OTTTLIFNode):
                x = module(x[0])
            elif _has_parameters(module):
                x = GradwithTrace(module)(x)
            else:
                x = SpikeTraceOp(module)(x)
        return x

