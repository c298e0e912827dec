r"""Spiking neurons: :class:`BaseNode`, :class:`IFNode`, :class:`LIFNode`.

The equations (charge, inclusive fire, hard/soft reset) are those of
:mod:`hwsnn.functional.neuron`; the modules only hold parameters and the membrane memory ``v``.

``v`` starts as the number ``v_reset`` (0 for the soft reset) and becomes a tensor shaped like the
input on first use; an input of another shape re-initialises it. ``v_threshold`` may be a tensor
broadcastable to the input (e.g. the per-class margins of
:func:`hwsnn.functional.set_threshold_margin`).

Multi-step mode runs the whole sequence as one autograd node (:mod:`hwsnn.backend`, selected by the
``backend`` argument); it equals the step-by-step reference (spikes bit for bit). float16/bfloat16
inputs run with a float32 membrane there.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Union

import torch

from ..backend import check_backend, fused_state, surrogate_spec
from ..backend import neuron_multi_step as neuron_multi_step_fused
from ..base import MemoryModule, require_time_axis
from ..functional import neuron as F
from ..surrogate import Sigmoid, SurrogateFunctionBase

__all__ = ["BaseNode", "IFNode", "LIFNode"]

Threshold = Union[float, torch.Tensor]
TimeConstant = Union[float, torch.Tensor]


def check_real(name: str, value: object, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{owner}: {name} must be a finite real number; got {value!r}")
    return float(value)

def check_node_args(v_threshold, v_reset, surrogate_function, owner: str):
    """The checked ``(v_threshold, v_reset, surrogate_function)`` of a spiking neuron's constructor:
    real numbers (a tensor threshold as given; ``v_reset=None``: soft reset), the surrogate a
    callable (default :class:`~hwsnn.surrogate.Sigmoid`); errors name ``owner`` and the argument."""
    if not isinstance(v_threshold, torch.Tensor):
        v_threshold = check_real("v_threshold", v_threshold, owner)
    if v_reset is not None:
        v_reset = check_real("v_reset", v_reset, owner)
    if surrogate_function is None:
        surrogate_function = Sigmoid()
    elif not callable(surrogate_function):
        raise TypeError(f"{owner}: surrogate_function must be callable (e.g. hwsnn.surrogate.ATan()); got {surrogate_function!r}")
    return v_threshold, v_reset, surrogate_function



def check_tau(name: str, value: object, owner: str, *, low: float, inclusive: bool) -> TimeConstant:
    """A time constant: a finite number, or a floating tensor of per-neuron values (hwsnn extension,
    broadcastable to one step of the input), every value above ``low`` (or equal with ``inclusive``).
    A tensor is detached and copied (time constants are not trained)."""
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or value.numel() == 0:
            raise TypeError(f"{owner}: {name} must be a number or a non-empty floating tensor; got {value.dtype} "
                            f"of shape {tuple(value.shape)}")
        tau = value.detach().clone()
        vals = tau.to(torch.float64)
        bad = ~torch.isfinite(vals) | ((vals < low) if inclusive else (vals <= low))
        if bool(bad.any()):
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise ValueError(f"{owner}: {name} must be {'>=' if inclusive else '>'} {low:g} for every neuron; "
                             f"got {float(vals[idx])} at index {list(idx)}")
        return tau
    tau = check_real(name, value, owner)
    if (tau < low) if inclusive else (tau <= low):
        why = "the decay 1/tau must lie in (0, 1]" if inclusive else "the decay 1/tau must lie in (0, 1)"
        raise ValueError(f"{owner}: {name} must be {'>=' if inclusive else '>'} {low:g} ({why}); got {tau}")
    return tau


def tau_for(tau: TimeConstant, x: torch.Tensor) -> TimeConstant:
    """``tau`` ready to combine with one step ``x``: a number as is, a tensor cast to ``x``'s dtype
    and device (it must broadcast to ``x`` without enlarging it)."""
    if not isinstance(tau, torch.Tensor):
        return tau
    try:
        shape = torch.broadcast_shapes(tau.shape, x.shape)
    except RuntimeError:
        shape = None
    if shape != x.shape:
        raise ValueError(f"per-neuron tau of shape {tuple(tau.shape)} must broadcast to the input step shape "
                         f"{tuple(x.shape)} without enlarging it")
    return tau.to(dtype=x.dtype, device=x.device)


def tau_repr(tau: TimeConstant) -> str:
    return f"tensor{tuple(tau.shape)}" if isinstance(tau, torch.Tensor) else str(tau)


class BaseNode(MemoryModule):
    """Common machinery of the spiking neurons; subclasses define :meth:`neuronal_charge`.

    The hook is pure: ``neuronal_charge(self, x, v) -> h`` returns the charged membrane (so the
    fused kernels can replace the built-in ones). A neuron written for SpikingJelly's
    ``SimpleBaseNode`` (``neuronal_charge(self, x)`` updating ``self.v``) ports unchanged onto
    :class:`hwsnn.neuron.SimpleBaseNode`.

    :param v_threshold: firing threshold :math:`V_{th}` (number, or tensor broadcastable to the input)
    :param v_reset: reset potential :math:`V_r`; ``None`` selects the soft reset :math:`V = H - S V_{th}`
    :param surrogate_function: spike function with surrogate gradient (default: a new ``Sigmoid()``)
    :param detach_reset: detach the spike used in the reset from the graph
    :param step_mode: ``'s'`` or ``'m'``
    :param store_v_seq: in multi-step mode, keep the membrane after every step in ``self.v_seq``
    :param backend: multi-step training kernel, ``'auto'`` (Triton on CUDA, numba on CPU when
        installed, else torch), ``'torch'``, ``'triton'`` or ``'numba'``; see :mod:`hwsnn.backend`.
        The whole sequence is one autograd node with a hand-written BPTT backward; custom surrogate
        callables, subclasses that redefine the dynamics and thresholds that require grad use the
        step-by-step reference.
    """

    def __init__(
        self,
        v_threshold: Threshold = 1.0,
        v_reset: Optional[float] = 0.0,
        surrogate_function: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
        detach_reset: bool = False,
        step_mode: str = "s",
        store_v_seq: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        owner = type(self).__name__
        self.backend = check_backend(backend, owner)
        v_threshold, v_reset, surrogate_function = check_node_args(v_threshold, v_reset, surrogate_function, owner)
        self.v_threshold = v_threshold
        self.v_reset = v_reset
        self.surrogate_function = surrogate_function
        self.detach_reset = bool(detach_reset)
        self.store_v_seq = bool(store_v_seq)
        self.step_mode = step_mode
        self.register_memory("v", self.v_init)
        if self.store_v_seq:
            self.register_memory("v_seq", None)

    # -- helpers ------------------------------------------------------------------------------
    @property
    def v_init(self) -> float:
        """The membrane a fresh state starts at: ``v_reset``, or 0 for the soft reset."""
        return 0.0 if self.v_reset is None else self.v_reset

    def v_float_to_tensor(self, x: torch.Tensor) -> None:
        """Make ``self.v`` a tensor shaped like one step of input ``x`` (re-initialised on a shape change)."""
        if not isinstance(self.v, torch.Tensor) or self.v.shape != x.shape:
            self.v = torch.full_like(x, self.v_init)

    def threshold_for(self, x: torch.Tensor) -> Threshold:
        """``v_threshold`` ready to combine with one step ``x`` (tensor thresholds cast and shape-checked)."""
        vth = self.v_threshold
        if not isinstance(vth, torch.Tensor):
            return vth
        try:
            shape = torch.broadcast_shapes(vth.shape, x.shape)
        except RuntimeError:
            shape = None
        if shape != x.shape:
            raise ValueError(
                f"{type(self).__name__}: v_threshold of shape {tuple(vth.shape)} must broadcast to the "
                f"input step shape {tuple(x.shape)} without enlarging it"
            )
        return vth.to(dtype=x.dtype, device=x.device)

    @property
    def spike_fn(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.surrogate_function

    # -- dynamics -----------------------------------------------------------------------------
    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step ``(x, v) -> (spike, v_next)``: charge, fire, reset."""
        vth = self.threshold_for(x)
        h = self.neuronal_charge(x, v)
        spike = F.fire(h, vth, self.spike_fn)
        return spike, F.reset(h, spike, vth, self.v_reset, self.detach_reset)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{type(self).__name__} expects a tensor; got {type(x).__name__}")
        self.v_float_to_tensor(x)
        spike, self.v = self.step(x, self.v)
        return spike

    # -- fused multi-step path ------------------------------------------------------------------
    def _fused_charge(self) -> Optional[dict]:
        """Charge parameters for the fused kernels, or ``None`` when the dynamics are not the
        built-in IF/LIF ones (subclass overrides) and the reference loop must run."""
        cls = type(self)
        if cls.step is not BaseNode.step or cls.spike_fn is not BaseNode.spike_fn:
            return None
        charge = cls.neuronal_charge
        if charge is IFNode.neuronal_charge:
            return {"tau": None, "decay_input": True}
        if charge is LIFNode.neuronal_charge:
            if isinstance(self.tau, torch.Tensor):
                return None  # per-neuron tau: the reference loop
            return {"tau": self.tau, "decay_input": self.decay_input}
        return None

    def _fused_multi_step(self, x_seq: torch.Tensor) -> Optional[torch.Tensor]:
        """Run the sequence through :func:`hwsnn.backend.neuron_multi_step`; ``None`` if not applicable."""
        charge = self._fused_charge()
        if charge is None or surrogate_spec(self.surrogate_function) is None:
            return None
        if not x_seq.is_floating_point():
            return None
        vth = self.v_threshold
        if isinstance(vth, torch.Tensor):
            if vth.requires_grad and torch.is_grad_enabled():
                return None
            self.threshold_for(x_seq[0])  # shape check with the reference's message
        v = fused_state(self.v, x_seq, self.v_init)
        if v is None:
            return None
        spike_seq, v_last, v_seq = neuron_multi_step_fused(
            x_seq,
            v,
            surrogate_function=self.surrogate_function,
            v_threshold=vth,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            store_v_seq=self.store_v_seq,
            backend=self.backend,
            **charge,
        )
        self.v = v_last
        if self.store_v_seq:
            self.v_seq = v_seq
        return spike_seq

    def step_by_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Multi-step mode as a loop of :meth:`single_step_forward` over dim 0 (neurons without a
        fused kernel); keeps the membrane after every step in ``v_seq`` when ``store_v_seq``."""
        require_time_axis(x_seq, type(self).__name__)
        spikes, v_seq = [], []
        for t in range(x_seq.shape[0]):
            spikes.append(self.single_step_forward(x_seq[t]))
            if self.store_v_seq:
                v_seq.append(self.v)
        if self.store_v_seq:
            self.v_seq = torch.stack(v_seq)
        return torch.stack(spikes)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, type(self).__name__)
        spike_seq = self._fused_multi_step(x_seq)
        if spike_seq is not None:
            return spike_seq
        self.v_float_to_tensor(x_seq[0])
        spike_seq, self.v, v_seq = F.neuron_multi_step(x_seq, self.v, self.step, self.store_v_seq)
        if self.store_v_seq:
            self.v_seq = v_seq
        return spike_seq

    def extra_repr(self) -> str:
        vth = self.v_threshold
        vth_repr = f"tensor{tuple(vth.shape)}" if isinstance(vth, torch.Tensor) else vth
        return (
            f"v_threshold={vth_repr}, v_reset={self.v_reset}, detach_reset={self.detach_reset}, "
            f"step_mode={self.step_mode}, store_v_seq={self.store_v_seq}, backend={self.backend}"
        )


class IFNode(BaseNode):
    r"""Integrate-and-fire neuron.

    Float: :math:`H[t] = V[t-1] + X[t]`, :math:`S[t] = \Theta(H[t] - V_{th})`, then hard reset
    :math:`V[t] = S V_r + (1-S) H` or soft reset :math:`V[t] = H - S V_{th}`.
    """

    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.if_charge(x, v)


class LIFNode(BaseNode):
    r"""Leaky integrate-and-fire neuron with membrane time constant :math:`\tau > 1`.

    Float, ``decay_input=True``:  :math:`H = V + (X - (V - V_r))/\tau`;
    ``decay_input=False``: :math:`H = V - (V - V_r)/\tau + X` (:math:`V_r = 0` for the soft reset);
    fire :math:`S = \Theta(H - V_{th})`; reset as :class:`IFNode`.

    :param tau: membrane time constant, a number > 1, or a floating tensor of per-neuron values > 1
        broadcastable to one step of the input (hwsnn extension, e.g. imported from NIR; it runs on
        the step-by-step reference and has no integer twin)
    :param decay_input: whether the input is divided by :math:`\tau` too

    The remaining parameters (``v_threshold`` ... ``store_v_seq``, ``backend``) are those of
    :class:`BaseNode`.
    """

    def __init__(
        self,
        tau: TimeConstant = 2.0,
        decay_input: bool = True,
        v_threshold: Threshold = 1.0,
        v_reset: Optional[float] = 0.0,
        surrogate_function: Optional[SurrogateFunctionBase] = None,
        detach_reset: bool = False,
        step_mode: str = "s",
        store_v_seq: bool = False,
        backend: str = "auto",
    ) -> None:
        tau = check_tau("tau", tau, type(self).__name__, low=1.0, inclusive=False)
        super().__init__(v_threshold, v_reset, surrogate_function, detach_reset, step_mode, store_v_seq, backend)
        self.tau = tau
        self.decay_input = bool(decay_input)

    def neuronal_charge(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return F.lif_charge(x, v, tau_for(self.tau, x), self.decay_input, self.v_reset)

    def extra_repr(self) -> str:
        return f"tau={tau_repr(self.tau)}, decay_input={self.decay_input}, " + super().extra_repr()
