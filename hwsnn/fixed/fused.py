r"""Fused multi-step forward of the neuron and synapse-filter twins (the kernels of :mod:`hwsnn.backend.fixed`).

A twin's multi-step forward runs its whole ``[T, ...]`` sequence in one compiled kernel (numba
on CPU, Triton on CUDA) when one is available, else its own step function over ``t``. The two are
**bit-identical**: spikes, states after every step and saturation counts
(``tests/test_fixed_fused.py`` compares the kernels with ``single_step_forward`` on every target).

The twin describes its arithmetic with :meth:`FusedNeuronSequence.kernel_rules` (plain integers
taken from the twin's own attributes and target); anything the kernels do not cover (a twin
subclass, a width above 62 bits, an unknown rule, a bad input that the step function must report)
makes :meth:`~FusedNeuronSequence.fused_sequence` return ``None`` and the caller steps the twin.

``fused_backend`` (class or instance attribute): ``'auto'`` (default), ``'numba'``, ``'triton'``,
or ``'torch'`` to always step the twin.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Union

import torch

from ..backend.fixed import (
    Decay,
    EventInput,
    NeuronRules,
    SynapseRules,
    Width,
    fixed_kernel_kind,
    neuron_sequence,
    synapse_sequence,
)
from .events import SynapticEvents

__all__ = ["FusedNeuronSequence", "FusedSynapseSequence", "register_fused_neuron", "kernel_width"]

#: the twin classes (exactly these, not subclasses) whose step the kernels implement: class -> kind
_KINDS: dict[type, str] = {}
#: the twin attributes the neuron rules are made of (with the twin's class and target)
_RULE_ATTRS = ("input_shift", "decay_syn", "decay_mem", "decay_input", "reset_kind", "v_reset", "threshold_int",
               "max_spikes")


def register_fused_neuron(cls: type, kind: str) -> type:
    """Declare that the kernels implement ``cls``'s step (``kind``: ``'if'``, ``'lif'`` or ``'cuba'``)."""
    if kind not in ("if", "lif", "cuba"):
        raise ValueError(f"register_fused_neuron: kind must be 'if', 'lif' or 'cuba'; got {kind!r}")
    _KINDS[cls] = kind
    return cls


def kernel_width(width: Any, mode: str) -> Width:
    """A target :class:`~targets.Width` with an overflow ``mode`` as the kernels take it."""
    return Width(int(width.bits), bool(width.signed), int(width.lo), int(width.hi), mode)


def _decay(target: Any, param: int, which: str) -> Decay:
    """The decay of :func:`hwsnn.fixed.neuron.decay_amount` (``which``: ``'syn'`` adds 1 to the mul12 factor)."""
    if target.decay.mechanism == "shift":
        return Decay("shift", int(param), target.decay.rounding)
    return Decay("mul12", int(param) + (1 if which == "syn" else 0), target.decay.rounding)


def _broadcasts_to(shape: torch.Size, target: torch.Size) -> bool:
    """Whether ``shape`` broadcasts to ``target`` without enlarging it."""
    if len(shape) > len(target):
        return False
    return all(a == 1 or a == b for a, b in zip(reversed(shape), reversed(target)))


