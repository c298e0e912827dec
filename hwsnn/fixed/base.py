r"""The base of every integer twin: a target, integer states with exponents, counters.

A twin is a :class:`~hwsnn.base.MemoryModule` (same ``step_mode``, ``register_memory``,
``reset()`` as the float layers) whose memories are integer tensors. Each integer state ``name``
has a power-of-two exponent ``exponents[name]``: its real value is ``state * 2**exponent``, which
:meth:`FixedModule.dequantize` returns for comparison with the float layer.

Counters (plain ints, cumulative until :meth:`FixedModule.clear_counts`):

* ``saturations[name]``: values brought back into range by the target's overflow rule;
* ``clipped[name]``: parameter values clipped at conversion (only with ``clip=True``).
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch

import targets
from targets import Target

from ..base import MemoryModule

__all__ = ["FixedModule", "resolve_target"]


def resolve_target(target: Union[str, Target]) -> Target:
    """A :class:`~targets.Target` from a target or a name/path (:func:`targets.load` passes a target through)."""
    return targets.load(target)


class FixedModule(MemoryModule):
    """Base class of the integer twins (see the module docstring)."""

    def __init__(self, target: Union[str, Target], name: Optional[str] = None) -> None:
        super().__init__()
        self.target = resolve_target(target)
        self.layer_name = name or type(self).__name__
        self.exponents: dict[str, int] = {}
        self.saturations: dict[str, int] = {}
        self.clipped: dict[str, int] = {}

    # -- counters -----------------------------------------------------------------------------
    def count_saturations(self, name: str, n: int) -> None:
        """Add ``n`` to the saturation counter of state ``name``."""
        self.saturations[name] = self.saturations.get(name, 0) + int(n)

    def count_clipped(self, name: str, n: int) -> None:
        """Record ``n`` values of parameter ``name`` clipped at conversion."""
        if n:
            self.clipped[name] = self.clipped.get(name, 0) + int(n)

    def clear_counts(self) -> None:
        """Zero the saturation counters (clip counts describe the parameters and stay)."""
        self.saturations = {k: 0 for k in self.saturations}

    # -- float view -----------------------------------------------------------------------------
    def dequantize(self, name: Optional[str] = None) -> Any:
        r"""The real value :math:`q\,2^{e}` of integer state ``name`` (float64), or of every
        state with an exponent as a dict when ``name`` is ``None``."""
        if name is None:
            return {k: self.dequantize(k) for k in self.exponents}
        if name not in self.exponents:
            raise KeyError(f"{self.layer_name}: no integer state {name!r}; states with an exponent: {sorted(self.exponents)}")
        value = getattr(self, name)
        if value is None:
            return None
        if not torch.is_tensor(value):
            value = torch.as_tensor(value)
        return value.to(torch.float64) * 2.0 ** self.exponents[name]

    def fixed_report(self) -> dict:
        """Parameters and counters for a conversion/simulation report (plain data)."""
        return {
            "layer": self.layer_name,
            "kind": type(self).__name__,
            "target": self.target.name,
            "exponents": dict(self.exponents),
            "saturations": dict(self.saturations),
            "clipped": dict(self.clipped),
        }

    def extra_repr(self) -> str:
        return f"target={self.target.name}, step_mode={self.step_mode}"
