"""A disk cache of binned event tensors.

One ``.npz`` per (data kind, split, key) holding ``counts`` ``[N, T, C]`` (int16) and ``index``
``[N]`` (the samples' positions in the split). The key is the SHA-256 of everything the counts
depend on: the cache format, the data kind and split, the source's identity (file path, size and
modification time; for N-MNIST a hash of every file's name, size and modification time), every
binning option, tonic's version and the chosen samples, so a changed option or file is a miss and a
stale cache is never read. Writes are atomic (a temporary file in the same folder, then
``os.replace``); reads use ``numpy.load(allow_pickle=False)``; an unreadable or inconsistent entry
counts as a miss and is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Optional

import numpy as np

__all__ = ["CACHE_FORMAT", "cache_key", "default_cache_dir", "read_cache", "write_cache"]

CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/hwsnn/events`` (``~/.cache/hwsnn/events`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "hwsnn" / "events"


def cache_key(parts: dict[str, Any]) -> str:
    """SHA-256 (hex) of ``parts`` as canonical JSON (sorted keys)."""
    text = json.dumps({"cache_format": CACHE_FORMAT, **parts}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def cache_file(cache_dir: Path, kind: str, split: str, key: str) -> Path:
    return Path(cache_dir) / f"{kind}-{split}-{key[:24]}.npz"


def read_cache(path: Path, index: np.ndarray, shape: tuple[int, int, int]) -> Optional[np.ndarray]:
    """The cached counts if ``path`` holds exactly these samples in this shape, else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            counts, idx = f["counts"], f["index"]
    except Exception:  # a damaged entry: a miss (rewritten after binning)
        return None
    if counts.dtype != np.int16 or counts.shape != tuple(shape) or not np.array_equal(idx, index):
        return None
    return counts


def write_cache(path: Path, counts: np.ndarray, index: np.ndarray) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, counts=np.ascontiguousarray(counts, dtype=np.int16), index=np.asarray(index, dtype=np.int64))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
