r"""Fused training backends for the multi-step neurons and the synapse filter.

A multi-step :class:`~hwsnn.neuron.IFNode` / :class:`~hwsnn.neuron.LIFNode` /
:class:`~hwsnn.layer.SynapseFilter` runs its whole ``[T, N, ...]`` sequence as **one** autograd
node with a hand-written BPTT backward (see :mod:`hwsnn.backend.fused` for the equations and the
backward recurrences) instead of recording ~10 autograd nodes per time step.

Backends (the ``backend`` argument of the modules):

``'auto'`` (default)
    ``'triton'`` for CUDA tensors when Triton is installed, ``'numba'`` for CPU tensors when numba
    is installed (and ``HWSNN_NUMBA`` is not ``0``), else ``'torch'``.
``'torch'``
    :mod:`hwsnn.backend.fused`: in-place torch ops, any device; on CPU blocked so that the
    per-step temporaries stay in cache. Forces this path on CPU.
``'numba'``
    :mod:`hwsnn.backend.cpu_kernels` (neurons only): compiled CPU loops, one pass over ``T`` per
    block of neurons, parallel over blocks (``torch.get_num_threads()`` threads). Needs
    ``pip install hwsnn[fast]`` and CPU tensors. Configurations it does not cover exactly
    (tensor thresholds, ``spiking=False`` surrogates, float64) and the synapse filter run on
    ``'torch'``. The first call in a fresh environment compiles the kernels (~8 s; cached on disk
    by numba). The environment variable ``HWSNN_NUMBA=0`` makes ``'auto'`` skip it.
``'triton'``
    :mod:`hwsnn.backend.triton_kernels`: one Triton program per block of neurons loops over T in
    registers (forward and backward). Needs ``pip install hwsnn[triton]`` and CUDA tensors (or
    ``TRITON_INTERPRET=1`` for CPU tensors, used by the tests). float64 sequences run on the
    ``'torch'`` kernels (Triton scalar arguments are float32).

Results equal the step-by-step reference :func:`hwsnn.functional.neuron.neuron_multi_step`:
spikes bit for bit (the charge is evaluated with the reference's operations in the reference's
order; on CUDA the reference divides by ``tau`` as ``x * (1/tau)``, which the Triton kernel mirrors
with FMA contraction switched off), membranes and gradients to float tolerance.

Falls back to the reference loop (the module decides) for custom surrogate callables, tensor
thresholds that require grad, and non-floating inputs.

Mixed precision: float16 / bfloat16 inputs run with a float32 state; spikes come back in the input
dtype, membranes and synaptic currents in float32.

Integer twins: :mod:`hwsnn.backend.fixed` runs the neuron and synapse-filter twins' whole
sequences in one kernel (numba :mod:`~hwsnn.backend.fixed_kernels`, Triton
:mod:`~hwsnn.backend.fixed_triton`), bit-identical to their step functions; :mod:`hwsnn.backend.ste`
gives quantization-aware training the float layers' fused BPTT at the twins' states.

CPU memory: the large ``[T, N]`` buffers of the CPU kernels (outputs, the saved charge, gradients)
come from a small caching pool (:class:`~hwsnn.backend.hostpool.HostPool`, ``HWSNN_CPU_POOL_MB``,
default 2048, 0 disables it) because fresh multi-megabyte allocations are page-faulted on first
touch, which costs more than the neuron itself; :func:`empty_cache` releases the idle ones.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable, NamedTuple, Optional, Union

import torch

from ..surrogate import ATan, PiecewiseQuadratic, Sigmoid, SurrogateFunctionBase
from .fused_neuron import FusedNeuronFunction, NeuronConfig, neuron_backward_torch, neuron_forward_torch
from .fused_synapse import FusedSynapseFunction, synapse_backward_torch, synapse_forward_torch
from .hostpool import HostPool, host_pool

__all__ = [
    "BACKENDS",
    "check_backend",
    "empty_cache",
    "HostPool",
    "triton_available",
    "numba_available",
    "resolve_backend",
    "SurrogateSpec",
    "surrogate_spec",
    "state_dtype_for",
    "fused_state",
    "neuron_multi_step",
    "synapse_multi_step",
    "NeuronConfig",
    "neuron_config",
    "neuron_backward_impl",
    "synapse_backward_impl",
]

#: allowed values of the ``backend`` argument
BACKENDS: tuple[str, ...] = ("auto", "torch", "triton", "numba")

_TRITON_HINT = "install it with `pip install hwsnn[triton]` (or `pip install triton`)"
_NUMBA_HINT = "install it with `pip install hwsnn[fast]` (or `pip install numba`)"

Threshold = Union[float, torch.Tensor]


def check_backend(backend: object, who: str = "") -> str:
    """Return ``backend`` if it is one of :data:`BACKENDS`, else raise ``ValueError`` naming them.

    ``'triton'`` / ``'numba'`` without Triton / numba installed raise ``ImportError`` with the install command.
    """
    prefix = f"{who}: " if who else ""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"{prefix}backend must be one of {', '.join(repr(b) for b in BACKENDS)}; got {backend!r}"
        )
    if backend == "triton" and not triton_available():
        raise ImportError(f"{prefix}backend='triton' needs the optional Triton dependency: {_TRITON_HINT}")
    if backend == "numba" and not numba_available():
        raise ImportError(f"{prefix}backend='numba' needs the optional numba dependency: {_NUMBA_HINT}")
    return backend


def empty_cache() -> None:
    """Release the idle large CPU buffers kept by the fused kernels (:class:`~hwsnn.backend.hostpool.HostPool`)."""
    host_pool.empty()


_importable: dict[str, bool] = {}


def _can_import(*modules: str) -> bool:
    """Whether every one of ``modules`` imports (checked once per set, lazily)."""
    key = ",".join(modules)
    if key not in _importable:
        ok = importlib.util.find_spec(modules[0].split(".")[0]) is not None
        if ok:
            try:
                for m in modules:
                    importlib.import_module(m)
            except Exception:  # pragma: no cover - broken install
                ok = False
        _importable[key] = ok
    return _importable[key]


def triton_available() -> bool:
    """Whether ``import triton`` works (checked once, lazily)."""
    return _can_import("triton", "triton.language")


def numba_available() -> bool:
    """Whether ``import numba`` works (checked once, lazily: importing hwsnn never imports numba)."""
    return _can_import("numba")


def _numba_auto() -> bool:
    """Whether ``'auto'`` may pick numba: installed, and ``HWSNN_NUMBA`` is not ``0``."""
    return os.environ.get("HWSNN_NUMBA", "1").strip().lower() not in ("0", "false", "off", "no") and numba_available()


def _triton_interpret() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def resolve_backend(backend: str, device: torch.device, who: str = "") -> str:
    """Map ``'auto' | 'torch' | 'triton' | 'numba'`` to the implementation that runs on ``device``.

    ``'auto'`` picks Triton for CUDA tensors when it is installed and numba for CPU tensors when
    it is installed and ``HWSNN_NUMBA`` is not ``0``. Asking for ``'triton'`` / ``'numba'``
    without it installed raises ``ImportError`` (with the install command); ``'triton'`` for CPU
    tensors outside the Triton interpreter, or ``'numba'`` for non-CPU tensors, raises ``RuntimeError``.
    """
    check_backend(backend, who)
    prefix = f"{who}: " if who else ""
    if backend == "torch":
        return "torch"
    if backend == "auto":
        if device.type == "cuda" and triton_available():
            return "triton"
        return "numba" if (device.type == "cpu" and _numba_auto()) else "torch"
    if backend == "numba":
        if device.type != "cpu":
            raise RuntimeError(f"{prefix}backend='numba' runs on CPU tensors (got {device.type!r}); use 'auto'")
        return "numba"
    if device.type != "cuda" and not _triton_interpret():
        raise RuntimeError(
            f"{prefix}backend='triton' runs on CUDA tensors (got {device.type!r}); set TRITON_INTERPRET=1 "
            "before importing triton to run the kernels on CPU tensors, or use backend='torch'"
        )
    return "triton"


class SurrogateSpec(NamedTuple):
    """What the fused kernels need to know about a built-in surrogate."""

    name: str
    alpha: float
    spiking: bool


_BUILTIN = {"sigmoid": Sigmoid, "atan": ATan, "piecewise_quadratic": PiecewiseQuadratic}


def surrogate_spec(fn: Any) -> Optional[SurrogateSpec]:
    """The spec of a built-in surrogate, or ``None`` for anything else (custom callables, subclasses
    that redefine the primitive, the derivative or the forward): those use the reference loop."""
    if not isinstance(fn, SurrogateFunctionBase):
        return None
    cls = _BUILTIN.get(getattr(fn, "name", ""))
    if cls is None or not isinstance(fn, cls):
        return None
    t = type(fn)
    if t.primitive is not cls.primitive or t.derivative is not cls.derivative or t.forward is not SurrogateFunctionBase.forward:
        return None
    return SurrogateSpec(cls.name, float(fn.alpha), bool(fn.spiking))


def state_dtype_for(dtype: torch.dtype) -> torch.dtype:
    """State dtype of the fused kernels: float64 for float64 inputs, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def fused_state(state: object, x_seq: torch.Tensor, init: float) -> Optional[torch.Tensor]:
    """The state entering a fused sequence, shaped like one step of ``x_seq`` in the fused state dtype.

    A number, or a tensor of another shape, starts afresh at ``init``; a narrower floating state
    is widened. ``None`` when the fused kernels cannot take the state without changing the
    reference's result (e.g. a float64 state with float32 inputs, which the reference promotes):
    the caller then runs the step-by-step loop.
    """
    sdt = state_dtype_for(x_seq.dtype)
    step_shape = x_seq.shape[1:]
    if not isinstance(state, torch.Tensor) or state.shape != step_shape:
        return torch.full(step_shape, init, dtype=sdt, device=x_seq.device)
    if state.dtype == sdt:
        return state
    if state.is_floating_point() and state.dtype.itemsize < sdt.itemsize:
        return state.to(sdt)
    return None


