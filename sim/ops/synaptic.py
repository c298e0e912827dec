r"""The shared part of the synaptic ops (``dense``, ``conv2d``, ``dropconnect``): input checks, weight
shift, accumulator overflow, latency FIFO, counters (NumPy, ``int64``).

Notation: :math:`W` integer weights, :math:`X` integer inputs of one step, :math:`s` the weight
shift (``params.weight_shift``), :math:`B` the integer bias (output units), ``ovf`` the target's
accumulator width and overflow mode (``target.widths.accumulator``,
``target.overflow.accumulator``), :math:`\mathrm{shift}(a, s) = a \ll s` for :math:`s \ge 0`,
else :math:`\lfloor a / 2^{-s} \rfloor` (arithmetic right shift).

**Exact sums.** Every :math:`W X` / :math:`W \star X` is computed with a float64 matmul only when
:math:`\max|X|\,\max|W|\,K < 2^{53}` (``K`` the fan-in per output, ``in`` or ``C/g*kh*kw``): every
partial sum is then an integer of magnitude below :math:`2^{53}`, held exactly by float64, so
BLAS's summation order cannot change the result (``dense``/``dropconnect``: float32, exact the
same way, while the bound is below :math:`2^{24}`). Otherwise an ``int64`` matmul (exact; an
``OverflowError`` naming the layer when the bound reaches :math:`2^{63}`). ``dense`` without
delays: when the bound (shifted, plus :math:`\max|B|`) lies inside the accumulator width, it
proves an overflow pass empty and that pass is skipped.

**Counters** (per step and per block of output elements, summed over the batch):

* ``synaptic_events[t, b]`` :math:`= \sum_{n, i} \mathrm{count}(X_{n,i}[t]) \cdot
  \#\{o \in b : W_{oi} \ne 0\}` where ``count`` is the value for ``spikes``/``counts`` inputs and
  1 per nonzero value for ``values`` inputs (:attr:`input_kind`; when unknown, a chunk with a
  negative value is taken as values, otherwise as counts). Conv: an integer convolution of the
  counts with :math:`[W \ne 0]` gives the events per output element. Dropconnect (active): the
  masked weights :math:`M \odot W`. Sum rule: counted at the step the input arrives; per-event
  rule: counted at the step the events are delivered (after the latency FIFO), with the nonzero
  effective weights.
* ``words_read = synaptic_events`` (one weight word per event); ``neuron_updates = 0``.
* ``saturations[t]``: accumulator values brought into range at step ``t`` (per-event: clipped
  input counts).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import arith
from .base import Events, Op

__all__ = ["SynapticOp", "effective_weight", "overflow_steps", "exact_matmul"]

_max_abs, _matmul_bound, exact_matmul = arith.max_abs, arith.matmul_bound, arith.exact_matmul


def overflow_steps(x: np.ndarray, width, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """``arith.overflow`` of ``x`` ``[Tc, ...]`` plus the number of out-of-range values per step."""
    y, n = arith.overflow(x, width, mode)
    per_step = np.zeros(x.shape[0], np.int64)
    if n:
        if mode == "fold_once":
            half = 1 << (width.bits - 1)
            bad = (x > half) | (x <= -half)
        else:
            bad = (x < width.lo) | (x > width.hi)
        per_step = bad.reshape(x.shape[0], -1).sum(axis=1).astype(np.int64)
    return y, per_step


def effective_weight(op: Op) -> np.ndarray:
    r"""Per-event weights: :math:`\mathrm{wrap}_{\text{current}}(W \ll s)` of ``op.weight`` (one shift per
    matrix), computed once per loaded export."""
    return op.derived("effective_weight", lambda: arith.wrap(arith.shift(op.weight, op.weight_shift),
                                                             op.target.widths.current))


class SynapticOp(Op):
    """Shared part: input checks, weight shift, accumulator overflow, latency FIFO, counters."""

    #: ``spikes``, ``counts`` or ``values``: how inputs are counted as events (None: inferred per chunk)
    input_kind: Optional[str] = None

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.input_kind = spec.input_kind
        self.weight_shift = spec.weight_shift
        self.clipped: dict[str, int] = {}

    # -- checks ---------------------------------------------------------------------------------
    def _check_input(self, x) -> np.ndarray:
        """``x`` checked as an integer array ``[Tc, N, *input_shape]``, in its own dtype (no copy)."""
        if isinstance(x, Events):
            raise self.error("expects an integer array [Tc, N, ...], not synaptic events")
        a = np.asarray(x)
        if a.dtype.kind not in "iub":
            raise TypeError(f"{self.name} ({self.kind}): expects integer inputs (spikes, counts or integer values); got dtype {a.dtype}")
        want = (self.batch, *self.input_shape)
        if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
            raise self.error(f"expects input [Tc, N, *input_shape] = [Tc, {', '.join(map(str, want))}]; got {tuple(a.shape)}")
        return a

    def _event_counts(self, x: np.ndarray) -> np.ndarray:
        """Events per input element (value for spikes/counts, 1 per nonzero for values).

        ``spikes`` inputs must be 0/1 and ``counts`` inputs non-negative (else the manifest's input
        kind is wrong: an error naming the layer)."""
        kind = self.input_kind
        lo = int(x.min()) if x.size else 0
        if kind is None:
            kind = "values" if lo < 0 else "counts"
        if kind == "values":
            return (x != 0).astype(np.int64)
        if kind not in ("spikes", "counts"):
            raise self.error(f"input kind must be 'spikes', 'counts' or 'values'; got {kind!r}")
        hi = int(x.max()) if x.size else 0
        if lo < 0 or (kind == "spikes" and hi > 1):
            raise self.error(
                f"input kind is {kind!r} but the input holds values in [{lo}, {hi}] "
                f"({'0/1 spikes' if kind == 'spikes' else 'non-negative counts'} expected)"
            )
        return x

    def _shift_bias(self, acc: np.ndarray, bias: Optional[np.ndarray],
                    bound: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """ovf(shift(ovf(acc), s) + bias) with per-step overflow counts (``acc`` [Tc, ...], an int64
        array of the caller's that is overwritten: the shift and the bias are applied in place).

        ``bound`` (:math:`\\ge \\max|acc|`, when known) skips the overflow passes it proves empty:
        :math:`[-bound, bound]` inside the width, and after the shift
        :math:`|y| \\le \\lceil bound\\,2^s \\rceil + \\max|B|` (floor of a right shift)."""
        width, mode = self.target.widths.accumulator, self.target.overflow.accumulator
        s = self.weight_shift

        def inside(m: Optional[int]) -> bool:
            return m is not None and width.lo <= -m and m <= width.hi

        def ovf(y: np.ndarray, m: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
            return (y, np.zeros(y.shape[0], np.int64)) if inside(m) else overflow_steps(y, width, mode)

        if self.target.synapse.sum_overflow == "shifted":  # the exact sum is shifted: no overflow before
            y, n1 = acc, np.zeros(acc.shape[0], np.int64)
            if not inside(bound):
                bound = None
        else:
            y, n1 = ovf(acc, bound)
        if s > 0:
            np.left_shift(y, s, out=y)
        elif s < 0:
            np.right_shift(y, -s, out=y)  # arithmetic: floor
        if bias is not None:
            y += bias
        if inside(bound):  # else the first pass may have changed values: no bound
            bound = (bound << s if s >= 0 else -(-bound >> -s)) + (0 if bias is None else _max_abs(bias))
        else:
            bound = None
        y, n2 = ovf(y, bound)
        n = n1 + n2
        self.count_saturations("accumulator", int(n.sum()))
        return y, n

    def _bias_only(self, y: np.ndarray, bias: Optional[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """ovf(y + bias) with per-step overflow counts (sums that are shifted already)."""
        if bias is not None:
            y = y + bias
        y, n = overflow_steps(y, self.target.widths.accumulator, self.target.overflow.accumulator)
        self.count_saturations("accumulator", int(n.sum()))
        return y, n

    def _latency(self, y: np.ndarray) -> np.ndarray:
        """Delay ``y`` [Tc, ...] by ``self.latency`` steps through the FIFO (zeros after reset)."""
        if self.latency == 0:
            return y
        full = np.concatenate([self._fifo, y], axis=0)
        tc = y.shape[0]
        self._fifo = full[tc:].copy()
        return full[:tc]

    def _fill_counters(self, events_per_out: np.ndarray, sat: np.ndarray) -> None:
        """Counters of a chunk from synaptic events per flat output element ``[Tc, E]``."""
        self.new_counters(events_per_out.shape[0])
        ev = self.block_sums(events_per_out)
        self.counters["synaptic_events"] += ev
        self.counters["words_read"] += ev
        self.counters["saturations"] += sat


