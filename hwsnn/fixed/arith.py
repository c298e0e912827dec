r"""Integer arithmetic of the twins: shifts with a rounding rule, decays, overflow, quantization.

Every function takes and returns ``torch`` integer tensors and computes in ``int64`` (products of
two 32-bit values never overflow). Pure functions: the twins in :mod:`hwsnn.fixed` are thin
stateful modules around them.

================  ======================================================================
rule              :math:`D(x, k)` (decayed value :math:`x - D(x, k)`)
================  ======================================================================
``floor``         :math:`x \gg k` (arithmetic shift, toward :math:`-\infty`)
``toward_zero``   :math:`\mathrm{sign}(x)\,(|x| \gg k)`
``xylo_min1``     :math:`x \gg k`, or 1 when that is 0 and :math:`x > 0`
================  ======================================================================

Loihi's ``mul12`` decay: :math:`x' = \mathrm{sign}(p)\,(|p| \gg 12)`, :math:`p = x\,(4096 - d)`.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch

from targets import Width

__all__ = [
    "FitError",
    "storage_dtype",
    "require_integer",
    "shift_right",
    "shift",
    "decay_amount",
    "shift_decay",
    "mul12_decay",
    "overflow",
    "wrap",
    "fit",
    "quantize",
    "power_of_two_exponent",
]


class FitError(ValueError):
    """A value does not fit the target; names the layer, the parameter, the value and the limit."""

    def __init__(self, layer: str, parameter: str, value: object, limit: str, target: str = "") -> None:
        self.layer, self.parameter, self.value, self.limit, self.target = layer, parameter, value, limit, target
        where = f" on target {target!r}" if target else ""
        super().__init__(
            f"{layer}: {parameter} = {value} does not fit{where}: {limit}. "
            "Pass clip=True to clip (the number of clipped values is recorded)."
        )


def storage_dtype(width: Width) -> torch.dtype:
    """Smallest torch integer dtype that holds every value of ``width`` (int8 ... int64)."""
    need = width.bits + (0 if width.signed else 1)
    for bits, dtype in ((8, torch.int8), (16, torch.int16), (32, torch.int32)):
        if need <= bits:
            return dtype
    return torch.int64


def require_integer(x: object, who: str) -> torch.Tensor:
    """``x`` if it is an integer (or bool) tensor, else a ``TypeError`` naming ``who`` and the fix."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects an integer tensor (spikes or quantized values); got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex():
        raise TypeError(
            f"{who} is an integer twin: it takes integer tensors (0/1 spikes or quantized values); got a "
            f"{x.dtype} tensor. Quantize the input first: q = round(x * 2**-e) as an integer tensor."
        )
    return x


def _long(x: torch.Tensor) -> torch.Tensor:
    if x.is_floating_point() or x.is_complex():
        raise TypeError(f"integer arithmetic needs an integer tensor; got {x.dtype}")
    return x.to(torch.int64)


def shift_right(x: torch.Tensor, k: Union[int, torch.Tensor], rounding: str = "floor") -> torch.Tensor:
    r""":math:`x \gg k` with ``floor`` (arithmetic) or ``toward_zero`` rounding."""
    x = _long(x)
    if rounding == "floor":
        return x >> k
    if rounding == "toward_zero":
        return torch.where(x < 0, -((-x) >> k), x >> k)
    raise ValueError(f"shift_right: rounding must be 'floor' or 'toward_zero'; got {rounding!r}")


def shift(x: torch.Tensor, s: int, rounding: str = "floor") -> torch.Tensor:
    r""":math:`x \cdot 2^{s}`: a left shift for :math:`s \ge 0`, else a right shift with ``rounding``."""
    x = _long(x)
    return x << s if s >= 0 else shift_right(x, -s, rounding)


def decay_amount(x: torch.Tensor, k: Union[int, torch.Tensor], rounding: str) -> torch.Tensor:
    r""":math:`D(x, k)`, the amount a shift decay removes (see the module table)."""
    x = _long(x)
    if rounding == "xylo_min1":
        d = x >> k
        return torch.where((d == 0) & (x > 0), torch.ones_like(d), d)
    return shift_right(x, k, rounding)


def shift_decay(x: torch.Tensor, k: Union[int, torch.Tensor], rounding: str) -> torch.Tensor:
    r"""One shift-decay step :math:`x - D(x, k)` (:math:`\tau = 2^k`)."""
    x = _long(x)
    return x - decay_amount(x, k, rounding)


def mul12_decay(x: torch.Tensor, d: Union[int, torch.Tensor], rounding: str = "toward_zero") -> torch.Tensor:
    r"""Loihi's decay :math:`x\,(4096 - d) / 4096`, the division by a 12-bit shift with ``rounding``."""
    x = _long(x)
    return shift_right(x * (4096 - d), 12, rounding)


def wrap(x: torch.Tensor, width: Width) -> torch.Tensor:
    """Two's complement (or modulo, unsigned) reduction of ``x`` into ``width``."""
    x = _long(x)
    if width.bits >= 64:
        return x
    mask = (1 << width.bits) - 1
    y = x & mask
    if width.signed:
        y = torch.where(y > width.hi, y - (1 << width.bits), y)
    return y


