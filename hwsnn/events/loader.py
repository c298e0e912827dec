"""Load an event data set's train and test splits as binned count tensors ``[T, N, C]``.

For each split: open the tonic data set (:mod:`.shd`, :mod:`.nmnist`; never downloaded), choose
the samples (``labels``: keep these classes, relabelled 0.. in the listed order;
``train_samples``/``test_samples``: a random subset drawn with the run's seed, kept in file
order), then read the counts from the disk cache (:mod:`.cache`) or bin every sample
(:class:`.binning.EventBinner`) in ``torch.utils.data.DataLoader`` workers with a progress bar and
cache them. After the cache: ``max_count`` clips every count (1: binary spikes), and N-MNIST's
``layout: image`` reshapes ``C`` to ``[P, H, W]``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .binning import EventBinner
from .cache import cache_file, cache_key, default_cache_dir, read_cache, write_cache
from .options import EVENT_OPTIONS, EventDataError, defaults, dt_us

__all__ = ["load_event_data", "binner_for", "select_samples"]

#: samples per DataLoader batch while binning
LOADER_BATCH = 32


def _source(kind: str):
    try:
        import h5py  # noqa: F401  (tonic's SHD reader needs it)
        import tonic  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{kind} needs tonic and h5py ({exc}): pip install \"hwsnn[events]\" "
                          "(or pip install tonic h5py)") from None
    if kind == "shd":
        from .shd import SHDSource

        return SHDSource()
    from .nmnist import NMNISTSource

    return NMNISTSource()


def binner_for(kind: str, options: dict) -> EventBinner:
    """The :class:`EventBinner` of a kind's (complete) options."""
    if kind == "shd":
        from .options import SHD_CHANNELS

        ch = options["channels"]
        return EventBinner(SHD_CHANNELS, 1, 1, options["T"], dt_us(options["dt_ms"]),
                           channels=None if ch == SHD_CHANNELS else ch)
    from .options import NMNIST_SIDE

    return EventBinner(NMNIST_SIDE, NMNIST_SIDE, 2, options["T"], dt_us(options["dt_ms"]), pool=options["pool"])


def select_samples(labels: np.ndarray, keep: Optional[list[int]], limit: Optional[int], seed: int, split: str) -> np.ndarray:
    """Positions of the chosen samples, ascending: those whose label is in ``keep`` (None: all),
    then ``limit`` of them drawn without replacement by ``numpy.random.default_rng([seed, s])``
    (``s`` = 0 for train, 1 for test)."""
    idx = np.arange(len(labels)) if keep is None else np.flatnonzero(np.isin(labels, keep))
    if limit is not None and limit < len(idx):
        rng = np.random.default_rng([seed, 0 if split == "train" else 1])
        idx = np.sort(rng.choice(idx, size=limit, replace=False))
    return idx.astype(np.int64)


class _Binned:
    """``torch`` map-style data set: position ``i`` -> (counts [T, C] or None, error text)."""

    def __init__(self, ds: Any, index: np.ndarray, binner: EventBinner, source: Any) -> None:
        self.ds, self.index, self.binner, self.source = ds, index, binner, source

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        j = int(self.index[i])
        try:
            events, _ = self.ds[j]
            return self.binner(events), ""
        except Exception as exc:  # reported by the main process with the file and sample
            return None, f"{self.source.where(self.ds, j)}: {type(exc).__name__}: {exc}"


def _as_list(batch: list) -> list:
    return batch


def _bin_split(ds: Any, index: np.ndarray, binner: EventBinner, source: Any, workers: int, progress: bool,
               desc: str) -> np.ndarray:
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    out = np.zeros((len(index), binner.T, binner.out_channels), dtype=np.int16)
    loader = DataLoader(_Binned(ds, index, binner, source), batch_size=LOADER_BATCH, shuffle=False,
                        num_workers=workers, collate_fn=_as_list)
    pos = 0
    with tqdm(total=len(index), desc=desc, unit="sample", disable=not progress) as bar:
        for batch in loader:
            for counts, error in batch:
                if counts is None:
                    raise EventDataError("path", f"cannot bin {error}")
                out[pos] = counts
                pos += 1
            bar.update(len(batch))
    return out


def _split(kind: str, source: Any, opts: dict, split: str, seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    ds = source.open(opts["path"], split, opts)
    labels = source.labels(ds)
    keep = opts["labels"]
    index = select_samples(labels, keep, opts[f"{split}_samples"], seed, split)
    if not len(index):
        raise EventDataError("labels", f"no {split} sample has one of the labels {keep}")
    binner = binner_for(kind, opts)
    shape = (len(index), binner.T, binner.out_channels)
    counts: Optional[np.ndarray] = None
    path: Optional[Path] = None
    if opts["cache"]:
        import tonic

        binning = {"binner": {k: getattr(binner, k) for k in ("width", "height", "polarities", "T", "dt_us", "channels", "pool")}}
        if kind == "nmnist":
            binning["first_saccade_only"] = bool(opts["first_saccade_only"])
        key = cache_key({"kind": kind, "split": split, "source": source.identity(ds), **binning,
                         "tonic": getattr(tonic, "__version__", "unknown"), "samples": len(index),
                         "index_sha256": hashlib.sha256(index.tobytes()).hexdigest()})
        cache_dir = Path(opts["cache_dir"]) if opts["cache_dir"] else default_cache_dir()
        path = cache_file(cache_dir, kind, split, key)
        counts = read_cache(path, index, shape)
    if counts is None:
        counts = _bin_split(ds, index, binner, source, opts["workers"], progress, f"binning {kind} {split}")
        if path is not None:
            try:
                write_cache(path, counts, index)
            except OSError as exc:
                raise EventDataError("cache_dir", f"cannot write the cache file {path}: {exc}") from None
    y = labels[index]
    if keep is not None:  # label keep[i] -> i
        lut = np.full(source.classes, -1, dtype=np.int64)
        lut[np.asarray(keep)] = np.arange(len(keep))
        y = lut[y]
    return counts, y.astype(np.int64)


def load_event_data(kind: str, options: dict, *, seed: int = 0, progress: bool = True):
    """``(x_train, y_train, x_test, y_test)`` as torch tensors: x float32 ``[T, N, C]`` event counts
    (``[T, N, P, H, W]`` for N-MNIST's ``layout: image``), y int64 ``[N]``.

    ``options`` are the run file's ``data`` options of ``kind`` (validated; paths absolute);
    unset options take their defaults (:data:`.options.EVENT_OPTIONS`). Raises
    :class:`EventDataError` (``key`` = the option at fault) and ``ImportError`` without tonic/h5py.
    """
    import torch

    if kind not in EVENT_OPTIONS:
        raise EventDataError("kind", f"unknown event data kind {kind!r}; known: {', '.join(EVENT_OPTIONS)}")
    if "path" not in options:
        raise EventDataError("path", f"missing (required for kind {kind})")
    opts = {**defaults(kind), **options}
    source = _source(kind)
    result = []
    for split in ("train", "test"):
        counts, y = _split(kind, source, opts, split, seed, progress)
        x = counts.astype(np.float32)
        if opts["max_count"] is not None:
            np.minimum(x, float(opts["max_count"]), out=x)
        x = np.ascontiguousarray(x.transpose(1, 0, 2))  # [T, N, C]
        if kind == "nmnist" and opts["layout"] == "image":
            side = source.sensor[0] // opts["pool"]
            x = x.reshape(x.shape[0], x.shape[1], 2, side, side)
        result += [torch.from_numpy(x), torch.from_numpy(y)]
    return tuple(result)