def _impl(kind: str, what: str) -> tuple[Callable, Callable]:
    """``(forward, backward)`` of ``kind`` for ``what`` (``'neuron'`` / ``'synapse'``); the synapse
    filter has no numba kernels and runs on torch under ``'numba'``."""
    if kind == "numba" and what == "neuron":
        from . import cpu_kernels as ck

        return (ck.neuron_forward_numba, ck.neuron_backward_numba)
    if kind == "triton":
        from . import triton_kernels as tk

        return (tk.neuron_forward_triton, tk.neuron_backward_triton) if what == "neuron" else (
            tk.synapse_forward_triton,
            tk.synapse_backward_triton,
        )
    if what == "neuron":
        return (neuron_forward_torch, neuron_backward_torch)
    return (synapse_forward_torch, synapse_backward_torch)


def _sequence_plan(x_seq: torch.Tensor, backend: str) -> tuple[int, torch.Size, torch.dtype, str]:
    """``(T, step shape, state dtype, implementation)`` for a ``[T, ...]`` sequence; float64 runs on
    the torch kernels (Triton scalar arguments are float32, the numba kernels keep a float32 state)."""
    sdt = state_dtype_for(x_seq.dtype)
    kind = resolve_backend(backend, x_seq.device)
    if kind in ("triton", "numba") and sdt == torch.float64:
        kind = "torch"
    return x_seq.shape[0], x_seq.shape[1:], sdt, kind


