r"""The ``network`` entries of a run file: checked against the layer's constructor, then built.

A layer's options are its constructor's arguments (for the step-mode wrappers of torch layers,
the torch base's signature), each value checked against the argument's annotation; lists become
tuples; ``surrogate_function`` names one of :data:`~.whitelists.SURROGATES`; a
``RecurrentContainer``'s ``sub_module`` is a nested neuron entry, checked the same way. A trial
build on torch's ``meta`` device runs the constructor's own range checks. Along the chain, a
``Linear``'s ``in_features`` must equal the previous ``out_features``, a ``VotingLayer``'s
``voting_size`` :math:`v` must divide the width :math:`w` (the width becomes :math:`w / v`) and an
``OutputCode``'s ``readouts`` must equal it (the width becomes ``classes``).
"""

from __future__ import annotations

import copy
import difflib
import inspect
import types
import typing
from typing import Any, Optional, Sequence, Union

from .options import is_int, is_num, unknown_key
from .specs import LayerSpec
from .whitelists import LAYER_TYPES, NOT_SETTABLE, SURROGATES

__all__ = ["NEURON_TYPES", "make_layer", "check_layer", "feature_flow", "check_chain"]


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
        if n not in NOT_SETTABLE and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
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
        return is_int(value)
    if tp is float:
        return is_num(value)
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
            problems.append(unknown_key(f"{path}.", k, ["type", *params]))
        elif k == "alpha" and not (is_num(v) and v > 0):
            problems.append(f"{path}.alpha: must be a number > 0; got {v!r}")
        elif k == "spiking" and not isinstance(v, bool):
            problems.append(f"{path}.spiking: expected true/false; got {v!r}")


def _yaml_to_arg(name: str, value: Any) -> Any:
    if isinstance(value, LayerSpec):
        return make_layer(value)
    if name == "surrogate_function" and value is not None:
        if isinstance(value, str):
            return SURROGATES[value]()
        return SURROGATES[value["type"]](**{k: v for k, v in value.items() if k != "type"})
    if isinstance(value, list):
        return tuple(_yaml_to_arg("", v) for v in value)
    return value


def make_layer(spec: LayerSpec):
    """The layer ``spec`` describes (nested specs and surrogate names built too)."""
    cls = LAYER_TYPES[spec.type]
    return cls(**{k: _yaml_to_arg(k, v) for k, v in spec.options.items()})


#: layers a RecurrentContainer's ``sub_module`` may be (a nested mapping with its own ``type``)
NEURON_TYPES = ("IFNode", "LIFNode", "CubaLIFNode")


def check_layer(i: int, entry: Any, problems: list[str], path: Optional[str] = None) -> Optional[LayerSpec]:
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
            if isinstance(value, dict) and value.get("type") in LAYER_TYPES and value["type"] not in NEURON_TYPES:
                problems.append(f"{sub}.type: a recurrent population wraps a neuron ({', '.join(NEURON_TYPES)}); "
                                f"got {value.get('type')!r}")
            else:
                value = options[key] = check_layer(i, value, problems, sub)
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
                make_layer(LayerSpec(kind, good))
        except (TypeError, ValueError) as exc:
            problems.append(f"{path} ({kind}): {exc}")
        except Exception:  # a constructor that cannot run on meta: checked when built for real
            pass
    return spec


def feature_flow(network: Sequence[LayerSpec]) -> tuple[Optional[int], Optional[int]]:
    """(in_features of a leading Linear, number of outputs) as far as the specs tell; None if unknown."""
    first = network[0].options.get("in_features") if network and network[0].type == "Linear" else None
    width: Optional[int] = None
    for spec in network:
        if spec.type == "Linear":
            width = spec.options.get("out_features")
        elif spec.type == "VotingLayer" and width is not None:
            width = width // spec.options.get("voting_size", 10)
        elif spec.type == "OutputCode":
            width = spec.options.get("classes")
        elif spec.type in ("Conv2d", "AvgPool2d", "MaxPool2d", "Flatten"):
            width = None
    return first, width


def check_chain(network: Sequence[LayerSpec], problems: list[str]) -> None:
    """Consecutive Linear widths and VotingLayer divisibility (layers between keep the width)."""
    width, origin = None, None
    for i, spec in enumerate(network):
        o = spec.options
        if spec.type == "Linear":
            if width is not None and is_int(o.get("in_features")) and o["in_features"] != width:
                problems.append(f"network[{i}].in_features: {o['in_features']} does not match the {width} features out of {origin}")
            width, origin = (o.get("out_features"), f"network[{i}]") if is_int(o.get("out_features")) else (None, None)
        elif spec.type == "VotingLayer" and width is not None:
            v = o.get("voting_size", 10)
            if is_int(v) and v >= 1:
                if width % v:
                    problems.append(f"network[{i}].voting_size: {v} does not divide the {width} features out of {origin}")
                width, origin = width // v, f"network[{i}]"
        elif spec.type == "OutputCode":
            m = o.get("readouts")
            if width is not None and is_int(m) and m != width:
                problems.append(f"network[{i}].readouts: {m} does not match the {width} features out of {origin}")
            width, origin = (o.get("classes"), f"network[{i}]") if is_int(o.get("classes")) else (None, None)
        elif spec.type in ("Conv2d", "AvgPool2d", "MaxPool2d", "Flatten"):
            width = None
