r"""Integer arithmetic of the simulator (NumPy ``int64``), written from the target specs.

This is the golden model's own arithmetic: it shares no code with :mod:`hwsnn.fixed.arith`.
Every function takes and returns ``numpy`` integer arrays and computes in ``int64``.

==============  ==============================================================
rule            amount removed by one decay step, :math:`D(x, k)`
==============  ==============================================================
``floor``       :math:`x \gg k` (arithmetic, toward :math:`-\infty`)
``toward_zero`` :math:`\mathrm{sign}(x)\,(|x| \gg k)`
``xylo_min1``   :math:`x \gg k`, but 1 when that is 0 and :math:`x > 0`
==============  ==============================================================

Overflow modes: ``saturate`` (clip to the width), ``wrap`` (two's complement), ``fold_once``
(Loihi's ``u``: :math:`x - 2^b` above :math:`2^{b-1}`, :math:`x + 2^b` at or below
:math:`-2^{b-1}`, nothing more).
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_i64", "max_abs", "F32_EXACT", "F64_EXACT", "I64_LIMIT", "matmul_bound", "exact_matmul", "MatmulWeight", "rshift", "shift", "decay_amount", "mul12", "overflow", "wrap"]


def as_i64(x) -> np.ndarray:
    """``x`` as an ``int64`` array; a float array is refused (never silently rounded)."""
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        raise TypeError(f"integer arithmetic needs an integer array; got {a.dtype}")
    return a.astype(np.int64, copy=False)


def rshift(x: np.ndarray, k, rounding: str = "floor") -> np.ndarray:
    """:math:`x \\gg k` with ``floor`` or ``toward_zero`` rounding."""
    x = as_i64(x)
    if rounding == "floor":
        return x >> k
    if rounding == "toward_zero":
        return np.where(x < 0, -((-x) >> k), x >> k)
    raise ValueError(f"rshift: unknown rounding {rounding!r}")


def shift(x: np.ndarray, s: int, rounding: str = "floor") -> np.ndarray:
    """:math:`x\\,2^s`: left shift for :math:`s \\ge 0`, else a right shift with ``rounding``."""
    x = as_i64(x)
    return x << s if s >= 0 else rshift(x, -s, rounding)


def decay_amount(x: np.ndarray, k, rounding: str) -> np.ndarray:
    """:math:`D(x, k)` of the module table."""
    x = as_i64(x)
    if rounding == "xylo_min1":
        d = x >> k
        return np.where((d == 0) & (x > 0), 1, d)
    return rshift(x, k, rounding)


def mul12(x: np.ndarray, factor, rounding: str = "toward_zero") -> np.ndarray:
    """Loihi's decay: :math:`x\\,(4096 - d)` divided by 4096 with ``rounding`` (``factor`` = d)."""
    x = as_i64(x)
    return rshift(x * (4096 - np.int64(factor)), 12, rounding)


def wrap(x: np.ndarray, width) -> np.ndarray:
    """Two's complement (modulo for unsigned) reduction into ``width``."""
    x = as_i64(x)
    b = width.bits
    if b >= 64:
        return x
    y = x & np.int64((1 << b) - 1)
    if width.signed:
        y = np.where(y >= (1 << (b - 1)), y - np.int64(1 << b), y)
    return y


def overflow(x: np.ndarray, width, mode: str) -> tuple[np.ndarray, int]:
    """Bring ``x`` into ``width`` by ``mode``; returns ``(value, number of values out of range)``.

    In range (the common case: ``min(x)`` and ``max(x)`` inside the bounds) ``x`` itself comes
    back, with no per-element test."""
    x = as_i64(x)
    if x.size == 0:
        return x, 0
    xmin, xmax = int(x.min()), int(x.max())
    if mode == "fold_once":
        half, full = 1 << (width.bits - 1), 1 << width.bits
        if xmin > -half and xmax <= half:
            return x, 0
        up, down = x > half, x <= -half
        return np.where(up, x - full, np.where(down, x + full, x)), int(np.count_nonzero(up | down))
    lo, hi = width.lo, width.hi
    if lo <= xmin and xmax <= hi:
        return x, 0
    n = int(np.count_nonzero((x < lo) | (x > hi)))
    if mode == "saturate":
        return np.clip(x, lo, hi), n
    if mode == "wrap":
        return wrap(x, width), n
    raise ValueError(f"overflow: unknown mode {mode!r}")


