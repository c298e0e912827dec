r"""The base of the typed export format: one frozen dataclass per op kind.

An op description (:class:`OpSpec`) is plain data: the layer's name, what flows in and out
(shape of one sample, kind ``spikes``/``counts``/``values``, power-of-two exponent), typed
parameters and integer tables. It knows how to

* validate itself: types, ranges and the consistency of its fields (:meth:`OpSpec.__post_init__`),
  and against a chip (:meth:`OpSpec.check`), every problem at once, each naming the layer and field;
* turn into the manifest entry and back (:meth:`OpSpec.to_dict` / :func:`from_dict`), so that an
  op ``op`` satisfies ``from_dict(op.to_dict(), op.tables()) == op``;
* state each table's storage: bits, signedness, exponent (:meth:`OpSpec.table_format`).

Fields are declared with :func:`param` (a JSON scalar or list in ``params``) and :func:`table` (an
integer array stored in ``tables.npz``); their ``doc`` strings build the op table of
``docs/EXPORT_FORMAT.md`` (:mod:`targets.bundle.docgen`). The integer *semantics* of each op are
not here: the torch twins (:mod:`hwsnn.fixed`) and the simulator (:mod:`sim.ops`) implement them
independently; this module is the contract they both read.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Optional

import numpy as np

from ..target import Target, Width
from .errors import SpecError

__all__ = ["KINDS", "OpSpec", "TableFormat", "param", "table", "register", "op_class", "OPS", "from_dict", "width_range", "FREE", "passes_through"]

#: what flows between layers: 0/1 spikes, non-negative event counts, or integer values with an exponent
KINDS = ("spikes", "counts", "values")

#: op kind -> class, filled by :func:`register`
OPS: dict[str, type] = {}

_MISSING = dataclasses.MISSING

#: :meth:`OpSpec.passes_exponent` of an op that sets its own output exponent
FREE = object()


def param(doc: str, *, ge: Optional[int] = None, le: Optional[int] = None, choices: Optional[tuple] = None,
          default: Any = _MISSING) -> Any:
    """A parameter field: ``doc`` (for the format page), inclusive bounds ``ge``/``le`` on integers
    (and on every element of an integer list), or the allowed ``choices``."""
    md = {"role": "param", "doc": doc, "ge": ge, "le": le, "choices": choices}
    return field(metadata=md) if default is _MISSING else field(default=default, metadata=md)


def table(doc: str, *, required: bool = True) -> Any:
    """A table field: an integer array (``None`` when optional and absent)."""
    md = {"role": "table", "doc": doc, "required": required}
    return field(metadata=md) if required else field(default=None, metadata=md)


def register(cls: type) -> type:
    """Class decorator: ``cls.kind`` (and ``cls.aliases``) name this op in manifests."""
    for k in (cls.kind, *getattr(cls, "aliases", ())):
        if k in OPS:
            raise RuntimeError(f"op kind {k!r} registered twice ({OPS[k].__name__}, {cls.__name__})")
        OPS[k] = cls
    return cls


def op_class(kind: str) -> type:
    """The :class:`OpSpec` subclass of op kind ``kind`` (a :class:`SpecError` names the known kinds)."""
    try:
        return OPS[kind]
    except KeyError:
        raise SpecError(f"op {kind!r} is not part of the export format; known ops: {', '.join(sorted(OPS))}") from None


@dataclass(frozen=True)
class TableFormat:
    """How a table is stored: ``bits`` (two's complement when ``signed``) and its power-of-two
    ``exponent`` (``None`` for masks, delays and other unitless tables)."""

    bits: int
    signed: bool
    exponent: Optional[int]

    @property
    def dtype(self) -> np.dtype:
        """The smallest NumPy integer dtype holding ``bits`` (the table's dtype in ``tables.npz``)."""
        for b in (8, 16, 32, 64):
            if self.bits <= b:
                return np.dtype(f"{'int' if self.signed else 'uint'}{b}")
        raise SpecError(f"no integer dtype holds {self.bits} bits")

    @property
    def lo(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @classmethod
    def of(cls, width: Width, exponent: Optional[int]) -> "TableFormat":
        return cls(width.bits, width.signed, exponent)


def width_range(width: Width) -> tuple[int, int]:
    return width.lo, width.hi


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _normalise(value: Any, tp: Any, path: str, md: Mapping, problems: list[str]) -> Any:
    """``value`` checked against the annotation ``tp`` (and the field's bounds/choices), converted to
    plain Python (tuples for lists, int for NumPy integers). Problems are appended to ``problems``."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _normalise(value, args[0], path, md, problems)
    if tp is bool:
        if not isinstance(value, (bool, np.bool_)):
            problems.append(f"{path}: expected true/false; got {value!r}")
            return value
        return bool(value)
    if tp is int:
        if not _is_int(value):
            problems.append(f"{path}: expected an integer; got {value!r}")
            return value
        value = int(value)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value):
            problems.append(f"{path}: expected a finite number; got {value!r}")
            return value
        value = float(value)
    elif tp is str:
        if not isinstance(value, str):
            problems.append(f"{path}: expected a string; got {value!r}")
            return value
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            problems.append(f"{path}: expected a list of integers; got {value!r}")
            return value
        out = []
        for i, item in enumerate(value):
            out.append(_normalise(item, int, f"{path}[{i}]", md, problems))
        n = md.get("length")
        if n is not None and len(out) != n:
            problems.append(f"{path}: expected {n} integers; got {len(out)}")
        return tuple(out)
    choices = md.get("choices")
    if choices is not None and value not in choices:
        problems.append(f"{path}: {value!r} is not allowed; allowed: {', '.join(map(repr, choices))}")
    lo, hi = md.get("ge"), md.get("le")
    if _is_int(value) and ((lo is not None and value < lo) or (hi is not None and value > hi)):
        problems.append(f"{path}: {value} is outside [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]")
    return value


def _as_table(value: Any, path: str, problems: list[str]) -> Optional[np.ndarray]:
    if value is None:
        return None
    if hasattr(value, "detach"):  # a torch tensor handed over by a twin
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "iub":
        problems.append(f"{path}: a table must hold integers; got dtype {arr.dtype}")
        return None
    if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and int(arr.max()) > np.iinfo(np.int64).max:
        problems.append(f"{path}: values above 2^63 - 1 are not supported")
        return None
    out = np.array(arr, dtype=np.int64, order="C", copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False, kw_only=True)
class OpSpec:
    """One exported layer (module docstring). Subclasses set :attr:`kind` and add fields."""

    kind: ClassVar[str] = ""
    #: one line for the format page
    summary: ClassVar[str] = ""

    name: str
    input_shape: tuple[int, ...]
    input_kind: str
    output_shape: tuple[int, ...]
    output_kind: str
    output_exponent: Optional[int]

    # -- construction -------------------------------------------------------------------------
    def __post_init__(self) -> None:
        problems: list[str] = []
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            role = f.metadata.get("role")
            path = f"params.{f.name}" if role == "param" else f"tables.{f.name}" if role == "table" else f.name
            if role == "table":
                if value is None and f.metadata.get("required"):
                    problems.append(f"{path}: missing (required)")
                object.__setattr__(self, f.name, _as_table(value, path, problems))
            elif isinstance(value, OpSpec):
                continue
            else:
                object.__setattr__(self, f.name, _normalise(value, hints[f.name], path, f.metadata, problems))
        if not problems:
            if not isinstance(self.name, str) or not self.name:
                problems.append("name: must be a non-empty string")
            for which in ("input_kind", "output_kind"):
                if getattr(self, which) not in KINDS:
                    problems.append(f"{which}: {getattr(self, which)!r} is not one of {', '.join(KINDS)}")
            for which in ("input_shape", "output_shape"):
                if any(s < 1 for s in getattr(self, which)):
                    problems.append(f"{which}: every size must be >= 1; got {list(getattr(self, which))}")
        if not problems:
            self._consistency(problems)
        if problems:
            raise SpecError(f"layer {self.name!r} ({self.kind}) is not a valid {self.kind} op", problems)

    def _consistency(self, problems: list[str]) -> None:
        """Subclasses: append a problem for every inconsistent field (target-free checks)."""

    # -- the chain of layers ---------------------------------------------------------------------

    def trace_shape(self) -> tuple[int, ...]:
        """One sample's shape of what this layer hands the next one each step (its output)."""
        return self.output_shape

    def passes_exponent(self, incoming: Optional[int]) -> Any:
        """The output exponent implied by an input of exponent ``incoming``, or :data:`FREE` when the
        op sets its own (weighted layers, neurons, filters)."""
        return FREE

    # -- the chip -----------------------------------------------------------------------------
    def check(self, target: Target) -> None:
        """Raise :class:`SpecError` listing every field or table this chip cannot hold (the widths,
        ranges and rules of ``target``)."""
        problems: list[str] = []
        self._check_target(target, problems)
        for role, arr in self.tables().items():
            fmt = self.table_format(role, target)
            if arr.size and (int(arr.min()) < fmt.lo or int(arr.max()) > fmt.hi):
                problems.append(f"tables.{role}: values [{int(arr.min())}, {int(arr.max())}] do not fit "
                                f"{fmt.bits} {'signed' if fmt.signed else 'unsigned'} bits")
        if problems:
            raise SpecError(f"layer {self.name!r} ({self.kind}) does not fit target {target.name!r}", problems)

    def _check_target(self, target: Target, problems: list[str]) -> None:
        """Subclasses: append a problem for every field ``target`` cannot hold."""

    def table_format(self, role: str, target: Target) -> TableFormat:
        """Storage of table ``role`` on ``target`` (subclasses with tables override)."""
        raise SpecError(f"layer {self.name!r} ({self.kind}) has no table {role!r}")

    # -- plain data ---------------------------------------------------------------------------
    @classmethod
    def param_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.metadata.get("role") == "param"]

    @classmethod
    def table_fields(cls) -> list[dataclasses.Field]:
        return [f for f in dataclasses.fields(cls) if f.metadata.get("role") == "table"]

    @classmethod
    def param_names(cls) -> set[str]:
        """Every key ``params`` may hold."""
        return {f.name for f in cls.param_fields()}

    @classmethod
    def required_params(cls) -> dict[str, str]:
        """The keys ``params`` must hold, with their docs."""
        return {f.name: f.metadata["doc"] for f in cls.param_fields() if f.default is _MISSING}

    @classmethod
    def table_roles(cls) -> set[str]:
        """Every table role of this op."""
        return {f.name for f in cls.table_fields()}

    def params(self) -> dict[str, Any]:
        """The parameters as JSON-able data (lists for tuples)."""
        return {f.name: _plain(getattr(self, f.name)) for f in self.param_fields()}

    def tables(self) -> dict[str, np.ndarray]:
        """The tables present, by role (read-only int64 arrays)."""
        return {f.name: getattr(self, f.name) for f in self.table_fields() if getattr(self, f.name) is not None}

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry (tables named ``<layer>.<role>``; the arrays come from :meth:`tables`)."""
        return {
            "name": self.name,
            "op": self.kind,
            "input_shape": list(self.input_shape),
            "input_kind": self.input_kind,
            "output_shape": list(self.output_shape),
            "output": {"kind": self.output_kind, "exponent": self.output_exponent},
            "params": self.params(),
            "tables": {role: f"{self.name}.{role}" for role in self.tables()},
        }

    @classmethod
    def _from_params(cls, common: dict, params: dict, tables: dict, problems: list[str]) -> "OpSpec":
        return cls(**common, **params, **tables)

    def replace(self, **changes: Any) -> "OpSpec":
        """A copy with ``changes`` (validated again)."""
        return dataclasses.replace(self, **changes)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def from_dict(entry: Any, tables: Mapping[str, np.ndarray]) -> OpSpec:
    """The op of a manifest ``entry`` with its ``tables`` (``{table name: array}``; the entry's
    ``tables`` maps each role to a table name). Unknown, missing or mistyped fields raise
    :class:`SpecError` naming them."""
    if not isinstance(entry, dict):
        raise SpecError(f"a layer entry must be a JSON object; got {type(entry).__name__}")
    name = entry.get("name")
    where = f"layer {name!r}" if isinstance(name, str) else "a layer"
    problems: list[str] = []
    allowed = {"name", "op", "input_shape", "input_kind", "output_shape", "output", "params", "tables"}
    for key in entry:
        if key not in allowed:
            problems.append(f"{key}: unknown key; allowed: {', '.join(sorted(allowed))}")
    for key in sorted(allowed - set(entry)):
        problems.append(f"{key}: missing")
    if problems:
        raise SpecError(f"{where} is not a valid layer entry", problems)
    cls = op_class(entry["op"]) if isinstance(entry["op"], str) else None
    if cls is None:
        raise SpecError(f"{where}: op must be a string; got {entry['op']!r}")
    out = entry["output"]
    if not isinstance(out, dict) or set(out) != {"kind", "exponent"}:
        raise SpecError(f"{where} ({cls.kind}) is not a valid layer entry",
                        [f"output: expected {{'kind': ..., 'exponent': ...}}; got {out!r}"])
    params, roles = entry["params"], entry["tables"]
    if not isinstance(params, dict) or not isinstance(roles, dict):
        raise SpecError(f"{where} ({cls.kind}): params and tables must be JSON objects")
    names = cls.param_names()
    table_names = cls.table_roles()
    for key in params:
        if key not in names:
            problems.append(f"params.{key}: unknown parameter of {cls.kind}; allowed: {', '.join(sorted(names))}")
    for role, tname in roles.items():
        if role not in table_names:
            problems.append(f"tables.{role}: {cls.kind} has no table {role!r}; allowed: {', '.join(sorted(table_names)) or 'none'}")
        elif not isinstance(tname, str) or tname not in tables:
            problems.append(f"tables.{role}: table {tname!r} is not in the bundle")
    for key, doc in cls.required_params().items():
        if key not in params:
            problems.append(f"params.{key}: missing ({doc})")
    if problems:
        raise SpecError(f"{where} ({cls.kind}) is not a valid {cls.kind} op", problems)
    common = dict(name=name, input_shape=entry["input_shape"], input_kind=entry["input_kind"],
                  output_shape=entry["output_shape"], output_kind=out["kind"], output_exponent=out["exponent"])
    for key in ("input_shape", "output_shape"):
        if not isinstance(common[key], list):
            raise SpecError(f"{where} ({cls.kind}) is not a valid layer entry", [f"{key}: expected a list; got {common[key]!r}"])
    arrays = {role: tables[tname] for role, tname in roles.items()}
    spec = cls._from_params(common, dict(params), arrays, problems)
    if problems:
        raise SpecError(f"{where} ({cls.kind}) is not a valid {cls.kind} op", problems)
    return spec


def passes_through(op: OpSpec, problems: list[str]) -> None:
    """Check an op that copies its input (dropout, delay, flatten): same shape and kind in and out."""
    if op.input_shape != op.output_shape:
        problems.append(f"output_shape: {list(op.output_shape)}; a {op.kind} layer keeps its input shape {list(op.input_shape)}")
    if op.output_kind != op.input_kind:
        problems.append(f"output.kind: {op.output_kind!r}; a {op.kind} layer passes its input kind {op.input_kind!r} on")
