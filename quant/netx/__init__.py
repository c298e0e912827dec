"""lava-dl netx HDF5, both ways: :func:`to_netx` / the ``netx`` view (:mod:`.write`) and
:func:`from_netx` (:mod:`.read`); :mod:`.weights`: what netx and Lava make of a weight matrix.
h5py (extra ``hwsnn[netx]``) is imported only when a file is read or written."""

from .h5 import NetxFormatError
from .read import NetxImport, from_netx, read_netx
from .write import NETX_FILE, netx_bytes, netx_layers, to_netx

__all__ = ["to_netx", "from_netx", "read_netx", "netx_layers", "netx_bytes", "NetxImport", "NetxFormatError", "NETX_FILE"]
