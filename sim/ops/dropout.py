r"""``dropout``/``dropout2d`` in the simulator: :math:`y = x \odot B` with one mask per run.

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
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import rng
from .base import Op, register_op
from .chunk import check_chunk

__all__ = ["Dropout"]


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
        x = check_chunk(self, x)
        self.new_counters(x.shape[0])
        if not self.active:
            return x, {}
        if self.mask is None:
            self.mask = rng.keep_mask(self.seed, self.next_draw, self.mask_shape, self.keep_threshold)
            self.mask_draw = self.next_draw
            self.next_draw += 1
        return np.where(self.mask, x, np.zeros((), x.dtype)).astype(x.dtype, copy=False), {}
