r"""Checkpoints of the main job: the trained float network and the QAT network, beside the export.

``hwsnn run`` writes ``<out>/checkpoints/float.pt`` after the float stage and
``<out>/checkpoints/qat.pt`` after QAT (rank 0 only; outside the export bundle, whose files the
bundle digest covers). ``hwsnn run --resume`` loads them instead of training again, so a run can
be resumed after the float stage or re-exported (and re-simulated) without any training: with the
same settings the bundle comes out byte-identical.

A checkpoint is a ``torch.save`` of plain data, loaded with ``torch.load(weights_only=True)``::

    {"format": "hwsnn-checkpoint", "version": 1, "stage": "float" | "qat",
     "fingerprint": {...},      # what the weights depend on (compared on --resume)
     "info": {...},             # how they were made (device, world size, hwsnn version; not compared)
     "state_dict": {name: tensor (CPU)},
     "state_exponents": {layer: int}}   # qat only: the calibrated exponents the QAT net was built with

The **fingerprint** of the float stage holds the target, the seed, the data section of the run
file, the network (the run file's layers, and each top-level module's class and settings, and
every parameter's shape) and the float training settings (``epochs``, ``lr``, ``batch_size``);
the QAT stage's adds ``qat_epochs``, ``qat_lr``, ``calibration_batches`` and the SHA-256 of the
float weights it started from. ``--resume`` refuses a checkpoint whose fingerprint differs and
names every field that does (``training.epochs: checkpoint 1, this run 2``). The world size and
the device are recorded but not compared: weights trained on 2 GPUs resume on 1 CPU.

Files are written atomically (a temporary file in the same directory, then ``os.replace``).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
import torch.nn as nn

from hwsnn.parallel import Parallel, broadcast

__all__ = ["CHECKPOINT_FORMAT", "CheckpointError", "Checkpoints", "float_fingerprint", "qat_fingerprint",
           "state_digest", "save_checkpoint", "load_checkpoint", "differences"]

CHECKPOINT_FORMAT = "hwsnn-checkpoint"
CHECKPOINT_VERSION = 1
STAGES = ("float", "qat")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, not an hwsnn checkpoint, or made for another
    run (exit status 2)."""


# ------------------------------------------------------------------------------------ fingerprints
def _plain(v: Any) -> Any:
    """``v`` as JSON-like plain data (lists, not tuples) that ``weights_only`` loading accepts."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return repr(v)


def _module_line(m: nn.Module) -> str:
    return f"{type(m).__name__}({m.extra_repr()})"


def float_fingerprint(config: Any, net: nn.Module, target: str) -> dict:
    """What the float weights depend on (module docstring) for ``config`` (a
    :class:`hwsnn.config.RunConfig`), its built network ``net`` and the target's name."""
    d = config.to_dict()
    tr = d["training"]
    layers = list(net) if isinstance(net, nn.Sequential) else [net]
    return _plain({
        "target": target,
        "seed": d["seed"],
        "data": d["data"],
        "network": {
            "run file": d["network"],
            "modules": [_module_line(m) for m in layers],
            "parameters": {k: list(v.shape) for k, v in net.state_dict().items()},
        },
        "training": {k: tr[k] for k in ("epochs", "lr", "batch_size")},
    })


def qat_fingerprint(float_fp: dict, config: Any, float_weights: str) -> dict:
    """The float stage's fingerprint plus the QAT settings and the digest of the float weights."""
    tr = config.to_dict()["training"]
    fp = _plain(float_fp)
    fp["training"].update({k: tr[k] for k in ("qat_epochs", "qat_lr", "calibration_batches")})
    fp["float weights"] = float_weights
    return fp


