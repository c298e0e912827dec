r"""Synaptic ops of the simulator: ``dense``, ``conv2d`` and ``dropconnect`` (NumPy, ``int64``).

Written from the export format (``docs/EXPORT_FORMAT.md``) and the target semantics; it shares
no code with the torch twins (:mod:`hwsnn.fixed.dense`, :mod:`hwsnn.fixed.conv`,
:mod:`hwsnn.fixed.dropout`) and must reproduce them bit for bit.

Notation: :math:`W` integer weights, :math:`X` integer inputs of one step, :math:`s` the weight
shift (``params.weight_shift``), :math:`B` the integer bias (output units), ``ovf`` the target's
accumulator width and overflow mode (``target.widths.accumulator``,
``target.overflow.accumulator``), :math:`\mathrm{shift}(a, s) = a \ll s` for :math:`s \ge 0`,
else :math:`\lfloor a / 2^{-s} \rfloor` (arithmetic right shift).

``dense``, accumulation ``sum`` (float :math:`y = w x + b`, :math:`w = W 2^{e_w}`,
:math:`x = X 2^{e_x}`, :math:`e_{out} = e_w + e_x - s`)::

    A[t]  = ovf(W X[t])                 (exact integer sum)
    Y[t]  = ovf(shift(A[t], s) + B)     (both overflows counted under 'accumulator')
    out[t] = Y[t - L]  for t >= L, else 0    (latency L = params.latency; zeros, bias included,
                                              for the first L steps after reset; a FIFO across chunks)

``target.synapse.sum_overflow: shifted`` (Loihi): ``Y[t] = ovf(shift(W X[t], s) + B)``, the
exact sum shifted, one overflow (Lava's int64 sum held in the int32 buffer and channel).

With per-synapse delays (table ``delays`` [out, in], :math:`d_{oi}`; :mod:`sim.ops.delaydense`):
``on_arrival``, the raw sum that *arrives* at step :math:`t` is
:math:`\sum_i W_{oi} X_i[t - d_{oi}]`, and overflow, shift and bias apply to it; ``per_slot``
(Loihi), each source step's sum per delay slot is shifted before it accumulates in the int32 ring
(wraps counted), and only the bias and its overflow follow. Then the latency FIFO: a spike at step
:math:`t` reaches the output at :math:`t + L + d`.

Sign modes (``target.synapse.sign_modes``; :mod:`sim.ops.signmode`): the weights are what Lava
makes of the table (its automatic mode, clip and truncation); a table that rule changes, or whose
``sign_mode`` is not the rule's, is refused.

``dense``, accumulation ``per_event_saturate`` (Xylo): no sum. The event counts :math:`c` must lie
in ``0 .. params.event_cap`` (an error naming the layer, unless ``params.clip_events``: then
clipped to that range and counted in :attr:`DenseOp.clipped` ``['input_events']`` and in the
per-step ``saturations`` counter); they go through the latency FIFO (zeros first) and are returned
as :class:`~sim.ops.base.Events` with the effective weight
:math:`\mathrm{wrap}_{\text{current}}(W \ll s)`, which the following neuron adds one event at a
time.

``conv2d``: :math:`A = W \star X` is the exact integer cross-correlation of ``torch.conv2d``
(stride, zero padding ``[left, right, top, bottom]``, dilation, groups); overflow, shift, bias and
latency as ``dense`` (``sum`` targets only).

``dropconnect`` (training, ``params.active``): per sample :math:`n` and step,
:math:`A_n = \mathrm{ovf}(\sum_i M_{n,oi} W_{oi} X_{n,i})`,
:math:`Y_n = \mathrm{ovf}(\mathrm{shift}(A_n, s) + m_{n,o} B_o)` (the second overflow, and the
shift, only when :math:`s \ne 0` or there is a bias), then ReLU :math:`\max(Y, 0)` when
``params.relu``. Masks from :mod:`sim.rng`: one draw covers the batch, ``S = out*in (+ out)``
bits per sample, weight bit :math:`(n, o, i)` at index ``n*S + o*in + i``, bias bit
:math:`(n, o)` at ``n*S + out*in + o``; ``keep = (bits(seed, draw, index) >> 8) <
keep_threshold``. ``invariant: false`` draws a mask every step with ``draw = params.draw + t``
(``t`` = steps since reset); ``invariant: true`` draws once per run with ``params.draw``; every
``reset()`` starts again at ``params.draw``. Stored masks (``mask_w``/``mask_b`` with
``params.mask_batch``) must equal the generator's masks of ``params.draw`` (checked at
construction: the exporter writes the stored masks' draw). Eval
(``active: false``): the plain integer dense layer :math:`a(\mathrm{ovf}(\ldots W X \ldots + B))`
without masks. No latency.

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
from numpy.lib.stride_tricks import as_strided

from .. import arith
from .. import rng
from .base import Events, Op, register_op, table
from .delaydense import arriving_sums
from .signmode import lava_weights

__all__ = ["DenseOp", "Conv2dOp", "DropConnectOp", "exact_matmul", "int_conv2d"]

_max_abs, _matmul_bound, exact_matmul = arith.max_abs, arith.matmul_bound, arith.exact_matmul


def _conv_out_size(n: int, pad: int, k: int, s: int, d: int) -> int:
    return (n + pad - d * (k - 1) - 1) // s + 1


def int_conv2d(
    x: np.ndarray,
    w: np.ndarray,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    who: str = "conv2d",
    force_int64: bool = False,
) -> np.ndarray:
    r"""Exact integer cross-correlation of ``x`` ``[B, C, H, W]`` with ``w`` ``[O, C/g, kh, kw]``
    (as ``torch.nn.functional.conv2d``), ``padding`` = (left, right, top, bottom) zeros.

    im2col with NumPy stride tricks, then one (grouped) matmul: float64 when
    :math:`\max|X|\,\max|W|\,(C/g)\,k_h k_w < 2^{53}`, else int64. Returns int64 ``[B, O, Ho, Wo]``.
    """
    b, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    sh, sw = stride
    left, right, top, bottom = padding
    dh, dw = dilation
    g = int(groups)
    k = cg * kh * kw
    use_f64 = _matmul_bound(_max_abs(x), _max_abs(w), k, who) and not force_int64
    dt = np.float64 if use_f64 else np.int64
    xp = np.zeros((b, c, h + top + bottom, wd + left + right), dt)
    xp[:, :, top:top + h, left:left + wd] = x
    ho = _conv_out_size(h, top + bottom, kh, sh, dh)
    wo = _conv_out_size(wd, left + right, kw, sw, dw)
    if ho <= 0 or wo <= 0:
        raise ValueError(f"{who}: input {h}x{wd} is too small for the kernel (output {ho}x{wo})")
    s0, s1, s2, s3 = xp.strides
    win = as_strided(xp, (b, c, ho, wo, kh, kw), (s0, s1, s2 * sh, s3 * sw, s2 * dh, s3 * dw), writeable=False)
    # [B, G, Cg, Ho, Wo, kh, kw] -> [B, G, Ho*Wo, Cg*kh*kw]
    cols = win.reshape(b, g, cg, ho, wo, kh, kw).transpose(0, 1, 3, 4, 2, 5, 6).reshape(b, g, ho * wo, k)
    wg = w.astype(dt).reshape(g, o // g, k).transpose(0, 2, 1)  # [G, K, O/g]
    y = np.matmul(cols, wg)  # [B, G, Ho*Wo, O/g]
    if use_f64:
        y = np.rint(y).astype(np.int64)
    return y.transpose(0, 1, 3, 2).reshape(b, o, ho, wo)


def _overflow_steps(x: np.ndarray, width, mode: str) -> tuple[np.ndarray, np.ndarray]:
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


class _SynapticOp(Op):
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
            return (y, np.zeros(y.shape[0], np.int64)) if inside(m) else _overflow_steps(y, width, mode)

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
        y, n = _overflow_steps(y, self.target.widths.accumulator, self.target.overflow.accumulator)
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


# -- dense --------------------------------------------------------------------------------------
@register_op("dense")
class DenseOp(_SynapticOp):
    """``dense`` (module docstring): ``sum`` rule with latency and optional per-synapse delays, or
    the Xylo ``per_event_saturate`` rule returning :class:`~sim.ops.base.Events`."""

    kind = "dense"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.accumulation = spec.accumulation
        self.per_event = self.accumulation == "per_event_saturate"
        self.in_features, self.out_features = spec.in_features, spec.out_features
        self.first_layer, self.latency = spec.first_layer, spec.latency
        self.weight, self.bias, self.delays = spec.weight, spec.bias, spec.delays
        if target.synapse.sign_modes:
            self._check_sign_mode(spec.sign_mode)
        if self.per_event:
            self.event_cap, self.clip_events = spec.event_cap, spec.clip_events
        if self.delays is not None:
            self._delay_values = [int(d) for d in np.unique(self.delays)]
            self._delay_weights = [arith.MatmulWeight(np.where(self.delays == d, self.weight, 0).T) for d in self._delay_values]
            self.max_delay_used = max(self._delay_values) if self._delay_values else 0
        self.reset()

    def _check_sign_mode(self, recorded: Optional[str]) -> None:
        """The table must be the weights Lava uses, and ``sign_mode`` the mode it picks (:mod:`sim.ops.signmode`)."""
        used, mode = lava_weights(self.weight, self.target.widths.weight.bits, self.target.synapse.weight_step)
        if recorded != mode or not np.array_equal(used, self.weight):
            changed = int(np.count_nonzero(used != self.weight))
            raise self.error(f"params.sign_mode is {recorded!r}; Lava picks {mode!r} for this weight table and "
                             f"changes {changed} of its values: the table is not what the chip computes with")

    def reset(self) -> None:
        n, o, i = self.batch, self.out_features, self.in_features
        width = i if self.per_event else o
        self._fifo = np.zeros((self.latency, n, width), np.int64)
        if self.delays is not None:
            self._pending = np.zeros((self.max_delay_used, n, o), np.int64)

    def _count(self, counts: np.ndarray, sat: np.ndarray) -> None:
        """Counters from event counts ``[Tc, N, in]``: per step and block :math:`b`,
        :math:`\\sum_i (\\sum_n c_{n,i}) \\#\\{o \\in b : w_{oi} \\ne 0\\}` with the weights that are read
        (per-event: the effective weights)."""
        w = effective_weight(self) if self.per_event else self.weight
        nnz = self.derived(f"nonzero weights per block {self.blocks}",  # [in, n_blocks]
                           lambda: np.stack([(w[a:b] != 0).sum(axis=0) for a, b in self.blocks], axis=1))
        self.new_counters(counts.shape[0])
        # the batch sum in int32 where it provably fits: N counts below 2^(8 itemsize) each
        narrow = counts.dtype.itemsize <= 2 and counts.shape[1] << (8 * counts.dtype.itemsize) <= 1 << 31
        ev = counts.sum(axis=1, dtype=np.int32 if narrow else np.int64) @ nnz  # [Tc, n_blocks], exact int64
        self.counters["synaptic_events"] += ev
        self.counters["words_read"] += ev
        self.counters["saturations"] += sat

    def _raw_sum(self, x: np.ndarray) -> tuple[np.ndarray, Optional[int], np.ndarray]:
        """Sums arriving at each step of the chunk, ``[Tc, N, out]`` (delays: :func:`arriving_sums`), a bound
        on their magnitude, :math:`\\max|X|\\,\\max|W|\\,in` (None with delays), and the buffer's wraps per
        step (per-slot delays: the sums come already shifted)."""
        tc = x.shape[0]
        if self.delays is None:
            # the table's own (narrow) dtype makes the float copy cheap; kept across runs of the export
            w_t = self.derived("weight^T", lambda: arith.MatmulWeight(self.weight.T))
            return exact_matmul(x, w_t, self.name), _max_abs(x) * w_t.max * self.in_features, np.zeros(tc, np.int64)
        syn, acc = self.target.synapse, self.target.widths.accumulator
        sums = [(d, exact_matmul(x, wd, self.name)) for d, wd in zip(self._delay_values, self._delay_weights)]
        y, self._pending, wraps = arriving_sums(sums, self._pending, syn.delay_shift, self.weight_shift, acc,
                                                self.target.overflow.accumulator,
                                                _max_abs(x) * _max_abs(self.weight) * self.in_features)
        self.count_saturations("accumulator", int(wraps.sum()))
        return y, None, wraps

    def _cap(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Counts checked against ``0 .. event_cap`` (clipped and counted with ``clip_events``)."""
        cap = self.event_cap
        bad = (x < 0) | (x > cap)
        n = int(np.count_nonzero(bad))
        per_step = np.zeros(x.shape[0], np.int64)
        if n:
            if not self.clip_events:
                worst = int(x[bad].flat[0])
                raise self.error(
                    f"input events per step must lie in [0, {cap}] (params.event_cap); got {worst} "
                    f"({n} value(s) outside); export with clip_events to clip them"
                )
            per_step = bad.reshape(x.shape[0], -1).sum(axis=1).astype(np.int64)
            self.clipped["input_events"] = self.clipped.get("input_events", 0) + n
            x = np.clip(x, 0, cap)
        return x, per_step

    def run(self, x, t0: int, record_states: bool = False):
        x = self._check_input(x)
        if self.per_event:
            counts, sat = self._cap(x.astype(np.int64))
            counts = self._latency(counts)
            self._count(counts, sat)
            return Events(counts=counts, weight=effective_weight(self)), {}
        acc, bound, wraps = self._raw_sum(x)
        if self.delays is not None and self.target.synapse.delay_shift == "per_slot":  # shifted per slot already
            y, sat = self._bias_only(acc, self.bias)
        else:
            y, sat = self._shift_bias(acc, self.bias, bound)
        self._count(self._event_counts(x), sat + wraps)
        return self._latency(y), {}


