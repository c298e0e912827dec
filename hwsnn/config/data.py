"""The data of a run: ``npz`` files read safely (``allow_pickle=False``) and checked, arrays as
tensors (x float32 ``[T, N, ...]``, y int64 ``[N]``), and the data checked against an explicit
network (input channels, label range)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from .errors import ConfigError
from .layers import feature_flow
from .options import NPZ_ARRAYS
from .specs import LayerSpec

__all__ = ["as_tensors", "load_npz", "check_against_network"]


def as_tensors(x_train, y_train, x_test, y_test):
    """The four arrays as tensors: x float32, y int64."""
    import torch

    return tuple(torch.as_tensor(a, dtype=torch.float32 if i % 2 == 0 else torch.int64) for i, a in enumerate((x_train, y_train, x_test, y_test)))


def load_npz(path: Path, classes: Optional[int]):
    """``(x_train, y_train, x_test, y_test)`` from an ``npz`` file, every problem in one :class:`ConfigError`."""
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
    missing = [n for n in NPZ_ARRAYS if n not in names]
    extra = [n for n in names if n not in NPZ_ARRAYS]
    if missing:
        problems.append(f"missing array(s) {', '.join(missing)}; expected {', '.join(NPZ_ARRAYS)}")
    if extra:
        problems.append(f"unexpected array(s) {', '.join(extra)}; expected {', '.join(NPZ_ARRAYS)}")
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
    return as_tensors(*(arrays[n] for n in NPZ_ARRAYS))


def check_against_network(network: Sequence[LayerSpec], arrays, kind: str, source) -> None:
    """The input channels against a leading Linear's ``in_features``, the labels against the outputs."""
    x_train, y_train, _, y_test = arrays
    first, outputs = feature_flow(network)
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
