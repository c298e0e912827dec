r"""``avgpool2d`` and ``maxpool2d`` in the simulator: window sums and window maxima of ``[N, C, H, W]`` steps.

Written from the manifest spec (``docs/EXPORT_FORMAT.md``) and the twins' documented equations;
no code is shared with :mod:`hwsnn.fixed`. Each op takes a chunk ``x`` ``[Tc, N, C, H, W]`` of
integers and returns ``[Tc, N, C, H', W']``.

=============  ===========================================================  =====================
op             integer rule (one step, sample ``n``)                        output dtype
=============  ===========================================================  =====================
``avgpool2d``  :math:`s = \mathrm{ovf}(\sum_{\text{window}} x)` (zero          int64
               padding counted), then :math:`s \gg \log_2 A` when ``shift``
``maxpool2d``  :math:`y = \max_{\text{window}} x` (padding never wins)      input's
               (dilation, ``ceil_mode`` as torch)
=============  ===========================================================  =====================

``ovf`` is the target's accumulator overflow (:mod:`.chunk`), counted as
``saturations['accumulator']``. In float terms the avgpool sum stands for :math:`A \cdot` the
mean (:math:`A` the window area): the division is an exponent change (output exponent
:math:`e_{in} - \log_2 A`) unless ``shift`` asks for the hardware right shift (output exponent
:math:`e_{in}`) (:mod:`.sumdivide`).

**Counting model**: routing, ``synaptic_events = neuron_updates = words_read = 0``;
``saturations[t]``: avgpool accumulator values brought into range at step ``t`` (zero for
maxpool, which never computes a sum).

Pooling geometry is torch's: output length :math:`\lfloor (L + 2p - d(k-1) - 1)/s \rfloor + 1`
(ceil with ``ceil_mode``, dropping a last window that would start in the right padding), and
padding at most half the kernel (:math:`2p \le k`, torch's limit; refused otherwise).

**Exactness.** Sums are exact ``int64`` sums of at most the window area :math:`A` terms; avgpool
refuses inputs with :math:`\max|x| \cdot A \ge 2^{63}` rather than let ``int64`` wrap.
"""

from __future__ import annotations

import numpy as np

from .. import arith
from .base import Op, register_op
from .chunk import check_chunk
from .sumdivide import SumDivideOp

__all__ = ["AvgPool2dOp", "MaxPool2dOp"]


class Pool2dOp(Op):
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
class AvgPool2dOp(Pool2dOp, SumDivideOp):
    """``avgpool2d``: zero-padded window sums, ``ovf_acc``, optional ``>> log2(divisor)`` (module docstring)."""

    kind = "avgpool2d"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self._init_window((1, 1), False)
        self.divisor = spec.divisor
        self._init_divide()

    def run(self, x, t0: int, record_states: bool = False):
        x = check_chunk(self, x)
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
class MaxPool2dOp(Pool2dOp):
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
        x = check_chunk(self, x)
        self.new_counters(x.shape[0])
        xi = x.astype(np.int64)
        xp = self._padded(xi, np.iinfo(np.int64).min)  # a pad value below every input never wins
        y = None
        for tap in self._taps(xp):
            y = tap.copy() if y is None else np.maximum(y, tap)
        return y.astype(x.dtype), {}
