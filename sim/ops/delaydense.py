r"""Per-synapse delays of the simulator's ``dense`` op: the sums that arrive at each step (NumPy).

Written from ``docs/EXPORT_FORMAT.md`` and ``shared/targets/loihi.md`` (Lava's
``PyDelayDenseModelBitAcc``); shares no code with the twin (``hwsnn.fixed.delaydense``).

For each delay value :math:`k` of the table ``delays`` and source step :math:`t`,
:math:`R_k[t] = \sum_{i:\,d_{oi} = k} W_{oi} X_i[t]` (exact). What *arrives* at step :math:`\tau`
(before the layer's latency FIFO):

* ``synapse.delay_shift: on_arrival``: the raw sum :math:`\sum_k R_k[\tau - k]`; the op then applies
  its overflow, weight shift and bias as without delays.
* ``per_slot`` (Loihi 2 ``DelayDense``): Lava keeps a ring ``a_buff[out, D + 1]`` at the
  accumulator width (int32). Each step it sends slot 0, zeroes it, rotates the ring by one, then
  adds :math:`c_k[t] = \lfloor R_k[t]\,2^{s} \rfloor` into slot :math:`k` for every :math:`k`
  (two's complement at the width; each add that leaves it is one wrap, counted under
  ``accumulator``). What arrives at :math:`\tau` is slot 0 after the adds of step :math:`\tau`,
  already shifted: the op adds only the bias (and its overflow).

The ring is kept across chunks as the partial sums of the next :math:`D` steps (``pending``).
When no add can leave the width (:math:`\max|\mathit{pending}| + \lceil B\,2^{s}\rceil + K`
inside it, :math:`B = \max|X|\,\max|W|\,\mathit{in}`, :math:`K` delay values) the ring's adds are
summed at once; otherwise the literal ring loop runs.
"""

from __future__ import annotations

import numpy as np

from .. import arith

__all__ = ["arriving_sums"]


def _shift(a: np.ndarray, s: int) -> np.ndarray:
    return a << s if s >= 0 else a >> -s  # int64: arithmetic right shift floors


def arriving_sums(sums: list[tuple[int, np.ndarray]], pending: np.ndarray, rule: str, s: int, width, mode: str,
                  bound: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(arriving [Tc, N, out], new pending [D, N, out], wraps per step [Tc])`` for the per-delay sums
    ``sums`` = ``[(k, R_k [Tc, N, out])]`` and ``pending`` (the partial sums of the next ``D`` steps);
    ``bound`` = :math:`\\max|X|\\,\\max|W|\\,\\mathit{in}` of the chunk (module docstring)."""
    tc, n, o = sums[0][1].shape
    d = pending.shape[0]
    wraps = np.zeros(tc, np.int64)
    if rule == "on_arrival":
        buf = np.zeros((tc + d, n, o), np.int64)
        buf[:d] += pending
        for k, r in sums:
            buf[k:k + tc] += r
        return buf[:tc], buf[tc:].copy(), wraps
    if rule != "per_slot":
        raise ValueError(f"dense: unknown delay rule {rule!r}")
    c = [(k, _shift(r, s)) for k, r in sums]
    reach = (bound << s if s >= 0 else -((-bound) >> -s)) + len(c)
    held = arith.max_abs(pending)
    if held + reach <= min(width.hi, -width.lo):  # no add can wrap: every slot's adds at once
        buf = np.zeros((tc + d, n, o), np.int64)
        buf[:d] += pending
        for k, ck in c:
            buf[k:k + tc] += ck
        return buf[:tc], buf[tc:].copy(), wraps
    ring = np.zeros((n, o, d + 1), np.int64)  # Lava's a_buff (one per sample), slot j = j steps ahead
    ring[:, :, 1:] = pending.transpose(1, 2, 0)
    out = np.zeros((tc, n, o), np.int64)
    for t in range(tc):
        ring[:, :, 0] = 0  # slot 0 was sent last step
        ring = np.roll(ring, -1, axis=2)
        for k, ck in c:
            ring[:, :, k], nw = arith.overflow(ring[:, :, k] + ck[t], width, mode)
            wraps[t] += nw
        out[t] = ring[:, :, 0]
    return out, ring[:, :, 1:].transpose(2, 0, 1).copy(), wraps
