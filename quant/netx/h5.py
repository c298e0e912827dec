"""The h5py dependency of the netx HDF5 view (optional extra ``hwsnn[netx]``), imported lazily."""

from __future__ import annotations

from types import ModuleType

__all__ = ["h5py_module", "NetxFormatError"]


class NetxFormatError(ValueError):
    """A netx HDF5 file or an export that does not fit the netx format (the message names the file,
    the layer and the field)."""


def h5py_module() -> ModuleType:
    """``h5py``, or an ``ImportError`` naming the extra that installs it."""
    try:
        import h5py
    except ImportError as exc:  # pragma: no cover - h5py is installed where the tests run
        raise ImportError("lava-dl netx HDF5 needs h5py: pip install 'hwsnn[netx]' (or pip install h5py)") from exc
    return h5py
