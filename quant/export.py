r"""Export of an integer twin network: ``manifest.json`` + ``tables.npz`` (+ ``hex/*.mem``).

The format is specified in ``docs/EXPORT_FORMAT.md``; :func:`describe_layer` turns one twin into
its manifest entry and integer tables, :func:`export` writes a whole network atomically (build in
a temporary sibling directory, then rename) and deterministically (same twins, same bytes), and
:func:`load_export` reads it back, verifying the format version and every table's SHA-256.

The reading side lives in :mod:`sim.bundle` (NumPy only), so that the simulator can read an
export without torch; this module is the writer.
"""

from __future__ import annotations

import copy
import io
import json
import math
import os
import re
import shutil
import uuid
import zipfile
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

import targets
from hwsnn import __version__
from hwsnn.fixed import (
    FixedAvgPool2d,
    FixedConv2d,
    FixedCubaLIFNode,
    FixedDelay,
    FixedDropConnectLinear,
    FixedDropout,
    FixedDropout2d,
    FixedFlatten,
    FixedIFNode,
    FixedLIFNode,
    FixedLinear,
    FixedMaxPool2d,
    FixedModule,
    FixedSynapseFilter,
    FixedVotingLayer,
    SynapticEvents,
)
from hwsnn.fixed.conv import _pad4
from hwsnn.fixed.recurrent import FixedRecurrent
from sim.bundle import FORMAT, FORMAT_VERSION, Export, ExportError, hex_words, load_export, sha256_of

__all__ = ["describe_layer", "export", "load_export", "Export", "ExportError", "twin_layers"]

Shape = tuple[int, ...]

_NAME_OK = re.compile(r"[^A-Za-z0-9_.-]")


# -- one layer ------------------------------------------------------------------------------------
def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _int_dtype(bits: int, signed: bool) -> np.dtype:
    """Smallest NumPy integer dtype for ``bits`` (the table dtype of the manifest)."""
    for b in (8, 16, 32, 64):
        if bits <= b:
            return np.dtype(f"{'int' if signed else 'uint'}{b}")
    raise ExportError(f"no integer dtype holds {bits} bits")


class _Table:
    """A table before writing: values plus its metadata (bits, signedness, exponent)."""

    def __init__(self, values: Union[torch.Tensor, np.ndarray], bits: int, signed: bool, exponent: Optional[int]) -> None:
        arr = _np(values) if torch.is_tensor(values) else np.asarray(values)
        if arr.dtype.kind not in "iub":
            raise ExportError(f"a table must hold integers; got {arr.dtype}")
        dtype = _int_dtype(bits, signed)
        if arr.size:
            lo = -(1 << (bits - 1)) if signed else 0
            hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
            a64 = arr.astype(np.int64)
            if a64.min() < lo or a64.max() > hi:
                raise ExportError(f"values [{a64.min()}, {a64.max()}] do not fit {bits} {'signed' if signed else 'unsigned'} bits")
        self.values = arr.astype(dtype, order="C", copy=True)  # (ascontiguousarray would make a 0-d array 1-d)
        self.bits, self.signed, self.exponent = int(bits), bool(signed), None if exponent is None else int(exponent)


def _width_table(values: torch.Tensor, width: targets.Width, exponent: Optional[int]) -> _Table:
    return _Table(values, width.bits, width.signed, exponent)


def _mask_table(packed: torch.Tensor) -> _Table:
    return _Table(packed, 8, False, None)


def _step_probe(twin: nn.Module, input_shape: Shape) -> Shape:
    """Output shape of one step of ``twin`` for one sample (run on a copy, zeros in)."""
    probe = copy.deepcopy(twin)
    probe.step_mode = "s"
    if hasattr(probe, "reset"):
        probe.reset()
    with torch.no_grad():
        y = probe(torch.zeros((1, *input_shape), dtype=torch.int64))
    shape = y.shape if isinstance(y, SynapticEvents) else tuple(y.shape)
    return tuple(int(s) for s in shape[1:])


def _held_draw(twin: Any) -> Optional[int]:
    """The draw of the masks a twin holds for its current sample (dropout; invariant drop-connect), else None."""
    if isinstance(twin, FixedDropConnectLinear) and not twin.invariant:
        return None
    return None if twin.mask_draw is None else int(twin.mask_draw)


def _synaptic_params(twin: Any) -> dict:
    return dict(
        weight_shift=int(twin.weight_shift),
        input_exponent=int(twin.input_exponent),
        weight_exponent=int(twin.weight_exponent),
        output_exponent=int(twin.output_exponent),
    )


