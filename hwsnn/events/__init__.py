"""Real event data sets for run files (``data.kind: shd | nmnist``), read through tonic.

The data sets are read from a local folder (``data.path``) and never downloaded; events are binned
into fixed time steps of counts ``[T, N, C]`` (:mod:`.binning`), in ``DataLoader`` workers with a
progress bar on the first pass and a disk cache of the binned tensors (:mod:`.cache`).
``pip install "hwsnn[events]"`` (tonic, h5py); only :func:`load_event_data` needs them.

- ``shd``: the Spiking Heidelberg Digits, 700 channels, 20 classes (:mod:`.shd`); ``channels``
  pools adjacent channels to a chip's input width (16 for Xylo).
- ``nmnist``: N-MNIST, 34 x 34 pixels x 2 polarities, 10 classes (:mod:`.nmnist`); flattened to
  ``2 * 34 * 34`` channels (``layout: flat``) or kept ``[2, 34, 34]`` for convolutions
  (``layout: image``); ``pool`` sums pixel blocks.
"""

from __future__ import annotations

from .options import EVENT_KINDS, EVENT_OPTIONS, EventDataError, defaults

__all__ = ["EVENT_KINDS", "EVENT_OPTIONS", "EventDataError", "defaults", "load_event_data"]


def load_event_data(kind: str, options: dict, *, seed: int = 0, progress: bool = True):
    """``(x_train, y_train, x_test, y_test)`` of an event data kind (:func:`.loader.load_event_data`)."""
    from .loader import load_event_data as load

    return load(kind, options, seed=seed, progress=progress)
