r"""``sim.run``: step an exported integer network over time, as the chip would.

The network runs **streaming**: time is cut into chunks of ``chunk`` steps and each chunk passes
through every layer in order (each op keeps its state between chunks), so memory is
O(state + chunk x activity), never O(T x state), unless traces are recorded. The result does not
depend on ``chunk`` (a test runs chunks of 1, 7 and T).

``record``:

* ``"none"``: keep only the time-summed final output (and the counters);
* ``"output"`` (default): also the final output ``[T, N, ...]``;
* ``"layers"``: every layer's output ``[T, N, ...]``;
* ``"states"``: every layer's output and integer states (``v``, ``i``, ``out_i``) after each step.
"""

from __future__ import annotations

import os
import time
from typing import Optional, Union

import numpy as np

from . import fast
from . import ops  # noqa: F401  (registers the ops)
from targets.bundle import Bundle as Export, load_bundle as load_export
from .mapping import core_map, estimate_costs, fit_check
from .ops.base import Events, Op, build_op
from .result import LayerCounters, SimResult

__all__ = ["run", "build_ops"]

RECORD = ("none", "output", "layers", "states")


def build_ops(export: Export, batch: int, plan: Optional[list[dict]] = None) -> list[Op]:
    """One op per exported layer, with its core blocks set."""
    plan = core_map(export) if plan is None else plan
    out: list[Op] = []
    for spec, p in zip(export.ops, plan):
        op = build_op(spec, export.target, batch)
        op.cache = export.cache.setdefault(("op", spec.name, spec.kind), {})
        op.set_blocks(p["blocks"])
        out.append(op)
    return out


def _check_inputs(export: Export, inputs: object) -> np.ndarray:
    x = np.asarray(inputs)
    spec = export.manifest["input"]
    shape = tuple(spec["shape"])
    if x.dtype.kind not in "iub":
        raise TypeError(
            f"sim.run: inputs must be an integer array [T, N, {', '.join(map(str, shape))}] "
            f"({spec['kind']}, exponent {spec['exponent']}); got dtype {x.dtype}. Quantize first: q = round(x * 2**-e)"
        )
    if x.ndim != 2 + len(shape) or tuple(x.shape[2:]) != shape or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"sim.run: inputs must have shape [T, N, {', '.join(map(str, shape))}] with T, N >= 1; got {list(x.shape)}")
    if spec["kind"] == "spikes" and x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"sim.run: the export takes 0/1 spikes; inputs range over [{x.min()}, {x.max()}]")
    if spec["kind"] == "counts" and x.size and x.min() < 0:
        raise ValueError(f"sim.run: event counts must be >= 0; got {x.min()}")
    return x


def _active(y: Union[np.ndarray, Events]) -> np.ndarray:
    """``[t, 1]``: per step, the (sample, channel or neuron) pairs with at least one event."""
    a = np.asarray(y.counts if isinstance(y, Events) else y)
    return np.count_nonzero(a.reshape(a.shape[0], -1), axis=1).astype(np.int64)[:, None]


