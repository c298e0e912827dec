"""The house, checked from the source: which package imports which (README, "Layout"), and no
import loops. Every import statement counts, also those inside functions (a lazy import is still
a dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hwsnn", "targets", "quant", "sim")
#: the command line and the main job sit on top of everything; nothing imports them
TOP = {"hwsnn.cli", "hwsnn.cli_checks", "hwsnn.__main__"}
#: the float layers, which know nothing of their twins
FLOAT = ("hwsnn.base", "hwsnn.layer", "hwsnn.neuron", "hwsnn.functional", "hwsnn.surrogate", "hwsnn.backend")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (REPO / pkg).rglob("*.py"):
            rel = path.relative_to(REPO).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(module: str, path: Path, node: ast.AST) -> list[str]:
    """The project modules (or external top-level packages) an import statement names."""
    is_pkg = path.name == "__init__.py"
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level == 0:
        base = node.module or ""
    else:
        parts = module.split(".")
        keep = len(parts) - node.level + (1 if is_pkg else 0)
        base = ".".join(parts[:keep] + ([node.module] if node.module else []))
    names = []
    for a in node.names:
        full = f"{base}.{a.name}" if base else a.name
        names.append(full if full in MODULES else base)
    return names


def _imports() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(n for n in _resolve(module, path, node) if n)
        graph[module] = found
    return graph


GRAPH = _imports()


def _top(name: str) -> str:
    return name.split(".")[0]


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_sim_never_imports_torch_hwsnn_or_quant():
    bad = {m: sorted(n for n in deps if _top(n) in ("torch", "hwsnn", "quant", "brevitas"))
           for m, deps in GRAPH.items() if _under(m, ("sim",))}
    assert {m: v for m, v in bad.items() if v} == {}


def test_targets_and_the_export_format_import_no_project_package_above_them():
    bad = {m: sorted(n for n in deps if _top(n) in ("torch", "hwsnn", "quant", "sim", "brevitas"))
           for m, deps in GRAPH.items() if _under(m, ("targets",))}
    assert {m: v for m, v in bad.items() if v} == {}


def test_layers_twins_and_backend_never_import_quant_or_sim():
    bad = {m: sorted(n for n in deps if _top(n) in ("quant", "sim"))
           for m, deps in GRAPH.items() if _under(m, ("hwsnn",)) and m not in TOP}
    assert {m: v for m, v in bad.items() if v} == {}


def test_float_layers_know_nothing_of_their_twins():
    bad = {m: sorted(n for n in deps if _under(n, ("hwsnn.fixed",)))
           for m, deps in GRAPH.items() if _under(m, FLOAT)}
    assert {m: v for m, v in bad.items() if v} == {}


def test_nothing_imports_the_command_line():
    bad = {m: sorted(deps & TOP) for m, deps in GRAPH.items() if m not in TOP}
    assert {m: v for m, v in bad.items() if v} == {}


def test_quant_sits_above_hwsnn_and_below_nothing_but_the_command_line():
    bad = {m: sorted(n for n in deps if _top(n) == "quant")
           for m, deps in GRAPH.items() if _top(m) in ("hwsnn", "targets", "sim") and m not in TOP}
    assert {m: v for m, v in bad.items() if v} == {}


def test_there_are_no_import_loops():
    """No strongly connected component of more than one module (packages' ``__init__`` files that
    only gather their submodules' names are left out: importing a package runs them first anyway)."""
    inits = {m for m, p in MODULES.items() if p.name == "__init__.py"}
    nodes = [m for m in GRAPH if m not in inits]
    edges = {m: {d for d in GRAPH[m] if d in MODULES and d not in inits} for m in nodes}
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan, iterative enough for this size
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    assert sccs == [], sccs


def test_the_graph_sees_real_imports():
    """The checks above can fail: the graph holds the imports this file knows to exist."""
    assert "targets.bundle" in GRAPH["hwsnn.fixed.dense"] or "targets" in GRAPH["hwsnn.fixed.dense"]
    assert "quant.export" in GRAPH["quant.job"] and "sim.engine" in {d for d in GRAPH["sim.proof"]}
    assert any(_top(d) == "torch" for d in GRAPH["hwsnn.fixed.dense"])
