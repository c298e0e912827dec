r"""Counter-based random bits for dropout masks, reproducible by torch, NumPy and hardware.

A mask bit depends only on ``(seed, draw, index)``, never on a generator's hidden state, so the
torch twins, the NumPy simulator and a hardware block regenerate the same mask independently.

**Hash** (Chris Wellons' "lowbias32"; every operation modulo :math:`2^{32}`, unsigned)::

    M = 0xFFFFFFFF
    hash32(x):  x ^= x >> 16
                x  = (x * 0x7FEB352D) & M
                x ^= x >> 15
                x  = (x * 0x846CA68B) & M
                x ^= x >> 16
                return x                      # in [0, 2^32)

**Bits** of element ``index`` of mask number ``draw`` of a generator seeded with ``seed``::

    bits(seed, draw, index) = hash32( hash32( hash32(seed & M) ^ (draw & M) ) ^ (index & M) )

``seed``, ``draw`` and ``index`` are Python ints reduced to their low 32 bits (two's complement,
so ``seed = -1`` is ``0xFFFFFFFF``). ``draw`` counts the masks a twin has drawn since it was built
(0 for the first; +1 for every new mask, e.g. after each ``reset()``); ``index`` is the flat
C-order (row-major, last axis fastest) index into the mask tensor, ``0 .. numel-1`` (at most
:math:`2^{32}` elements).

**Keep decision** for a drop probability :math:`p \in [0, 1)`::

    keep_threshold = round((1 - p) * 2**24)      # Python round (half to even) of a float64
    keep(index)    = (bits(seed, draw, index) >> 8) < keep_threshold

i.e. the top 24 bits of the hash against a 24-bit threshold, :math:`P(\text{keep}) =
\text{keep\_threshold} / 2^{24}` (exactly :math:`1-p` to within :math:`2^{-25}`); ``p = 0`` keeps
every element. An exporter writes the integer ``keep_threshold`` (not ``p``) so that no reader
has to repeat the float rounding.

**Packing** (:func:`pack_mask` / :func:`unpack_mask`): the boolean mask is flattened in C order
and packed like ``numpy.packbits(mask.ravel(), bitorder='little')``: byte ``j`` holds elements
``8j .. 8j+7``, element ``8j + b`` in bit ``b`` (value :math:`2^b`, least significant first); the
last byte is zero-padded. :math:`\lceil n/8 \rceil` bytes of ``uint8``.

**Reimplementing it.** In NumPy use ``uint64`` arrays: ``(x * C) & M`` is exact because ``uint64``
arithmetic wraps modulo :math:`2^{64}` and only the low 32 bits are kept. In hardware: two 32x32
multipliers (low word), shifts and XORs, one hash per element; the per-draw prefix
``hash32(hash32(seed) ^ draw)`` is one register. This torch implementation computes in ``int64``
and splits each product into 16-bit halves so that no intermediate value leaves ``int64``.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch

__all__ = [
    "MASK32",
    "HASH_MUL1",
    "HASH_MUL2",
    "KEEP_BITS",
    "hash32",
    "hash32_int",
    "draw_prefix",
    "random_bits",
    "keep_threshold",
    "keep_mask",
    "pack_mask",
    "unpack_mask",
    "packed_size",
]

#: Low-32-bit mask.
MASK32 = 0xFFFFFFFF
#: First multiplier of :func:`hash32`.
HASH_MUL1 = 0x7FEB352D
#: Second multiplier of :func:`hash32`.
HASH_MUL2 = 0x846CA68B
#: Bits of the hash compared with the keep threshold (the top 24 of 32).
KEEP_BITS = 24


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """``(x * c) mod 2^32`` for ``int64`` ``x`` in ``[0, 2^32)``, without leaving ``int64``."""
    lo = x & 0xFFFF
    hi = x >> 16
    # lo*c < 2^48; ((hi*c) & M) << 16 < 2^48: the sum fits int64 exactly.
    return (lo * c + (((hi * c) & MASK32) << 16)) & MASK32


def hash32(x: torch.Tensor) -> torch.Tensor:
    """The lowbias32 hash of every element (module docstring): ``int64`` in ``[0, 2^32)``.

    ``x`` is any integer tensor; it is reduced to its low 32 bits first.
    """
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"hash32 needs an integer tensor; got {x.dtype}")
    x = x.to(torch.int64) & MASK32
    x = x ^ (x >> 16)
    x = _mul32(x, HASH_MUL1)
    x = x ^ (x >> 15)
    x = _mul32(x, HASH_MUL2)
    return x ^ (x >> 16)


def hash32_int(x: int) -> int:
    """:func:`hash32` of one Python int (reduced to its low 32 bits first)."""
    x = int(x) & MASK32
    x ^= x >> 16
    x = (x * HASH_MUL1) & MASK32
    x ^= x >> 15
    x = (x * HASH_MUL2) & MASK32
    x ^= x >> 16
    return x


def draw_prefix(seed: int, draw: int) -> int:
    """``hash32(hash32(seed & M) ^ (draw & M))``: the per-mask constant of :func:`random_bits`."""
    return hash32_int(hash32_int(seed) ^ (int(draw) & MASK32))


def random_bits(seed: int, draw: int, n: int, device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """``bits(seed, draw, index)`` for ``index = 0 .. n-1`` (``int64`` ``[n]``, values in ``[0, 2^32)``)."""
    n = int(n)
    if n < 0 or n > (1 << 32):
        raise ValueError(f"random_bits: a mask has 0 .. 2^32 elements; got {n}")
    index = torch.arange(n, dtype=torch.int64, device=device)
    return hash32(index ^ draw_prefix(seed, draw))


def keep_threshold(p: float) -> int:
    """``round((1 - p) * 2^24)``: an element is kept when its top 24 hash bits are below it."""
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"keep_threshold: the drop probability p must lie in [0, 1); got {p}")
    return int(round((1.0 - p) * float(1 << KEEP_BITS)))


def keep_mask(
    seed: int,
    draw: int,
    shape: Sequence[int],
    p: float,
    device: Union[str, torch.device, None] = None,
) -> torch.Tensor:
    """Boolean mask of ``shape``: ``keep(index) = (bits(seed, draw, index) >> 8) < keep_threshold(p)``
    with ``index`` the flat C-order index (module docstring)."""
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    bits = random_bits(seed, draw, n, device)
    return ((bits >> (32 - KEEP_BITS)) < keep_threshold(p)).reshape(shape)


def packed_size(n: int) -> int:
    """Bytes of a packed mask of ``n`` elements: :math:`\\lceil n/8 \\rceil`."""
    return (int(n) + 7) // 8


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """Pack a 0/1 mask like ``numpy.packbits(mask.ravel(), bitorder='little')`` (``uint8``, 1-D).

    Element ``8j + b`` of the C-order flattened mask goes to bit ``b`` of byte ``j``; the last
    byte is zero-padded.
    """
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"pack_mask needs a bool or integer 0/1 tensor; got {mask.dtype}")
    flat = mask.reshape(-1) != 0
    n = flat.numel()
    pad = packed_size(n) * 8 - n
    if pad:
        flat = torch.cat((flat, flat.new_zeros(pad)))
    weights = torch.tensor([1 << b for b in range(8)], dtype=torch.int64, device=mask.device)
    return (flat.view(-1, 8).to(torch.int64) * weights).sum(dim=1).to(torch.uint8)


def unpack_mask(packed: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """The boolean mask of ``shape`` packed by :func:`pack_mask` (inverse; padding bits ignored)."""
    shape = tuple(int(s) for s in shape)
    n = 1
    for s in shape:
        n *= s
    if packed.dtype != torch.uint8 or packed.dim() != 1:
        raise TypeError(f"unpack_mask needs a 1-D uint8 tensor; got {packed.dtype} of shape {tuple(packed.shape)}")
    if packed.numel() != packed_size(n):
        raise ValueError(f"unpack_mask: {packed.numel()} bytes cannot hold a mask of shape {shape} ({packed_size(n)} needed)")
    shifts = torch.arange(8, dtype=torch.int64, device=packed.device)
    bits = (packed.to(torch.int64).unsqueeze(1) >> shifts) & 1
    return (bits.reshape(-1)[:n] != 0).reshape(shape)
