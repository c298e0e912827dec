"""A chain of NIR nodes as a ``nir.NIRGraph`` (``input -> items... -> output``), and writing a graph
to a ``.nir`` file atomically; shared by the float export (:mod:`hwsnn.nir.export`) and the twin
export (:mod:`hwsnn.nir.twin`)."""

from __future__ import annotations

import os
import tempfile
from typing import Any

import numpy as np

from .conventions import NIRError, require_nir

__all__ = ["chain_graph", "write_graph"]


def chain_graph(items: list[tuple[str, dict, list]], input_shape: tuple[int, ...], output_shape: tuple[int, ...],
                metadata: dict) -> Any:
    """A NIR graph ``input -> items... -> output``; each item: its entry node's name, its nodes and
    internal edges; its exit is its node without an outgoing internal edge (the entry when every node has one:
    a recurrent population)."""
    nir = require_nir()
    nodes: dict = {"input": nir.Input(input_type=np.array(input_shape))}
    edges: list = []
    prev = "input"
    for entry, ns, internal in items:
        nodes.update(ns)
        edges.append((prev, entry))
        edges.extend(internal)
        sources = {a for a, _ in internal}
        ends = [k for k in ns if k not in sources]
        prev = ends[0] if internal and len(ends) == 1 else entry
    nodes["output"] = nir.Output(output_type=np.array(output_shape))
    edges.append((prev, "output"))
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata, type_check=True)
    except (ValueError, AssertionError) as err:
        raise NIRError(f"export_to_nir: NIR's type check refused the graph: {err}") from None


def write_graph(graph: Any, path: Any) -> None:
    """Write ``graph`` to the ``.nir`` file ``path`` atomically (a temporary file, then a rename)."""
    nir = require_nir()
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d):
        raise FileNotFoundError(f"export_to_nir: the directory {d} of {path} does not exist")
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".nir.tmp")
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
