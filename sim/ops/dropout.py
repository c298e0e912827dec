r"""``dropout``/``dropout2d`` in the simulator (:math:`y = x \odot B` with one mask per run), and
``dropconnect``, the masked integer dense layer.

Written from the manifest spec (``docs/EXPORT_FORMAT.md``) and the twins' documented equations;
no code is shared with :mod:`hwsnn.fixed`. The op takes a chunk ``x`` ``[Tc, N, *input_shape]``
of integers and returns ``[Tc, N, *input_shape]`` of the input's dtype.

=============  ===========================================================  =====================
op             integer rule (one step, sample ``n``)                        output dtype
=============  ===========================================================  =====================
``dropout``    :math:`y = x \odot B`, :math:`B_i = [(\mathrm{bits}(seed,    input's
               draw, i) \gg 8) < \mathit{keep\_threshold}]`, ``i`` the
               flat index over ``[N, *shape]``; inactive: :math:`y = x`
``dropout2d``  as ``dropout`` with one bit per ``(n, c)``: mask              input's
               ``[N, C, 1, ..., 1]`` broadcast over the spatial dims
=============  ===========================================================  =====================

A dropout output is the float layer's :math:`x \odot B / (1-p)` without the :math:`1/(1-p)`
(folded into the next layer's weights).

**Dropout masks.** One mask per run: drawn on the first step after :meth:`reset` with draw number
``params.draw`` for the first run of the op and +1 for every later mask (the twin's ``draws``
counter), kept for every step and chunk of the run. When the layer carries a ``mask`` table
whose ``params.mask_shape`` is the mask this batch needs, the regenerated first mask must equal
it bit for bit (else an error names the layer): the table and the parameters describe one mask.

**Counting model**: routing, ``synaptic_events = neuron_updates = words_read = 0`` and
``saturations[t] = 0`` (it never computes).

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
(Notation, exact sums and counters of this synaptic op: :mod:`sim.ops.synaptic`.)
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import rng
from .base import Op, register_op, table
from .chunk import check_chunk
from .synaptic import SynapticOp, exact_matmul, overflow_steps

__all__ = ["DropoutOp", "DropConnectOp"]


@register_op("dropout", "dropout2d")
class DropoutOp(Op):
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
        x = check_chunk(self, x)
        self.new_counters(x.shape[0])
        if not self.active:
            return x, {}
        if self.mask is None:
            self.mask = rng.keep_mask(self.seed, self.next_draw, self.mask_shape, self.keep_threshold)
            self.mask_draw = self.next_draw
            self.next_draw += 1
        return np.where(self.mask, x, np.zeros((), x.dtype)).astype(x.dtype, copy=False), {}


@register_op("dropconnect")
class DropConnectOp(SynapticOp):
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
            y, sat = overflow_steps(acc, width, mode)
            self.count_saturations("accumulator", int(sat.sum()))
        if self.relu:
            y = np.maximum(y, 0)
        self._fill_counters(ev_out, sat)
        return y, {}
