r"""Write a ``loihi`` export as a lava-dl netx HDF5 file (the ``netx`` view; ``quant.to_netx``).

The file follows lava-dl 0.6.0's slayer writer (``export_hdf5`` of its blocks) field by field, so
that ``lava.lib.dl.netx.hdf5.Network`` builds Lava processes computing the integers of hwsnn's
simulator (``../shared/targets/loihi.md``):

* group ``layer``, sub-groups ``"0"`` … ``"n-1"`` in feed-forward order;
* ``layer/0``: ``type`` ``input`` (bytes ``S10``, shape (1,)), ``shape`` (int64: the network's input
  shape) and a ``neuron`` group: the export's first op if it is a neuron, else a pass-through CUBA
  neuron (``iDecay`` 4096, ``vDecay`` 4096, ``vThMant`` 0: a binary input spike gives
  :math:`v = 64 > 0` and spikes in the same step);
* ``flatten``: ``type``, ``shape`` (the flattened shape);
* a ``dense`` op and the neuron after it: ``type`` ``dense``, ``shape`` ``[out]``, ``inFeatures``,
  ``outFeatures``, ``weight`` (float32 ``[out, in]``), ``bias`` (float32 ``[out]``, only when not
  zero), ``delay`` (float32 ``[out]`` — or ``[in]`` — when the op has delays) and ``neuron/``
  ``type`` ``CUBA``, ``iDecay``, ``vDecay``, ``vThMant``, ``refDelay`` 1, ``gradedSpike`` False;
* a ``dense`` op followed by a ``recurrent`` op: ``type`` ``dense_rec``, the same fields plus
  ``weight_rec`` (float32 ``[out, out]``), the neuron of the recurrent op (netx optimises both
  matrices with one shift; no delays there, no latency other than 1).

Exactness (each refused with a :class:`~quant.netx.h5.NetxFormatError` naming the op and the field):

* weights: Lava computes :math:`a = \lfloor \sum (F \ll b)\,s / 2^b \rfloor = \sum F s` with the
  file's integers :math:`F` (:mod:`quant.netx.weights`), so the file holds
  :math:`F = W\,2^{s_w}` (``weight_shift`` :math:`s_w \ge 0`, or :math:`W` divisible by
  :math:`2^{-s_w}`), and netx's weight optimisation and Lava's sign mode must give back exactly
  :math:`F \ll b`; the dense op has no bias (Lava's ``Dense`` has none);
* neurons: ``cuba`` ``iDecay = du + 1``, ``vDecay = dv``; ``lif`` (input not decayed)
  ``iDecay = 4096`` (the current is this step's input), ``vDecay = dv``; ``if`` ``iDecay = 4096``,
  ``vDecay = 0``; ``vThMant`` = the threshold mantissa; the bias :math:`B = m \ll e` must be a
  multiple of 64 (netx's ``bias_exp`` is 6) with :math:`B / 64` in 13 signed bits;
* delays: netx gives one delay per post neuron (``[out]``) or per pre neuron (``[in]``), so the
  op's ``[out, in]`` delays must be constant along one axis (``[in]`` only where ``in != out``:
  netx reads a vector of length ``out`` as per post neuron).

Not built by netx, so refused: conv (not yet written by this view), pooling, voting, dropout
masks, synapse filters, any other target than ``loihi``.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from targets.bundle import Bundle, load_bundle

from ..views import register_view
from .h5 import NetxFormatError, h5py_module
from .weights import NetxWeightError, netx_joint_synapses, netx_synapse

__all__ = ["netx_layers", "netx_bytes", "to_netx", "NETX_FILE", "PASS_THROUGH"]

#: the view's file name inside a bundle
NETX_FILE = "netx.h5"
#: the neuron of an input layer that passes binary spikes through unchanged in the same step
PASS_THROUGH = {"type": "CUBA", "iDecay": 4096, "vDecay": 4096, "vThMant": 0, "refDelay": 1, "gradedSpike": False}
_NEURON_KINDS = ("if", "lif", "cuba")
_BIAS_EXP = 6  # netx: bias_mant = bias, bias_exp = 6


def _neuron_params(op: Any, where: str) -> tuple[dict, np.ndarray]:
    """``(neuron group, bias [n] in 64ths)`` of a neuron op (module docstring)."""
    if op.reset != "zero" or op.max_spikes != 1:
        raise NetxFormatError(f"{where}: params.reset {op.reset!r} with {op.max_spikes} spikes per step; Lava's LIF "
                              "resets to zero and fires once")
    if op.kind == "cuba":
        i_decay, v_decay = int(op.decay_syn) + 1, int(op.decay_mem)
    elif op.kind == "lif":
        if op.decay_input:
            raise NetxFormatError(f"{where}: params.decay_input is true; Lava's LIF has no decayed-input form")
        i_decay, v_decay = 4096, int(op.decay_mem)
    else:
        i_decay, v_decay = 4096, 0
    bias = np.broadcast_to(np.asarray(op.bias, dtype=np.int64), op.output_shape)
    per = op.bias_exp_per_neuron
    e = np.broadcast_to(np.asarray(op.bias_exp if per is None else per, dtype=np.int64), op.output_shape)
    value = np.where(e >= 0, bias << np.maximum(e, 0), bias >> np.maximum(-e, 0))  # B = m << e (floor >> for e < 0)
    if np.any(value % (1 << _BIAS_EXP)):
        raise NetxFormatError(f"{where}: tables.bias: the bias B = mant << bias_exp holds values that are not multiples "
                              f"of 64; netx applies bias_exp = {_BIAS_EXP} to every neuron")
    mant = value >> _BIAS_EXP
    if mant.size and (int(mant.min()) < -(1 << 12) or int(mant.max()) > (1 << 12) - 1):
        raise NetxFormatError(f"{where}: tables.bias: B / 64 in [{int(mant.min())}, {int(mant.max())}] does not fit "
                              "Lava's 13-bit bias mantissa")
    group = {"type": "CUBA", "iDecay": i_decay, "vDecay": v_decay, "vThMant": int(op.threshold), "refDelay": 1,
             "gradedSpike": False}
    return group, mant.reshape(-1)


def _file_weights(op: Any, where: str) -> np.ndarray:
    r"""The file's integers :math:`F = W\,2^{s_w}`, checked against netx and Lava (module docstring)."""
    f = _scaled(op, where)
    try:
        syn = netx_synapse(f)
    except NetxWeightError as exc:
        raise NetxFormatError(f"{where}: tables.weight {exc}") from None
    if not np.array_equal(syn.weight, f << syn.scale_bits):
        n = int(np.count_nonzero(syn.weight != f << syn.scale_bits))
        raise NetxFormatError(f"{where}: tables.weight: netx's weight optimisation and Lava's {syn.lava_mode} sign mode "
                              f"would change {n} weight(s) (file weights W * 2^weight_shift in [{int(f.min())}, "
                              f"{int(f.max())}])")
    return f