def neuron_config(
    surrogate_function: SurrogateFunctionBase,
    *,
    tau: Optional[float],
    decay_input: bool,
    v_reset: Optional[float],
    detach_reset: bool,
    store_v_seq: bool = False,
) -> NeuronConfig:
    """The :class:`NeuronConfig` of an IF (``tau=None``) / LIF layer with a built-in surrogate
    (``TypeError`` for anything else: :func:`surrogate_spec` is ``None``)."""
    spec = surrogate_spec(surrogate_function)
    if spec is None:
        raise TypeError("neuron_config (fused): surrogate_function must be a built-in hwsnn surrogate")
    return NeuronConfig(
        tau=None if tau is None else float(tau),
        decay_input=bool(decay_input),
        v_reset=None if v_reset is None else float(v_reset),
        detach_reset=bool(detach_reset),
        store_v_seq=bool(store_v_seq),
        surrogate_name=spec.name,
        alpha=spec.alpha,
        spiking=spec.spiking,
        surrogate=surrogate_function,
    )


def neuron_backward_impl(
    cfg: NeuronConfig, x_seq: torch.Tensor, v_threshold: Threshold, backend: str = "auto"
) -> Callable:
    """The BPTT function (signature of :func:`hwsnn.backend.fused_neuron.neuron_backward_torch`) that the
    fused neurons use for ``cfg`` on ``x_seq``'s device and dtype: numba / Triton where they cover
    the configuration, else torch."""
    _, _, _, kind = _sequence_plan(x_seq, backend)
    if kind == "numba":
        from .cpu_kernels import supports

        if not supports(cfg, x_seq.dtype, v_threshold):
            kind = "torch"
    return _impl(kind, "neuron")[1]


