"""``to_fixed``: the registry that turns a float layer into its integer twin.

Each twin module registers a converter for the float classes it twins::

    @register(LIFNode)
    def _lif_to_fixed(layer, target, **options) -> FixedLIFNode: ...

Importing :mod:`hwsnn.fixed` imports every twin module, so every converter is registered.
``to_fixed(layer, target, **options)`` (also ``layer.to_fixed(target, **options)`` on every hwsnn
layer) looks the layer's class up along its MRO. The options are the scales the layer needs
(e.g. ``input_exponent``), ``clip`` (clip values that do not fit instead of raising
:class:`~hwsnn.fixed.arith.FitError`) and ``name`` (the layer's name in error messages).
"""

from __future__ import annotations

from typing import Any, Callable, Union

import torch.nn as nn

from targets import Target

__all__ = ["register", "to_fixed", "converters"]

_CONVERTERS: dict[type, Callable[..., nn.Module]] = {}


def register(*float_types: type) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: the function converts instances of ``float_types`` to their twin."""

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        for tp in float_types:
            _CONVERTERS[tp] = fn
        return fn

    return deco


def converters() -> dict[type, Callable[..., nn.Module]]:
    """A copy of the registry (float class -> converter)."""
    return dict(_CONVERTERS)


def to_fixed(layer: nn.Module, target: Union[str, Target], **options: Any) -> nn.Module:
    """The integer twin of ``layer`` on ``target`` (a :class:`~targets.Target`, name or path)."""
    from .base import resolve_target

    for cls in type(layer).__mro__:
        fn = _CONVERTERS.get(cls)
        if fn is not None:
            twin = fn(layer, resolve_target(target), **options)
            twin.step_mode = getattr(layer, "step_mode", "s")
            return twin
    known = ", ".join(sorted(t.__name__ for t in _CONVERTERS))
    raise TypeError(f"to_fixed: no integer twin for {type(layer).__name__}; layers with a twin: {known}")