def _delay_vector(op: Any, where: str) -> Optional[np.ndarray]:
    d = op.delays
    if d is None:
        return None
    d = np.asarray(d, dtype=np.int64)
    if not d.any():
        return None
    n_out, n_in = d.shape
    if (d == d[:, :1]).all():
        return d[:, 0]
    if (d == d[:1, :]).all() and n_in != n_out:
        return d[0, :]
    raise NetxFormatError(f"{where}: tables.delays: netx holds one delay per post neuron ([out]) or per pre neuron "
                          f"([in], when in != out); these [{n_out}, {n_in}] delays vary along both axes")


def _scaled(op: Any, where: str) -> np.ndarray:
    r""":math:`W\,2^{s_w}` of a dense or recurrent op (refused where it is not an integer or beyond 8 bits)."""
    w = np.asarray(op.weight, dtype=np.int64)
    s = int(op.weight_shift)
    if s < 0:
        if np.any(w % (1 << -s)):
            raise NetxFormatError(f"{where}: params.weight_shift {s} floors each step's sum; netx's weight exponent only "
                                  "undoes its own scaling, so the sums cannot be written as integer weights")
        return w >> -s
    f = w << s
    if s > 0 and f.size and (int(f.max()) > 255 or int(f.min()) < -256):
        raise NetxFormatError(f"{where}: params.weight_shift {s}: netx has no positive weight exponent, so the file "
                              f"holds W * 2^{s}, here in [{int(f.min())}, {int(f.max())}], beyond the 8-bit weights")
    return f


