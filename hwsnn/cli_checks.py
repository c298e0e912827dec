"""Checks of what a user hands the command line, before any work: arrays, labels, output paths,
and whether a report beside an export still describes it.

Every refusal is an :class:`InputError` (exit status 2) whose message names the file or flag and
what is wrong; nothing here truncates, rounds or guesses a value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import numpy as np

__all__ = ["InputError", "load_array", "integer_inputs", "integer_labels", "stale_report", "check_writable"]


class InputError(ValueError):
    """Bad input from the user (a file, a flag, an array): exit status 2."""


def load_array(path: Union[str, os.PathLike], flag: str) -> np.ndarray:
    """The array of a ``.npy`` file (``allow_pickle=False``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{flag} {p}: file not found")
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{flag} {p}: cannot be read without pickle ({exc}); save a plain numeric array") from None
    except Exception as exc:  # a damaged or foreign file: the numpy error, named
        raise InputError(f"{flag} {p}: not a readable .npy file ({type(exc).__name__}: {exc})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):  # pragma: no cover - np.load of an .npz
        arr.close()
        raise InputError(f"{flag} {p}: an .npz archive; give one array as a .npy file")
    return arr


def _exact_integers(a: np.ndarray, what: str) -> np.ndarray:
    """``a`` as int64 when every value is an integer; floats only when they hold exact integers."""
    if a.dtype.kind in "iub":
        return a.astype(np.int64)
    if a.dtype.kind != "f":
        raise InputError(f"{what}: must hold integers; got dtype {a.dtype}")
    bad = ~np.isfinite(a)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{what}: holds {int(bad.sum())} NaN or infinite value(s), the first at index {idx}")
    off = a != np.round(a)
    if off.any():
        idx = tuple(int(i) for i in np.argwhere(off)[0])
        raise InputError(f"{what}: holds {int(off.sum())} value(s) that are not integers, the first {float(a[idx])!r} at "
                         f"index {idx}; quantize the inputs first (q = round(x * 2**-e)); they are never truncated")
    if a.size and np.abs(a).max() >= 2.0**53:
        raise InputError(f"{what}: values of magnitude 2^53 or more cannot be held exactly by a float array")
    return a.astype(np.int64)


def integer_inputs(x: np.ndarray, shape: tuple, kind: str, what: str = "--inputs") -> np.ndarray:
    """Inputs ``[T, N, *shape]`` as exact integers of the export's input ``kind``."""
    x = _exact_integers(np.asarray(x), what)
    if x.ndim != 2 + len(shape) or tuple(x.shape[2:]) != tuple(shape) or 0 in x.shape[:2]:
        raise InputError(f"{what}: inputs must have shape [T, N, {', '.join(map(str, shape))}] with T, N >= 1; "
                         f"got {list(x.shape)}")
    if kind == "spikes" and x.size and (x.min() < 0 or x.max() > 1):
        raise InputError(f"{what}: the export takes 0/1 spikes; the inputs range over [{x.min()}, {x.max()}]")
    if kind == "counts" and x.size and x.min() < 0:
        raise InputError(f"{what}: the export takes event counts >= 0; found {x.min()}")
    return x


def integer_labels(y: np.ndarray, samples: int, classes: int, what: str = "--labels") -> np.ndarray:
    """Class labels ``[samples]`` in ``0 .. classes - 1``."""
    y = _exact_integers(np.asarray(y), what)
    if y.shape != (samples,):
        raise InputError(f"{what}: one label per sample is needed, shape [{samples}]; got {list(y.shape)}")
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise InputError(f"{what}: labels must lie in [0, {classes - 1}] (the network has {classes} outputs); "
                         f"found [{y.min()}, {y.max()}]")
    return y


def stale_report(report_dir: Path, digest: str) -> Optional[str]:
    """A warning when ``report_dir`` holds a report of another bundle than ``digest`` (else ``None``)."""
    from sim.report import read_report

    rep = read_report(report_dir)
    if rep is None:
        return None
    named = rep.get("bundle_digest")
    if named == digest:
        return None
    what = f"names bundle {named}" if named else "names no bundle digest (written by hwsnn 0.5 or older)"
    return (f"the report in {report_dir} is stale: it {what}, but this export is {digest}; its "
            f"'{str(rep.get('headline', ''))[:40]}...' does not describe this export (run hwsnn report)")


def check_writable(directory: Path, flag: str) -> None:
    """``directory`` (or the nearest existing parent) is a writable directory, not a file."""
    p = Path(directory).expanduser().absolute()
    for anc in [p, *p.parents]:
        if anc.exists():
            if not anc.is_dir():
                raise InputError(f"{flag} {p}: {anc} is a file, not a directory")
            if not os.access(anc, os.W_OK | os.X_OK):
                raise InputError(f"{flag} {p}: {anc} is not writable")
            return
