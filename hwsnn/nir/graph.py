r"""A NIR graph as the chain hwsnn can import: ``Input -> unit -> ... -> unit -> Output``.

A *unit* is one node, or a recurrent population: a neuron ``N`` with a ``Linear``/``Affine`` ``W``
whose only input is ``N`` and only output is ``N`` (``N -> W -> N``), which snnTorch's exporter
writes for ``RLeaky``/``RSynaptic`` (flattened by nirtorch), or the same as a nested ``NIRGraph``
(``Input -> N``, ``N <-> W``, ``N -> Output``). It becomes a :class:`~hwsnn.layer.RecurrentContainer`.

Everything else that is not a chain is refused with a message naming the node: more than one
``Input`` or ``Output``, a node with two inputs or two outputs (branches, merges, other cycles),
nodes that the input does not reach, other nested graphs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np

from .conventions import NIRError, require_nir

__all__ = ["Unit", "Chain", "load_graph", "chain_of", "NEURON_TYPES", "sanitize"]

#: NIR node types that can sit in a recurrent population
NEURON_TYPES = ("IF", "LIF", "CubaLIF", "LI", "CubaLI")
_WEIGHTS = ("Linear", "Affine")
_BAD = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class Unit:
    """One step of the chain: ``node`` (named ``name``), and for a recurrent population its
    recurrent weight node ``rec`` (named ``rec_name``)."""

    name: str
    node: Any
    rec: Any = None
    rec_name: Optional[str] = None


@dataclass
class Chain:
    """The graph as a chain: the input shape of one sample (``None`` when the graph does not say),
    the units in order, the graph's metadata and the NIR version that wrote it (``None``: in memory)."""

    input_shape: Optional[tuple[int, ...]]
    units: list[Unit]
    metadata: dict
    version: Optional[str]


def kind(node: Any) -> str:
    """The NIR type name of ``node``."""
    return type(node).__name__


def sanitize(name: str, taken: set[str]) -> str:
    """A layer name from a node name: characters outside ``[A-Za-z0-9_.-]`` become ``_``, a leading
    ``.``/``-`` gets an ``n`` in front, a repeated name a ``_<k>`` suffix."""
    base = _BAD.sub("_", str(name)) or "node"
    if base[0] in ".-":
        base = "n" + base
    out, k = base, 1
    while out in taken:
        out, k = f"{base}_{k}", k + 1
    taken.add(out)
    return out


def load_graph(graph_or_path: Any) -> tuple[Any, Optional[str]]:
    """``(graph, version)``: a ``nir.NIRGraph`` as is (version ``None``), or read from a ``.nir`` file
    (with the NIR version that wrote it)."""
    nir = require_nir()
    if isinstance(graph_or_path, (str, os.PathLike)):
        path = os.fspath(graph_or_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"NIR file {path}: not found")
        try:
            from nir.serialization import read_version

            version = str(read_version(path))
        except Exception:  # a file without the version dataset
            version = None
        try:
            graph = nir.read(path)
        except Exception as err:
            raise NIRError(f"NIR file {path}: cannot be read as a NIR graph: {type(err).__name__}: {err}") from None
        return graph, version
    if not isinstance(graph_or_path, nir.NIRGraph):
        raise TypeError(f"import_from_nir: expected a nir.NIRGraph or the path of a .nir file; got "
                        f"{type(graph_or_path).__name__}")
    return graph_or_path, None


def _shape(node: Any, key: str) -> Optional[tuple[int, ...]]:
    types = getattr(node, key, None)
    if not isinstance(types, dict) or not types:
        return None
    v = next(iter(types.values()))
    if v is None:
        return None
    arr = np.asarray(v).reshape(-1)
    if arr.size == 0 or arr.dtype.kind not in "iu":
        return None
    return tuple(int(s) for s in arr)


def _recurrent_subgraph(name: str, g: Any) -> Unit:
    """A nested ``NIRGraph`` that is a recurrent population, as a unit (else :class:`NIRError`)."""
    nodes = dict(g.nodes)
    neurons = [k for k, n in nodes.items() if kind(n) in NEURON_TYPES]
    weights = [k for k, n in nodes.items() if kind(n) in _WEIGHTS]
    ins = [k for k, n in nodes.items() if kind(n) == "Input"]
    outs = [k for k, n in nodes.items() if kind(n) == "Output"]
    shape_ok = len(nodes) == 4 and len(neurons) == len(weights) == len(ins) == len(outs) == 1
    if shape_ok:
        n, w, i, o = neurons[0], weights[0], ins[0], outs[0]
        if {tuple(e) for e in g.edges} == {(i, n), (n, w), (w, n), (n, o)} and len(g.edges) == 4:
            return Unit(name=name, node=nodes[n], rec=nodes[w], rec_name=f"{name}.{w}")
    raise NIRError(f"node {name!r} (NIRGraph): a nested graph is imported only as a recurrent population "
                   f"(Input -> neuron, neuron <-> one Linear/Affine, neuron -> Output); this one has nodes "
                   f"{ {k: kind(v) for k, v in nodes.items()} } and edges {list(map(tuple, g.edges))}", name)


