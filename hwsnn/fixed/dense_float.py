r"""The dense twin's ``sum`` rule evaluated in float arithmetic, exactly: :func:`dense_sum_float`.

:class:`~hwsnn.fixed.FixedLinear` computes, for integer inputs :math:`X` ``[..., K]``, integer
weights :math:`W` ``[M, K]``, weight shift :math:`s` and integer bias :math:`B`,

.. math::
    A = W X, \qquad A \leftarrow \mathrm{ovf}(A) \ (\texttt{raw\_and\_shifted} \text{ only}), \qquad
    Y = \mathrm{ovf}(\mathrm{shift}(A, s) + B),

in int64, with a device synchronisation per overflow check and several int64 passes. Where
bounds known before the product prove that no overflow can happen and that every intermediate
value is an integer the float type holds exactly, the same :math:`Y` comes out of one float
matmul with the weights :math:`W\,2^{s}`, a floor for :math:`s < 0` and one addition, with one
synchronisation (:math:`\max|X|`). The proof, for a float type with a :math:`p`-bit significand
(:math:`p = 24` float32, :math:`p = 53` float64), which holds every integer of magnitude
:math:`\le 2^{p}` exactly:

* Let :math:`R = \max|X| \cdot \max|W| \cdot K`. The product runs with the weights :math:`W\,2^{s}`
  (:math:`|s| \le 64`). Every product :math:`X_k W_{mk} 2^{s}` and every partial sum of
  :math:`A_m 2^{s} = \sum_k X_k W_{mk} 2^{s}`, *in whatever order and blocking the BLAS adds them*,
  is an integer multiple of :math:`2^{s}` of magnitude at most :math:`R\,2^{s}`, i.e. at most
  :math:`R` units of :math:`2^{s}`. With :math:`R < 2^{p}` each of them is exactly representable
  (far inside the exponent range), so no addition (nor a fused multiply-add: one rounding of an
  exact result) ever rounds, and the result is exactly :math:`A\,2^{s}`.
* No overflow of the raw sum: :math:`-R \ge \mathrm{lo}` and :math:`R \le \mathrm{hi}` of the
  accumulator width, so :math:`\mathrm{ovf}(A) = A` and nothing is counted.
* The shift: for :math:`s \ge 0`, :math:`A\,2^{s}` is the left shift; for :math:`s < 0` the floor
  of a float is a float, so :math:`\lfloor A\,2^{s} \rfloor` is exact and equals the arithmetic
  (floor) right shift. Its magnitude is at most :math:`S = R\,2^{s}` (:math:`s \ge 0`) or
  :math:`S = \lceil R\,2^{s} \rceil` (:math:`s < 0`).
* The bias: :math:`|\mathrm{shift}(A, s) + B| \le Q = S + \max|B|`; with :math:`Q < 2^{p}` the sum of
  two integers is an exactly representable integer, and with :math:`-Q \ge \mathrm{lo}`,
  :math:`Q \le \mathrm{hi}` the final :math:`\mathrm{ovf}` is the identity (nothing counted).

The float type is float32 when :math:`\max(R, Q) < 2^{24}` on the CPU with ``torch.get_float32_matmul_precision()``
``== "highest"`` (no reduced-precision matmul), else float64 below :math:`2^{53}`; otherwise, or
when an overflow is possible, the function returns ``None`` and the twin's integer path runs
(which also counts the saturations). ``-0.0`` never leaves: the value is computed as
:math:`0 + 2^{e} Y`.

The caller also gets :math:`Y\,2^{e}` in a float dtype (the dequantized output, ``exponent``
:math:`e`): exact in the compute type (a power-of-two scaling of an integer below :math:`2^{p}`,
:math:`-120 \le e \le 90`), then cast, which rounds as the cast of the float64 value
:math:`Y\,2^{e}` does (:meth:`hwsnn.fixed.base.FixedModule.dequantize`'s rule).
"""

from __future__ import annotations

import weakref
from typing import Optional

import torch

from targets import Width

from .dense import FixedLinear

__all__ = ["dense_sum_float", "float_sum_bound"]

#: per twin: (weight and bias id and version, weight shift) -> {max|W|, max|B|, W 2^s and B per compute dtype}
_PREPARED: "weakref.WeakKeyDictionary[FixedLinear, tuple]" = weakref.WeakKeyDictionary()


def _prepared(tw: FixedLinear) -> dict:
    """The twin's weights and bias as float tensors (per compute dtype, made on first use) and their bounds."""
    key = (id(tw.weight), tw.weight._version, id(tw.bias), None if tw.bias is None else tw.bias._version,
           tw.weight_shift)
    hit = _PREPARED.get(tw)
    if hit is not None and hit[0] == key:
        return hit[1]
    prep = {"wmax": _max_abs(tw.weight), "bmax": 0 if tw.bias is None else _max_abs(tw.bias)}
    _PREPARED[tw] = (key, prep)
    return prep


