r"""Per-neuron neuron parameters of the integer twins (threshold, decays): where they may be held and how.

Xylo's neurons each have their own ``threshold``, ``dash_syn`` and ``dash_mem`` (``limits.layout:
xylo_core``, ``../shared/targets/xylo.md``); the other targets hold one value per layer. A twin
parameter is therefore an ``int`` (one value for the layer, also when a tensor holds one value
throughout) or, on a ``xylo_core`` target only, an int64 tensor broadcastable to one step of the
input (the neuron shape, leading singleton dimensions dropped). Elsewhere a per-neuron value is
refused with a :class:`ValueError` naming the layer and the parameter.
"""

from __future__ import annotations

from typing import Union

import torch

from targets import Target

__all__ = ["holds_per_neuron", "per_neuron_value", "first_value", "report_value", "fits_step"]

IntOrTensor = Union[int, torch.Tensor]


def holds_per_neuron(target: Target) -> bool:
    """Whether ``target``'s neurons hold their own threshold and decays (a Xylo core)."""
    return target.limits.layout == "xylo_core"


def per_neuron_value(value: object, target: Target, layer: str, parameter: str) -> IntOrTensor:
    """``value`` (an int, or an integer tensor of per-neuron values) as the twin keeps it: an ``int`` when
    it holds one value, else an int64 tensor without leading singleton dimensions (only on targets that
    hold per-neuron values; elsewhere ``ValueError`` naming ``layer`` and ``parameter``)."""
    if not isinstance(value, torch.Tensor):
        return value  # type: ignore[return-value]  (checked as an int by the caller)
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{layer}: {parameter} must be an integer or an integer tensor; got a {value.dtype} tensor")
    if value.numel() == 0:
        raise ValueError(f"{layer}: {parameter} is an empty tensor")
    flat = value.reshape(-1)
    if value.numel() == 1 or bool((flat == flat[0]).all()):
        return int(flat[0])
    if not holds_per_neuron(target):
        raise ValueError(f"{layer}: per-neuron {parameter} (values {int(flat.min())} .. {int(flat.max())}) cannot be "
                         f"held by target {target.name!r}: its neurons share one {parameter} per layer (only Xylo "
                         "cores, limits.layout xylo_core, hold one per neuron); give the layer one value")
    t = value.detach().to(torch.int64)
    while t.dim() > 1 and t.shape[0] == 1:
        t = t[0]
    return t.clone()


def first_value(value: IntOrTensor) -> int:
    """The first neuron's value (the op's scalar parameter next to a per-neuron table)."""
    return int(value.reshape(-1)[0]) if isinstance(value, torch.Tensor) else int(value)


def report_value(value: IntOrTensor) -> object:
    """A report value: the int, or the per-neuron list."""
    return value.tolist() if isinstance(value, torch.Tensor) else value


def fits_step(shape: tuple, step: tuple) -> bool:
    """Whether per-neuron values of ``shape`` broadcast to one input step of shape ``step`` without enlarging it."""
    return len(shape) <= len(step) and all(a in (1, b) for a, b in zip(reversed(shape), reversed(step)))