#: float32 / float64 hold every integer below these exactly
F32_EXACT = 1 << 24
F64_EXACT = 1 << 53
#: int64 overflows at this magnitude
I64_LIMIT = 1 << 63


def max_abs(a: np.ndarray) -> int:
    """max |a| as a Python int (0 for an empty array; no int8/int16 overflow of ``abs``)."""
    if a.size == 0:
        return 0
    return max(abs(int(a.max())), abs(int(a.min())))


def matmul_bound(x_max: int, w_max: int, k: int, who: str) -> bool:
    r"""True when a float64 product is exact (:math:`x_{max}\,w_{max}\,k < 2^{53}`: every partial sum
    is then an integer float64 holds); ``OverflowError`` naming ``who`` when even int64 could overflow."""
    bound = int(x_max) * int(w_max) * max(int(k), 1)
    if bound >= I64_LIMIT:
        raise OverflowError(f"{who}: max|X| * max|W| * fan-in = {bound} >= 2^63; the integer sum could overflow int64")
    return bound < F64_EXACT


class MatmulWeight:
    r"""An integer weight ``w_t`` ``[K, M]`` (or batched ``[..., K, M]``) prepared for repeated
    :func:`exact_matmul`: :math:`\max|W|` computed once, each float copy made on first use."""

    def __init__(self, w_t: np.ndarray) -> None:
        self.w_t = w_t
        self.max = max_abs(w_t)
        self._cast: dict = {}

    def cast(self, dtype) -> np.ndarray:
        """``w_t`` as a C-contiguous ``dtype`` array (cached)."""
        a = self._cast.get(dtype)
        if a is None:
            a = self._cast[dtype] = np.ascontiguousarray(self.w_t, dtype=dtype)
        return a


def exact_matmul(x: np.ndarray, w_t, who: str = "matmul", force_int64: bool = False) -> np.ndarray:
    r"""Exact :math:`X W^T` (``x`` ``[..., K]``, ``w_t`` ``[K, M]`` or batched ``[..., K, M]``, an array
    or a :class:`MatmulWeight`) as int64: float32 BLAS while :math:`\max|X|\,\max|W|\,K < 2^{24}`,
    float64 while :func:`matmul_bound` proves it exact (:math:`< 2^{53}`), else an int64 matmul.

    ``x`` may have any integer dtype (cast straight to the float type); a 2-D ``w_t`` takes one
    ``[prod(...), K] @ [K, M]`` product."""
    w = w_t if isinstance(w_t, MatmulWeight) else MatmulWeight(w_t)
    k = w.w_t.shape[-2]
    x_max = max_abs(x)
    if matmul_bound(x_max, w.max, k, who) and not force_int64:
        # float32 holds every integer below 2^24 exactly: with |partial sums| <= x_max*w_max*k < 2^24
        # every product and every partial sum is exact, whatever order BLAS sums in
        ftype = np.float32 if x_max * w.max * max(k, 1) < F32_EXACT else np.float64
        wf, xf = w.cast(ftype), x.astype(ftype)
    else:
        wf, xf = w.cast(np.int64), x.astype(np.int64, copy=False)
    if wf.ndim == 2 and xf.ndim > 2:
        return np.matmul(xf.reshape(-1, k), wf).astype(np.int64, copy=False).reshape(*x.shape[:-1], wf.shape[1])
    return np.matmul(xf, wf).astype(np.int64, copy=False)  # exact integers: no rounding needed
