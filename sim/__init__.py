"""hwsnn's cycle-level integer simulator: NumPy only, reads nothing but an export directory.

It never imports torch: it is the second, independent implementation of the integer semantics
(the golden model) against which the torch twins are checked bit for bit. With numba installed
(the ``fast`` extra) per-event populations step in a compiled loop (:mod:`sim.fast`), tested equal
to the NumPy ops.

>>> import sim
>>> result = sim.run("out/export", spikes)     # doctest: +SKIP  spikes: int array [T, N, ...]
>>> result.costs["cycles_per_step_mean"], result.fit["fits"]   # doctest: +SKIP
"""

from importlib import import_module
from typing import Any

from targets.bundle import Bundle as Export
from targets.bundle import BundleError as ExportError
from targets.bundle import load_bundle as load_export

__all__ = ["run", "load_export", "Export", "ExportError", "SimResult", "LayerCounters", "fit_check", "core_map", "estimate_costs", "build_ops"]

_LAZY = {
    "run": "engine",
    "SimResult": "result",
    "LayerCounters": "result",
    "fit_check": "mapping",
    "core_map": "mapping",
    "estimate_costs": "mapping",
    "build_ops": "engine",
}
_SUBMODULES = ("fast", "mapping", "engine", "ops", "report", "rng", "arith", "xylo_cycles")


def __getattr__(name: str) -> Any:
    # the engine (and every op) loads on first use, so that reading an export stays light
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    if name in _SUBMODULES:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
