r"""The caching allocator of the fused CPU kernels: :class:`HostPool` and :func:`empty_buffer`.

Fresh large CPU allocations are page-faulted on first touch, which costs more than the neuron
itself; the ``[T, N]`` streams of the fused kernels (:mod:`.fused_neuron`, :mod:`.fused_synapse`,
:mod:`.cpu_kernels`) therefore come from the process-wide :data:`host_pool` on CPU. On other
devices PyTorch's own allocator is used.
"""

from __future__ import annotations

import math
import os
import threading
import warnings

import torch

__all__ = ["HostPool", "host_pool", "empty_buffer"]

_use_count = getattr(torch._C, "_storage_Use_Count", None)  # private API: without it, no pool


class HostPool:
    """A small caching allocator for the large ``[T, N]`` CPU buffers (outputs, saved charges,
    gradients).

    Fresh multi-megabyte CPU allocations are served by ``mmap`` and pay one page fault per page
    on first touch, which costs more than the neuron arithmetic itself. The pool keeps the
    storage of buffers it handed out; a storage is reused once nothing but the pool references it
    (its storage use count, which counts every tensor and view on it, drops to one), so reuse is
    as safe as PyTorch's CUDA caching allocator. At most ``max_bytes`` are kept (environment
    variable ``HWSNN_CPU_POOL_MB``, default 2048; 0 disables the pool); :meth:`empty` releases the
    idle buffers.
    """

    def __init__(self, max_bytes: int, min_bytes: int = 1 << 20) -> None:
        self.max_bytes = max_bytes
        self.min_bytes = min_bytes
        self._stores: list = []  # UntypedStorage objects (the pool's own reference)
        self._lock = threading.Lock()

    @staticmethod
    def _idle(st) -> bool:
        return _use_count(st._cdata) == 1

    def empty(self) -> None:
        """Drop every idle buffer (buffers still in use are kept; they become idle later)."""
        with self._lock:
            self._stores = [st for st in self._stores if not self._idle(st)]

    def held_bytes(self) -> int:
        with self._lock:
            return sum(st.nbytes() for st in self._stores)

    def take(self, shape: tuple, dtype: torch.dtype) -> torch.Tensor:
        numel = math.prod(shape)
        nbytes = numel * dtype.itemsize
        if nbytes < self.min_bytes or self.max_bytes <= 0 or _use_count is None:
            return torch.empty(shape, dtype=dtype)
        with self._lock:
            st = None
            for cand in self._stores:
                if cand.nbytes() == nbytes and self._idle(cand):
                    st = cand
                    break
            if st is None:
                held = sum(c.nbytes() for c in self._stores)
                if held + nbytes > self.max_bytes:  # evict idle buffers, oldest first
                    keep = []
                    for c in self._stores:
                        if held + nbytes > self.max_bytes and self._idle(c):
                            held -= c.nbytes()
                        else:
                            keep.append(c)
                    self._stores = keep
                if held + nbytes > self.max_bytes:
                    return torch.empty(shape, dtype=dtype)
                st = torch.empty(nbytes, dtype=torch.uint8).untyped_storage()
                self._stores.append(st)
            return torch.empty(0, dtype=dtype).set_(st, 0, shape)


def _pool_bytes_from_env() -> int:
    text = os.environ.get("HWSNN_CPU_POOL_MB", "2048")
    try:
        return int(float(text) * (1 << 20))
    except ValueError:
        warnings.warn(f"HWSNN_CPU_POOL_MB={text!r} is not a number of megabytes; using the default 2048")
        return 2048 << 20


#: the process-wide pool used by the CPU kernels
host_pool = HostPool(_pool_bytes_from_env())


def empty_buffer(shape: tuple, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised buffer: from :data:`host_pool` on CPU, from PyTorch's allocator elsewhere."""
    if device.type == "cpu":
        return host_pool.take(tuple(shape), dtype)
    return torch.empty(shape, dtype=dtype, device=device)
