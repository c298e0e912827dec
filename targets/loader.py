"""Load and validate target YAML files against the :class:`~targets.target.Target` dataclasses.

Validation collects *every* problem (unknown key, missing field, wrong type, out-of-range or
not-allowed value) and raises one :class:`TargetError` whose message names the file, each key
path and what is allowed.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from .target import Target
from .yamlfile import DuplicateKeyError, load_yaml

__all__ = ["TargetError", "load", "available", "from_dict", "target_dir", "to_dict"]

_HERE = Path(__file__).resolve().parent


class TargetError(ValueError):
    """A target file that does not validate; ``problems`` lists each ``key.path: message``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s) in the target description:\n{lines}")


def target_dir() -> Path:
    """The directory of the shipped target files."""
    return _HERE


def available() -> list[str]:
    """Names of the shipped targets (sorted)."""
    return sorted(p.stem for p in _HERE.glob("*.yaml"))


def _type_name(tp: Any) -> str:
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string", tuple: "a list"}.get(tp, str(tp))


def _check_value(value: Any, tp: Any, meta: dict, path: str, problems: list[str]) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _check_value(value, args[0], meta, path, problems)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, problems)
    if tp is bool:
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {value!r}")
            return value
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            problems.append(f"{path}: expected a number, got {value!r}")
            return value
        value = float(value)
    elif tp is str:
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path}: expected a non-empty string, got {value!r}")
            return value
    elif tp is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            problems.append(f"{path}: expected a non-empty list, got {value!r}")
            return value
        choices = meta.get("choices")
        for i, item in enumerate(value):
            if choices is not None and item not in choices:
                problems.append(f"{path}[{i}]: {item!r} is not allowed; allowed: {', '.join(map(str, choices))}")
        if len(set(value)) != len(value):
            problems.append(f"{path}: repeated entries in {value!r}")
        return tuple(value)
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        problems.append(f"{path}: {value!r} is not allowed; allowed: {', '.join(map(str, choices))}")
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            allowed = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            problems.append(f"{path}: {value} is out of range; allowed {allowed}")
    return value


def _build(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    where = path or "(top level)"
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping with keys {', '.join(f.name for f in dataclasses.fields(cls))}; got {data!r}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            problems.append(f"{path + '.' if path else ''}{key}: unknown key; allowed keys here: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                kind = hints[name]
                what = f"a mapping ({kind.__name__})" if dataclasses.is_dataclass(kind) else _type_name(kind)
                problems.append(f"{sub}: missing (required: {what}{' - ' + f.metadata['doc'] if f.metadata.get('doc') else ''})")
            continue
        kwargs[name] = _check_value(data[name], hints[name], dict(f.metadata), sub, problems)
    try:
        return cls(**kwargs)
    except TypeError:
        return None  # missing fields already reported


def _cross_checks(t: Target, problems: list[str]) -> None:
    w = t.widths
    for name in ("current", "membrane", "accumulator"):
        if not getattr(w, name).signed:
            problems.append(f"widths.{name}.signed: must be true (states and sums can be negative)")
    if w.accumulator.bits < w.weight.bits:
        problems.append(f"widths.accumulator.bits: {w.accumulator.bits} is narrower than widths.weight.bits ({w.weight.bits})")
    if t.neuron.readout_max_spikes_per_step > t.neuron.max_spikes_per_step:
        problems.append("neuron.readout_max_spikes_per_step: larger than neuron.max_spikes_per_step")
    if t.neuron.bias_exponent_min > t.neuron.bias_exponent_max:
        problems.append("neuron.bias_exponent_min: larger than neuron.bias_exponent_max")
    if t.neuron.mul12_min > t.neuron.mul12_max:
        problems.append("neuron.mul12_min: larger than neuron.mul12_max")
    if t.synapse.weight_shift_min > t.synapse.weight_shift_max:
        problems.append("synapse.weight_shift_min: larger than synapse.weight_shift_max")
    if t.spikes.kind == "binary" and t.spikes.bits != 1:
        problems.append(f"spikes.bits: binary spikes carry 1 bit; got {t.spikes.bits}")
    if t.decay.rounding == "xylo_min1" and t.decay.mechanism != "shift":
        problems.append("decay.rounding: xylo_min1 is a rule of shift decay (decay.mechanism: shift)")
    lim = t.limits
    if lim.layout == "xylo_core":
        if lim.hidden_neurons is None or lim.readout_neurons is None or lim.input_channels is None:
            problems.append("limits.layout: xylo_core needs limits.input_channels, hidden_neurons and readout_neurons")
    elif t.costs.cycle_model != "per_core":
        problems.append(f"costs.cycle_model: {t.costs.cycle_model} is a model of the Xylo core (limits.layout: xylo_core)")
    if lim.hidden_synapses > 1 and lim.layout != "xylo_core":
        problems.append("limits.hidden_synapses: a second synapse exists only with limits.layout: xylo_core")
    if t.decay.mechanism == "mul12" and t.decay.rounding == "xylo_min1":
        problems.append("decay.rounding: mul12 rounds by floor or toward_zero")


def from_dict(data: Any, source: str = "<dict>") -> Target:
    """Validate a mapping (a parsed YAML document) and build the :class:`Target`."""
    problems: list[str] = []
    target = _build(Target, data, "", problems)
    if target is not None and not problems:
        _cross_checks(target, problems)
    if problems or target is None:
        raise TargetError(source, problems or ["could not build the target"])
    return target


def load(name_or_path: Union[str, os.PathLike, Target]) -> Target:
    """A shipped target by name (``targets.available()``), or a YAML file by path (a
    :class:`Target` is returned as it is).

    Read with the safe loader (no Python tags, no duplicate keys); every problem of the file is reported at once
    (:class:`TargetError`).
    """
    if isinstance(name_or_path, Target):
        return name_or_path
    text = os.fspath(name_or_path)
    path = Path(text)
    if not (text.endswith((".yaml", ".yml")) or os.sep in text or "/" in text):
        path = _HERE / f"{text}.yaml"
        if not path.is_file():
            raise TargetError(text, [f"no shipped target named {text!r}; available: {', '.join(available())} (or give a path to a .yaml file)"])
    if not path.is_file():
        raise TargetError(str(path), ["file not found"])
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise TargetError(str(path), [str(exc)]) from None
    except yaml.YAMLError as exc:
        raise TargetError(str(path), [f"not valid YAML: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TargetError(str(path), [f"cannot be read: {exc}"]) from None
    return from_dict(data, str(path))


def to_dict(target: Target) -> dict:
    """The resolved parameters as plain data (lists for tuples), e.g. for an export manifest."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(target))
