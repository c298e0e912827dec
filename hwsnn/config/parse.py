"""Reading and validating a run file: :func:`load_run_config` (YAML, safe loader, no duplicate
keys) and :func:`run_config_from_dict`; every problem is collected into one :class:`ConfigError`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import yaml

from targets.yamlfile import DuplicateKeyError, load_yaml

from ..events import EVENT_KINDS
from .errors import ConfigError
from .layers import check_chain, check_layer
from .options import DATA_KINDS, DATA_OPTIONS, TRAINING_CHECKS, int_ge, nonempty_str, unknown_key
from .run import RunConfig
from .specs import DataSpec, LayerSpec, TrainingSpec

__all__ = ["run_config_from_dict", "load_run_config"]


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
    problems += [unknown_key("", k, top) for k in d if k not in top]

    seed = d.get("seed", 0)
    if (msg := int_ge(0)(seed)) is not None:
        problems.append(f"seed: {msg}")

    target = d.get("target", "generic_int8")
    if (msg := nonempty_str(target)) is not None:
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
    if (msg := nonempty_str(out)) is not None:
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
    if not isinstance(kind, str) or kind not in DATA_OPTIONS:
        problems.append(f"data.kind: unknown {kind!r}; allowed {', '.join(DATA_KINDS)}")
        return DataSpec()
    allowed = DATA_OPTIONS[kind]
    options = {}
    for key, value in d.items():
        if key == "kind":
            continue
        if key not in allowed:
            problems.append(unknown_key("data.", key, ["kind", *allowed]) + f" (for kind {kind})")
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
    specs = [check_layer(i, entry, problems) for i, entry in enumerate(d)]
    specs = [s for s in specs if s is not None]
    if len(specs) == len(d):
        check_chain(specs, problems)
    return tuple(specs)


def _parse_training(d: Any, problems: list[str]) -> TrainingSpec:
    if d is None:
        return TrainingSpec()
    if not isinstance(d, dict):
        problems.append(f"training: expected a mapping with keys {', '.join(TRAINING_CHECKS)}; got {d!r}")
        return TrainingSpec()
    values = {}
    for key, value in d.items():
        if key not in TRAINING_CHECKS:
            problems.append(unknown_key("training.", key, list(TRAINING_CHECKS)))
        elif value is None and key in ("qat_epochs", "qat_lr"):  # the target's default
            values[key] = None
        elif (msg := TRAINING_CHECKS[key](value)) is not None:
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
