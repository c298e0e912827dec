"""The run configuration: ``hwsnn run --config run.yaml`` on a user's own network and data.

A run file is YAML, read with ``yaml.safe_load`` only (no Python tags). Every key is optional;
an empty file is the built-in default job (``examples/run.yaml`` spells the defaults out)::

    seed: 0                  # int >= 0: data split/sampling, weight init, training order
    target: generic_int8     # a shipped target name, or a path to a target .yaml
    out: hwsnn-out           # output directory (relative to the working directory)
    data:                    # default: {kind: digits}
      kind: digits           # digits | temporal_patterns | npz | shd | nmnist
      # digits (hwsnn.data.digits_spikes; unset options take that function's defaults):
      #   row_steps (2), tail_steps (4), levels ([4, 10]), columns ([1, 7]), position_channels (4):
      #   (columns[1] - columns[0]) * len(levels) + position_channels input channels,
      #   test_fraction (0.2), train_samples, test_samples (limits; null = all)
      # temporal_patterns (hwsnn.data.temporal_patterns; test set: sample_seed = seed + 10000):
      #   T (20), channels (16), classes (10), train_samples (2000), test_samples (500),
      #   template_rate (0.2), jitter (1), drop (0.1), noise (0.02)
      # npz: path (required) to a .npz holding x_train [T, N, ...], y_train [N],
      #   x_test [T, N, ...], y_test [N] (loaded with allow_pickle=False);
      #   classes (optional: labels must lie in [0, classes))
      # shd, nmnist (hwsnn.events; tonic): path (required) to the data set's folder, read when
      #   the data is loaded (never downloaded); binning and cache options: README, examples/shd_xylo.yaml
    network:                 # default (absent or null): hwsnn.demo.default_network(target)
      - {type: Linear, in_features: 16, out_features: 64, bias: false}
      - {type: LIFNode, tau: 2.0, v_reset: null, surrogate_function: {type: ATan, alpha: 2.0}}
      - {type: VotingLayer, voting_size: 4}
    training:
      epochs: 40             # int >= 1
      lr: 0.01               # number > 0
      batch_size: 32         # int >= 1
      qat_epochs: 3          # int >= 0
      qat_lr: 0.0001         # number > 0
      calibration_batches: 4 # int >= 1

Paths inside the file (``target`` when it is a path, ``data.path``, ``data.cache_dir``) are
relative to the file's folder. A layer's ``type`` is one of :data:`LAYER_TYPES` (a fixed
whitelist; no name is ever imported or evaluated); its other keys are the class's constructor arguments (checked against
its signature, lists become tuples). ``surrogate_function`` names one of :data:`SURROGATES`,
as a string or ``{type: ..., alpha: ...}``. A ``RecurrentContainer``'s ``sub_module`` is a nested
neuron entry (``{type: LIFNode, tau: 4.0, ...}``), checked the same way. ``step_mode`` is not set
here: the network runs multi-step (``[T, N, ...]``).

Validation collects every problem and raises one :class:`ConfigError` naming the file and each
key path (``network[2].type: unknown layer 'LIFnode'; known: ...``).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import math
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import yaml

from targets.yamlfile import DuplicateKeyError, load_yaml

from .events import EVENT_KINDS, EVENT_OPTIONS

__all__ = [
    "ConfigError",
    "DataSpec",
    "LayerSpec",
    "TrainingSpec",
    "RunConfig",
    "LAYER_TYPES",
    "SURROGATES",
    "DATA_KINDS",
    "load_run_config",
    "run_config_from_dict",
]


class ConfigError(ValueError):
    """A run configuration that does not validate; ``problems`` lists each ``key.path: message``."""

    def __init__(self, source: Union[str, os.PathLike, None], problems: Sequence[str]) -> None:
        self.source = str(source) if source is not None else "<run config>"
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.source}: {len(self.problems)} problem(s) in the run configuration:\n{lines}")


# --------------------------------------------------------------------------- whitelists


def _layer_types() -> dict[str, type]:
    from . import layer, neuron

    names = ("Linear", "Conv2d", "AvgPool2d", "MaxPool2d", "Flatten", "SynapseFilter", "Delay", "Dropout", "Dropout2d",
             "VotingLayer", "RecurrentContainer")
    table = {n: getattr(layer, n) for n in names}
    table.update({n: getattr(neuron, n) for n in ("IFNode", "LIFNode", "CubaLIFNode")})
    return dict(sorted(table.items()))


def _surrogates() -> dict[str, type]:
    from . import surrogate

    return {n: getattr(surrogate, n) for n in ("ATan", "PiecewiseQuadratic", "Sigmoid")}


#: layer ``type`` names allowed in ``network`` and the classes they build
LAYER_TYPES: dict[str, type] = _layer_types()
#: ``surrogate_function`` names allowed for the neurons
SURROGATES: dict[str, type] = _surrogates()
#: constructor arguments a run file cannot set
_NOT_SETTABLE = frozenset({"self", "step_mode", "device", "dtype"})

DATA_KINDS = tuple(sorted(("digits", "npz", "temporal_patterns", *EVENT_KINDS)))
_NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
_UNSET = object()  # an option default left to the data function


# --------------------------------------------------------------------------- value checks
# each check returns None when the value is fine, else the message after "path: "


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int_ge(low: int, nullable: bool = False):
    def check(v: Any) -> Optional[str]:
        if nullable and v is None:
            return None
        if not _is_int(v) or v < low:
            return f"must be an int >= {low}{' or null' if nullable else ''}; got {v!r}"
        return None

    return check


def _num_in(low: float, high: float, low_open: bool = False, high_open: bool = False):
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    what = f"> {low:g}" if math.isinf(high) and low_open else f"in {lo}{low:g}, {high:g}{hi}"

    def check(v: Any) -> Optional[str]:
        if not _is_num(v) or v < low or v > high or (low_open and v == low) or (high_open and v == high):
            return f"must be a number {what}; got {v!r}"
        return None

    return check


def _levels(v: Any) -> Optional[str]:
    ok = isinstance(v, list) and v and all(_is_int(x) and 0 <= x <= 15 for x in v) and all(a < b for a, b in zip(v, v[1:]))
    return None if ok else f"must be a non-empty, strictly increasing list of ints in [0, 15]; got {v!r}"


def _columns(v: Any) -> Optional[str]:
    ok = isinstance(v, list) and len(v) == 2 and all(_is_int(x) for x in v) and 0 <= v[0] < v[1] <= 8
    return None if ok else f"must be a list [first, end] of ints with 0 <= first < end <= 8; got {v!r}"


def _nonempty_str(v: Any) -> Optional[str]:
    return None if isinstance(v, str) and v.strip() else f"must be a non-empty string; got {v!r}"


# kind -> option -> (check, default)
_DATA_OPTIONS: dict[str, dict[str, tuple[Any, Any]]] = {
    "digits": {
        "row_steps": (_int_ge(1), _UNSET),
        "tail_steps": (_int_ge(0), _UNSET),
        "levels": (_levels, _UNSET),
        "columns": (_columns, _UNSET),
        "position_channels": (_int_ge(0), _UNSET),
        "test_fraction": (_num_in(0.0, 1.0, True, True), _UNSET),
        "train_samples": (_int_ge(1, nullable=True), _UNSET),
        "test_samples": (_int_ge(1, nullable=True), _UNSET),
    },
    "temporal_patterns": {
        "T": (_int_ge(1), 20),
        "channels": (_int_ge(1), 16),
        "classes": (_int_ge(2), 10),
        "train_samples": (_int_ge(1), 2000),
        "test_samples": (_int_ge(1), 500),
        "template_rate": (_num_in(0.0, 1.0), 0.2),
        "jitter": (_int_ge(0), 1),
        "drop": (_num_in(0.0, 1.0), 0.1),
        "noise": (_num_in(0.0, 1.0), 0.02),
    },
    "npz": {
        "path": (_nonempty_str, _UNSET),
        "classes": (_int_ge(2, nullable=True), _UNSET),
    },
}

# shd, nmnist (hwsnn.events): their checks and defaults live with the loader
_DATA_OPTIONS.update(EVENT_OPTIONS)

_TRAINING_CHECKS = {
    "epochs": _int_ge(1),
    "lr": _num_in(0.0, math.inf, low_open=True),
    "batch_size": _int_ge(1),
    "qat_epochs": _int_ge(0),
    "qat_lr": _num_in(0.0, math.inf, low_open=True),
    "calibration_batches": _int_ge(1),
}


def _unknown(path: str, key: Any, allowed: Sequence[str]) -> str:
    near = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"{path}{key}: unknown key{hint}; allowed keys here: {', '.join(allowed)}"


# --------------------------------------------------------------------------- the dataclasses


@dataclass(frozen=True)
class DataSpec:
    """``kind`` (one of :data:`DATA_KINDS`) and its options (npz ``path`` resolved to absolute)."""

    kind: str = "digits"
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class LayerSpec:
    """One ``network`` entry: a :data:`LAYER_TYPES` name and its constructor arguments."""

    type: str
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrainingSpec:
    epochs: int = 40
    lr: float = 1e-2
    batch_size: int = 32
    qat_epochs: int = 3
    qat_lr: float = 1e-4
    calibration_batches: int = 4


@dataclass(frozen=True)
class RunConfig:
    """A validated run file (:func:`load_run_config`); ``network=None`` means the default network."""

    seed: int = 0
    target: str = "generic_int8"
    out: str = "hwsnn-out"
    data: DataSpec = field(default_factory=DataSpec)
    network: Optional[tuple[LayerSpec, ...]] = None
    training: TrainingSpec = field(default_factory=TrainingSpec)
    source: Optional[Path] = field(default=None, compare=False)

    # ------------------------------------------------------------------ network
    def build_network(self, target: Any = None):
        """The float network, multi-step, weights drawn after ``torch.manual_seed(seed)``.

        ``target`` (a name, path or :class:`targets.Target`; default ``self.target``) is passed to
        :func:`hwsnn.demo.default_network` when ``network`` is null.
        """
        import torch
        import torch.nn as nn

        from . import functional

        target = self.target if target is None else target
        torch.manual_seed(self.seed)
        if self.network is None:
            from .demo import default_network

            net = default_network(target)
        else:
            modules, problems = [], []
            for i, spec in enumerate(self.network):
                try:
                    modules.append(_make_layer(spec))
                except (TypeError, ValueError, RuntimeError) as exc:
                    problems.append(f"network[{i}] ({spec.type}): {exc}")
            if problems:
                raise ConfigError(self.source, problems)
            net = nn.Sequential(*modules)
        functional.set_step_mode(net, "m")
        return net

    # ------------------------------------------------------------------ data
    def load_data(self, progress: bool = True):
        """``(x_train, y_train, x_test, y_test)``: x float32 ``[T, N, ...]``, y int64 ``[N]``.

        ``progress`` shows a bar while event data (``shd``, ``nmnist``) is binned. Also checks the
        data against an explicit network (first Linear's ``in_features`` against the input
        channels, labels against the number of outputs).
        """
        kind, opts = self.data.kind, dict(self.data.options)
        if kind == "digits":
            arrays = self._digits(opts)
        elif kind == "temporal_patterns":
            arrays = self._temporal_patterns(opts)
        elif kind in EVENT_KINDS:
            arrays = self._events(kind, opts, progress)
        else:
            arrays = _load_npz(Path(opts["path"]), opts.get("classes"))
        if self.network is not None:
            _check_against_network(self.network, arrays, kind, self.source)
        return arrays

    def _digits(self, opts: dict):
        from . import data

        fn = getattr(data, "digits_spikes", None)
        if fn is None:
            raise ConfigError(self.source, ["data.kind: digits needs hwsnn.data.digits_spikes, which this installation lacks"])
        train_limit, test_limit = opts.pop("train_samples", None), opts.pop("test_samples", None)
        for key in ("levels", "columns"):
            if key in opts:
                opts[key] = tuple(opts[key])
        try:
            x_train, y_train = fn("train", split_seed=self.seed, limit=train_limit, **opts)
            x_test, y_test = fn("test", split_seed=self.seed, limit=test_limit, **opts)
        except (ImportError, ValueError) as exc:
            raise ConfigError(self.source, [f"data (kind digits): {exc}"]) from None
        return _as_tensors(x_train, y_train, x_test, y_test)

    def _temporal_patterns(self, opts: dict):
        from .data import temporal_patterns

        full = {k: d for k, (_, d) in _DATA_OPTIONS["temporal_patterns"].items()}
        full.update(opts)
        n_train, n_test = full.pop("train_samples"), full.pop("test_samples")
        try:
            x_train, y_train = temporal_patterns(n_train, seed=self.seed, **full)
            # held out: the same class templates, samples from another stream
            x_test, y_test = temporal_patterns(n_test, seed=self.seed, sample_seed=self.seed + 10_000, **full)
        except ValueError as exc:
            raise ConfigError(self.source, [f"data: {exc}"]) from None
        return _as_tensors(x_train, y_train, x_test, y_test)

    def _events(self, kind: str, opts: dict, progress: bool):
        from .events import EventDataError, load_event_data

        try:
            return load_event_data(kind, opts, seed=self.seed, progress=progress)
        except EventDataError as exc:
            raise ConfigError(self.source, [str(exc)]) from None
        except ImportError as exc:
            raise ConfigError(self.source, [f"data.kind: {exc}"]) from None

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        """Plain data that :func:`run_config_from_dict` turns back into an equal config."""
        d: dict[str, Any] = {"seed": self.seed, "target": self.target, "out": self.out}
        d["data"] = {"kind": self.data.kind, **copy.deepcopy(self.data.options)}
        d["network"] = None if self.network is None else [{"type": s.type, **_plain(s.options)} for s in self.network]
        d["training"] = dataclasses.asdict(self.training)
        return d


def _plain(v: Any) -> Any:
    if isinstance(v, LayerSpec):  # a nested layer (RecurrentContainer's sub_module)
        return {"type": v.type, **_plain(v.options)}
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


# --------------------------------------------------------------------------- layers


def _init_of(cls: type):
    """The constructor whose signature lists the options: the torch base for step-mode wrappers."""
    import torch.nn as nn

    sig_params = inspect.signature(cls).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in sig_params):
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("torch.nn") and issubclass(base, nn.Module) and base is not nn.Module:
                return base.__init__
    return cls.__init__


def _layer_params(cls: type) -> tuple[dict[str, inspect.Parameter], dict[str, Any]]:
    init = _init_of(cls)
    params = {
        n: p
        for n, p in inspect.signature(init).parameters.items()
        if n not in _NOT_SETTABLE and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    try:
        hints = typing.get_type_hints(init)
    except Exception:  # an annotation that does not resolve: no type check for that class
        hints = {}
    return params, hints


_UNION_TYPES = (Union, getattr(types, "UnionType", Union))


def _matches(value: Any, tp: Any) -> bool:
    """Whether a YAML value fits an annotation; True for what it cannot judge."""
    import torch

    if tp is Any:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in _UNION_TYPES:
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _is_int(value)
    if tp is float:
        return _is_num(value)
    if tp is str:
        return isinstance(value, str)
    if tp is torch.Tensor:
        return False  # a tensor cannot come from YAML (Threshold = float | Tensor takes the float)
    if tp in (tuple, list) or origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            return False
        if not args:
            return True
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(x, args[0]) for x in value)
        if origin is tuple:
            return len(value) == len(args) and all(_matches(x, a) for x, a in zip(value, args))
        return all(_matches(x, args[0]) for x in value)
    return True


def _describe(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in _UNION_TYPES:
        return " or ".join(dict.fromkeys(_describe(a) for a in args))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    names = {type(None): "null", bool: "true/false", int: "an int", float: "a number", str: "a string"}
    if tp in names:
        return names[tp]
    if tp in (tuple, list) or origin in (tuple, list):
        inner = [a for a in args if a is not Ellipsis]
        if not inner:
            return "a list"
        if origin is tuple and Ellipsis not in args:
            return f"a list of {len(args)} (each {_describe(inner[0])})"
        return f"a list (each {_describe(inner[0])})"
    return getattr(tp, "__name__", str(tp))


def _check_surrogate(value: Any, path: str, problems: list[str]) -> None:
    if value is None:
        return
    known = ", ".join(SURROGATES)
    name, opts = (value, {}) if isinstance(value, str) else (None, None)
    if isinstance(value, dict):
        opts = {k: v for k, v in value.items() if k != "type"}
        name = value.get("type")
        if name is None:
            problems.append(f"{path}.type: missing; known: {known}")
            return
    if name is None:
        problems.append(f"{path}: expected a surrogate name or {{type: ..., alpha: ...}}; got {value!r}")
        return
    if name not in SURROGATES:
        problems.append(f"{path}: unknown surrogate {name!r}; known: {known}")
        return
    params = [n for n in inspect.signature(SURROGATES[name]).parameters if n != "self"]
    for k, v in opts.items():
        if k not in params:
            problems.append(_unknown(f"{path}.", k, ["type", *params]))
        elif k == "alpha" and not (_is_num(v) and v > 0):
            problems.append(f"{path}.alpha: must be a number > 0; got {v!r}")
        elif k == "spiking" and not isinstance(v, bool):
            problems.append(f"{path}.spiking: expected true/false; got {v!r}")


def _yaml_to_arg(name: str, value: Any) -> Any:
    if isinstance(value, LayerSpec):
        return _make_layer(value)
    if name == "surrogate_function" and value is not None:
        if isinstance(value, str):
            return SURROGATES[value]()
        return SURROGATES[value["type"]](**{k: v for k, v in value.items() if k != "type"})
    if isinstance(value, list):
        return tuple(_yaml_to_arg("", v) for v in value)
    return value


def _make_layer(spec: LayerSpec):
    cls = LAYER_TYPES[spec.type]
    return cls(**{k: _yaml_to_arg(k, v) for k, v in spec.options.items()})


#: layers a RecurrentContainer's ``sub_module`` may be (a nested mapping with its own ``type``)
_NEURON_TYPES = ("IFNode", "LIFNode", "CubaLIFNode")


def _check_layer(i: int, entry: Any, problems: list[str], path: Optional[str] = None) -> Optional[LayerSpec]:
    path = f"network[{i}]" if path is None else path
    if not isinstance(entry, dict):
        problems.append(f"{path}: expected a mapping {{type: <layer>, <option>: <value>, ...}}; got {entry!r}")
        return None
    kind = entry.get("type")
    known = ", ".join(LAYER_TYPES)
    if "type" not in entry:
        problems.append(f"{path}.type: missing; known: {known}")
        return None
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        near = difflib.get_close_matches(str(kind), list(LAYER_TYPES), n=1, cutoff=0.75)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        problems.append(f"{path}.type: unknown layer {kind!r}{hint}; known: {known}")
        return None
    cls = LAYER_TYPES[kind]
    params, hints = _layer_params(cls)
    options = {k: copy.deepcopy(v) for k, v in entry.items() if k != "type"}
    good: dict[str, Any] = {}
    for key, value in options.items():
        sub = f"{path}.{key}"
        before = len(problems)
        if key not in params:
            why = " (set by hwsnn: the network runs multi-step)" if key == "step_mode" else ""
            near = difflib.get_close_matches(str(key), list(params), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            problems.append(f"{sub}: unknown option of {kind}{why}{hint}; allowed: {', '.join(params)}")
        elif key == "surrogate_function":
            _check_surrogate(value, sub, problems)
        elif key == "sub_module":  # RecurrentContainer: a nested neuron
            if isinstance(value, dict) and value.get("type") in LAYER_TYPES and value["type"] not in _NEURON_TYPES:
                problems.append(f"{sub}.type: a recurrent population wraps a neuron ({', '.join(_NEURON_TYPES)}); "
                                f"got {value.get('type')!r}")
            else:
                value = options[key] = _check_layer(i, value, problems, sub)
        elif key in hints and not _matches(value, hints[key]):
            problems.append(f"{sub}: expected {_describe(hints[key])}; got {value!r}")
        if len(problems) == before:
            good[key] = value
    for name, p in params.items():
        if p.default is inspect.Parameter.empty and name not in options:
            problems.append(f"{path}.{name}: missing (required by {kind})")
    spec = LayerSpec(kind, options)
    if all(n in good for n, p in params.items() if p.default is inspect.Parameter.empty):
        # a trial build on the meta device with the options that passed: the constructor's own
        # range checks, no memory spent
        import torch

        try:
            with torch.device("meta"):
                _make_layer(LayerSpec(kind, good))
        except (TypeError, ValueError) as exc:
            problems.append(f"{path} ({kind}): {exc}")
        except Exception:  # a constructor that cannot run on meta: checked when built for real
            pass
    return spec


def _feature_flow(network: Sequence[LayerSpec]) -> tuple[Optional[int], Optional[int]]:
    """(in_features of a leading Linear, number of outputs) as far as the specs tell; None if unknown."""
    first = network[0].options.get("in_features") if network and network[0].type == "Linear" else None
    width: Optional[int] = None
    for spec in network:
        if spec.type == "Linear":
            width = spec.options.get("out_features")
        elif spec.type == "VotingLayer" and width is not None:
            width = width // spec.options.get("voting_size", 10)
        elif spec.type in ("Conv2d", "AvgPool2d", "MaxPool2d", "Flatten"):
            width = None
    return first, width


def _check_chain(network: Sequence[LayerSpec], problems: list[str]) -> None:
    """Consecutive Linear widths and VotingLayer divisibility (layers between keep the width)."""
    width, origin = None, None
    for i, spec in enumerate(network):
        o = spec.options
        if spec.type == "Linear":
            if width is not None and _is_int(o.get("in_features")) and o["in_features"] != width:
                problems.append(f"network[{i}].in_features: {o['in_features']} does not match the {width} features out of {origin}")
            width, origin = (o.get("out_features"), f"network[{i}]") if _is_int(o.get("out_features")) else (None, None)
        elif spec.type == "VotingLayer" and width is not None:
            v = o.get("voting_size", 10)
            if _is_int(v) and v >= 1:
                if width % v:
                    problems.append(f"network[{i}].voting_size: {v} does not divide the {width} features out of {origin}")
                width, origin = width // v, f"network[{i}]"
        elif spec.type in ("Conv2d", "AvgPool2d", "MaxPool2d", "Flatten"):
            width = None


# --------------------------------------------------------------------------- data


def _as_tensors(x_train, y_train, x_test, y_test):
    import torch

    return tuple(torch.as_tensor(a, dtype=torch.float32 if i % 2 == 0 else torch.int64) for i, a in enumerate((x_train, y_train, x_test, y_test)))


def _load_npz(path: Path, classes: Optional[int]):
    import numpy as np

    problems: list[str] = []
    try:
        with np.load(path, allow_pickle=False) as f:
            names = list(f.files)
            arrays = {}
            for n in names:
                try:
                    arrays[n] = f[n]
                except ValueError as exc:  # object arrays need pickle: refused
                    problems.append(f"{n}: cannot be read without pickle ({exc})")
    except FileNotFoundError:
        raise ConfigError(path, ["file not found (data.path)"]) from None
    except Exception as exc:
        raise ConfigError(path, [f"not a readable .npz file: {exc}"]) from None
    missing = [n for n in _NPZ_ARRAYS if n not in names]
    extra = [n for n in names if n not in _NPZ_ARRAYS]
    if missing:
        problems.append(f"missing array(s) {', '.join(missing)}; expected {', '.join(_NPZ_ARRAYS)}")
    if extra:
        problems.append(f"unexpected array(s) {', '.join(extra)}; expected {', '.join(_NPZ_ARRAYS)}")
    for split in ("train", "test"):
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is not None:
            if x.dtype.kind not in "biuf":
                problems.append(f"x_{split}: must be numeric (bool, int or float); got dtype {x.dtype}")
            elif x.ndim < 3:
                problems.append(f"x_{split}: must be [T, N, ...] (3 or more dims); got shape {list(x.shape)}")
            elif x.dtype.kind == "f" and not np.isfinite(x).all():
                problems.append(f"x_{split}: holds NaN or infinite values")
            elif 0 in x.shape:
                problems.append(f"x_{split}: empty; shape {list(x.shape)}")
        if y is not None:
            if y.dtype.kind not in "iu":
                problems.append(f"y_{split}: must hold integer class labels; got dtype {y.dtype}")
            elif y.ndim != 1:
                problems.append(f"y_{split}: must be [N]; got shape {list(y.shape)}")
            elif y.size and y.min() < 0:
                problems.append(f"y_{split}: labels must be >= 0; found {int(y.min())}")
            elif y.size and classes is not None and y.max() >= classes:
                problems.append(f"y_{split}: labels must lie in [0, {classes}) (data.classes); found {int(y.max())}")
        if x is not None and y is not None and x.ndim >= 3 and y.ndim == 1 and x.shape[1] != y.shape[0]:
            problems.append(f"x_{split}/y_{split}: {x.shape[1]} samples in x_{split} (axis 1 of [T, N, ...]) but {y.shape[0]} labels")
    xa, xb = arrays.get("x_train"), arrays.get("x_test")
    if xa is not None and xb is not None and xa.ndim >= 3 and xb.ndim >= 3:
        if xa.shape[0] != xb.shape[0]:
            problems.append(f"x_train/x_test: different numbers of time steps T ({xa.shape[0]} vs {xb.shape[0]})")
        if xa.shape[2:] != xb.shape[2:]:
            problems.append(f"x_train/x_test: different sample shapes ({list(xa.shape[2:])} vs {list(xb.shape[2:])})")
    if problems:
        raise ConfigError(path, problems)
    return _as_tensors(*(arrays[n] for n in _NPZ_ARRAYS))


def _check_against_network(network: Sequence[LayerSpec], arrays, kind: str, source) -> None:
    x_train, y_train, _, y_test = arrays
    first, outputs = _feature_flow(network)
    problems = []
    if first is not None and x_train.shape[-1] != first:
        problems.append(
            f"network[0].in_features: {first}, but the data (data.kind {kind}) has {x_train.shape[-1]} input "
            f"channels (x_train shape [T, N, ...] = {list(x_train.shape)})"
        )
    if outputs is not None:
        top = max(int(y_train.max()) if y_train.numel() else -1, int(y_test.max()) if y_test.numel() else -1)
        if top >= outputs:
            problems.append(f"network: {outputs} outputs (classes), but the data (data.kind {kind}) has label {top}")
    if problems:
        raise ConfigError(source, problems)


# --------------------------------------------------------------------------- parsing


def _resolve(value: str, base: Optional[Path]) -> str:
    p = Path(value).expanduser()
    if not p.is_absolute() and base is not None:
        p = base / p
    return str(p.resolve())


def _looks_like_path(text: str) -> bool:
    return text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text


def run_config_from_dict(d: Any, source: Union[str, os.PathLike, None] = None) -> RunConfig:
    """Validate a mapping (a parsed run file; ``None`` = all defaults) into a :class:`RunConfig`.

    Relative paths resolve against ``source``'s folder (the working directory without one).
    """
    src = Path(source) if source is not None else None
    base = src.resolve().parent if src is not None else Path.cwd()
    problems: list[str] = []
    d = {} if d is None else d
    if not isinstance(d, dict):
        raise ConfigError(src, [f"(top level): expected a mapping with keys seed, target, out, data, network, training; got {d!r}"])
    top = ("seed", "target", "out", "data", "network", "training")
    problems += [_unknown("", k, top) for k in d if k not in top]

    seed = d.get("seed", 0)
    if (msg := _int_ge(0)(seed)) is not None:
        problems.append(f"seed: {msg}")

    target = d.get("target", "generic_int8")
    if (msg := _nonempty_str(target)) is not None:
        problems.append(f"target: {msg}")
    else:
        if _looks_like_path(target):
            target = _resolve(target, base)
        import targets

        try:
            targets.load(target)
        except targets.TargetError as exc:
            where = f"{exc.source}: " if _looks_like_path(target) else ""
            problems += [f"target: {where}{p}" for p in exc.problems]

    out = d.get("out", "hwsnn-out")
    if (msg := _nonempty_str(out)) is not None:
        problems.append(f"out: {msg}")

    data = _parse_data(d.get("data"), base, problems)
    network = _parse_network(d.get("network"), problems)
    training = _parse_training(d.get("training"), problems)
    if problems:
        raise ConfigError(src, problems)
    return RunConfig(seed=seed, target=target, out=out, data=data, network=network, training=training, source=src)


def _parse_data(d: Any, base: Path, problems: list[str]) -> DataSpec:
    if d is None:
        return DataSpec()
    if not isinstance(d, dict):
        problems.append(f"data: expected a mapping {{kind: {' | '.join(DATA_KINDS)}, <option>: <value>, ...}}; got {d!r}")
        return DataSpec()
    kind = d.get("kind", "digits")
    if not isinstance(kind, str) or kind not in _DATA_OPTIONS:
        problems.append(f"data.kind: unknown {kind!r}; allowed {', '.join(DATA_KINDS)}")
        return DataSpec()
    allowed = _DATA_OPTIONS[kind]
    options = {}
    for key, value in d.items():
        if key == "kind":
            continue
        if key not in allowed:
            problems.append(_unknown("data.", key, ["kind", *allowed]) + f" (for kind {kind})")
            continue
        if (msg := allowed[key][0](value)) is not None:
            problems.append(f"data.{key}: {msg}")
            continue
        options[key] = value
    if kind == "npz":
        if "path" not in d:
            problems.append("data.path: missing (required for kind npz: a .npz file with x_train, y_train, x_test, y_test)")
        elif "path" in options:
            options["path"] = _resolve(options["path"], base)
            if not Path(options["path"]).is_file():
                problems.append(f"data.path: file not found: {options['path']}")
    elif kind in EVENT_KINDS:  # the folder is read (and checked) when the data is loaded
        if "path" not in d:
            problems.append(f"data.path: missing (required for kind {kind}: the folder holding the data set's files)")
        for key in ("path", "cache_dir"):
            if isinstance(options.get(key), str):
                options[key] = _resolve(options[key], base)
    return DataSpec(kind, options)


def _parse_network(d: Any, problems: list[str]) -> Optional[tuple[LayerSpec, ...]]:
    if d is None:
        return None
    if not isinstance(d, list) or not d:
        problems.append(f"network: expected a non-empty list of layers ({{type: <layer>, ...}}) or null for the default; got {d!r}")
        return None
    specs = [_check_layer(i, entry, problems) for i, entry in enumerate(d)]
    specs = [s for s in specs if s is not None]
    if len(specs) == len(d):
        _check_chain(specs, problems)
    return tuple(specs)


def _parse_training(d: Any, problems: list[str]) -> TrainingSpec:
    if d is None:
        return TrainingSpec()
    if not isinstance(d, dict):
        problems.append(f"training: expected a mapping with keys {', '.join(_TRAINING_CHECKS)}; got {d!r}")
        return TrainingSpec()
    values = {}
    for key, value in d.items():
        if key not in _TRAINING_CHECKS:
            problems.append(_unknown("training.", key, list(_TRAINING_CHECKS)))
        elif (msg := _TRAINING_CHECKS[key](value)) is not None:
            problems.append(f"training.{key}: {msg}")
        else:
            values[key] = float(value) if key in ("lr", "qat_lr") else value
    return TrainingSpec(**values)


def load_run_config(path: Union[str, os.PathLike]) -> RunConfig:
    """Read a run file with the safe loader (no Python tags, no duplicate keys) and validate it (:class:`ConfigError` lists every problem)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(path, ["file not found"])
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except DuplicateKeyError as exc:
        raise ConfigError(path, [str(exc)]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot be read: {exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML (only plain YAML is read; no Python tags): {exc}"]) from None
    return run_config_from_dict(data, source=path)