def run(
    export: Union[str, os.PathLike, Export],
    inputs: np.ndarray,
    *,
    record: str = "output",
    chunk: int = 64,
    progress: bool = False,
    jit: Optional[bool] = None,
) -> SimResult:
    """Simulate the export on integer ``inputs`` ``[T, N, *input_shape]`` (module docstring).

    :param export: an export directory (verified on load) or a loaded :class:`~targets.bundle.Bundle`
    :param inputs: integer array, as the manifest's ``input`` describes (spikes 0/1, counts, values)
    :param record: ``"none"``, ``"output"``, ``"layers"`` or ``"states"``
    :param chunk: steps per chunk (memory/speed trade-off only; results do not depend on it)
    :param progress: show a progress bar over time (tqdm, if installed)
    :param jit: compiled stepping of per-event populations (:mod:`sim.fast`): ``None`` uses it when
        numba is installed, ``False`` forces NumPy, ``True`` requires numba (results are identical)
    """
    if record not in RECORD:
        raise ValueError(f"sim.run: record must be one of {RECORD}; got {record!r}")
    if not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ValueError(f"sim.run: chunk must be an int >= 1; got {chunk!r}")
    ex = export if isinstance(export, Export) else load_export(export)
    x = _check_inputs(ex, inputs)
    T, N = int(x.shape[0]), int(x.shape[1])
    plan, fit = _static(ex)
    if jit and not fast.available():
        raise RuntimeError("sim.run: jit=True needs numba (pip install 'hwsnn[fast]') and HWSNN_SIM_JIT != 0")
    layers = build_ops(ex, N, plan)
    for op in layers:
        op.jit = jit is not False
        op.reset()
    names = [op.name for op in layers]
    keep_all = record in ("layers", "states")
    traces: dict[str, dict[str, list[np.ndarray]]] = {n: {} for n in names} if keep_all else {}
    final: list[np.ndarray] = []
    out_sum = np.zeros((N, *layers[-1].output_shape), dtype=np.int64)
    counters: dict[str, dict[str, list[np.ndarray]]] = {n: {} for n in names}
    bar = _progress(T, progress, ex.manifest["target"]["name"])
    t0 = time.perf_counter()
    # a layered Xylo network is costed as the core it fuses into: the cycle model reads each step's activity
    layered_xylo = ex.target.limits.layout == "xylo_core" and bool(ex.ops) and ex.ops[0].kind != "xylo_core"
    for start in range(0, T, chunk):
        y: Union[np.ndarray, Events] = x[start:start + chunk]
        if layered_xylo:
            counters[layers[0].name].setdefault("input_active", []).append(_active(y))
        for op in layers:
            y, rec = op.run(y, start, record_states=record == "states")
            for key, val in op.counters.items():
                counters[op.name].setdefault(key, []).append(val)
            if layered_xylo:
                counters[op.name].setdefault("output_active", []).append(_active(y))
            if keep_all:
                tr = traces[op.name]
                tr.setdefault("output", []).append(np.array(y.counts if isinstance(y, Events) else y))
                for sname, sval in rec.items():
                    tr.setdefault(sname, []).append(sval)
        if isinstance(y, Events):
            y = y.counts
        out_sum += y.sum(axis=0, dtype=np.int64)
        if record != "none":
            final.append(np.array(y))
        if bar is not None:
            bar.update(min(chunk, T - start))
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0
    lc: dict[str, LayerCounters] = {}
    for op, p, entry in zip(layers, plan, ex.layers):
        c = {k: np.concatenate(v, axis=0) for k, v in counters[op.name].items()}
        nb = len(p["blocks"])
        zeros2 = np.zeros((T, nb), np.int64)
        lc[op.name] = LayerCounters(
            layer=op.name, op=entry["op"], cores=list(p["cores"]),
            synaptic_events=c.get("synaptic_events", zeros2), neuron_updates=c.get("neuron_updates", zeros2),
            words_read=c.get("words_read", zeros2), saturations=c.get("saturations", np.zeros(T, np.int64)),
            saturations_by_state=dict(op.saturations),
            activity={k: v for k, v in c.items() if k not in ("synaptic_events", "neuron_updates", "words_read",
                                                               "saturations")},
        )
    return SimResult(
        export_path=str(ex.path),
        target=ex.target.name,
        steps=T,
        batch=N,
        layers=names,
        exponents={e["name"]: e["output"]["exponent"] for e in ex.layers},
        output=np.concatenate(final, axis=0) if final else None,
        output_sum=out_sum,
        traces={n: {k: np.concatenate(v, axis=0) for k, v in d.items()} for n, d in traces.items()},
        counters=lc,
        costs=estimate_costs(ex, lc, T, N),
        fit=fit,
        wall_seconds=wall,
    )


def _static(ex: Export) -> tuple[list[dict], dict]:
    """The core map and fit check of an export (they depend on the tables only: computed once per
    loaded :class:`~targets.bundle.Bundle`)."""
    cached = ex.cache.get("static")
    if cached is None:
        plan = core_map(ex)
        cached = ex.cache["static"] = (plan, fit_check(ex, plan))
    return cached


def _progress(total: int, enabled: bool, target: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a core dependency
        return None
    return tqdm(total=total, desc=f"sim ({target})", unit="step", leave=False)
