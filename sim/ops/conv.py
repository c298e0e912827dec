r"""The ``conv2d`` op of the simulator (NumPy, ``int64``); notation, exact sums and counters:
:mod:`sim.ops.synaptic`.

``conv2d``: :math:`A = W \star X` is the exact integer cross-correlation of ``torch.conv2d``
(stride, zero padding ``[left, right, top, bottom]``, dilation, groups); overflow, shift, bias and
latency as ``dense`` (``sum`` targets only).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import arith
from .base import register_op
from .synaptic import SynapticOp

__all__ = ["Conv2dOp", "int_conv2d"]

_max_abs, _matmul_bound = arith.max_abs, arith.matmul_bound


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


@register_op("conv2d")
class Conv2dOp(SynapticOp):
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


