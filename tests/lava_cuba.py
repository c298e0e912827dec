"""An independent model of Lava's bit-accurate CUBA LIF step (``PyLifModelBitAcc``), written from
Lava's source for the netx tests (not hwsnn code): int32 input wrap, mul12 decay rounded toward
zero, ``u`` folded once into (-2^23, 2^23], ``v`` clipped to ±(2^23 - 1), zero reset."""

from __future__ import annotations

import numpy as np


def wrap(a: np.ndarray, bits: int) -> np.ndarray:
    """Two's complement wrap of ``a`` to ``bits`` bits."""
    return ((a + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def tz_mul(x: np.ndarray, f: int) -> np.ndarray:
    """``x * f / 4096`` rounded toward zero (Lava's 12-bit decay factor)."""
    p = x * f
    return np.sign(p) * (np.abs(p) >> 12)


def cuba_step(u: np.ndarray, v: np.ndarray, a_in: np.ndarray, du: int, dv: int, bias, vth: int):
    """One step: returns ``(u, v, spikes)`` with ``spikes`` int8 and ``v`` reset to 0 where it fired."""
    u = tz_mul(u, 4096 - (du + 1))
    u = wrap(u + wrap(wrap(a_in, 32) << 6, 32), 32)
    u = np.where(u > 2**23, u - 2**24, np.where(u <= -(2**23), u + 2**24, u))
    v = tz_mul(v, 4096 - dv)
    v = np.clip(v + u + bias, -(2**23 - 1), 2**23 - 1)
    spikes = v > (vth << 6)
    return u, np.where(spikes, 0, v), spikes.astype(np.int8)