def _neuron_params(twin: Any) -> tuple[str, dict]:
    """The op name and params of a neuron twin (``if``, ``lif``, ``cuba``)."""
    op = "cuba" if isinstance(twin, FixedCubaLIFNode) else "lif" if isinstance(twin, FixedLIFNode) else "if"
    params = dict(
        threshold=int(twin.threshold), threshold_int=int(twin.threshold_int), reset=twin.reset_kind,
        v_reset=int(twin.v_reset), max_spikes=int(twin.max_spikes), readout=bool(twin.readout),
        bias_exp=int(twin.bias_exp), state_exponent=int(twin.state_exponent), input_shift=int(twin.input_shift),
    )
    if op in ("lif", "cuba"):
        params.update(decay_mem=int(twin.decay_mem), decay_input=bool(twin.decay_input))
    if op == "cuba":
        params["decay_syn"] = int(twin.decay_syn)
    return op, params


def _neuron_bias_table(twin: Any) -> _Table:
    bias = twin.bias.reshape(()) if twin.bias.numel() == 1 else twin.bias  # one shared bias: a scalar table
    return _width_table(bias, twin.target.widths.bias, twin.state_exponent + twin.bias_exp)


def _delay_width(max_delay: int) -> targets.Width:
    return targets.Width(bits=max(int(max_delay).bit_length(), 1), signed=False)


