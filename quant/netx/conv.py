r"""netx ``conv`` layers, both ways: a ``conv2d`` op + its neuron as a netx ``conv`` layer
(:func:`conv_layer`), and a netx ``conv`` layer as ``FixedConv2d`` + ``FixedCubaLIFNode`` twins
(:func:`conv_twins`).

What netx and Lava make of a ``conv`` layer (lava-dl 0.6.0 ``hdf5.Network.create_conv``,
``blocks.process.Conv``; lava-nc ``proc/conv``):

* slayer writes (``AbstractConv.export_hdf5``): ``type`` ``conv``, ``shape`` (the neuron shape
  ``[C_out, H_out, W_out]``), ``inChannels``, ``outChannels``, ``kernelSize`` ``[kh, kw]``,
  ``stride``, ``padding``, ``dilation`` (each ``[h, w]``), ``groups`` (one integer), ``weight``
  ``[C_out, C_in / groups, kh, kw]`` (float32), ``bias`` (``[C_out]``, per channel, optional),
  ``delay`` (optional) and the ``neuron`` group;
* netx reverses every shape and pair into Lava's ``(x, y)``/WHC order, truncates the weights to
  integers (``astype(int)``), flips the kernel in both spatial axes and transposes it to Lava's
  ``[C_out, kx, ky, C_in / groups]``; it applies no weight-bit optimisation, no weight exponent
  and no sign mode to a convolution, and ignores ``inChannels``, ``outChannels``, ``kernelSize``
  and ``delay``;
* Lava's ``Conv`` computes a true convolution (``scipy.signal.convolve2d``, which flips the kernel
  again) of the binary input, zero padding ``p`` on both sides of each axis, stride and dilation,
  per group; so with the file's integers :math:`F` the sum is torch's cross-correlation
  :math:`A = F \star X`, sent one step later (``a_buf``) and wrapped to 24 signed bits;
* the neuron is netx's CUBA mapping (:mod:`.read`); a ``[C_out]`` ``bias`` is per channel, a bias
  shaped like the layer in WHC order ``[W_out, H_out, C_out]`` is per neuron.

hwsnn's ``conv2d`` op computes :math:`\mathrm{shift}(W \star X, s)` with latency 1. Written:
:math:`F = W\,2^{s}` (``weight_shift`` :math:`s \ge 0` within 8-bit weights, or :math:`W`
divisible by :math:`2^{-s}`); read: :math:`W = F` (even values in :math:`[-256, 254]`: the
``loihi`` weight grid) or :math:`W = 2F`, :math:`s = -1` (:math:`F` in :math:`[-128, 127]`),
both exactly :math:`\sum F x`. Refused (a :class:`~quant.netx.h5.NetxFormatError` naming the op or
layer and the field): a conv bias (Lava's ``Conv`` has none), asymmetric padding, a latency other
than 1, sums that can reach :math:`2^{23}` (Lava's 24-bit wrap), a non-zero ``delay`` (netx drops
it), geometry beyond Lava's int8 parameters, shapes that disagree.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from hwsnn.fixed import FixedConv2d, FixedCubaLIFNode

from .fields import integers, neuron_fields, neuron_params, scaled_weights
from .h5 import NetxFormatError

__all__ = ["conv_layer", "conv_twins", "CONV_SUM_BITS"]

#: Lava's fixed-point ``Conv`` wraps its output to this many signed bits
CONV_SUM_BITS = 24
_INT8_MAX = 127  # Lava's Conv holds kernel_size, stride, padding, dilation and groups in int8


def _check_sum_range(f: np.ndarray, where: str) -> None:
    r"""Refuse weights whose sum over one filter can reach :math:`2^{23}` (Lava's 24-bit wrap)."""
    worst = int(np.abs(f).reshape(f.shape[0], -1).sum(1).max()) if f.size else 0
    if worst >= 1 << (CONV_SUM_BITS - 1):
        raise NetxFormatError(f"{where}: one filter's |weights| add up to {worst}; Lava's Conv wraps its sums at "
                              f"{CONV_SUM_BITS} signed bits, which hwsnn does not model")


def conv_layer(op: Any, neuron: Any) -> dict[str, Any]:
    """The netx ``conv`` layer of a ``conv2d`` op and the neuron op after it (values as slayer writes them)."""
    where = f"op {op.name!r} ({op.kind})"
    if op.bias is not None and np.asarray(op.bias).any():
        raise NetxFormatError(f"{where}: tables.bias: Lava's Conv has no bias (put it on the neuron)")
    if op.latency != 1:
        raise NetxFormatError(f"{where}: params.latency {op.latency}; Lava's Conv sends its sum 1 step later")
    left, right, top, bottom = (int(p) for p in op.padding)
    if left != right or top != bottom:
        raise NetxFormatError(f"{where}: params.padding {list(op.padding)} is asymmetric; netx pads both sides of an "
                              "axis alike")
    geometry = {"kernelSize": op.kernel_size, "stride": op.stride, "padding": (top, left), "dilation": op.dilation}
    for key, value in (*geometry.items(), ("groups", (op.groups,))):
        if max(int(v) for v in value) > _INT8_MAX:
            raise NetxFormatError(f"{where}: params.{key} {list(value)}: Lava's Conv holds it in int8 (at most 127)")
    f = scaled_weights(op, where)
    _check_sum_range(f, f"{where}: tables.weight")
    group, bias = neuron_params(neuron, f"op {neuron.name!r} ({neuron.kind})")
    layer: dict[str, Any] = {"type": "conv", "shape": np.asarray(op.output_shape, dtype=np.int64),
                             "inChannels": int(op.in_channels), "outChannels": int(op.out_channels)}
    for key, value in geometry.items():
        layer[key] = np.asarray(value, dtype=np.int64)
    layer["groups"] = int(op.groups)
    layer["weight"] = f.astype(np.float32)
    chw = bias.reshape(op.output_shape)
    if chw.any():
        per_channel = (chw == chw[:, :1, :1]).all()
        layer["bias"] = (chw[:, 0, 0] if per_channel else chw.transpose(2, 1, 0)).astype(np.float32)
    layer["neuron"] = group
    return layer


def _pair(layer: dict, key: str, where: str, low: int) -> tuple[int, int]:
    """A ``[h, w]`` (or one value for both) geometry field, as netx's ``expand`` and Lava's ``make_tuple``."""
    if key not in layer:
        raise NetxFormatError(f"{where}/{key}: missing")
    v = integers(layer[key], f"{where}/{key}").reshape(-1)
    if v.size not in (1, 2):
        raise NetxFormatError(f"{where}/{key}: expected one or two integers ([h, w]); got {v.size}")
    h, w = (int(v[0]), int(v[-1]))
    if min(h, w) < low or max(h, w) > _INT8_MAX:
        raise NetxFormatError(f"{where}/{key}: {[h, w]} is outside [{low}, {_INT8_MAX}] (Lava's int8 parameters)")
    return h, w


def _twin_weights(f: np.ndarray, where: str) -> tuple[np.ndarray, int]:
    r"""``(W, s)`` with :math:`\mathrm{shift}(W \star X, s) = F \star X` on the ``loihi`` weight grid."""
    if f.size and int(f.min()) >= -256 and int(f.max()) <= 254 and not np.any(f % 2):
        return f, 0
    if f.size and int(f.min()) >= -128 and int(f.max()) <= 127:
        return f * 2, -1
    raise NetxFormatError(f"{where}: values in [{int(f.min())}, {int(f.max())}]: hwsnn's loihi weights hold even "
                          "values in [-256, 254] (odd ones within [-128, 127], doubled with weight shift -1)")


def _bias(layer: dict, shape: tuple[int, int, int], where: str) -> np.ndarray:
    """The neurons' bias mantissas ``[C, H, W]``: netx's ``[C]`` per channel or ``[W, H, C]`` per neuron."""
    if "bias" not in layer:
        return np.zeros(shape, dtype=np.int64)
    b = integers(layer["bias"], f"{where}/bias", truncate=True)  # netx: astype(np.int32)
    c, h, w = shape
    if b.shape == (w, h, c):
        return b.transpose(2, 1, 0).copy()
    if b.shape == (c,):
        return np.broadcast_to(b.reshape(c, 1, 1), shape).copy()
    raise NetxFormatError(f"{where}/bias: shape {list(b.shape)}; netx takes [{c}] (per channel) or [{w}, {h}, {c}] "
                          "(per neuron, WHC order)")


def conv_twins(layer: dict, i: int, current: tuple[int, ...], where: str) -> tuple[list[nn.Module], tuple[int, int, int]]:
    """The twins of netx ``conv`` layer ``i`` after a layer of shape ``current`` ``[C, H, W]``:
    ``([FixedConv2d, FixedCubaLIFNode], output shape)`` (module docstring)."""
    if len(current) != 3:
        raise NetxFormatError(f"{where}: a conv layer needs a [C, H, W] input; the previous layer is {list(current)}")
    if "neuron" not in layer:
        raise NetxFormatError(f"{where}/neuron: missing; netx builds a conv layer with its neurons")
    if "weight" not in layer:
        raise NetxFormatError(f"{where}/weight: missing")
    if isinstance(layer["weight"], dict):
        raise NetxFormatError(f"{where}/weight: complex weights (weight/real, weight/imag) are not supported")
    f = integers(layer["weight"], f"{where}/weight")
    if f.ndim == 5 and f.shape[4] == 1:  # netx: reshape(weight.shape[:4])
        f = f[..., 0]
    if f.ndim != 4 or not f.size:
        raise NetxFormatError(f"{where}/weight: expected [C_out, C_in/groups, kh, kw]; got shape {list(f.shape)}")
    o, cg, kh, kw = (int(n) for n in f.shape)
    stride, padding = _pair(layer, "stride", where, 1), _pair(layer, "padding", where, 0)
    dilation = _pair(layer, "dilation", where, 1)
    if "groups" not in layer:
        raise NetxFormatError(f"{where}/groups: missing")
    g = integers(layer["groups"], f"{where}/groups")
    if g.shape != ():
        raise NetxFormatError(f"{where}/groups: Lava's Conv needs one integer (a scalar dataset); got shape "
                              f"{list(g.shape)}")
    groups = int(g)
    c_in, h, w = current
    if not 1 <= groups <= _INT8_MAX or o % groups or cg * groups != c_in:
        raise NetxFormatError(f"{where}/groups: {groups} with weight {list(f.shape)} does not fit {c_in} input "
                              "channels (C_in = groups * weight.shape[1], groups divides C_out)")
    if max(kh, kw) > _INT8_MAX:
        raise NetxFormatError(f"{where}/weight: kernel {[kh, kw]}: Lava's Conv holds the kernel size in int8")
    ho = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise NetxFormatError(f"{where}: a {kh}x{kw} kernel on a {h}x{w} input gives an empty output")
    shape = (o, ho, wo)
    declared = {"shape": shape, "inChannels": (c_in,), "outChannels": (o,), "kernelSize": (kh, kw)}
    for key, want in declared.items():
        if key == "shape" and key not in layer:
            raise NetxFormatError(f"{where}/shape: missing")
        if key in layer and tuple(integers(layer[key], f"{where}/{key}").reshape(-1)) != want:
            raise NetxFormatError(f"{where}/{key}: {integers(layer[key], where).reshape(-1).tolist()}; the weights and "
                                  f"the input give {list(want)}")
    if "delay" in layer and integers(layer["delay"], f"{where}/delay", truncate=True).any():
        raise NetxFormatError(f"{where}/delay: lava-dl 0.6.0 builds conv layers without delays (netx ignores this "
                              "field); not imported")
    _check_sum_range(f, f"{where}/weight")
    wt, s = _twin_weights(f, f"{where}/weight")
    du, dv, vth = neuron_fields(layer["neuron"], f"{where}/neuron")
    bias = _bias(layer, shape, where)
    conv = FixedConv2d(torch.from_numpy(wt), "loihi", None, s, stride, padding, dilation, groups,
                       weight_exponent=s, name=f"layer{i}_conv")
    neuron = FixedCubaLIFNode("loihi", vth, du, dv, bias=torch.from_numpy(bias), bias_exp=6, state_exponent=-6,
                              name=f"layer{i}_cuba")
    return [conv, neuron], shape