def _dense_rec(op: Any, rec: Any, where: str) -> dict[str, Any]:
    """A ``dense_rec`` layer: the dense op's weights, the recurrent op's (``weight_rec``) and its neuron.
    netx optimises ``[weight | weight_rec]`` together (one shift) and Lava picks each matrix's sign mode;
    both must come back as the file's integers shifted by that one amount."""
    rwhere = f"op {rec.name!r} (recurrent)"
    if op.bias is not None and np.asarray(op.bias).any():
        raise NetxFormatError(f"{where}: tables.bias: Lava's Dense has no bias (put it on the neuron)")
    if _delay_vector(op, where) is not None:
        raise NetxFormatError(f"{where}: tables.delays: lava-dl 0.6.0 builds a delayed dense_rec without its weight "
                              "exponent; a recurrent layer with delays is not written")
    if rec.latency != 1:
        raise NetxFormatError(f"{rwhere}: params.latency {rec.latency}; Lava's recurrent Dense returns a spike after 1 step")
    f_in, f_rec = _scaled(op, where), _scaled(rec, rwhere)
    try:
        syn_in, syn_rec = netx_joint_synapses(f_in, f_rec)
    except NetxWeightError as exc:
        raise NetxFormatError(f"{where}: tables.weight with {rwhere} tables.weight {exc}") from None
    for syn, f, w in ((syn_in, f_in, where), (syn_rec, f_rec, rwhere)):
        if not np.array_equal(syn.weight, f << syn.scale_bits):
            raise NetxFormatError(f"{w}: tables.weight: netx's joint weight optimisation and Lava's {syn.lava_mode} sign "
                                  f"mode would change {int(np.count_nonzero(syn.weight != f << syn.scale_bits))} weight(s)")
    group, bias = _neuron_params(rec.neuron, rwhere)
    layer: dict[str, Any] = {"type": "dense_rec", "shape": np.asarray([op.out_features], dtype=np.int64),
                             "inFeatures": int(op.in_features), "outFeatures": int(op.out_features),
                             "weight": f_in.astype(np.float32), "weight_rec": f_rec.astype(np.float32)}
    if bias.any():
        layer["bias"] = bias.astype(np.float32)
    layer["neuron"] = group
    return layer


#: the targets whose bundles the view writes: ``loihi``, and ``loihi_netx`` (the same semantics with
#: the weight shift fixed at 0, so that every trained network's weights are the file's integers)
NETX_TARGETS = ("loihi", "loihi_netx")