def chain_of(graph: Any, version: Optional[str] = None) -> Chain:
    """The chain of ``graph`` (module docstring), or :class:`NIRError` naming the offending node."""
    nodes = dict(graph.nodes)
    edges = [tuple(e) for e in graph.edges]
    for a, b in edges:
        for end in (a, b):
            if end not in nodes:
                raise NIRError(f"edge ({a!r}, {b!r}): node {end!r} is not in the graph", end)
    edges = list(dict.fromkeys(edges))  # duplicates say nothing more
    units: dict[str, Unit] = {}
    for k, n in nodes.items():
        units[k] = _recurrent_subgraph(k, n) if kind(n) == "NIRGraph" else Unit(name=k, node=n)
    # collapse 2-cycles neuron <-> weight into recurrent populations
    eset = set(edges)
    for a, b in edges:
        if a == b:
            raise NIRError(f"node {a!r} ({kind(nodes[a])}) feeds itself directly; a recurrent population is a "
                           "neuron with a Linear/Affine feeding back to it", a)
        if (b, a) not in eset or a not in units or b not in units:
            continue
        n, w = (a, b) if kind(nodes[a]) in NEURON_TYPES and kind(nodes[b]) in _WEIGHTS else (b, a)
        if not (kind(nodes[n]) in NEURON_TYPES and kind(nodes[w]) in _WEIGHTS):
            raise NIRError(f"nodes {a!r} ({kind(nodes[a])}) and {b!r} ({kind(nodes[b])}) form a cycle; a cycle is "
                           "imported only as a recurrent population (a neuron <-> one Linear/Affine)", a)
        w_in = [e for e in edges if e[1] == w]
        w_out = [e for e in edges if e[0] == w]
        if len(w_in) != 1 or len(w_out) != 1:
            raise NIRError(f"node {w!r} ({kind(nodes[w])}) feeds back into {n!r} but also connects elsewhere "
                           f"(inputs {[e[0] for e in w_in]}, outputs {[e[1] for e in w_out]}); a recurrent weight "
                           f"must only connect its neuron to itself", w)
        units[n] = Unit(name=n, node=nodes[n], rec=nodes[w], rec_name=w)
        del units[w]
        edges = [e for e in edges if w not in e]
        eset = set(edges)
    ins = [k for k, u in units.items() if kind(u.node) == "Input"]
    outs = [k for k, u in units.items() if kind(u.node) == "Output"]
    if len(ins) != 1 or len(outs) != 1:
        raise NIRError(f"the graph has {len(ins)} Input node(s) {ins} and {len(outs)} Output node(s) {outs}; "
                       "hwsnn imports a chain with one of each", (ins + outs or [None])[0])
    succ: dict[str, list[str]] = {k: [] for k in units}
    pred: dict[str, list[str]] = {k: [] for k in units}
    for a, b in edges:
        succ[a].append(b)
        pred[b].append(a)
    for k in units:
        if len(succ[k]) > 1:
            raise NIRError(f"node {k!r} ({kind(units[k].node)}) has {len(succ[k])} outputs {succ[k]}: hwsnn imports "
                           "chains (nn.Sequential) only, no branches", k)
        if len(pred[k]) > 1:
            raise NIRError(f"node {k!r} ({kind(units[k].node)}) has {len(pred[k])} inputs {pred[k]}: hwsnn imports "
                           "chains (nn.Sequential) only, no merges or cycles other than a recurrent population "
                           "(a neuron <-> one Linear/Affine)", k)
    order, cur = [], ins[0]
    while succ[cur]:
        cur = succ[cur][0]
        if cur in order:
            raise NIRError(f"node {cur!r} ({kind(units[cur].node)}) lies on a cycle; only a neuron <-> one "
                           "Linear/Affine cycle is imported (as a recurrent population)", cur)
        order.append(cur)
    if not order or order[-1] != outs[0]:
        raise NIRError(f"the chain from Input {ins[0]!r} ends at {(order or [ins[0]])[-1]!r}, not at the Output "
                       f"{outs[0]!r}", (order or [ins[0]])[-1])
    stray = [k for k in units if k not in order and k != ins[0]]
    if stray:
        raise NIRError(f"node {stray[0]!r} ({kind(units[stray[0]].node)}) is not on the chain from Input to Output "
                       f"(unconnected nodes: {stray})", stray[0])
    shape = _shape(units[ins[0]].node, "input_type") or _shape(units[ins[0]].node, "output_type")
    meta = graph.metadata if isinstance(getattr(graph, "metadata", None), dict) else {}
    return Chain(input_shape=shape, units=[units[k] for k in order[:-1]], metadata=meta, version=version)
