r"""The exported network as one typed value: the input, the ordered ops, the chip and ``dt``.

:class:`Network` checks what no single op can: the chain (layer :math:`i` takes what layer
:math:`i-1` gives: shape, kind and exponent), unique layer names, and that every op fits the
target (:meth:`~targets.bundle.base.OpSpec.check`). It builds the ``layers`` of the manifest and
the table metadata (:meth:`Network.layer_entries`, :meth:`Network.table_entries`) and rebuilds
itself from a manifest (:meth:`Network.from_manifest`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

from ..target import Target
from .base import FREE, KINDS, OpSpec, TableFormat, from_dict
from .errors import SpecError

__all__ = ["Network", "TableEntry", "NAME_RE"]

#: layer names: letters, digits, '_', '.', '-' (they name tables, npz members and hex files)
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TableEntry:
    """One table of the bundle: its name ``<layer>.<role>``, values and storage."""

    name: str
    layer: str
    role: str
    values: np.ndarray
    fmt: TableFormat

    def stored(self) -> np.ndarray:
        """The values in the table's storage dtype (C order)."""
        return np.array(self.values, dtype=self.fmt.dtype, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)


@dataclass(frozen=True, eq=False)
class Network:
    """An exported network (module docstring). ``ops`` run in order; ``input_*`` describe one sample."""

    target: Target
    input_shape: tuple[int, ...]
    input_kind: str
    input_exponent: int
    ops: tuple[OpSpec, ...]
    dt: float = 1e-3

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_shape", tuple(int(s) for s in self.input_shape))
        object.__setattr__(self, "ops", tuple(self.ops))
        problems: list[str] = []
        if self.input_kind not in KINDS:
            problems.append(f"input.kind: {self.input_kind!r} is not one of {', '.join(KINDS)}")
        if self.input_kind != "values" and self.input_exponent != 0:
            problems.append(f"input.exponent: {self.input_kind} inputs have exponent 0; got {self.input_exponent}")
        if not (isinstance(self.dt, (int, float)) and math.isfinite(self.dt) and self.dt > 0):
            problems.append(f"dt: must be a finite number of seconds > 0; got {self.dt!r}")
        if not self.ops:
            problems.append("layers: the network has no layers")
        seen: set[str] = set()
        shape, kind, exp = self.input_shape, self.input_kind, self.input_exponent
        for i, op in enumerate(self.ops):
            where = f"layers[{i}] ({op.name!r}, {op.kind})"
            if not NAME_RE.match(op.name):
                problems.append(f"{where}: the name may hold only letters, digits, '_', '.', '-'")
            if op.name in seen:
                problems.append(f"{where}: the name is used twice")
            seen.add(op.name)
            if op.input_shape != shape or op.input_kind != kind:
                problems.append(f"{where}: takes {list(op.input_shape)} {op.input_kind}, but receives {list(shape)} {kind}")
            implied = op.passes_exponent(exp)
            if implied is not FREE and implied != op.output_exponent:
                problems.append(f"{where}: output.exponent {op.output_exponent!r}, but its input's exponent {exp!r} gives {implied!r}")
            try:
                op.check(self.target)
            except SpecError as err:
                problems.extend(f"{where}: {p}" for p in err.problems)
            shape, kind, exp = op.output_shape, op.output_kind, op.output_exponent
        if problems:
            raise SpecError(f"the network is not valid for target {self.target.name!r}", problems)

    # -- views --------------------------------------------------------------------------------
    def tables(self) -> Iterator[TableEntry]:
        """Every table, layer by layer, role by role (the order of the manifest)."""
        for op in self.ops:
            for role, values in op.tables().items():
                yield TableEntry(f"{op.name}.{role}", op.name, role, values, op.table_format(role, self.target))

    def layer_entries(self) -> list[dict[str, Any]]:
        return [op.to_dict() for op in self.ops]

    def input_entry(self) -> dict[str, Any]:
        return {"shape": list(self.input_shape), "kind": self.input_kind, "exponent": self.input_exponent}

    def op(self, name: str) -> OpSpec:
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(f"no layer {name!r}; layers: {[o.name for o in self.ops]}")

    # -- from a manifest ----------------------------------------------------------------------
    @classmethod
    def from_manifest(cls, manifest: Mapping[str, Any], tables: Mapping[str, np.ndarray], target: Target) -> "Network":
        """The network of a (digest-verified) manifest and its tables; raises :class:`SpecError`
        listing every invalid layer field."""
        inp = manifest.get("input")
        if not isinstance(inp, dict) or set(inp) != {"shape", "kind", "exponent"}:
            raise SpecError("the manifest's input is not valid", [f"input: expected {{shape, kind, exponent}}; got {inp!r}"])
        layers = manifest.get("layers")
        if not isinstance(layers, list):
            raise SpecError("the manifest's layers are not valid", ["layers: expected a list"])
        ops, problems = [], []
        for i, entry in enumerate(layers):
            try:
                ops.append(from_dict(entry, tables))
            except SpecError as err:
                problems.append(f"layers[{i}]: {str(err).splitlines()[0]}")
                problems.extend(f"layers[{i}].{p}" for p in err.problems)
        if problems:
            raise SpecError("the manifest's layers are not valid", problems)
        shape = inp["shape"]
        if not isinstance(shape, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in shape):
            raise SpecError("the manifest's input is not valid", [f"input.shape: expected a list of sizes >= 1; got {shape!r}"])
        exp = inp["exponent"]
        if isinstance(exp, bool) or not isinstance(exp, int):
            raise SpecError("the manifest's input is not valid", [f"input.exponent: expected an integer; got {exp!r}"])
        dt = manifest.get("dt")
        return cls(target=target, input_shape=tuple(shape), input_kind=inp["kind"], input_exponent=exp,
                   ops=tuple(ops), dt=dt if isinstance(dt, (int, float)) and not isinstance(dt, bool) else float("nan"))
