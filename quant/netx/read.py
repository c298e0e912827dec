r"""Read a lava-dl netx HDF5 file into hwsnn ``loihi`` twins and an export (``quant.from_netx``).

netx's mapping (lava-dl 0.6.0 ``lava.lib.dl.netx.hdf5.Network``), applied layer by layer:

* ``input``: ``shape`` is the network's input shape; its ``neuron`` receives the input spikes as
  ``a_in``. A pass-through neuron (``iDecay`` 4096, ``vThMant`` 0: a spike gives :math:`v = 64 > 0`,
  no spike :math:`v = 0`) is dropped; any other becomes a CUBA twin (netx gives it no bias).
* ``flatten``: the previous output flattened (an hwsnn ``flatten`` op where it is not flat yet).
* ``dense``: ``weight`` ``[out, in]`` (a 1-D weight is reshaped to ``[out, -1]``, as netx does),
  integer values; netx's ``optimize_weight_bits`` and Lava's sign mode give the weights Lava uses
  :math:`F \ll b` with ``weight_exp`` :math:`-b` (:mod:`quant.netx.weights`): the twin holds those
  weights with ``weight_shift`` :math:`-b`. ``delay``: a scalar, ``[out]`` (per post neuron; checked
  first, as netx does) or ``[in]``, clamped to 62 and truncated as netx does, becomes per-synapse
  delays (``DelayDense``). ``neuron``: ``CUBA``/``LOIHI``, :math:`du = \mathit{iDecay} - 1`,
  :math:`dv = \mathit{vDecay}`, ``vth = vThMant``; ``bias`` (``[out]`` or a scalar) is the bias
  mantissa with ``bias_exp = 6``.
* ``dense_rec``: as ``dense`` plus ``weight_rec`` ``[out, out]``, optimised by netx together with
  ``weight`` (one shift; Lava picks each matrix's sign mode): a dense twin and a recurrent
  population (latency 1, Lava's recurrent ``Dense``). A ``delay`` there is refused (lava-dl 0.6.0
  builds that ``DelayDense`` without the weight exponent).

Refused with a :class:`~quant.netx.h5.NetxFormatError` naming the file, the layer and the field:
layer kinds netx does not build or hwsnn does not import (``conv``, ``pool``, ``average``, ...),
complex weights, a ``dense`` without ``neuron`` (netx's integrator threshold :math:`2^{17}` does not
fit Loihi's 17-bit mantissa), graded spikes (``messageBits`` > 0), non-integer weights, values that
do not fit the target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
from torch import nn

from hwsnn.fixed import FitError, FixedCubaLIFNode, FixedLinear
from hwsnn.fixed.flatten import FixedFlatten
from hwsnn.fixed.recurrent import FixedRecurrent
from hwsnn.functional import set_step_mode
from targets.bundle import extend_bundle

from ..export import export
from .h5 import NetxFormatError, h5py_module
from .weights import NetxWeightError, netx_joint_synapses, netx_synapse
from .write import NETX_FILE

__all__ = ["NetxImport", "read_netx", "from_netx"]

_MAX_DELAY = 62  # netx clamps larger delays (with a warning)


@dataclass
class NetxImport:
    """What :func:`from_netx` made: ``twin`` (an ``nn.Sequential`` of ``loihi`` twins, step mode
    ``'m'``), the network's ``input_shape`` and the ``export`` directory (``None`` unless asked for)."""

    twin: nn.Sequential
    input_shape: tuple[int, ...]
    export: Optional[Path] = None


def _read_group(g: Any) -> dict[str, Any]:
    h5py = h5py_module()
    out: dict[str, Any] = {}
    for key, item in g.items():
        out[key] = _read_group(item) if isinstance(item, h5py.Group) else item[()]
    return out


def read_netx(path: Union[str, "os.PathLike[str]"]) -> list[dict[str, Any]]:
    """The layers of a netx file as dicts (``layer/0`` first; datasets as numpy values, groups nested)."""
    h5py = h5py_module()
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such netx file")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise NetxFormatError(f"{p}: not an HDF5 file ({exc})") from None
    with f:
        if "layer" not in f or not isinstance(f["layer"], h5py.Group):
            raise NetxFormatError(f"{p}: no group 'layer' (a netx file has layer/0 ... layer/n-1)")
        names = list(f["layer"].keys())
        idx = sorted(int(n) for n in names if n.isdigit())
        if not names or len(idx) != len(names) or idx != list(range(len(idx))):
            raise NetxFormatError(f"{p}: layer: sub-groups must be named 0 ... n-1; got {sorted(names)}")
        layers = []
        for i in idx:
            g = f["layer"][str(i)]
            if not isinstance(g, h5py.Group):
                raise NetxFormatError(f"{p}: layer/{i} is not a group")
            layers.append(_read_group(g))
    return layers