# -- conv2d -------------------------------------------------------------------------------------
@register_op("conv2d")
class Conv2dOp(_SynapticOp):
    """``conv2d`` (module docstring): input ``[Tc, N, C, H, W]``, output ``[Tc, N, O, Ho, Wo]``."""

    kind = "conv2d"
    #: testing: always take the int64 path
    force_int64: bool = False

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.in_channels, self.out_channels, self.groups = spec.in_channels, spec.out_channels, spec.groups
        self.kernel_size, self.stride, self.dilation, self.padding = spec.kernel_size, spec.stride, spec.dilation, spec.padding
        self.first_layer, self.latency = spec.first_layer, spec.latency
        self.weight = spec.weight
        self.bias = None if spec.bias is None else spec.bias.reshape(-1, 1, 1)
        self._nz = (self.weight != 0).astype(np.int64)
        self.reset()

    def reset(self) -> None:
        self._fifo = np.zeros((self.latency, self.batch, *self.output_shape), np.int64)

    def _conv(self, x: np.ndarray, w: np.ndarray, force_int64: bool = False) -> np.ndarray:
        tc, n = x.shape[:2]
        y = int_conv2d(x.reshape(tc * n, *x.shape[2:]), w, self.stride, self.padding, self.dilation, self.groups,
                       self.name, force_int64)
        return y.reshape(tc, n, *y.shape[1:])

    def run(self, x, t0: int, record_states: bool = False):
        x = self._check_input(x)
        tc = x.shape[0]
        y, sat = self._shift_bias(self._conv(x, self.weight, self.force_int64), self.bias)
        ev = self._conv(self._event_counts(x), self._nz).sum(axis=1).reshape(tc, -1)
        self._fill_counters(ev, sat)
        return self._latency(y), {}