def overflow(x: torch.Tensor, width: Width, mode: str) -> tuple[torch.Tensor, int]:
    r"""Bring ``x`` into ``width`` by ``mode``; returns ``(value, number of out-of-range values)``.

    ``saturate``: clip to ``[lo, hi]``. ``wrap``: two's complement. ``fold_once`` (Loihi's ``u``):
    :math:`x - 2^b` if :math:`x > 2^{b-1}`, :math:`x + 2^b` if :math:`x \le -2^{b-1}`; the kept
    range is :math:`(-2^{b-1}, 2^{b-1}]` and a value beyond one fold is *not* reduced further.
    """
    x = _long(x)
    if x.numel() and mode in ("fold_once", "saturate", "wrap"):  # one pass when nothing is out of range
        lo_x, hi_x = (int(v) for v in torch.aminmax(x))
        half = 1 << (width.bits - 1)
        if (lo_x > -half and hi_x <= half) if mode == "fold_once" else (lo_x >= width.lo and hi_x <= width.hi):
            return x, 0
    if mode == "fold_once":
        half, full = 1 << (width.bits - 1), 1 << width.bits
        up, down = x > half, x <= -half
        return torch.where(up, x - full, torch.where(down, x + full, x)), int((up | down).sum())
    out = (x < width.lo) | (x > width.hi)
    count = int(out.sum())
    if mode == "saturate":
        return (x.clamp(width.lo, width.hi) if count else x), count
    if mode == "wrap":
        return (wrap(x, width) if count else x), count
    raise ValueError(f"overflow: mode must be one of saturate, wrap, fold_once; got {mode!r}")


def fit(
    values: torch.Tensor,
    width: Width,
    *,
    layer: str,
    parameter: str,
    target: str = "",
    clip: bool = False,
    step: int = 1,
    lo: Optional[int] = None,
    hi: Optional[int] = None,
) -> tuple[torch.Tensor, int]:
    """Check integer ``values`` against ``width`` (and a multiple-of-``step`` grid).

    Returns ``(values as int64, number clipped)``. Out of range without ``clip``: :class:`FitError`
    naming the layer, the parameter, the worst value and the limit. With ``clip`` values are
    clipped to the range and, for ``step > 1``, floored onto the grid (Loihi's ``(w >> 1) << 1``).
    """
    v = _long(values)
    lo = width.lo if lo is None else lo
    hi = width.hi if hi is None else hi
    if step > 1:
        hi = hi - (hi % step)
    if step == 1 and v.numel():  # one pass when everything fits (the common case)
        lo_v, hi_v = (int(x) for x in torch.aminmax(v))
        if lo_v >= lo and hi_v <= hi:
            return v, 0
    bad = (v < lo) | (v > hi)
    if step > 1:
        bad = bad | (v % step != 0)
    n_bad = int(bad.sum())
    if n_bad and not clip:
        worst = v[bad].flatten()[0].item()
        grid = f", multiples of {step}" if step > 1 else ""
        raise FitError(layer, parameter, worst, f"allowed [{lo}, {hi}]{grid} ({n_bad} value(s) outside)", target)
    if n_bad:
        v = v.clamp(lo, hi)
        if step > 1:
            v = torch.div(v, step, rounding_mode="floor") * step
    return v, n_bad


def power_of_two_exponent(max_abs: float, width: Width, step: int = 1) -> int:
    r"""Smallest exponent :math:`e` with :math:`\mathrm{round}(m\,2^{-e}) \le` the width's largest value.

    ``max_abs = 0`` gives the exponent that makes the grid as fine as the width allows for 1.0.
    """
    hi = width.hi - (width.hi % step)
    if not math.isfinite(max_abs):
        raise ValueError(f"power_of_two_exponent: max |value| must be finite; got {max_abs}")
    if max_abs <= 0:
        return -max(width.bits - 2, 0)
    e = math.ceil(math.log2(max_abs / hi))
    while round(max_abs * 2.0 ** (-e)) > hi:
        e += 1
    while e > -1074 and round(max_abs * 2.0 ** (-(e - 1))) <= hi:
        e -= 1
    return e


def quantize(
    values: torch.Tensor,
    exponent: int,
    width: Width,
    *,
    layer: str,
    parameter: str,
    target: str = "",
    clip: bool = False,
    step: int = 1,
) -> tuple[torch.Tensor, int]:
    r"""Float values to integers :math:`q = \mathrm{round}(x\,2^{-e})` (half to even, then onto the
    ``step`` grid by rounding to nearest) checked by :func:`fit`; returns ``(q, number clipped)``."""
    if not torch.is_tensor(values):
        values = torch.as_tensor(values, dtype=torch.float64)
    x = values.detach().to(torch.float64)
    if not torch.isfinite(x).all():
        raise FitError(layer, parameter, "a non-finite value", "values must be finite", target)
    q = torch.round(x * 2.0 ** (-exponent) / step) * step
    return fit(q.to(torch.int64), width, layer=layer, parameter=parameter, target=target, clip=clip, step=step)