def describe_layer(
    twin: nn.Module,
    input_shape: Sequence[int],
    input_kind: str = "spikes",
    input_exponent: Optional[int] = 0,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The manifest entry of one twin and its integer tables by role.

    ``input_shape`` is one sample's input shape (no time/batch axis); ``input_kind`` and
    ``input_exponent`` describe what flows in (they pass through for copying layers). The entry's
    ``tables`` maps each role to itself (:func:`export` renames them ``<layer>.<role>`` and adds
    each table's bits, signedness, exponent and checksum to the manifest).
    """
    entry, tabs = _describe(twin, tuple(int(s) for s in input_shape), input_kind, input_exponent)
    return entry, {k: t.values for k, t in tabs.items()}


def _describe(twin: nn.Module, input_shape: Shape, in_kind: str, in_exp: Optional[int]) -> tuple[dict, dict[str, _Table]]:
    if not isinstance(twin, FixedModule):
        raise TypeError(
            f"export: {type(twin).__name__} is not an integer twin; convert the float network first "
            "(layer.to_fixed(target, ...) or hwsnn.fixed.to_fixed)"
        )
    tg = twin.target
    w = tg.widths
    # a recurrent population keeps its shape (and on Xylo takes only events: no probe with zeros)
    out_shape = input_shape if isinstance(twin, FixedRecurrent) else _step_probe(twin, input_shape)
    tabs: dict[str, _Table] = {}
    out_kind, out_exp = "values", None

    if isinstance(twin, FixedLinear):
        op = "dense"
        per_event = twin.per_event
        cap = None
        if per_event:
            cap = tg.synapse.max_input_events if twin.first_layer else tg.neuron.max_spikes_per_step
            cap = int(cap if cap is not None else tg.neuron.max_spikes_per_step)
        params = dict(
            in_features=int(twin.in_features), out_features=int(twin.out_features), latency=int(twin.latency),
            first_layer=bool(twin.first_layer), accumulation=tg.synapse.accumulation, event_cap=cap,
            clip_events=bool(twin.clip), **_synaptic_params(twin),
        )
        tabs["weight"] = _width_table(twin.weight, w.weight, twin.weight_exponent)
        if twin.bias is not None:
            tabs["bias"] = _width_table(twin.bias, w.bias, twin.output_exponent)
        if twin.delays is not None:
            tabs["delays"] = _width_table(twin.delays, _delay_width(tg.synapse.max_delay), None)
        out_kind, out_exp = ("counts", None) if per_event else ("values", twin.output_exponent)
    elif isinstance(twin, FixedConv2d):
        op = "conv2d"
        params = dict(
            in_channels=int(twin.in_channels), out_channels=int(twin.out_channels),
            kernel_size=list(twin.kernel_size), stride=list(twin.stride),
            padding=list(_pad4(twin.padding, twin.kernel_size, twin.dilation, twin.stride)),
            dilation=list(twin.dilation), groups=int(twin.groups), latency=int(twin.latency),
            first_layer=bool(twin.first_layer), **_synaptic_params(twin),
        )
        tabs["weight"] = _width_table(twin.weight, w.weight, twin.weight_exponent)
        if twin.bias is not None:
            tabs["bias"] = _width_table(twin.bias, w.bias, twin.output_exponent)
        out_exp = twin.output_exponent
    elif isinstance(twin, FixedDropConnectLinear):
        op = "dropconnect"
        params = dict(
            in_features=twin.in_features, out_features=twin.out_features, has_bias=twin.bias is not None,
            relu=twin.relu, invariant=twin.invariant, p=twin.p, seed=int(twin.seed), keep_threshold=int(twin.keep_threshold),
            # invariant masks held for the current sample are exported with their draw; per-step masks
            # are transient, so a run starts from the next draw and no mask table is written
            active=bool(twin.training), draw=int(held if (held := _held_draw(twin)) is not None else twin.draws),
            mask_batch=None if twin.mask_batch is None or held is None else int(twin.mask_batch), **_synaptic_params(twin),
        )
        tabs["weight"] = _width_table(twin.weight, w.weight, twin.weight_exponent)
        if twin.bias is not None:
            tabs["bias"] = _width_table(twin.bias, w.bias, twin.output_exponent)
        if held is not None:
            for role, packed in twin.mask_tables().items():
                tabs[role] = _mask_table(packed)
        out_exp = twin.output_exponent
    elif isinstance(twin, (FixedIFNode, FixedLIFNode)):
        op, params = _neuron_params(twin)
        tabs["bias"] = _neuron_bias_table(twin)
        out_kind, out_exp = ("spikes" if twin.max_spikes == 1 else "counts"), 0
    elif isinstance(twin, FixedRecurrent):
        op = "recurrent"
        neuron_op, params = _neuron_params(twin.neuron)
        proj = twin.projection
        params.update(
            neuron_op=neuron_op, features=int(twin.features), latency=int(twin.latency),
            accumulation=tg.synapse.accumulation, event_cap=int(tg.neuron.max_spikes_per_step) if twin.per_event else None,
            clip_events=bool(proj.clip), weight_shift=int(proj.weight_shift), weight_exponent=int(proj.weight_exponent),
        )
        tabs["bias"] = _neuron_bias_table(twin.neuron)
        tabs["weight"] = _width_table(proj.weight, w.weight, proj.weight_exponent)
        out_kind, out_exp = ("spikes" if twin.neuron.max_spikes == 1 else "counts"), 0
    elif isinstance(twin, FixedSynapseFilter):
        op = "synapse_filter"
        params = dict(k=int(twin.k), state_exponent=int(twin.state_exponent), one=int(twin.one),
                      decay_factor=None if twin.decay_factor is None else int(twin.decay_factor))
        out_exp = twin.state_exponent
    elif isinstance(twin, FixedDropout):
        op = "dropout2d" if isinstance(twin, FixedDropout2d) else "dropout"
        params = dict(
            p=twin.p, seed=int(twin.seed), keep_threshold=int(twin.keep_threshold), active=bool(twin.training),
            draw=int(twin.mask_draw if twin.mask_draw is not None else twin.draws),
            mask_shape=None if twin.mask_shape_drawn is None else [int(s) for s in twin.mask_shape_drawn],
        )
        for role, packed in twin.mask_tables().items():
            tabs[role] = _mask_table(packed)
        out_kind, out_exp = in_kind, in_exp
    elif isinstance(twin, FixedDelay):
        op = "delay"
        params = dict(delay_steps=int(twin.delay_steps))
        out_kind, out_exp = in_kind, in_exp
    elif isinstance(twin, FixedVotingLayer):
        op = "voting"
        params = dict(voting_size=int(twin.voting_size), shift=bool(twin.shift), divisor_log2=twin.divisor_log2)
        out_exp = twin.output_exponent(in_exp) if in_exp is not None else None
    elif isinstance(twin, FixedAvgPool2d):
        op = "avgpool2d"
        params = dict(kernel_size=list(twin.kernel_size), stride=list(twin.stride), padding=list(twin.padding),
                      divisor=int(twin.divisor), divisor_log2=twin.divisor_log2, shift=bool(twin.shift))
        out_exp = twin.output_exponent(in_exp) if in_exp is not None else None
    elif isinstance(twin, FixedMaxPool2d):
        op = "maxpool2d"
        params = dict(kernel_size=list(twin.kernel_size), stride=list(twin.stride), padding=list(twin.padding),
                      dilation=list(twin.dilation), ceil_mode=bool(twin.ceil_mode))
        out_kind, out_exp = in_kind, in_exp
    elif isinstance(twin, FixedFlatten):
        op = "flatten"
        params = dict(start_dim=int(twin.start_dim), end_dim=int(twin.end_dim))
        out_kind, out_exp = in_kind, in_exp
    else:
        raise TypeError(f"export: no export rule for {type(twin).__name__}")
    entry = {
        "name": twin.layer_name,
        "op": op,
        "input_shape": list(input_shape),
        "input_kind": in_kind,
        "output_shape": list(out_shape),
        "output": {"kind": out_kind, "exponent": None if out_exp is None else int(out_exp)},
        "params": params,
        "tables": {role: role for role in tabs},
    }
    return entry, tabs


# -- the network -------------------------------------------------------------------------------
def twin_layers(model: nn.Module) -> list[FixedModule]:
    """The twins of ``model`` in execution order: the module itself, or the leaves of nested
    :class:`torch.nn.Sequential` containers. Anything else is refused with its name."""
    if isinstance(model, FixedModule):
        return [model]
    if isinstance(model, nn.Sequential):
        out: list[FixedModule] = []
        for name, child in model.named_children():
            if isinstance(child, (nn.Sequential, FixedModule)):
                out.extend(twin_layers(child))
            else:
                raise TypeError(
                    f"export: child {name!r} ({type(child).__name__}) is not an integer twin; every layer of the "
                    "exported network must be a hwsnn.fixed twin (convert it with .to_fixed(target))"
                )
        return out
    raise TypeError(
        f"export: expected a twin or an nn.Sequential of twins; got {type(model).__name__} "
        "(networks with branches are not exportable yet; recurrence: hwsnn.fixed.FixedRecurrent)"
    )


def _infer_input_shape(layers: Sequence[FixedModule]) -> Shape:
    for tw in layers:
        if isinstance(tw, (FixedLinear, FixedDropConnectLinear)):
            return (int(tw.in_features),)
        if isinstance(tw, FixedConv2d):
            break
        if not isinstance(tw, (FixedDropout, FixedDelay)):
            break
    raise ValueError(
        "export: cannot infer the input shape of this network (it does not start with a dense layer); "
        "pass input_shape=(C, H, W) or (features,) for one sample"
    )


def _unique_names(layers: Sequence[FixedModule]) -> list[str]:
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, tw in enumerate(layers):
        base = _NAME_OK.sub("_", tw.layer_name or type(tw).__name__) or f"layer{i}"
        name = base
        if name in seen:
            name = f"{base}_{i}"
        seen[name] = i
        names.append(name)
    return names


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A deterministic ``.npz`` (fixed zip timestamps, stored uncompressed): same arrays, same bytes."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def _write(path: Path, data: Union[bytes, str]) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(path, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8", "newline": "\n"})) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def export(
    model: nn.Module,
    out_dir: Union[str, os.PathLike],
    *,
    input_shape: Optional[Sequence[int]] = None,
    input_kind: str = "spikes",
    input_exponent: Optional[int] = 0,
    dt: float = 1e-3,
    hex_files: bool = True,
    overwrite: bool = False,
    examples: Optional[dict[str, np.ndarray]] = None,
) -> Path:
    """Write the export directory of the twin network ``model`` (see ``docs/EXPORT_FORMAT.md``).

    :param model: a twin or an :class:`torch.nn.Sequential` of twins (all on one target)
    :param out_dir: the directory to create (its parent must exist)
    :param input_shape: one sample's input shape; default: the first dense layer's ``in_features``
    :param input_kind: ``'spikes'`` (0/1), ``'counts'`` (event counts) or ``'values'``
    :param input_exponent: exponent of ``values`` inputs (0 for spikes/counts)
    :param dt: the duration of one time step in seconds (for the real-time factor)
    :param hex_files: also write ``hex/<table>.mem`` (``$readmemh``, full-width two's complement)
    :param overwrite: replace an existing ``out_dir`` (otherwise ``FileExistsError``)
    :param examples: optional test vectors written as ``examples.npz``: ``{"inputs": int array
        [T, N, *input_shape], "labels": int array [N]}`` (labels optional); ``hwsnn simulate`` and
        ``hwsnn report`` use them when no inputs are given
    :returns: the path of the export directory
    """
    if input_kind not in ("spikes", "counts", "values"):
        raise ValueError(f"export: input_kind must be 'spikes', 'counts' or 'values'; got {input_kind!r}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"export: dt must be a finite number of seconds > 0; got {dt!r}")
    layers = twin_layers(model)
    if not layers:
        raise ValueError("export: the network has no layers")
    tg = layers[0].target
    for tw in layers[1:]:
        if tw.target != tg:
            raise ValueError(
                f"export: layer {tw.layer_name!r} is for target {tw.target.name!r}, the first layer for {tg.name!r}; "
                "a network is exported for one target"
            )
    shape = tuple(int(s) for s in (input_shape if input_shape is not None else _infer_input_shape(layers)))
    names = _unique_names(layers)
    entries: list[dict] = []
    tables_meta: dict[str, dict] = {}
    arrays: dict[str, np.ndarray] = {}
    kind, exp = input_kind, (0 if input_kind != "values" else input_exponent)
    for name, tw in zip(names, layers):
        try:
            entry, tabs = _describe(tw, shape, kind, exp)
        except (RuntimeError, ValueError) as err:
            raise ValueError(f"export: layer {name!r} ({type(tw).__name__}) does not accept one step of shape "
                             f"{list(shape)}: {err}") from err
        entry["name"] = name
        entry["tables"] = {}
        for role, t in tabs.items():
            tname = f"{name}.{role}"
            entry["tables"][role] = tname
            arrays[tname] = t.values
            meta = {
                "layer": name, "role": role, "shape": list(t.values.shape), "dtype": str(t.values.dtype),
                "bits": t.bits, "signed": t.signed, "exponent": t.exponent, "npz_key": tname,
                "sha256": sha256_of(t.values),
            }
            if hex_files:
                meta["hex"] = {"file": f"hex/{tname}.mem", "word_bits": t.bits, "digits": (t.bits + 3) // 4}
            tables_meta[tname] = meta
        entries.append(entry)
        shape, kind, exp = tuple(entry["output_shape"]), entry["output"]["kind"], entry["output"]["exponent"]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "producer": {"name": "hwsnn", "version": __version__},
        "target": {"name": tg.name, "parameters": targets.to_dict(tg)},
        "dt": float(dt),
        "input": {"shape": list(entries[0]["input_shape"]), "exponent": 0 if input_kind != "values" else input_exponent,
                  "kind": input_kind},
        "layers": entries,
        "tables": tables_meta,
        "npz": {"file": "tables.npz"},
    }
    ex_arrays = _check_examples(examples, manifest["input"]) if examples is not None else None
    return _write_dir(Path(out_dir), manifest, arrays, hex_files, overwrite, ex_arrays)


def _check_examples(examples: dict, spec: dict) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    unknown = set(examples) - {"inputs", "labels"}
    if unknown or "inputs" not in examples:
        raise ValueError(f"export: examples must be {{'inputs': [T, N, ...], 'labels': [N]}}; got keys {sorted(examples)}")
    for key, val in examples.items():
        arr = _np(val) if torch.is_tensor(val) else np.asarray(val)
        if arr.dtype.kind not in "iub":
            raise TypeError(f"export: examples[{key!r}] must be integers; got {arr.dtype}")
        out[key] = arr.astype(np.int64 if key == "labels" else np.int32 if arr.dtype.kind != "b" else np.int8)
    x = out["inputs"]
    if x.ndim != 2 + len(spec["shape"]) or list(x.shape[2:]) != list(spec["shape"]):
        raise ValueError(f"export: examples['inputs'] must be [T, N, {', '.join(map(str, spec['shape']))}]; got {list(x.shape)}")
    if "labels" in out and out["labels"].shape != (x.shape[1],):
        raise ValueError(f"export: examples['labels'] must be [N] = [{x.shape[1]}]; got {list(out['labels'].shape)}")
    return out


def _write_dir(out: Path, manifest: dict, arrays: dict[str, np.ndarray], hex_files: bool, overwrite: bool,
               examples: Optional[dict[str, np.ndarray]] = None) -> Path:
    out = out.expanduser().absolute()
    parent = out.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"export: the parent directory {parent} does not exist")
    if out.exists() and not overwrite:
        raise FileExistsError(f"export: {out} exists; pass overwrite=True (CLI: --overwrite) to replace it")
    for stale in parent.glob(f".{out.name}.tmp-*"):  # left by an interrupted export
        shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        npz = _npz_bytes(arrays)
        manifest["npz"]["sha256"] = sha256_of(npz)
        _write(tmp / "tables.npz", npz)
        if examples is not None:
            ex_bytes = _npz_bytes(examples)
            manifest["examples"] = {"file": "examples.npz", "sha256": sha256_of(ex_bytes),
                                    "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in examples.items()}}
            _write(tmp / "examples.npz", ex_bytes)
        if hex_files and arrays:
            (tmp / "hex").mkdir()
            for tname, arr in arrays.items():
                meta = manifest["tables"][tname]
                text = "".join(line + "\n" for line in hex_words(arr, meta["hex"]["word_bits"], meta["signed"]))
                _write(tmp / meta["hex"]["file"], text)
                meta["hex"]["sha256"] = sha256_of(text.encode())
        _write(tmp / "manifest.json", json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            old = parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out