# -- field readers --------------------------------------------------------------------------------------
def _text(value: Any, where: str) -> str:
    v = np.asarray(value)
    if v.shape not in ((), (1,)):
        raise NetxFormatError(f"{where}: expected one string; got shape {list(v.shape)}")
    v = v.reshape(())[()]
    if isinstance(v, bytes):
        return v.decode("ascii", "replace").strip("\x00")
    if isinstance(v, str):
        return v
    raise NetxFormatError(f"{where}: expected a string; got {type(v).__name__}")


def _integers(value: Any, where: str, truncate: bool = False) -> np.ndarray:
    """An array of integer values (``truncate``: toward zero, as netx's ``astype(int)``)."""
    a = np.asarray(value)
    if a.dtype.kind not in "biuf":
        raise NetxFormatError(f"{where}: expected numbers; got dtype {a.dtype}")
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise NetxFormatError(f"{where}: holds a non-finite value")
        if not truncate and np.any(a != np.trunc(a)):
            raise NetxFormatError(f"{where}: holds non-integer values (slayer writes integers; quantize first)")
        a = np.trunc(a)
    return a.astype(np.int64)


def _scalar(group: dict, key: str, where: str) -> int:
    if key not in group:
        raise NetxFormatError(f"{where}/{key}: missing")
    a = _integers(group[key], f"{where}/{key}")
    if a.size != 1:
        raise NetxFormatError(f"{where}/{key}: expected one integer; got shape {list(a.shape)}")
    return int(a.reshape(()))


def _neuron(group: Any, where: str) -> tuple[int, int, int]:
    """``(du, dv, vth)`` of a ``neuron`` group."""
    if not isinstance(group, dict):
        raise NetxFormatError(f"{where}: expected a group")
    if "type" not in group:
        raise NetxFormatError(f"{where}/type: missing")
    kind = _text(group["type"], f"{where}/type")
    if kind not in ("CUBA", "LOIHI"):
        raise NetxFormatError(f"{where}/type: {kind!r}; hwsnn imports CUBA (Loihi LIF) neurons only")
    if "messageBits" in group and _scalar(group, "messageBits", where) != 0:
        raise NetxFormatError(f"{where}/messageBits: graded spikes are not supported by hwsnn's loihi target")
    i_decay, v_decay = _scalar(group, "iDecay", where), _scalar(group, "vDecay", where)
    for key, v in (("iDecay", i_decay), ("vDecay", v_decay)):
        if not 0 <= v <= 4096:
            raise NetxFormatError(f"{where}/{key}: {v} is outside [0, 4096]")
    return i_decay - 1, v_decay, _scalar(group, "vThMant", where)


def _delays(value: Any, n_out: int, n_in: int, where: str) -> np.ndarray:
    """netx's delay handling: clamp to 62, broadcast a scalar, ``[out]`` per row, ``[in]`` per column."""
    d = _integers(value, where, truncate=True)
    if d.size and int(d.min()) < 0:
        raise NetxFormatError(f"{where}: negative delay {int(d.min())}")
    d = np.minimum(d, _MAX_DELAY)
    if d.ndim == 0:
        return np.full((n_out, n_in), int(d), dtype=np.int64)
    if d.ndim == 1 and d.size == n_out:
        return np.repeat(d.reshape(-1, 1), n_in, axis=1)
    if d.ndim == 1 and d.size == n_in:
        return np.repeat(d.reshape(1, -1), n_out, axis=0)
    raise NetxFormatError(f"{where}: shape {list(d.shape)} fits neither the {n_out} post nor the {n_in} pre neurons")


def _matrix(layer: dict, key: str, n_out: Optional[int], where: str) -> np.ndarray:
    if key not in layer:
        raise NetxFormatError(f"{where}/{key}: missing")
    if isinstance(layer[key], dict):
        raise NetxFormatError(f"{where}/{key}: complex weights ({key}/real, {key}/imag) are not supported")
    w = _integers(layer[key], f"{where}/{key}")
    if w.ndim == 1 and n_out:
        w = w.reshape(n_out, -1)
    if w.ndim != 2:
        raise NetxFormatError(f"{where}/{key}: expected a matrix; got shape {list(w.shape)}")
    if n_out is not None and w.shape[0] != n_out:
        raise NetxFormatError(f"{where}/{key}: {w.shape[0]} rows; shape says {n_out} neurons")
    return w


