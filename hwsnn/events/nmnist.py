"""N-MNIST read from a local folder through ``tonic.datasets.NMNIST``.

On-disk layout (the extracted archives of https://www.garrickorchard.com/datasets/n-mnist, as tonic
reads them): ``Train/<digit>/<id>.bin`` and ``Test/<digit>/<id>.bin``; the label is the digit
folder's name. Each ``.bin`` file is a sequence of 40-bit events, 5 bytes each: byte 0 = x,
byte 1 = y (0..33), byte 2 bit 7 = polarity, bits 22..0 (byte 2 bits 6..0, bytes 3, 4) = the time in
microseconds (tonic's ``read_mnist_file``; a record with ``y = 240`` marks a timestamp overflow).
tonic's events are ``(x, y, t, p)``; the sensor is 34 x 34 pixels, 2 polarities.

``data.path`` names the folder holding ``Train/`` and ``Test/``, or a tonic ``save_to`` folder (its
``NMNIST/`` subfolder). Nothing is ever downloaded: a missing folder is an error naming it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import tonic

from .options import NMNIST_CLASSES, NMNIST_SIDE, EventDataError

__all__ = ["NMNISTSource", "LocalNMNIST", "NMNIST_FOLDERS"]

#: the folder of each split (tonic: ``NMNIST.train_folder`` / ``test_folder``)
NMNIST_FOLDERS = {"train": "Train", "test": "Test"}


def _bin_files(split_dir: Path) -> list[Path]:
    return sorted(p for p in split_dir.rglob("*.bin") if p.is_file())


class LocalNMNIST(tonic.datasets.NMNIST):
    """tonic's NMNIST reading ``<folder>/Train`` or ``Test`` in place; it never downloads.

    tonic keeps its files under ``<save_to>/NMNIST`` and downloads unless the archive and 10000
    ``.bin`` files are there; here the location is pinned to ``folder`` (in ``_check_exists``, which
    tonic's constructor calls before listing the files), one ``.bin`` file suffices, and
    :meth:`download` refuses.
    """

    def __init__(self, folder: str, train: bool, first_saccade_only: bool = False) -> None:
        self._folder = str(folder)
        super().__init__(self._folder, train=train, first_saccade_only=first_saccade_only)

    def _check_exists(self) -> bool:
        self.location_on_system = self._folder
        return any(True for _ in Path(self._folder, self.folder_name).rglob("*.bin"))

    def download(self) -> None:
        raise EventDataError("path", f"no .bin files under {os.path.join(self._folder, self.folder_name)} "
                                     "(nothing is downloaded: extract the N-MNIST archives there)")


class NMNISTSource:
    """What the loader needs to know about N-MNIST (picklable: used in DataLoader workers)."""

    kind = "nmnist"
    sensor = (NMNIST_SIDE, NMNIST_SIDE, 2)
    classes = NMNIST_CLASSES

    def folder(self, path: str, split: str) -> Path:
        """The folder holding ``NMNIST_FOLDERS[split]``: ``path`` or ``path/NMNIST``."""
        name = NMNIST_FOLDERS[split]
        if Path(path).is_file():
            raise EventDataError("path", f"{path} is a file; data.path names the folder holding Train/ and Test/")
        looked = [Path(path) / name, Path(path) / "NMNIST" / name]
        for p in looked:
            if p.is_dir():
                return p.parent
        raise EventDataError("path", f"N-MNIST {split} folder {name}/ not found: looked for {looked[0]} and {looked[1]} "
                                     "(the extracted Train/ and Test/ folders of <digit>/<id>.bin files; "
                                     "nothing is downloaded)")

    def open(self, path: str, split: str, options: dict) -> LocalNMNIST:
        folder = self.folder(path, split)
        split_dir = folder / NMNIST_FOLDERS[split]
        files = _bin_files(split_dir)
        if not files:
            raise EventDataError("path", f"{split_dir}: no .bin files (expected {split_dir}/<digit>/<id>.bin)")
        bad = [f for f in files if not (f.parent.parent == split_dir and f.parent.name in "0123456789" and len(f.parent.name) == 1)]
        if bad:
            raise EventDataError("path", f"{bad[0]}: N-MNIST files must lie in digit folders "
                                         f"{split_dir}/0 ... {split_dir}/9 (the folder names the label)")
        odd = [f for f in files if f.stat().st_size % 5]
        if odd:
            raise EventDataError("path", f"{odd[0]}: {odd[0].stat().st_size} bytes, not a whole number of 5-byte events")
        return LocalNMNIST(str(folder), train=split == "train",
                           first_saccade_only=bool(options.get("first_saccade_only", False)))

    def labels(self, ds: LocalNMNIST) -> np.ndarray:
        return np.asarray(ds.targets, dtype=np.int64)

    def identity(self, ds: LocalNMNIST) -> dict:
        """A hash of every file's name, size and modification time (a changed file misses the cache)."""
        split_dir = Path(ds.location_on_system, ds.folder_name)
        h = hashlib.sha256()
        for f in ds.data:
            st = os.stat(f)
            h.update(f"{os.path.relpath(f, split_dir)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
        return {"folder": str(split_dir.resolve()), "files": len(ds.data), "listing_sha256": h.hexdigest()}

    def where(self, ds: LocalNMNIST, index: int) -> str:
        return str(ds.data[index])