def synapse_backward_impl(x_seq: torch.Tensor, backend: str = "auto") -> Callable:
    """The backward of the fused synapse filter (signature of
    :func:`hwsnn.backend.fused_synapse.synapse_backward_torch`) for ``x_seq``'s device and dtype."""
    return _impl(_sequence_plan(x_seq, backend)[3], "synapse")[1]


def neuron_multi_step(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    *,
    surrogate_function: SurrogateFunctionBase,
    tau: Optional[float] = None,
    decay_input: bool = True,
    v_threshold: Threshold = 1.0,
    v_reset: Optional[float] = 0.0,
    detach_reset: bool = False,
    store_v_seq: bool = False,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """Fused IF (``tau=None``) / LIF sequence: ``(spike_seq, v_last, v_seq or None)``.

    ``x_seq`` is ``[T, *shape]`` (floating), ``v`` the membrane entering the sequence, shaped
    ``shape`` in :func:`state_dtype_for` ``(x_seq.dtype)`` (it may carry a graph from a previous
    chunk). ``v_threshold`` is a number or a tensor broadcastable to ``shape`` (not requiring grad).
    ``surrogate_function`` must be a built-in surrogate (:func:`surrogate_spec` is not ``None``).
    """
    spec = surrogate_spec(surrogate_function)
    if spec is None:
        raise TypeError("neuron_multi_step (fused): surrogate_function must be a built-in hwsnn surrogate")
    T, shape, sdt, kind = _sequence_plan(x_seq, backend)
    cfg = NeuronConfig(
        tau=None if tau is None else float(tau),
        decay_input=bool(decay_input),
        v_reset=None if v_reset is None else float(v_reset),
        detach_reset=bool(detach_reset),
        store_v_seq=bool(store_v_seq),
        surrogate_name=spec.name,
        alpha=spec.alpha,
        spiking=spec.spiking,
        surrogate=surrogate_function,
    )
    x2 = x_seq.contiguous().reshape(T, -1)
    v1 = v.to(sdt).contiguous().reshape(-1)
    if isinstance(v_threshold, torch.Tensor):
        vth_t = v_threshold.detach().to(device=x_seq.device, dtype=sdt).expand(shape).contiguous().reshape(-1)
        vth_f = 0.0
    else:
        vth_t, vth_f = None, float(v_threshold)
    if kind == "numba":
        from .cpu_kernels import supports

        if not supports(cfg, x_seq.dtype, v_threshold):
            kind = "torch"
    impl = _impl(kind, "neuron")
    if torch.is_grad_enabled() and (x2.requires_grad or v1.requires_grad):
        spikes, v_out = FusedNeuronFunction.apply(x2, v1, vth_t, vth_f, cfg, impl)
    else:
        with torch.no_grad():
            spikes, v_out, _ = impl[0](x2, v1, vth_t if vth_t is not None else vth_f, cfg, save_h=False)
    spikes = spikes.reshape(x_seq.shape)
    if store_v_seq:
        v_seq = v_out.reshape((T,) + tuple(shape))
        return spikes, v_seq[-1], v_seq
    return spikes, v_out.reshape(shape), None


def synapse_multi_step(
    x_seq: torch.Tensor,
    i: torch.Tensor,
    inv_tau: Union[float, torch.Tensor],
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Fused synapse filter: the output sequence ``[T, *shape]`` (state dtype) from ``i`` (the
    current entering the sequence). ``inv_tau`` is ``1/tau``: a number, or a 0-dim tensor carrying
    the gradient of a learnable time constant. The last output is the new state."""
    T, shape, sdt, kind = _sequence_plan(x_seq, backend)
    x2 = x_seq.contiguous().reshape(T, -1)
    i1 = i.to(sdt).contiguous().reshape(-1)
    if isinstance(inv_tau, torch.Tensor):
        k_t, k_f = inv_tau.reshape(()), 0.0
    else:
        k_t, k_f = None, float(inv_tau)
    impl = _impl(kind, "synapse")
    needs = x2.requires_grad or i1.requires_grad or (k_t is not None and k_t.requires_grad)
    if torch.is_grad_enabled() and needs:
        out = FusedSynapseFunction.apply(x2, i1, k_t, k_f, impl)
    else:
        with torch.no_grad():
            out = impl[0](x2, i1, k_f if k_t is None else float(k_t))
    return out.reshape((T,) + tuple(shape))
