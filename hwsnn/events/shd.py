"""The Spiking Heidelberg Digits (SHD) read from a local folder through ``tonic.datasets.SHD``.

On-disk layout (the unzipped files of https://zenkelab.org/datasets/, as tonic reads them):
``shd_train.h5`` and ``shd_test.h5``, each an HDF5 file with

- ``spikes/times``: one variable-length float array per sample, spike times in seconds;
- ``spikes/units``: one variable-length integer array per sample, the channel (0..699) of each spike;
- ``labels``: the class of each sample (0..19);
- ``extra/keys`` (the class names) and ``extra/speaker`` (read by tonic's constructor).

``data.path`` names the folder holding the two files, or a tonic ``save_to`` folder (the files in
its ``SHD/`` subfolder). A sample becomes tonic's events ``(t, x, p)`` with
``t = int(float64(seconds) * 1e6)`` (microseconds, truncated), ``x`` = the unit, ``p = 1``. Nothing is
ever downloaded: a missing file is an error naming the paths looked at.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import tonic

from .options import SHD_CHANNELS, SHD_CLASSES, EventDataError

__all__ = ["SHDSource", "LocalSHD", "SHD_FILES"]

#: the file of each split (tonic: ``SHD.train_zip`` / ``test_zip`` without ``.zip``)
SHD_FILES = {"train": "shd_train.h5", "test": "shd_test.h5"}
_REQUIRED = ("spikes/times", "spikes/units", "labels", "extra/keys", "extra/speaker")


class LocalSHD(tonic.datasets.SHD):
    """tonic's SHD reading ``<folder>/shd_<split>.h5`` in place; it never downloads.

    tonic keeps its files under ``<save_to>/SHD`` and downloads when the archive is missing;
    here the location is pinned to ``folder`` (in ``_check_exists``, the hook tonic's constructor
    calls right after naming the file) and :meth:`download` refuses.
    """

    def __init__(self, folder: str, train: bool) -> None:
        self._folder = str(folder)
        super().__init__(self._folder, train=train)

    def _check_exists(self) -> bool:
        self.location_on_system = self._folder
        return os.path.isfile(os.path.join(self._folder, self.data_filename))

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        """tonic's sample ``(events (t, x, p), label)``, with the times widened to float64 before
        the scaling to microseconds: tonic before 1.7 scales them in their stored precision
        (float16 in the published files), which overflows under NumPy 2. The file is closed after
        each read."""
        from tonic.io import make_structured_array

        with h5py.File(os.path.join(self.location_on_system, self.data_filename), "r") as f:
            seconds = np.asarray(f["spikes/times"][index], dtype=np.float64)
            units = np.asarray(f["spikes/units"][index])
            target = int(f["labels"][index])
        if seconds.shape != units.shape:
            raise ValueError(f"spikes/times holds {seconds.size} times but spikes/units {units.size} units")
        events = make_structured_array(seconds * 1e6, units, 1, dtype=self.dtype)
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return events, target

    def download(self) -> None:
        raise EventDataError("path", f"{os.path.join(self._folder, self.data_filename)} not found "
                                     "(nothing is downloaded: place the unzipped SHD file there)")


class SHDSource:
    """What the loader needs to know about SHD (picklable: used in DataLoader workers)."""

    kind = "shd"
    sensor = (SHD_CHANNELS, 1, 1)
    classes = SHD_CLASSES

    def folder(self, path: str, split: str) -> Path:
        """The folder holding ``SHD_FILES[split]``: ``path`` or ``path/SHD``."""
        name = SHD_FILES[split]
        if Path(path).is_file():
            raise EventDataError("path", f"{path} is a file; data.path names the folder holding shd_train.h5 and shd_test.h5")
        looked = [Path(path) / name, Path(path) / "SHD" / name]
        for p in looked:
            if p.is_file():
                return p.parent
        raise EventDataError("path", f"SHD {split} file {name} not found: looked for {looked[0]} and {looked[1]} "
                                     "(the unzipped shd_train.h5 / shd_test.h5 of the Spiking Heidelberg Digits; "
                                     "nothing is downloaded)")

    def open(self, path: str, split: str, options: dict) -> LocalSHD:
        folder = self.folder(path, split)
        file = folder / SHD_FILES[split]
        try:
            with h5py.File(file, "r") as f:
                missing = [k for k in _REQUIRED if k not in f]
                if missing:
                    raise EventDataError("path", f"{file}: not an SHD file: missing dataset(s) {', '.join(missing)} "
                                                 f"(expected {', '.join(_REQUIRED)})")
                n = {k: len(f[k]) for k in ("spikes/times", "spikes/units", "labels")}
        except OSError as exc:
            raise EventDataError("path", f"{file}: not a readable HDF5 file ({exc})") from None
        if len(set(n.values())) != 1:
            raise EventDataError("path", f"{file}: spikes/times, spikes/units and labels differ in length ({n})")
        return LocalSHD(str(folder), train=split == "train")

    def labels(self, ds: LocalSHD) -> np.ndarray:
        file = self.file(ds)
        with h5py.File(file, "r") as f:
            y = np.asarray(f["labels"][()])
        if y.dtype.kind not in "iu" or (y.size and (y.min() < 0 or y.max() >= self.classes)):
            raise EventDataError("path", f"{file}: labels must be integers in [0, {self.classes}); "
                                         f"got dtype {y.dtype}, range [{y.min()}, {y.max()}]")
        return y.astype(np.int64)

    def file(self, ds: LocalSHD) -> Path:
        return Path(ds.location_on_system) / ds.data_filename

    def identity(self, ds: LocalSHD) -> dict:
        """The source file's path, size and modification time (a changed file misses the cache)."""
        st = self.file(ds).stat()
        return {"file": str(self.file(ds).resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    def where(self, ds: LocalSHD, index: int) -> str:
        return f"{self.file(ds)} sample {index}"
