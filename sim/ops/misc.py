r"""Routing and bookkeeping ops of the simulator: dropout masks, delay FIFOs, voting, pooling, flatten.

Written from the manifest spec (``docs/EXPORT_FORMAT.md``) and the twins' documented equations;
no code is shared with :mod:`hwsnn.fixed`. Every op takes a chunk ``x`` ``[Tc, N, *input_shape]``
of integers and returns ``[Tc, N, *output_shape]``.

=============  ===========================================================  =====================
op             integer rule (one step, sample ``n``)                        output dtype
=============  ===========================================================  =====================
``dropout``    :math:`y = x \odot B`, :math:`B_i = [(\mathrm{bits}(seed,    input's
               draw, i) \gg 8) < \mathit{keep\_threshold}]`, ``i`` the
               flat index over ``[N, *shape]``; inactive: :math:`y = x`
``dropout2d``  as ``dropout`` with one bit per ``(n, c)``: mask              input's
               ``[N, C, 1, ..., 1]`` broadcast over the spatial dims
``delay``      :math:`y[t] = x[t - d]`, zeros for :math:`t < d`             input's
``voting``     :math:`s_c = \mathrm{ovf}(\sum_{k<v} x_{cv+k})`, then         int64
               :math:`s_c \gg \log_2 v` (floor) when ``shift``
``avgpool2d``  :math:`s = \mathrm{ovf}(\sum_{\text{window}} x)` (zero          int64
               padding counted), then :math:`s \gg \log_2 A` when ``shift``
``maxpool2d``  :math:`y = \max_{\text{window}} x` (padding never wins)      input's
               (dilation, ``ceil_mode`` as torch)
``flatten``    reshape of ``[N, ...]`` from ``start_dim`` to ``end_dim``    input's
=============  ===========================================================  =====================

``ovf`` is the target's accumulator overflow (``target.overflow.accumulator`` into
``target.widths.accumulator``), counted as ``saturations['accumulator']``. In float terms the
voting/avgpool sum stands for :math:`v \cdot` (or :math:`A \cdot`) the mean: the division is an
exponent change (output exponent :math:`e_{in} - \log_2 v`) unless ``shift`` asks for the
hardware right shift (output exponent :math:`e_{in}`). A dropout output is the float layer's
:math:`x \odot B / (1-p)` without the :math:`1/(1-p)` (folded into the next layer's weights).

**Dropout masks.** One mask per run: drawn on the first step after :meth:`reset` with draw number
``params.draw`` for the first run of the op and +1 for every later mask (the twin's ``draws``
counter), kept for every step and chunk of the run. When the layer carries a ``mask`` table
whose ``params.mask_shape`` is the mask this batch needs, the regenerated first mask must equal
it bit for bit (else an error names the layer): the table and the parameters describe one mask.

**Delay FIFO.** A ring buffer ``[d, N, *shape]`` with a head pointer: each step reads
``fifo[head]`` as the output, writes the input there and advances ``head = (head+1) mod d``;
zeros at :meth:`reset`; it carries across chunks. ``d = 0`` is a wire (the identity, no FIFO).

**Counting model** (``self.counters``, per step and core block of the output elements):

* ``delay`` (``d > 0``): ``neuron_updates[t, b] = N * |b|`` (every FIFO element shifts once per
  step) and ``words_read = neuron_updates`` (one state word each); ``d = 0``: all zeros (a wire).
* ``dropout``, ``dropout2d``, ``voting``, ``avgpool2d``, ``maxpool2d``, ``flatten``: routing,
  ``synaptic_events = neuron_updates = words_read = 0``.
* ``saturations[t]``: voting/avgpool accumulator values brought into range at step ``t``
  (zero for the others, which never compute).

Pooling geometry is torch's: output length :math:`\lfloor (L + 2p - d(k-1) - 1)/s \rfloor + 1`
(ceil with ``ceil_mode``, dropping a last window that would start in the right padding), and
padding at most half the kernel (:math:`2p \le k`, torch's limit; refused otherwise).

**Exactness.** Sums are exact ``int64`` sums of at most ``v`` (or the window area) terms; an op
refuses inputs with :math:`\max|x| \cdot v \ge 2^{63}` rather than let ``int64`` wrap.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import arith
from .. import rng
from .base import Events, Op, register_op

__all__ = ["Dropout", "Delay", "Voting", "AvgPool2d", "MaxPool2d", "Flatten"]



# -- shared helpers ---------------------------------------------------------------------------
def _check_chunk(op: Op, x) -> np.ndarray:
    """``x`` as an integer array ``[Tc, N, *input_shape]``, or an error naming the layer."""
    if isinstance(x, Events):
        raise op.error("takes a dense integer chunk [Tc, N, ...], not per-event input (Events)")
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        raise op.error(
            f"takes integer chunks (0/1 spikes or quantized values); got dtype {a.dtype}. "
            "Quantize first: q = round(x * 2**-e)"
        )
    want = (op.batch, *op.input_shape)
    if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
        raise op.error(f"expects a chunk [Tc, {', '.join(map(str, want))}] (time, batch, input_shape); got {a.shape}")
    return a


def _accumulator_overflow(op: Op, s: np.ndarray) -> np.ndarray:
    """``ovf_acc`` of the chunk ``s`` ``[Tc, ...]``: counted per step and in ``saturations['accumulator']``."""
    width = op.target.widths.accumulator
    mode = op.target.overflow.accumulator
    y, n = arith.overflow(s, width, mode)
    if n:
        per_step = np.array([arith.overflow(s[t], width, mode)[1] for t in range(s.shape[0])], np.int64)
        op.counters["saturations"] += per_step
    op.count_saturations("accumulator", n)
    return y


class _SumDivide(Op):
    """Shared ``shift``/``divisor_log2`` validation of voting and avgpool2d."""

    def _init_divide(self) -> None:
        self.shift, self.divisor_log2 = self.spec.shift, self.spec.divisor_log2

    def _finish(self, s: np.ndarray) -> np.ndarray:
        s = _accumulator_overflow(self, s)
        if self.shift:
            s = s >> self.divisor_log2  # int64 arithmetic shift: floor toward -inf
        return s


# -- dropout ----------------------------------------------------------------------------------
@register_op("dropout", "dropout2d")
class Dropout(Op):
    """``dropout``/``dropout2d``: ``y = x * B`` with one mask ``B`` per run (module docstring)."""

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.kind = spec.kind
        if self.kind == "dropout2d":
            self.mask_shape = (self.batch, self.input_shape[0]) + (1,) * (len(self.input_shape) - 1)
        else:
            self.mask_shape = (self.batch, *self.input_shape)
        self.active, self.seed, self.keep_threshold = spec.active, spec.seed, spec.keep_threshold
        self.first_draw = spec.draw
        #: draw number of the next mask (the twin's ``draws``)
        self.next_draw = self.first_draw
        self.mask: Optional[np.ndarray] = None
        self.mask_draw: Optional[int] = None
        packed, stored = spec.mask, spec.mask_shape
        if self.active and packed is not None and stored is not None and tuple(stored) == self.mask_shape:
            want = rng.unpack_mask(np.asarray(packed, np.uint8), self.mask_shape)
            got = rng.keep_mask(self.seed, self.first_draw, self.mask_shape, self.keep_threshold)
            if not np.array_equal(want, got):
                bad = int(np.count_nonzero(want != got))
                raise self.error(
                    f"the stored 'mask' table differs from the mask regenerated from seed={self.seed}, "
                    f"draw={self.first_draw}, keep_threshold={self.keep_threshold} in {bad} of "
                    f"{want.size} bits (tampered table or inconsistent params)"
                )

    def reset(self) -> None:
        self.mask = None
        self.mask_draw = None

    def run(self, x, t0: int, record_states: bool = False):
        x = _check_chunk(self, x)
        self.new_counters(x.shape[0])
        if not self.active:
            return x, {}
        if self.mask is None:
            self.mask = rng.keep_mask(self.seed, self.next_draw, self.mask_shape, self.keep_threshold)
            self.mask_draw = self.next_draw
            self.next_draw += 1
        return np.where(self.mask, x, np.zeros((), x.dtype)).astype(x.dtype, copy=False), {}


# -- delay --------------------------------------------------------------------------------------
@register_op("delay")
class Delay(Op):
    """``delay``: ring buffer of depth ``d`` per element, ``y[t] = x[t - d]`` (module docstring)."""

    kind = "delay"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.d = spec.delay_steps
        self.fifo: Optional[np.ndarray] = None
        self.head = 0

    def reset(self) -> None:
        self.fifo = None
        self.head = 0

    def run(self, x, t0: int, record_states: bool = False):
        x = _check_chunk(self, x)
        tc, d = x.shape[0], self.d
        self.new_counters(tc)
        if d == 0:
            return x, {}
        if self.fifo is None:
            self.fifo = np.zeros((d, *x.shape[1:]), x.dtype)
        elif not np.can_cast(x.dtype, self.fifo.dtype, "safe"):
            self.fifo = self.fifo.astype(np.result_type(self.fifo.dtype, x.dtype))
        fifo, h = self.fifo, self.head
        y = np.empty((tc, *x.shape[1:]), fifo.dtype)
        # Steps t < d read slots written before this chunk; later steps read this chunk's x[t - d].
        k = min(tc, d)
        y[:k] = fifo[(h + np.arange(k)) % d]
        if tc > d:
            y[d:] = x[: tc - d]
        # Write: step t goes to slot (h + t) mod d; only the last min(tc, d) writes survive.
        ts = np.arange(tc - k, tc)
        fifo[(h + ts) % d] = x[tc - k :]
        self.head = (h + tc) % d
        self.count_updates(1)  # one state word per element
        return y, {}


# -- voting -------------------------------------------------------------------------------------
@register_op("voting")
class Voting(_SumDivide):
    """``voting``: sums over groups of ``voting_size`` in the last dim (module docstring)."""

    kind = "voting"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.v = spec.voting_size
        self._init_divide()

    def run(self, x, t0: int, record_states: bool = False):
        x = _check_chunk(self, x)
        self.new_counters(x.shape[0])
        if arith.max_abs(x) * self.v >= arith.I64_LIMIT:
            raise self.error(f"inputs up to {arith.max_abs(x)} summed in groups of {self.v} would overflow int64")
        s = arith.as_i64(x).reshape(*x.shape[:-1], x.shape[-1] // self.v, self.v).sum(axis=-1)
        return self._finish(s), {}


# -- pooling ------------------------------------------------------------------------------------
def _out_len(L: int, k: int, s: int, p: int, dil: int, ceil_mode: bool) -> int:
    """Output length of a pooling axis (torch's rule: with ``ceil_mode`` the last window must start
    inside the input or the left padding)."""
    eff = dil * (k - 1) + 1
    room = L + 2 * p - eff
    if room < 0:
        return 0
    n = (room + s - 1) // s + 1 if ceil_mode else room // s + 1
    if ceil_mode and (n - 1) * s >= L + p:
        n -= 1
    return n


class _Pool2d(Op):
    """Window geometry shared by avgpool2d and maxpool2d (steps ``[N, C, H, W]``)."""

    def _init_window(self, dilation: tuple[int, int], ceil_mode: bool) -> None:
        self.k, self.s, self.p = self.spec.kernel_size, self.spec.stride, self.spec.padding
        self.dil, self.ceil_mode = dilation, ceil_mode
        self.out_hw = tuple(self.output_shape[1:])

    def _taps(self, xp: np.ndarray):
        """Every tap ``[..., oh, ow]`` of the windows of the padded chunk ``xp``."""
        (oh, ow), (sh, sw), (dh, dw) = self.out_hw, self.s, self.dil
        for i in range(self.k[0]):
            for j in range(self.k[1]):
                r, c = i * dh, j * dw
                yield xp[..., r : r + sh * (oh - 1) + 1 : sh, c : c + sw * (ow - 1) + 1 : sw]

    def _padded(self, x: np.ndarray, value) -> np.ndarray:
        """``x`` padded by ``p`` on the top/left and enough on the bottom/right for every window."""
        (H, W), (ph, pw) = self.input_shape[1:], self.p
        need = [
            (o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(self.out_hw, self.s, self.dil, self.k)
        ]
        bottom, right = max(0, need[0] - H - ph), max(0, need[1] - W - pw)
        width = [(0, 0)] * (x.ndim - 2) + [(ph, bottom), (pw, right)]
        return np.pad(x, width, constant_values=value)


@register_op("avgpool2d")
class AvgPool2d(_Pool2d, _SumDivide):
    """``avgpool2d``: zero-padded window sums, ``ovf_acc``, optional ``>> log2(divisor)`` (module docstring)."""

    kind = "avgpool2d"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self._init_window((1, 1), False)
        self.divisor = spec.divisor
        self._init_divide()

    def run(self, x, t0: int, record_states: bool = False):
        x = _check_chunk(self, x)
        self.new_counters(x.shape[0])
        area = self.k[0] * self.k[1]
        if arith.max_abs(x) * area >= arith.I64_LIMIT:
            raise self.error(f"inputs up to {arith.max_abs(x)} summed over windows of {area} would overflow int64")
        xp = self._padded(arith.as_i64(x), 0)
        s = np.zeros((*x.shape[:-2], *self.out_hw), np.int64)
        for tap in self._taps(xp):
            s += tap
        return self._finish(s), {}


@register_op("maxpool2d")
class MaxPool2d(_Pool2d):
    """``maxpool2d``: window maximum with dilation and ``ceil_mode`` (padding never wins)."""

    kind = "maxpool2d"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self._init_window(spec.dilation, spec.ceil_mode)
        # Every window must hold at least one input element (else its maximum is undefined).
        for L, o, k, s, p, d in zip(self.input_shape[1:], self.out_hw, self.k, self.s, self.p, self.dil):
            taps = np.arange(o)[:, None] * s - p + np.arange(k)[None, :] * d
            if not ((taps >= 0) & (taps < L)).any(axis=1).all():
                raise self.error(
                    f"some pooling window holds only padding (kernel {self.k}, stride {self.s}, padding {self.p}, "
                    f"dilation {self.dil}); torch requires padding <= kernel_size / 2"
                )

    def run(self, x, t0: int, record_states: bool = False):
        x = _check_chunk(self, x)
        self.new_counters(x.shape[0])
        xi = x.astype(np.int64)
        xp = self._padded(xi, np.iinfo(np.int64).min)  # a pad value below every input never wins
        y = None
        for tap in self._taps(xp):
            y = tap.copy() if y is None else np.maximum(y, tap)
        return y.astype(x.dtype), {}


# -- flatten ------------------------------------------------------------------------------------
@register_op("flatten")
class Flatten(Op):
    """``flatten``: ``torch.flatten(step, start_dim, end_dim)`` of one step ``[N, ...]``."""

    kind = "flatten"

    def run(self, x, t0: int, record_states: bool = False):
        x = _check_chunk(self, x)
        self.new_counters(x.shape[0])
        return x.reshape(x.shape[0], self.batch, *self.output_shape), {}
