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

import copy
from typing import Any, Optional, Sequence, Union

import torch

import targets
from targets import Target
from targets import bundle as fmt

from ..base import MemoryModule

__all__ = ["FixedModule", "resolve_target", "spec_twin", "spec_tensor", "twin_from_spec", "SPEC_TWINS"]

#: op kind of the export format -> the twin class that rebuilds it (:func:`twin_from_spec`)
SPEC_TWINS: dict[str, type] = {}


def spec_twin(*kinds: str):
    """Class decorator: the twin class rebuilds export ops ``kinds`` (its ``from_spec``)."""

    def deco(cls: type) -> type:
        for k in kinds:
            SPEC_TWINS[k] = cls
        return cls

    return deco


def spec_tensor(table: "Optional[Any]") -> Optional[torch.Tensor]:
    """A table of an op description (read-only int64 NumPy) as a new int64 tensor, or ``None``."""
    return None if table is None else torch.from_numpy(table.copy())


def twin_from_spec(spec: "fmt.OpSpec", target: Union[str, Target]) -> "FixedModule":
    """The twin holding exactly the integers of the op description ``spec`` (its class's ``from_spec``)."""
    cls = SPEC_TWINS.get(spec.kind)
    if cls is None:
        raise TypeError(f"{spec.name}: op {spec.kind!r} has no torch twin; twins exist for {sorted(SPEC_TWINS)}")
    return cls.from_spec(spec, resolve_target(target))


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

    # -- the export format --------------------------------------------------------------------------
    def to_spec(self, name: str, input_shape: Sequence[int], input_kind: str, input_exponent: Optional[int]) -> "fmt.OpSpec":
        """This twin as an op of the export format (:mod:`targets.bundle`), for one sample's input
        ``input_shape`` of kind ``input_kind`` (``spikes``/``counts``/``values``) and exponent
        ``input_exponent``. Subclasses that export implement it."""
        raise TypeError(f"export: no export rule for {type(self).__name__}")

    @classmethod
    def from_spec(cls, spec: "fmt.OpSpec", target: Target) -> "FixedModule":
        """The twin of the op description ``spec`` (the inverse of :meth:`to_spec`)."""
        raise TypeError(f"{cls.__name__} cannot be rebuilt from an export op")

    def step_output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """One sample's output shape for ``input_shape``, from one step of a reset copy on zeros."""
        probe = copy.deepcopy(self)
        probe.step_mode = "s"
        probe.reset()
        with torch.no_grad():
            y = probe(torch.zeros((1, *input_shape), dtype=torch.int64))
        shape = y.shape if hasattr(y, "counts") else tuple(y.shape)
        return tuple(int(s) for s in shape[1:])

    def _ports(self, name: str, input_shape: Sequence[int], input_kind: str, output_shape: Sequence[int],
               output_kind: str, output_exponent: Optional[int]) -> dict[str, Any]:
        """The port fields shared by every op description."""
        return dict(name=name, input_shape=tuple(int(s) for s in input_shape), input_kind=input_kind,
                    output_shape=tuple(int(s) for s in output_shape), output_kind=output_kind,
                    output_exponent=None if output_exponent is None else int(output_exponent))

    def extra_repr(self) -> str:
        return f"target={self.target.name}, step_mode={self.step_mode}"