def _as(prep: dict, tw: FixedLinear, name: str, dtype: torch.dtype) -> Optional[torch.Tensor]:
    t = getattr(tw, name)
    if t is None:
        return None
    k = (name, dtype)
    if k not in prep:
        prep[k] = t.to(dtype)
    return prep[k]


def _max_abs(x: torch.Tensor) -> int:
    """max |x| of an integer tensor (one pass, one synchronisation)."""
    if x.dtype == torch.bool:
        return int(bool(x.any()))
    lo, hi = torch.aminmax(x)
    return max(abs(int(lo)), abs(int(hi)))


def _scaled_weight(prep: dict, tw: FixedLinear, dtype: torch.dtype) -> torch.Tensor:
    r""":math:`W\,2^{s}` in ``dtype``: :math:`X (W 2^s)^T = A\,2^{s}` exactly under the bound :math:`R < 2^{p}`
    (every product and partial sum is an integer multiple of :math:`2^{s}` below :math:`R\,2^{s}` in
    magnitude, i.e. at most :math:`R < 2^{p}` units of :math:`2^{s}`, far from the exponent limits)."""
    k = ("scaled", dtype)
    if k not in prep:
        prep[k] = tw.weight.to(dtype) * 2.0 ** tw.weight_shift
    return prep[k]


def float_sum_bound(x_max: int, w_max: int, fan_in: int, shift: int, b_max: int) -> tuple[int, int]:
    """``(R, Q)`` of the module docstring: the bound on the raw sum and on the shifted sum plus bias."""
    r = int(x_max) * int(w_max) * max(int(fan_in), 1)
    s = r << shift if shift >= 0 else -((-r) >> -shift)  # ceil(r * 2^s) for s < 0
    return r, s + int(b_max)


def _fits(bound: int, width: Width) -> bool:
    return -bound >= width.lo and bound <= width.hi


def _compute_dtype(q: int, device: torch.device) -> Optional[torch.dtype]:
    if q < (1 << 24) and device.type == "cpu" and torch.get_float32_matmul_precision() == "highest":
        return torch.float32
    if q < (1 << 53):
        return torch.float64
    return None


def dense_sum_float(tw: FixedLinear, x_seq: object, dtype: torch.dtype,
                    exponent: int) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    r"""``(Y, Y 2^exponent)`` of dense twin ``tw`` on integer input ``x_seq`` ``[T, ..., K]``: ``Y`` int64
    as ``tw(x_seq)`` returns it, the second in ``dtype``; the twin's output and saturation counter
    (zero added) are updated as its forward does. ``None`` (nothing changed) where the module
    docstring's bounds do not prove the float evaluation exact and overflow-free, or the twin is
    not a plain ``sum`` layer without latency and delays (then run ``tw(x_seq)``)."""
    tg = tw.target
    if type(tw) is not FixedLinear or tw.per_event or tw.delays is not None or tw.latency != 0:
        return None
    if tg.synapse.sum_overflow not in ("raw_and_shifted", "shifted"):
        return None
    if not isinstance(x_seq, torch.Tensor) or x_seq.is_floating_point() or x_seq.is_complex():
        return None
    if x_seq.dim() < 2 or x_seq.shape[0] == 0 or x_seq.shape[-1] != tw.in_features or x_seq.numel() == 0:
        return None
    if dtype not in (torch.float32, torch.float64) or not -120 <= exponent <= 90:
        return None
    prep = _prepared(tw)
    k, s = tw.in_features, tw.weight_shift
    if not -64 <= s <= 64:
        return None
    r, q = float_sum_bound(_max_abs(x_seq), prep["wmax"], k, s, prep["bmax"])
    acc_width = tg.widths.accumulator
    if not _fits(q, acc_width) or (tg.synapse.sum_overflow == "raw_and_shifted" and not _fits(r, acc_width)):
        return None
    cd = _compute_dtype(max(q, r), x_seq.device)
    if cd is None:
        return None
    w = _scaled_weight(prep, tw, cd)  # W 2^s: the shift rides on the matmul (exact, see below)
    with torch.no_grad():
        acc = torch.mm(x_seq.reshape(-1, k).to(cd), w.t())  # = A 2^s exactly
        if s < 0:
            acc.floor_()
        if tw.bias is not None:
            acc.add_(_as(prep, tw, "bias", cd))
        shape = (*x_seq.shape[:-1], tw.out_features)
        y = acc.to(torch.int64).reshape(shape)  # (what the twin returns: int64, in the accumulator width)
        value = torch.add(torch.zeros((), dtype=cd, device=acc.device), acc, alpha=2.0 ** exponent)
        value = value.to(dtype).reshape(shape)
    tw.count_saturations("accumulator", 0)
    tw.output = y
    return y, value