def netx_layers(bundle: Bundle) -> list[dict[str, Any]]:
    """The netx layers of a ``loihi`` bundle: one dict per ``layer/<i>`` group, values as written
    (numpy arrays with slayer's dtypes, ``str``/``int``/``bool`` scalars; ``neuron`` a nested dict)."""
    if bundle.target.name not in NETX_TARGETS:
        raise NetxFormatError(f"{bundle.path}: target {bundle.target.name!r}; netx HDF5 describes Loihi networks "
                              "(export for target 'loihi_netx', or 'loihi' with weight shifts the file can carry)")
    net = bundle.network
    ops = list(net.ops)
    for op in ops:  # what netx cannot build at all, before any value
        if op.kind not in ("dense", "flatten", "recurrent", *_NEURON_KINDS):
            raise NetxFormatError(f"op {op.name!r} ({op.kind}): netx cannot build this op (the view writes input, "
                                  "flatten, dense + neuron and dense + recurrent layers)")
    shape = np.asarray(net.input_shape, dtype=np.int64)
    if net.input_kind != "spikes":
        raise NetxFormatError(f"{bundle.path}: input.kind {net.input_kind!r}; netx's input layer takes binary spikes")
    layer0: dict[str, Any] = {"type": "input", "shape": shape, "neuron": dict(PASS_THROUGH)}
    if ops and ops[0].kind in _NEURON_KINDS:
        op = ops.pop(0)
        group, bias = _neuron_params(op, f"op {op.name!r} ({op.kind})")
        if bias.any():
            raise NetxFormatError(f"op {op.name!r} ({op.kind}): tables.bias: netx's input layer gives its neuron no bias")
        layer0["neuron"] = group
    layers = [layer0]
    i = 0
    while i < len(ops):
        op = ops[i]
        where = f"op {op.name!r} ({op.kind})"
        if op.kind == "flatten":
            layers.append({"type": "flatten", "shape": np.asarray(op.output_shape, dtype=np.int64)})
            i += 1
            continue
        if op.kind != "dense":
            raise NetxFormatError(f"{where}: netx has no layer for this op here (a neuron or recurrent op follows a "
                                  "dense op: netx's dense and dense_rec layers)")
        nxt = ops[i + 1] if i + 1 < len(ops) else None
        if nxt is not None and nxt.kind == "recurrent":
            layers.append(_dense_rec(op, nxt, where))
            i += 2
            continue
        if nxt is None or nxt.kind not in _NEURON_KINDS:
            raise NetxFormatError(f"{where}: a netx dense layer is a synapse and its neurons; this dense op is not "
                                  "followed by an if/lif/cuba or recurrent op")
        if op.bias is not None and np.asarray(op.bias).any():
            raise NetxFormatError(f"{where}: tables.bias: Lava's Dense has no bias (put it on the neuron)")
        layer: dict[str, Any] = {"type": "dense", "shape": np.asarray([op.out_features], dtype=np.int64),
                                 "inFeatures": int(op.in_features), "outFeatures": int(op.out_features),
                                 "weight": _file_weights(op, where).astype(np.float32)}
        group, bias = _neuron_params(nxt, f"op {nxt.name!r} ({nxt.kind})")
        if bias.any():
            layer["bias"] = bias.astype(np.float32)
        delay = _delay_vector(op, where)
        if delay is not None:
            layer["delay"] = delay.astype(np.float32)
        layer["neuron"] = group
        layers.append(layer)
        i += 2
    return layers


def _write_group(h5: Any, values: dict[str, Any], layer: bool) -> None:
    """One group: a layer's ``type`` as slayer writes it (``S10``, shape (1,)), every other value as is."""
    for key, value in values.items():
        if isinstance(value, dict):
            _write_group(h5.create_group(key), value, False)
        elif key == "type" and layer:
            h5.create_dataset("type", (1,), "S10", [value.encode("ascii")])
        else:
            h5.create_dataset(key, data=value)


def netx_bytes(layers: list[dict[str, Any]]) -> bytes:
    """The HDF5 file of :func:`netx_layers`' layers (``layer/<i>/...``, slayer's dtypes)."""
    h5py = h5py_module()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        top = f.create_group("layer")
        for i, layer in enumerate(layers):
            _write_group(top.create_group(str(i)), layer, True)
    return buf.getvalue()


@register_view("netx", "lava-dl netx HDF5 (Loihi): the network as lava.lib.dl.netx.hdf5.Network loads it")
def make_netx(bundle: Bundle) -> dict[str, bytes]:
    """The ``netx`` view: ``{"netx.h5": bytes}``."""
    return {NETX_FILE: netx_bytes(netx_layers(bundle))}


def to_netx(export: Union[str, "os.PathLike[str]", Bundle], path: Union[str, "os.PathLike[str]"]) -> Path:
    """Write the netx HDF5 file of the ``loihi`` export ``export`` to ``path`` (atomically); returns ``path``.

    :raises NetxFormatError: an op netx cannot build exactly (the message names it and the field)
    """
    bundle = export if isinstance(export, Bundle) else load_bundle(export)
    data = netx_bytes(netx_layers(bundle))
    out = Path(path)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"to_netx: the directory {out.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
