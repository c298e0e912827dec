r"""Integer twin networks in NIR: the chip's network as values, its integers in the metadata.

:func:`twin_graph` (used by :func:`hwsnn.nir.export_to_nir` for twins) describes each twin as an
op of the export format (``twin.to_spec(...)``, :mod:`targets.bundle`) and writes

* the **float view** as NIR nodes, values dequantized (:math:`w = W 2^{e_w}`, :math:`b = B 2^{e}`,
  :math:`\theta = TH\,2^{e}`, :math:`\tau = 2^k dt` or :math:`4096/d \cdot dt`; Xylo's current, which
  takes its input before it decays, has :math:`w_{in} = \tau_{syn}(1 - 2^{-k})`), so a downstream
  tool sees the chip's network as far as NIR can say it (a synaptic latency as a ``Delay`` node; an
  IF/LIF neuron bias folded into the bias of the layer before it; the target's compare and the
  spike cap in the metadata: NIR has one spike per step);
* the **integer network** in the graph's metadata: ``hwsnn`` holds the target's parameters and
  every op's manifest entry (``targets.bundle``'s ``to_dict``), ``hwsnn_tables`` every integer table.

:func:`twin_from_nir` rebuilds the twins from that metadata with exactly those integers, after
checking that every node's values are still the dequantized integers (a graph edited after export
is refused, naming the node).
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch.nn as nn

import targets
from targets import bundle as fmt

from .. import __version__
from ..fixed import FixedLinear, FixedModule, FixedRecurrent
from ..fixed.base import twin_from_spec
from ..fixed.decay import tau_of
from ..functional import set_step_mode
from .conventions import META_KEY, TABLES_KEY, NIRError, dump_meta, load_meta, require_nir
from .chain import chain_graph
from .graph import load_graph
from .nodes import PARAMS_KEY

__all__ = ["twin_graph", "twin_from_nir", "twin_specs", "op_nodes"]


def _real(table: Optional[np.ndarray], exponent: int) -> Optional[np.ndarray]:
    return None if table is None else np.asarray(table, np.float64) * 2.0 ** exponent


def _input_shape(layers: Sequence[FixedModule]) -> tuple[int, ...]:
    first = layers[0]
    if isinstance(first, FixedLinear):
        return (int(first.in_features),)
    if isinstance(first, FixedRecurrent):
        return (int(first.features),)
    raise ValueError(f"export_to_nir: cannot infer the input shape of a network starting with {type(first).__name__}; "
                     "pass input_shape=")


def twin_specs(layers: Sequence[nn.Module], names: Sequence[str], input_shape: Optional[Sequence[int]],
               input_kind: str, input_exponent: int, dt: float) -> fmt.Network:
    """The twins as a validated :class:`targets.bundle.Network` (each twin's ``to_spec``)."""
    for m, name in zip(layers, names):
        if not isinstance(m, FixedModule):
            raise NIRError(f"layer {name!r} ({type(m).__name__}): a twin network holds integer twins only", name)
    tg = layers[0].target
    for m, name in zip(layers, names):
        if m.target != tg:
            raise NIRError(f"layer {name!r}: target {m.target.name!r}, the first layer's is {tg.name!r}", name)
    shape = tuple(int(s) for s in (input_shape if input_shape is not None else _input_shape(layers)))
    kind, exp = input_kind, (0 if input_kind != "values" else int(input_exponent))
    ops = []
    for m, name in zip(layers, names):
        op = m.to_spec(name, shape, kind, exp)
        ops.append(op)
        shape, kind, exp = op.output_shape, op.output_kind, op.output_exponent
    return fmt.Network(target=tg, input_shape=ops[0].input_shape, input_kind=input_kind,
                       input_exponent=0 if input_kind != "values" else int(input_exponent), ops=tuple(ops), dt=dt)


def _neuron_node(op: fmt.Neuron, target: targets.Target, dt: float, name: str) -> tuple[Any, np.ndarray, float]:
    """``(node, real bias per step, input gain)`` of a neuron op (the bias is folded by the caller)."""
    nir = require_nir()
    S, e = tuple(op.output_shape), op.state_exponent
    th = op.per_neuron("threshold_int").astype(np.float64) * 2.0 ** e  # (per-neuron tables where the op has them)
    vr = np.full(S, float(op.v_reset) * 2.0 ** e if op.reset == "zero" else 0.0)
    b = np.asarray(op.bias if op.bias is not None else 0, np.int64)
    b_int = (b << op.bias_exp) if op.bias_exp >= 0 else (b >> -op.bias_exp)
    bias = np.broadcast_to(b_int.astype(np.float64) * 2.0 ** e, S).copy()
    meta = {"layer": type(op).__name__, "op": op.name, "reset": op.reset, "reset_timing": "spike",
            "max_spikes": op.max_spikes, "compare": target.neuron.compare}
    if op.kind == "if":
        return nir.IF(r=np.full(S, 1.0 / dt), v_threshold=th, v_reset=vr, metadata={META_KEY: dump_meta(meta)}), bias, 1.0
    taus = np.vectorize(lambda k, which: tau_of(int(k), target, which), otypes=[np.float64])
    tm = taus(op.per_neuron("decay_mem"), "mem")
    if op.kind == "lif":
        if not np.all(np.isfinite(tm)):
            raise NIRError(f"layer {name!r} (lif): decay {op.decay_mem} keeps the membrane forever; NIR's LIF needs a finite tau", name)
        gain = 1.0 / float(tm.reshape(-1)[0]) if op.decay_input else 1.0  # (decay_input: one decay per layer)
        node = nir.LIF(tau=np.full(S, tm * dt), r=np.full(S, 1.0 if op.decay_input else tm), v_leak=vr.copy(),
                       v_threshold=th, v_reset=vr, metadata={META_KEY: dump_meta(meta), PARAMS_KEY: {"tau": np.full(S, tm)}})
        return node, bias, gain
    ts = taus(op.per_neuron("decay_syn"), "syn")
    if not (np.all(np.isfinite(tm)) and np.all(np.isfinite(ts))):
        raise NIRError(f"layer {name!r} (cuba): a decay that keeps its state forever has no finite NIR tau", name)
    cur_gain = 1.0 - 1.0 / ts if target.decay.current_order == "add_then_decay" else 1.0
    node = nir.CubaLIF(tau_syn=np.full(S, ts * dt), tau_mem=np.full(S, tm * dt), r=np.full(S, tm), v_leak=vr.copy(),
                       v_threshold=th, v_reset=vr, w_in=np.full(S, ts * cur_gain),
                       metadata={META_KEY: dump_meta(meta), PARAMS_KEY: {"tau_syn": np.full(S, ts), "tau_mem": np.full(S, tm)}})
    if np.any(bias != 0):
        raise NIRError(f"layer {name!r} (cuba): a neuron bias enters the membrane after the current filter; NIR can only "
                       "add it before (through the current)", name)
    return node, bias, 1.0


def _weights(op: Any, name: str) -> Any:
    nir = require_nir()
    w = _real(op.weight, op.weight_exponent)
    b = None if op.bias is None else _real(op.bias, op.output_exponent)
    meta = {META_KEY: dump_meta({"op": op.name, "layer": type(op).__name__, "bias": op.bias is not None})}
    if op.kind == "dense":
        if op.delays is not None:
            raise NIRError(f"layer {name!r} (dense): per-synapse delays have no NIR node (NIR's Delay is per neuron)", name)
        return nir.Linear(weight=w, metadata=meta) if b is None else nir.Affine(weight=w, bias=b, metadata=meta)
    left, right, top, bottom = op.padding
    if left != right or top != bottom:
        raise NIRError(f"layer {name!r} (conv2d): padding {list(op.padding)} is not symmetric; NIR pads both sides alike", name)
    return nir.Conv2d(input_shape=tuple(op.input_shape[-2:]), weight=w, stride=tuple(op.stride), padding=(top, left),
                      dilation=tuple(op.dilation), groups=op.groups,
                      bias=np.zeros(w.shape[0]) if b is None else b, metadata=meta)


def _add_bias(node: Any, extra: np.ndarray, name: str, what: str) -> Any:
    """``node`` (a Linear/Affine/Conv2d) with ``extra`` added to its bias."""
    nir = require_nir()
    if type(node).__name__ in ("Linear", "Affine"):
        b = (np.asarray(node.bias, np.float64) if type(node).__name__ == "Affine" else 0.0) + extra.reshape(-1)
        return nir.Affine(weight=node.weight, bias=b, metadata=node.metadata)
    if type(node).__name__ == "Conv2d":
        per_c = extra.reshape(extra.shape[0], -1)
        if not np.all(per_c == per_c[:, :1]):
            raise NIRError(f"layer {name!r}: a neuron bias that varies within a channel cannot go into the bias of the "
                           f"convolution before it", name)
        node.bias = np.asarray(node.bias, np.float64) + per_c[:, 0]
        return node
    raise NIRError(f"layer {name!r}: a neuron bias needs a Linear/Affine/Conv2d before it ({what}) to be written in NIR", name)


def op_nodes(net: fmt.Network, dt: float) -> tuple[list[tuple[str, dict, list]], list[str]]:
    """The chain items (entry name, nodes, internal edges) of the float view and the ops left out."""
    nir = require_nir()
    items: list[tuple[str, dict, list]] = []
    skipped: list[str] = []
    tg = net.target
    for op in net.ops:
        name, k = op.name, op.kind
        if k in ("dropout", "dropout2d"):
            if op.active:
                raise NIRError(f"layer {name!r} ({k}): active dropout masks have no NIR node; export the model in eval mode", name)
            skipped.append(name)
            continue
        if k in ("dense", "conv2d"):
            ns = {name: _weights(op, name)}
            edges: list = []
            if op.latency:
                ns[f"{name}.latency"] = nir.Delay(delay=np.full(op.output_shape, op.latency * dt))
                edges.append((name, f"{name}.latency"))
            items.append((name, ns, edges))
        elif k in ("if", "lif", "cuba"):
            node, bias, gain = _neuron_node(op, tg, dt, name)
            if np.any(bias != 0):
                if not items or len(items[-1][1]) != 1 or type(next(iter(items[-1][1].values()))).__name__ not in (
                        "Linear", "Affine", "Conv2d"):
                    raise NIRError(f"layer {name!r} ({k}): a neuron bias needs a dense or conv2d layer right before it "
                                   "(without latency) to be written in NIR", name)
                prev_name, prev_nodes, prev_edges = items[-1]
                prev_nodes[prev_name] = _add_bias(prev_nodes[prev_name], bias / gain, name, prev_name)
            items.append((name, {name: node}, []))
        elif k == "recurrent":
            if op.latency != 1:
                raise NIRError(f"layer {name!r} (recurrent): a recurrent latency of {op.latency} steps has no NIR form "
                               "(the cycle neuron <-> weight is one step)", name)
            node, bias, gain = _neuron_node(op.neuron, tg, dt, name)
            w = _real(op.weight, op.weight_exponent)
            meta = {META_KEY: dump_meta({"op": name, "layer": "recurrent weight"})}
            rec = nir.Linear(weight=w, metadata=meta) if not np.any(bias != 0) else \
                nir.Affine(weight=w, bias=(bias / gain).reshape(-1), metadata=meta)
            items.append((name, {name: node, f"{name}.rec": rec}, [(name, f"{name}.rec"), (f"{name}.rec", name)]))
        elif k == "avgpool2d":
            area = int(np.prod(op.kernel_size))
            if op.divisor not in (1, area):
                raise NIRError(f"layer {name!r} (avgpool2d): divisor {op.divisor} is neither the window area nor 1", name)
            cls = nir.SumPool2d if op.divisor == 1 and area != 1 else nir.AvgPool2d
            items.append((name, {name: cls(kernel_size=np.array(op.kernel_size), stride=np.array(op.stride),
                                           padding=np.array(op.padding), metadata={META_KEY: dump_meta({"op": name})})}, []))
        elif k == "flatten":
            s, e = op.start_dim, op.end_dim
            items.append((name, {name: nir.Flatten(input_type={"input": np.array(op.input_shape)},
                                                   start_dim=s - 1 if s > 0 else s, end_dim=e - 1 if e > 0 else e,
                                                   metadata={META_KEY: dump_meta({"op": name})})}, []))
        elif k == "delay":
            items.append((name, {name: nir.Delay(delay=np.full(op.output_shape, op.delay_steps * dt),
                                                 metadata={META_KEY: dump_meta({"op": name})})}, []))
        elif k == "voting":
            v, f = op.voting_size, op.input_shape[-1]
            if len(op.input_shape) != 1:
                raise NIRError(f"layer {name!r} (voting): input {list(op.input_shape)}; NIR's Linear needs one axis", name)
            w = np.kron(np.eye(f // v), np.full((1, v), 1.0 / v))
            items.append((name, {name: nir.Linear(weight=w, metadata={META_KEY: dump_meta(
                {"op": name, "layer": "VotingLayer", "voting_size": v})})}, []))
        elif k == "output_code":
            if len(op.input_shape) != 1:
                raise NIRError(f"layer {name!r} (output_code): input {list(op.input_shape)}; NIR's Linear needs one axis", name)
            items.append((name, {name: nir.Linear(weight=op.signs().astype(np.float64), metadata={META_KEY: dump_meta(
                {"op": name, "layer": "OutputCode", "classes": op.classes, "readouts": op.readouts})})}, []))
        else:
            raise NIRError(f"layer {name!r} ({k}) has no NIR node (exported twins: dense, conv2d, if, lif, cuba, recurrent, "
                           "avgpool2d, flatten, delay, voting, output_code, inactive dropout)", name)
    return items, skipped


def twin_graph(layers: Sequence[nn.Module], names: Sequence[str], dt: float, input_shape: Optional[Sequence[int]],
               input_kind: str, input_exponent: int) -> Any:
    """The NIR graph of a twin network (module docstring)."""
    net = twin_specs(layers, names, input_shape, input_kind, input_exponent, dt)
    return network_graph(net, dt)


def network_graph(net: fmt.Network, dt: float) -> Any:
    """The NIR graph of a typed network (:class:`targets.bundle.Network`, e.g. a bundle's)."""
    items, skipped = op_nodes(net, dt)
    tables = {t.name: np.asarray(t.values, np.int64).reshape(-1) for t in net.tables()}  # HDF5: no 0-d datasets
    shapes = {t.name: list(np.shape(t.values)) for t in net.tables()}
    meta = {"kind": "twin", "dt": dt, "table_shapes": shapes, "producer": f"hwsnn {__version__}", "target": targets.to_dict(net.target),
            "target_name": net.target.name, "compare": net.target.neuron.compare, "skipped": skipped,
            "network": {"input": net.input_entry(), "layers": net.layer_entries()}}
    last = net.ops[-1].output_shape
    return chain_graph(items, net.input_shape, last, {META_KEY: dump_meta(meta), TABLES_KEY: tables})


def _same(a: Any, b: Any) -> bool:
    try:
        return np.array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))
    except (TypeError, ValueError):
        return False


def twin_from_nir(graph: Any, step_mode: str = "m") -> nn.Sequential:
    """The twin network recorded in a graph (or ``.nir`` file) written from twins, with exactly its
    integers; refuses a graph without that record or whose node values were changed (naming the node)."""
    g, _ = load_graph(graph)
    meta = load_meta(getattr(g, "metadata", None), "the graph")
    if meta is None or meta.get("kind") != "twin":
        raise NIRError("twin_from_nir: the graph was not written from an hwsnn twin network (no integer record in its "
                       "metadata); import its float view with import_from_nir")
    raw_tables = (g.metadata or {}).get(TABLES_KEY) or {}
    shapes = meta.get("table_shapes") or {}
    tables = {}
    for k, v in raw_tables.items():
        arr = np.asarray(v, np.int64)
        want = shapes.get(str(k))
        if want is None or int(np.prod(want)) != arr.size:
            raise NIRError(f"twin_from_nir: table {k!r} in the metadata has {arr.size} values; its recorded shape is {want}")
        tables[str(k)] = arr.reshape(want)
    tg = targets.from_dict(meta["target"], source="the graph's metadata")
    try:
        net = fmt.Network.from_manifest({**meta["network"], "dt": meta.get("dt")}, tables, tg)
    except fmt.SpecError as err:
        raise NIRError(f"twin_from_nir: the integer record in the metadata is not valid: {err}") from None
    items, _ = op_nodes(net, float(meta["dt"]))
    for _, nodes, _ in items:
        for key, want in nodes.items():
            have = g.nodes.get(key)
            if have is None or type(have).__name__ != type(want).__name__:
                raise NIRError(f"node {key!r}: missing or of another type than the recorded twin's "
                               f"{type(want).__name__}", key)
            for f in want.__dataclass_fields__:
                if f in ("metadata", "input_type", "output_type") or not isinstance(getattr(want, f), np.ndarray):
                    continue
                if not _same(getattr(have, f, None), getattr(want, f)):
                    raise NIRError(f"node {key!r} ({type(want).__name__}): {f} differs from the dequantized integers "
                                   "recorded in the metadata (edited after export?)", key)
    twins = nn.Sequential(*[twin_from_spec(op, tg) for op in net.ops])
    set_step_mode(twins, step_mode)
    return twins