class FusedNeuronSequence:
    """Mixin of the neuron twins (:class:`hwsnn.fixed.neuron.FixedNeuron`): the fused multi-step forward."""

    fused_backend: str = "auto"

    def kernel_rules(self) -> Optional[NeuronRules]:
        """This twin's arithmetic for the kernels, or ``None`` if they do not cover it (cached while
        the attributes it is made of stay the same). Per-neuron thresholds or decays: ``None`` (stepped)."""
        if getattr(self, "per_neuron", False):
            return None
        key = (type(self), id(self.target), *(getattr(self, a, None) for a in _RULE_ATTRS))  # type: ignore[attr-defined]
        cached = self.__dict__.get("_kernel_rules_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        rules = self._make_kernel_rules()
        self.__dict__["_kernel_rules_cache"] = (key, rules)
        return rules

    def _make_kernel_rules(self) -> Optional[NeuronRules]:
        kind = _KINDS.get(type(self))
        t = self.target  # type: ignore[attr-defined]
        ok = (
            kind is not None
            and t.decay.mechanism in ("shift", "mul12")
            and t.decay.current_order in ("decay_then_add", "add_then_decay")
            and t.neuron.membrane_update in ("direct", "saturated_delta")
            and t.neuron.compare in (">=", ">")
            and t.overflow.current in ("saturate", "wrap", "fold_once")
            and t.overflow.membrane in ("saturate", "wrap", "fold_once")
        )
        if not ok:
            return None
        input_decay = None
        if kind == "lif" and self.decay_input:  # type: ignore[attr-defined]
            rnd = "toward_zero" if t.decay.rounding == "toward_zero" else "floor"
            input_decay = Decay(t.decay.mechanism, int(self.decay_mem), rnd)  # type: ignore[attr-defined]
        rules = NeuronRules(
            input_shift=int(self.input_shift),  # type: ignore[attr-defined]
            current=kernel_width(t.widths.current, t.overflow.current),
            membrane=kernel_width(t.widths.membrane, t.overflow.membrane),
            syn_decay=_decay(t, self.decay_syn, "syn") if kind == "cuba" else None,  # type: ignore[attr-defined]
            add_then_decay=t.decay.current_order == "add_then_decay",
            mem_decay=_decay(t, self.decay_mem, "mem") if kind != "if" else None,  # type: ignore[attr-defined]
            input_decay=input_decay,
            saturated_delta=t.neuron.membrane_update == "saturated_delta",
            compare_ge=t.neuron.compare == ">=",
            reset_zero=self.reset_kind == "zero",  # type: ignore[attr-defined]
            v_reset=int(self.v_reset),  # type: ignore[attr-defined]
            threshold=int(self.threshold_int),  # type: ignore[attr-defined]
            cap=int(self.max_spikes),  # type: ignore[attr-defined]
            input_wrap_bits=int(t.neuron.input_wrap_bits or 0),
        )
        return rules if rules.supported() else None

    def fused_sequence(
        self, x_seq: Union[torch.Tensor, SynapticEvents], *, store_states: bool = False
    ) -> Optional[tuple[torch.Tensor, dict[str, torch.Tensor]]]:
        """Run ``x_seq`` (``[T, ...]`` integer inputs or sequence :class:`SynapticEvents`) in one kernel.

        Returns ``(spikes [T, ...], states)`` with ``states[name]`` the state after every step
        (``[T, ...]`` int64; only with ``store_states``), and updates the twin's states and
        saturation counters exactly as ``T`` calls of ``single_step_forward``; ``None`` when no
        kernel applies (nothing changed: step the twin instead).
        """
        events = isinstance(x_seq, SynapticEvents)
        data = x_seq.counts if events else x_seq
        if not isinstance(data, torch.Tensor) or data.dim() < 1 or data.shape[0] == 0:
            return None
        kind = fixed_kernel_kind(data.device, self.fused_backend)
        if kind is None or self.kernel_rules() is None:
            return None
        x = self._as_input(x_seq)  # type: ignore[attr-defined]  # the step function's checks and messages
        T = data.shape[0]
        step_shape = torch.Size(x.shape[1:])
        bias = self.bias_int.to(device=data.device, dtype=torch.int64)  # type: ignore[attr-defined]
        if not _broadcasts_to(bias.shape, step_shape):
            return None  # the step function reports it
        self._ensure_state(step_shape, data.device)  # type: ignore[attr-defined]
        n = math.prod(step_shape)
        v0 = self.v.reshape(-1)  # type: ignore[attr-defined]
        cuba = "i" in self._states  # type: ignore[attr-defined]
        i0 = self.i.reshape(-1) if cuba else v0  # type: ignore[attr-defined]
        rules = dataclasses.replace(self.kernel_rules(), v_storage_bits=v0.dtype.itemsize * 8,
                                    i_storage_bits=i0.dtype.itemsize * 8)
        if not rules.supported():
            return None
        if events:
            ev = EventInput(x.counts.to(torch.int64).reshape(T, -1, x.counts.shape[-1]), x.weight.to(torch.int64))
            spikes, vs, is_, counts = neuron_sequence(None, ev, i0, v0, bias.expand(step_shape).reshape(n), rules,
                                                      store=store_states, kind=kind)
        else:
            spikes, vs, is_, counts = neuron_sequence(x.reshape(T, n), None, i0, v0, bias.expand(step_shape).reshape(n),
                                                      rules, store=store_states, kind=kind)
        self.v = vs[-1].reshape(step_shape).to(self.v.dtype)  # type: ignore[attr-defined]
        if cuba:
            self.i = is_[-1].reshape(step_shape).to(self.i.dtype)  # type: ignore[attr-defined]
        self.count_saturations("i", counts[0])  # type: ignore[attr-defined]
        self.count_saturations("v", counts[1])  # type: ignore[attr-defined]
        if rules.saturated_delta:
            self.count_saturations("dv", counts[2])  # type: ignore[attr-defined]
        states: dict[str, torch.Tensor] = {}
        if store_states:
            states["v"] = vs.reshape((T, *step_shape))
            if cuba:
                states["i"] = is_.reshape((T, *step_shape))
        return spikes.reshape((T, *step_shape)), states


class FusedSynapseSequence:
    """Mixin of :class:`hwsnn.fixed.synapse.FixedSynapseFilter`: the fused multi-step forward."""

    fused_backend: str = "auto"

    def kernel_rules(self) -> Optional[SynapseRules]:
        """This filter's arithmetic for the kernels, or ``None`` if they do not cover it."""
        t = self.target  # type: ignore[attr-defined]
        if t.decay.rounding not in ("floor", "toward_zero", "xylo_min1") or t.overflow.current not in (
                "saturate", "wrap", "fold_once"):
            return None
        if self.mul12:  # type: ignore[attr-defined]
            decay = Decay("mul12", int(self.decay_factor), t.decay.rounding)  # type: ignore[attr-defined]
        else:
            decay = Decay("shift", int(self.k), t.decay.rounding)  # type: ignore[attr-defined]
        rules = SynapseRules(int(self.one), decay, kernel_width(t.widths.current, t.overflow.current),  # type: ignore[attr-defined]
                             storage_bits=self._dtype.itemsize * 8)  # type: ignore[attr-defined]
        return rules if rules.supported() else None

    def fused_sequence(self, s_seq: torch.Tensor) -> Optional[torch.Tensor]:
        """The outputs ``[T, ...]`` (int64) of ``T`` steps in one kernel, states and counters updated
        as by ``single_step_forward``; ``None`` when no kernel applies or the input is one the step
        function must refuse (non-binary, float, a changed shape)."""
        if not isinstance(s_seq, torch.Tensor) or s_seq.is_floating_point() or s_seq.is_complex():
            return None
        if s_seq.dim() < 1 or s_seq.shape[0] == 0:
            return None
        kind = fixed_kernel_kind(s_seq.device, self.fused_backend)
        rules = self.kernel_rules() if kind is not None else None
        if rules is None:
            return None
        T, step_shape = s_seq.shape[0], s_seq.shape[1:]
        state = self.out_i  # type: ignore[attr-defined]
        if state is not None and state.shape != step_shape:
            return None
        n = math.prod(step_shape)
        i0 = torch.zeros(n, dtype=torch.int64, device=s_seq.device) if state is None else state.reshape(n)
        out, n_sat, n_bad = synapse_sequence(s_seq.reshape(T, n), i0, rules, kind=kind)
        if n_bad:
            return None  # non-binary spikes: the step function reports them
        self.count_saturations("out_i", n_sat)  # type: ignore[attr-defined]
        self.out_i = out[-1].reshape(step_shape).to(self._dtype)  # type: ignore[attr-defined]
        return out.reshape(s_seq.shape)