# -- dropconnect --------------------------------------------------------------------------------
@register_op("dropconnect")
class DropConnectOp(_SynapticOp):
    """``dropconnect`` (module docstring): masked integer dense layer, masks from :mod:`sim.rng`."""

    kind = "dropconnect"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.in_features, self.out_features = spec.in_features, spec.out_features
        o, i = self.out_features, self.in_features
        self.weight, self.bias = spec.weight, spec.bias
        self.relu, self.invariant, self.active = spec.relu, spec.invariant, spec.active
        self.latency = 0
        self.seed, self.draw, self.keep_threshold = spec.seed, spec.draw, spec.keep_threshold
        #: mask bits per sample
        self.bits_per_sample = o * i + (o if self.bias is not None else 0)
        self._check_mask_tables()
        #: the last masks drawn (packed, ``[N, out, in]`` / ``[N, out]``), like the twin's memories
        self.mask_w_packed: Optional[np.ndarray] = None
        self.mask_b_packed: Optional[np.ndarray] = None
        self.reset()

    def _check_mask_tables(self) -> None:
        """The stored masks (``mask_w``/``mask_b``, drawn for ``mask_batch`` samples) must be the
        generator's masks of ``(seed, draw, keep_threshold)``: the exporter writes the draw of the
        stored masks as ``draw`` (a twin exported mid-run), so a mismatch means the exported
        generator state is inconsistent (refused rather than simulated with other masks)."""
        mb = self.spec.mask_batch
        if mb is None:
            return
        o, i = self.out_features, self.in_features
        stored = {"mask_w": (int(mb), o, i), "mask_b": (int(mb), o)}
        masks = None
        for role, shape in stored.items():
            packed = table(self, role, required=False)
            if packed is None:
                continue
            if masks is None:
                masks = self._draw_masks(self.draw, int(mb))
            want = masks[0] if role == "mask_w" else masks[1]
            try:
                got = rng.unpack_mask(np.asarray(packed, np.uint8), shape)
            except (TypeError, ValueError) as e:
                raise self.error(f"table {role!r}: {e}") from None
            if want is None or not np.array_equal(got, want):
                raise self.error(
                    f"table {role!r} is not the mask of (seed={self.seed}, draw={self.draw}, "
                    f"keep_threshold={self.keep_threshold}) for {mb} samples; the exported generator state is inconsistent"
                )

    def reset(self) -> None:
        self._t = 0
        self._masks = None  # invariant masks of this run

    def _draw_masks(self, draw: int, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """``(mask_w [n, out, in], mask_b [n, out] or None)`` of draw ``draw`` (bool)."""
        o, i = self.out_features, self.in_features
        flat = rng.keep_mask(self.seed, draw, (n, self.bits_per_sample), self.keep_threshold)
        mw = flat[:, : o * i].reshape(n, o, i)
        mb = flat[:, o * i:] if self.bias is not None else None
        self.mask_w_packed = rng.pack_mask(mw)
        self.mask_b_packed = None if mb is None else rng.pack_mask(mb)
        return mw, mb

    def run(self, x, t0: int, record_states: bool = False):
        x = self._check_input(x)
        tc, n = x.shape[:2]
        w = self.weight
        cnt = self._event_counts(x)
        if not self.active:
            acc = exact_matmul(x, w.T, self.name)
            bias = self.bias
            ev_out = cnt.sum(axis=1) @ (w != 0).astype(np.int64).T  # [Tc, out]
        else:
            if self.invariant:
                if self._masks is None:
                    self._masks = self._draw_masks(self.draw, n)
                mws = [self._masks] * tc
            else:
                mws = [self._draw_masks(self.draw + self._t + k, n) for k in range(tc)]
            acc = np.empty((tc, n, self.out_features), np.int64)
            ev_out = np.zeros((tc, self.out_features), np.int64)
            bias = None if self.bias is None else np.empty((tc, n, self.out_features), np.int64)
            for k, (mw, mb) in enumerate(mws):
                wm = np.where(mw, w[None], 0)  # [N, out, in]
                acc[k] = exact_matmul(x[k][:, None, :], wm.transpose(0, 2, 1), self.name)[:, 0, :]
                ev_out[k] = np.einsum("ni,noi->o", cnt[k], (wm != 0).astype(np.int64))
                if bias is not None:
                    bias[k] = np.where(mb, self.bias[None], 0)
        self._t += tc
        width, mode = self.target.widths.accumulator, self.target.overflow.accumulator
        if self.weight_shift or self.bias is not None:
            y, sat = self._shift_bias(acc, bias)
        else:
            y, sat = _overflow_steps(acc, width, mode)
            self.count_saturations("accumulator", int(sat.sum()))
        if self.relu:
            y = np.maximum(y, 0)
        self._fill_counters(ev_out, sat)
        return y, {}
