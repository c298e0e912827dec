r"""Counter-based mask generator of the simulator (NumPy), written from the manifest spec.

A mask bit is a pure function of ``(seed, draw, index)``, so the simulator regenerates the masks
of dropout / DropConnect layers without any hidden generator state.

**Hash** (lowbias32, every operation modulo :math:`2^{32}`, unsigned)::

    hash32(x) = x ^= x >> 16; x = (x * 0x7FEB352D) mod 2^32
                x ^= x >> 15; x = (x * 0x846CA68B) mod 2^32
                x ^= x >> 16

Computed on ``uint64`` arrays: the product of two numbers below :math:`2^{32}` is below
:math:`2^{64}` and ``uint64`` multiplication wraps modulo :math:`2^{64}`, so masking with
``0xFFFFFFFF`` afterwards gives the exact product modulo :math:`2^{32}`.

**Bits** of element ``index`` (flat C-order) of mask number ``draw``::

    bits(seed, draw, index) = hash32(hash32(hash32(seed & M) ^ (draw & M)) ^ (index & M))

**Keep**: ``(bits >> 8) < keep_threshold`` (a 24-bit threshold, ``round((1 - p) 2^24)``).

**Packing**: C-order flattened, byte ``j`` bit ``b`` holds element ``8j + b`` (like
``numpy.packbits(..., bitorder='little')``), last byte zero-padded.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = [
    "M32",
    "hash32",
    "draw_prefix",
    "random_bits",
    "keep_threshold",
    "keep_mask",
    "pack_mask",
    "unpack_mask",
    "packed_size",
]

#: Low 32 bits.
M32 = 0xFFFFFFFF
_MUL1 = np.uint64(0x7FEB352D)
_MUL2 = np.uint64(0x846CA68B)
_M = np.uint64(M32)
#: Top bits of the hash compared with the keep threshold.
KEEP_BITS = 24


def _low32(x) -> np.ndarray:
    """Low 32 bits of integer ``x`` (Python int or integer array; two's complement) as ``uint64``."""
    if isinstance(x, (int, np.integer)):
        return np.asarray(int(x) & M32, dtype=np.uint64)
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        raise TypeError(f"hash32 needs integers; got {a.dtype}")
    if a.dtype.kind == "i":
        # int64 -> uint64 reinterpretation is two's complement; then keep the low word.
        a = np.ascontiguousarray(a, dtype=np.int64).view(np.uint64)
    return a.astype(np.uint64) & _M


def hash32(x) -> np.ndarray:
    """lowbias32 of every element (reduced to its low 32 bits first): ``uint64`` in ``[0, 2^32)``."""
    x = _low32(x)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(16))
        x = (x * _MUL1) & _M
        x = x ^ (x >> np.uint64(15))
        x = (x * _MUL2) & _M
        x = x ^ (x >> np.uint64(16))
    return x


def draw_prefix(seed: int, draw: int) -> int:
    """``hash32(hash32(seed & M) ^ (draw & M))``: the per-mask constant."""
    h = int(hash32(int(seed) & M32))
    return int(hash32(h ^ (int(draw) & M32)))


def random_bits(seed: int, draw: int, n: int, start: int = 0) -> np.ndarray:
    """``bits(seed, draw, index)`` for ``index = start .. start+n-1``: ``uint64`` ``[n]`` in ``[0, 2^32)``."""
    n = int(n)
    if n < 0 or start < 0 or start + n > (1 << 32):
        raise ValueError(f"random_bits: indices must lie in 0 .. 2^32-1; got start={start}, n={n}")
    index = np.arange(start, start + n, dtype=np.uint64)
    return hash32(index ^ np.uint64(draw_prefix(seed, draw)))


def keep_threshold(p: float) -> int:
    """``round((1 - p) 2^24)`` (Python round of a float64) for a drop probability ``p`` in [0, 1)."""
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"keep_threshold: p must lie in [0, 1); got {p}")
    return int(round((1.0 - p) * float(1 << KEEP_BITS)))


def keep_mask(seed: int, draw: int, shape: Sequence[int], keep_threshold: int) -> np.ndarray:
    """Boolean mask of ``shape``: ``(bits(seed, draw, flat C index) >> 8) < keep_threshold``."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    thr = int(keep_threshold)
    if not 0 <= thr <= (1 << KEEP_BITS):
        raise ValueError(f"keep_mask: keep_threshold must lie in 0 .. 2^24; got {thr}")
    bits = random_bits(seed, draw, n)
    return ((bits >> np.uint64(32 - KEEP_BITS)) < np.uint64(thr)).reshape(shape)


def packed_size(n: int) -> int:
    """Bytes of a packed mask of ``n`` elements: ``ceil(n / 8)``."""
    return (int(n) + 7) // 8


def pack_mask(mask) -> np.ndarray:
    """Pack a 0/1 (bool or integer) mask: C-order, element ``8j+b`` in bit ``b`` of byte ``j``."""
    a = np.asarray(mask)
    if a.dtype.kind not in "iub":
        raise TypeError(f"pack_mask needs a bool or integer 0/1 array; got {a.dtype}")
    flat = (a.reshape(-1) != 0).astype(np.uint8)
    n = flat.size
    pad = packed_size(n) * 8 - n
    if pad:
        flat = np.concatenate([flat, np.zeros(pad, np.uint8)])
    weights = (1 << np.arange(8, dtype=np.uint16)).astype(np.uint16)
    return (flat.reshape(-1, 8).astype(np.uint16) * weights).sum(axis=1).astype(np.uint8)


def unpack_mask(packed, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`pack_mask`: the boolean mask of ``shape`` (padding bits ignored)."""
    shape = tuple(int(s) for s in shape)
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    p = np.asarray(packed)
    if p.dtype != np.uint8 or p.ndim != 1:
        raise TypeError(f"unpack_mask needs a 1-D uint8 array; got {p.dtype} of shape {p.shape}")
    if p.size != packed_size(n):
        raise ValueError(f"unpack_mask: {p.size} bytes cannot hold a mask of shape {shape} ({packed_size(n)} needed)")
    bits = (p[:, None] >> np.arange(8, dtype=np.uint8)) & np.uint8(1)
    return (bits.reshape(-1)[:n] != 0).reshape(shape)