def _dense(layer: dict, i: int, n_in: int, where: str, rec: bool = False) -> tuple[list[nn.Module], int]:
    if "neuron" not in layer:
        raise NetxFormatError(f"{where}/neuron: missing; netx's non-spiking integrator (vThMant 2^17) does not fit "
                              "Loihi's 17-bit threshold mantissa in hwsnn")
    n_out = int(np.prod(_integers(layer["shape"], f"{where}/shape"))) if "shape" in layer else None
    w = _matrix(layer, "weight", n_out, where)
    if w.shape[1] != n_in:
        raise NetxFormatError(f"{where}/weight: {w.shape[1]} inputs; the previous layer has {n_in} neurons")
    rec_syn = None
    try:
        if rec:  # netx optimises [weight | weight_rec] together; Lava picks each sign mode
            w_rec = _matrix(layer, "weight_rec", w.shape[0], where)
            if w_rec.shape != (w.shape[0], w.shape[0]):
                raise NetxFormatError(f"{where}/weight_rec: shape {list(w_rec.shape)}; expected [{w.shape[0]}, "
                                      f"{w.shape[0]}]")
            syn, rec_syn = netx_joint_synapses(w, w_rec)
        else:
            syn = netx_synapse(w)
    except NetxWeightError as exc:
        raise NetxFormatError(f"{where}/weight: {exc}") from None
    delays = None
    if "delay" in layer:
        if rec:
            raise NetxFormatError(f"{where}/delay: lava-dl 0.6.0 builds a delayed dense_rec without its weight "
                                  "exponent; not imported")
        delays = torch.from_numpy(_delays(layer["delay"], w.shape[0], n_in, f"{where}/delay"))
    du, dv, vth = _neuron(layer["neuron"], f"{where}/neuron")
    bias = np.zeros(w.shape[0], dtype=np.int64)
    if "bias" in layer:
        b = _integers(layer["bias"], f"{where}/bias", truncate=True)  # netx: astype(np.int32)
        if b.size not in (1, w.shape[0]):
            raise NetxFormatError(f"{where}/bias: {b.size} values for {w.shape[0]} neurons")
        bias = np.broadcast_to(b.reshape(-1), (w.shape[0],)).copy()
    dense = FixedLinear(torch.from_numpy(syn.weight), "loihi", weight_shift=syn.weight_exp, delays=delays,
                        weight_exponent=syn.weight_exp, name=f"layer{i}_dense")
    neuron = FixedCubaLIFNode("loihi", vth, du, dv, bias=torch.from_numpy(bias), bias_exp=6, state_exponent=-6,
                              name=f"layer{i}_cuba")
    if rec_syn is not None:
        return [dense, FixedRecurrent(neuron, torch.from_numpy(rec_syn.weight), rec_syn.weight_exp, 1,
                                      name=f"layer{i}_rec")], w.shape[0]
    return [dense, neuron], w.shape[0]


def from_netx(path: Union[str, "os.PathLike[str]"], out_dir: Union[str, "os.PathLike[str]", None] = None, *,
              overwrite: bool = False) -> NetxImport:
    """Import the netx HDF5 file ``path`` (module docstring) as ``loihi`` twins; with ``out_dir``, also
    write the hwsnn export there (``quant.export``) with the netx file inside it as the ``netx`` view
    (covered by the bundle digest).

    :raises NetxFormatError: a layer or field hwsnn cannot import exactly (the message names it)
    """
    p = Path(path)
    layers = read_netx(p)
    where0 = f"{p}: layer/0"
    if _text(layers[0].get("type", b""), f"{where0}/type") != "input":
        raise NetxFormatError(f"{where0}/type: the first layer must be 'input'")
    if "shape" not in layers[0]:
        raise NetxFormatError(f"{where0}/shape: missing")
    shape = tuple(int(s) for s in _integers(layers[0]["shape"], f"{where0}/shape").reshape(-1))
    if not shape or min(shape) < 1:
        raise NetxFormatError(f"{where0}/shape: {list(shape)} is not a neuron shape")
    modules: list[nn.Module] = []
    try:
        if "neuron" in layers[0]:
            du, dv, vth = _neuron(layers[0]["neuron"], f"{where0}/neuron")
            if not (du == 4095 and vth == 0):  # not a pass-through: the input neurons run on Lava
                modules.append(FixedCubaLIFNode("loihi", vth, du, dv, state_exponent=-6, name="layer0_cuba"))
        current = shape
        for i, layer in enumerate(layers[1:], start=1):
            where = f"{p}: layer/{i}"
            kind = _text(layer.get("type", b""), f"{where}/type")
            if kind == "flatten":
                if len(current) > 1:
                    modules.append(FixedFlatten(1, -1, "loihi", name=f"layer{i}_flatten", step_mode="m"))
                current = (int(np.prod(current)),)
            elif kind in ("dense", "dense_rec"):
                if len(current) != 1:
                    raise NetxFormatError(f"{where}: a dense layer after a {list(current)} layer needs a flatten layer")
                mods, n = _dense(layer, i, current[0], where, rec=kind == "dense_rec")
                modules.extend(mods)
                current = (n,)
            else:
                raise NetxFormatError(f"{where}/type: {kind!r} layers are not imported by hwsnn (input, flatten and "
                                      "dense, dense_rec are)")
    except FitError as exc:
        raise NetxFormatError(f"{p}: {exc}") from None
    twin = nn.Sequential(*modules)
    set_step_mode(twin, "m")
    result = NetxImport(twin, shape)
    if out_dir is not None:
        out = export(twin, out_dir, input_shape=shape, input_kind="spikes", overwrite=overwrite)
        bundle = extend_bundle(out, {NETX_FILE: p.read_bytes()},
                               {"views": {"netx": {"format": "netx", "files": [NETX_FILE], "source": str(p.name)}}})
        result.export = bundle.path
    return result
