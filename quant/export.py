r"""Export of an integer twin network as a signed bundle (``docs/EXPORT_FORMAT.md``).

Each twin describes itself as an op of the export format (``twin.to_spec(...)``,
:mod:`targets.bundle`); :func:`network_spec` chains them into a
:class:`~targets.bundle.Network` (checked as a whole against the target), and :func:`export` writes
it atomically with the test vectors and the **reference outputs**: every layer's output of the
network being exported on the example inputs (or, without examples, on fixed probe inputs),
recorded from the twin at export time. The report checks the simulator against them, so that an
edited and re-signed bundle is caught. The same twins give byte-identical bundles.

The reader is :func:`targets.bundle.load_bundle` (``quant.load_export``, ``sim.load_export``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from hwsnn import __version__
from hwsnn.fixed import FixedConv2d, FixedDelay, FixedDropConnectLinear, FixedDropout, FixedLinear, FixedModule, FixedXyloCore
from targets import bundle as fmt
from targets.bundle import Bundle as Export
from targets.bundle import BundleError as ExportError
from targets.bundle import load_bundle as load_export

from .record import layer_names, record_outputs, twin_layers

__all__ = ["describe_layer", "network_spec", "export", "load_export", "Export", "ExportError", "twin_layers",
           "layer_names", "probe_inputs", "REFERENCE_SAMPLES"]

Shape = tuple[int, ...]

#: samples of the example inputs whose every layer output is recorded as the reference
REFERENCE_SAMPLES = 64
#: probe inputs when there are no examples: T steps x N samples (T grows with the network's depth in steps)
PROBE_SHAPE = (32, 4)
#: the longest probe run
MAX_PROBE_STEPS = 256


def describe_layer(
    twin: nn.Module,
    input_shape: Sequence[int],
    input_kind: str = "spikes",
    input_exponent: Optional[int] = 0,
) -> tuple[dict, dict[str, np.ndarray]]:
    """The manifest entry of one twin and its integer tables by role (``twin.to_spec(...)`` as plain
    data; the entry's ``tables`` maps each role to itself, :func:`export` names them ``<layer>.<role>``)."""
    if not isinstance(twin, FixedModule):
        raise TypeError(f"export: {type(twin).__name__} is not an integer twin; convert the float network first "
                        "(layer.to_fixed(target, ...) or hwsnn.fixed.to_fixed)")
    spec = twin.to_spec(twin.layer_name, tuple(int(s) for s in input_shape), input_kind, input_exponent)
    entry = spec.to_dict()
    entry["tables"] = {role: role for role in entry["tables"]}
    return entry, {k: v.copy() for k, v in spec.tables().items()}


def _infer_input_shape(layers: Sequence[FixedModule]) -> Shape:
    for tw in layers:
        if isinstance(tw, (FixedLinear, FixedDropConnectLinear)):
            return (int(tw.in_features),)
        if isinstance(tw, FixedXyloCore):
            return (int(tw.inputs),)
        if isinstance(tw, FixedConv2d) or not isinstance(tw, (FixedDropout, FixedDelay)):
            break
    raise ValueError("export: cannot infer the input shape of this network (it does not start with a dense layer); "
                     "pass input_shape=(C, H, W) or (features,) for one sample")


def network_spec(model: nn.Module, *, input_shape: Optional[Sequence[int]] = None, input_kind: str = "spikes",
                 input_exponent: Optional[int] = 0, dt: float = 1e-3) -> fmt.Network:
    """The typed description of the twin network ``model`` (a twin or an ``nn.Sequential`` of twins,
    all on one target), validated as a chain and against the target; raises
    :class:`~targets.bundle.SpecError` listing what does not fit."""
    if input_kind not in fmt.KINDS:
        raise ValueError(f"export: input_kind must be one of {', '.join(fmt.KINDS)}; got {input_kind!r}")
    layers = twin_layers(model)
    if not layers:
        raise ValueError("export: the network has no layers")
    tg = layers[0].target
    for tw in layers[1:]:
        if tw.target != tg:
            raise ValueError(f"export: layer {tw.layer_name!r} is for target {tw.target.name!r}, the first layer for "
                             f"{tg.name!r}; a network is exported for one target")
    shape = tuple(int(s) for s in (input_shape if input_shape is not None else _infer_input_shape(layers)))
    kind, exp = input_kind, (0 if input_kind != "values" else int(input_exponent or 0))
    ops = []
    for name, tw in zip(layer_names(layers), layers):
        try:
            op = tw.to_spec(name, shape, kind, exp)
        except (RuntimeError, ValueError) as err:
            if isinstance(err, fmt.SpecError):
                raise
            raise ValueError(f"export: layer {name!r} ({type(tw).__name__}) does not accept one step of shape "
                             f"{list(shape)}: {err}") from err
        ops.append(op)
        shape, kind, exp = op.output_shape, op.output_kind, op.output_exponent
    first = ops[0]
    return fmt.Network(target=tg, input_shape=first.input_shape, input_kind=input_kind,
                       input_exponent=0 if input_kind != "values" else int(input_exponent or 0), ops=tuple(ops), dt=dt)


def depth_steps(network: fmt.Network) -> int:
    """Steps an input needs to reach the last layer: every latency, delay FIFO and largest
    per-synapse delay on the way."""
    total = 0
    for op in network.ops:
        total += int(getattr(op, "latency", 0) or 0) + int(getattr(op, "delay_steps", 0) or 0)
        delays = getattr(op, "delays", None)
        total += int(delays.max()) if delays is not None and delays.size else 0
    return total


def probe_inputs(network: fmt.Network, steps: Optional[int] = None, samples: int = PROBE_SHAPE[1]) -> np.ndarray:
    """Fixed pseudo-random inputs ``[steps, samples, *input_shape]`` for the reference outputs of an
    export without examples: 0/1 spikes (p = 1/4) for spike and count inputs, integers in
    ``[-8, 8]`` for value inputs (seed 0 of NumPy's PCG64); ``steps`` defaults to 32 plus the
    network's :func:`depth_steps` (at most :data:`MAX_PROBE_STEPS`), so that the inputs reach every
    layer."""
    steps = min(PROBE_SHAPE[0] + depth_steps(network), MAX_PROBE_STEPS) if steps is None else int(steps)
    gen = np.random.default_rng(0)
    shape = (steps, samples, *network.input_shape)
    if network.input_kind == "values":
        return gen.integers(-8, 9, size=shape).astype(np.int8)
    return (gen.random(shape) < 0.25).astype(np.int8)


def _smallest_int(a: np.ndarray) -> np.ndarray:
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for dt in (np.int8, np.int16, np.int32, np.int64):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return a.astype(dt)
    return a.astype(np.int64)  # pragma: no cover


def _reference(model: nn.Module, network: fmt.Network, inputs: np.ndarray) -> tuple[bytes, dict]:
    """``reference.npz`` (inputs and every layer's output, from the twin) and its manifest section."""
    rec = record_outputs(model, torch.from_numpy(inputs.astype(np.int64)))
    arrays = {"inputs": _smallest_int(inputs)}
    for op in network.ops:
        arrays[f"outputs/{op.name}"] = _smallest_int(rec[op.name])
    section = {"file": "reference.npz", "layers": [op.name for op in network.ops],
               "steps": int(inputs.shape[0]), "samples": int(inputs.shape[1])}
    return fmt.npz_bytes(arrays, compress=True), section


def _check_examples(examples: dict, network: fmt.Network) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    unknown = set(examples) - {"inputs", "labels"}
    if unknown or "inputs" not in examples:
        raise ValueError(f"export: examples must be {{'inputs': [T, N, ...], 'labels': [N]}}; got keys {sorted(examples)}")
    for key, val in examples.items():
        arr = val.detach().cpu().numpy() if torch.is_tensor(val) else np.asarray(val)
        if arr.dtype.kind not in "iub":
            raise TypeError(f"export: examples[{key!r}] must be integers; got {arr.dtype}")
        out[key] = arr.astype(np.int64 if key == "labels" else np.int32 if arr.dtype.kind != "b" else np.int8)
    x = out["inputs"]
    want = list(network.input_shape)
    if x.ndim != 2 + len(want) or list(x.shape[2:]) != want:
        raise ValueError(f"export: examples['inputs'] must be [T, N, {', '.join(map(str, want))}]; got {list(x.shape)}")
    if "labels" in out and out["labels"].shape != (x.shape[1],):
        raise ValueError(f"export: examples['labels'] must be [N] = [{x.shape[1]}]; got {list(out['labels'].shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"export: examples['inputs'] must have T, N >= 1; got {list(x.shape)}")
    return out


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
    reference_samples: int = REFERENCE_SAMPLES,
) -> Path:
    """Write the signed bundle of the twin network ``model`` (see ``docs/EXPORT_FORMAT.md``).

    :param model: a twin or an :class:`torch.nn.Sequential` of twins (all on one target)
    :param out_dir: the directory to create (its parent must exist)
    :param input_shape: one sample's input shape; default: the first dense layer's ``in_features``
    :param input_kind: ``'spikes'`` (0/1), ``'counts'`` (event counts) or ``'values'``
    :param input_exponent: exponent of ``values`` inputs (0 for spikes/counts)
    :param dt: the duration of one time step in seconds (for the real-time factor)
    :param hex_files: also write ``hex/<table>.mem`` (``$readmemh``, full-width two's complement)
    :param overwrite: replace an existing bundle (otherwise ``FileExistsError``; a directory that is
        not an hwsnn bundle is never replaced)
    :param examples: optional test vectors written as ``examples.npz``: ``{"inputs": int array
        [T, N, *input_shape], "labels": int array [N]}`` (labels optional); ``hwsnn simulate`` and
        ``hwsnn report`` use them when no inputs are given
    :param reference_samples: the reference outputs cover the first this many example samples
        (without examples: :func:`probe_inputs`)
    :returns: the path of the export directory
    """
    fmt.check_destination(Path(out_dir), overwrite)
    network = network_spec(model, input_shape=input_shape, input_kind=input_kind, input_exponent=input_exponent, dt=dt)
    members: dict[str, bytes] = {}
    sections: dict = {}
    if examples is not None:
        ex = _check_examples(examples, network)
        members["examples.npz"] = fmt.npz_bytes(ex)
        sections["examples"] = {"file": "examples.npz", "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)}
                                                                   for k, v in ex.items()}}
        ref_in = ex["inputs"][:, :max(1, int(reference_samples))]
    else:
        ref_in = probe_inputs(network)
    members["reference.npz"], sections["reference"] = _reference(model, network, ref_in)
    producer = {"name": "hwsnn", "version": __version__}
    return fmt.write_bundle(Path(out_dir), network, producer=producer, members=members, sections=sections,
                            hex_files=hex_files, overwrite=overwrite)