def state_digest(module: nn.Module) -> str:
    """``sha256:<hex>`` of a module's ``state_dict`` (names, dtypes, shapes and bytes, in key order)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return "sha256:" + h.hexdigest()


def _flatten(v: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(v, dict):
        if not v and prefix:
            out[prefix] = {}
        for k, x in v.items():
            _flatten(x, f"{prefix}.{k}" if prefix else str(k), out)
    elif isinstance(v, list) and any(isinstance(x, (dict, list, str)) for x in v):  # numbers: one field
        out[f"{prefix}.length"] = len(v)
        for i, x in enumerate(v):
            _flatten(x, f"{prefix}[{i}]", out)
    else:
        out[prefix] = v


_ABSENT = object()


def differences(saved: dict, current: dict) -> list[str]:
    """``field: checkpoint A, this run B`` for every field where two fingerprints differ."""
    a: dict[str, Any] = {}
    b: dict[str, Any] = {}
    _flatten(saved, "", a)
    _flatten(current, "", b)
    out = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, _ABSENT), b.get(key, _ABSENT)
        if x != y:
            show = lambda v: "(absent)" if v is _ABSENT else repr(v)  # noqa: E731
            out.append(f"{key}: checkpoint {show(x)}, this run {show(y)}")
    return out


# ------------------------------------------------------------------------------------ files
def save_checkpoint(path: os.PathLike, stage: str, module: nn.Module, fingerprint: dict, *,
                    info: Optional[dict] = None, state_exponents: Optional[Mapping[str, int]] = None) -> Path:
    """Write ``module``'s ``state_dict`` (copied to CPU) with its fingerprint to ``path`` atomically."""
    if stage not in STAGES:
        raise ValueError(f"save_checkpoint: stage must be one of {STAGES}; got {stage!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "stage": stage,
        "fingerprint": _plain(fingerprint),
        "info": _plain(info or {}),
        "state_dict": {k: v.detach().to("cpu").clone() for k, v in module.state_dict().items()},
    }
    if state_exponents is not None:
        payload["state_exponents"] = {str(k): int(v) for k, v in state_exponents.items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path: os.PathLike, stage: Optional[str] = None, fingerprint: Optional[dict] = None) -> dict:
    """Read a checkpoint (``torch.load(weights_only=True)``, to CPU) and check its form, its
    ``stage`` and, when given, that its fingerprint equals ``fingerprint``; raises
    :class:`CheckpointError` naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path}: file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file: the loader's words, named
        raise CheckpointError(f"checkpoint {path}: cannot be read as an hwsnn checkpoint "
                              f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"checkpoint {path}: not an hwsnn checkpoint (no format {CHECKPOINT_FORMAT!r})")
    if data.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"checkpoint {path}: version {data.get('version')!r}; this hwsnn reads version "
                              f"{CHECKPOINT_VERSION}")
    for key, kind in (("stage", str), ("fingerprint", dict), ("info", dict), ("state_dict", dict)):
        if not isinstance(data.get(key), kind):
            raise CheckpointError(f"checkpoint {path}: field {key!r} is missing or not a {kind.__name__}")
    if stage is not None and data["stage"] != stage:
        raise CheckpointError(f"checkpoint {path}: holds the {data['stage']!r} stage, expected {stage!r}")
    bad = [k for k, v in data["state_dict"].items() if not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"checkpoint {path}: state_dict entries that are not tensors: {bad[:5]}")
    if data["stage"] == "qat":
        exps = data.get("state_exponents")
        if not isinstance(exps, dict) or not all(isinstance(v, int) for v in exps.values()):
            raise CheckpointError(f"checkpoint {path}: the qat stage needs 'state_exponents' ({{layer: int}})")
    if fingerprint is not None:
        diff = differences(data["fingerprint"], _plain(fingerprint))
        if diff:
            raise CheckpointError(
                f"checkpoint {path} was made for another run; what differs:\n    " + "\n    ".join(diff)
                + "\n  run without --resume to train again (the checkpoint is replaced), or resume with the settings "
                "it was made with")
    return data


def load_state(module: nn.Module, data: dict, path: os.PathLike) -> None:
    """Load a checkpoint's ``state_dict`` into ``module`` (strict); a mismatch names the keys."""
    try:
        module.load_state_dict(data["state_dict"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path}: its weights do not fit the network: {exc}") from None


# ------------------------------------------------------------------------------------ the job's store
class Checkpoints:
    """The checkpoints of one run in ``directory`` (``None``: none written or read).

    Rank 0 alone reads and writes; :meth:`restore` hands its outcome (the checkpoint, nothing, or
    the error) to every rank, so all ranks skip the same stages or stop with the same error.
    """

    def __init__(self, directory: Optional[os.PathLike], *, resume: bool = False, par: Parallel = Parallel()) -> None:
        self.directory = None if directory is None else Path(directory).expanduser().absolute()
        self.resume = bool(resume)
        self.par = par
        if self.resume and self.directory is None:
            raise CheckpointError("--resume needs a checkpoint directory (hwsnn export: --checkpoints DIR)")
        if self.directory is not None:
            for p in (self.directory, *self.directory.parents):
                if p.exists() and not p.is_dir():
                    raise CheckpointError(f"checkpoint directory {self.directory}: {p} is a file, not a directory")

    def path(self, stage: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{stage}.pt"

    def restore(self, stage: str, fingerprint: dict) -> Optional[dict]:
        """With ``resume``: the stage's checkpoint when it exists and matches ``fingerprint``;
        ``None`` when it does not exist (or without ``resume``); :class:`CheckpointError` when it
        cannot be read or was made for another run. The same answer on every rank."""
        if not self.resume or self.directory is None:
            return None
        outcome: Any = None
        if self.par.is_main:
            try:
                p = self.path(stage)
                outcome = ("found", load_checkpoint(p, stage, fingerprint)) if p.exists() else ("missing", None)
            except CheckpointError as exc:
                outcome = ("error", str(exc))
        outcome = broadcast(outcome, self.par)
        if outcome[0] == "error":
            raise CheckpointError(outcome[1])
        return outcome[1]

    def save(self, stage: str, module: nn.Module, fingerprint: dict, *, info: Optional[dict] = None,
             state_exponents: Optional[Mapping[str, int]] = None) -> Optional[Path]:
        """Write the stage's checkpoint (rank 0; the others return ``None`` at once)."""
        if self.directory is None or not self.par.is_main:
            return None
        return save_checkpoint(self.path(stage), stage, module, fingerprint, info=info, state_exponents=state_exponents)

    def discard(self, stage: str) -> None:
        """Remove a stage's checkpoint (rank 0): the QAT one after new float weights replace those it came from."""
        if self.directory is not None and self.par.is_main:
            try:
                self.path(stage).unlink()
            except FileNotFoundError:
                pass
