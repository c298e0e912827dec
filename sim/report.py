r"""The bit-exact report: simulator vs torch twin (must match), simulator vs float model (the
quantization error), accuracy, saturations, fit and costs; written as JSON, Markdown and HTML.

NumPy only (never torch, hwsnn or quant; matplotlib is optional and imported only to draw
plots). :func:`build_report` turns a :class:`~sim.result.SimResult` and traces recorded elsewhere
(plain arrays) into plain JSON-able data; :func:`write_report` writes it to a directory.

**Sim vs twin.** For each layer (manifest order) and each name recorded by both (``output``,
states ``v``/``i``/``out_i``), the integer arrays ``[T, N, ...]`` must be equal element for
element: ``bit_exact`` is true only if every compared array has the same shape and values (a shape
difference is a mismatch, reported with both shapes). The *first mismatch* is the smallest
``(step t, layer position, name rank, sample n, index)``: time first, then layer order; within a
layer the states come before the output (``i``, ``v``, ``out_i``, other states, ``output``),
because a step computes them before the output; within an array the first sample, then the first
element in C order. Steps with mismatches are kept as ``[[t, count], ...]`` (nonzero steps only;
the first :data:`MAX_STEPS_LISTED`).

**Sim vs float.** The simulator's integer output :math:`q` of a layer stands for
:math:`\hat y = q\,2^{e}` (``e`` the manifest's ``output.exponent``; a voting/avg-pool sum kept
with a ``null`` exponent stands for :math:`q\,2^{e_{in}}/v`). Per layer with a float output
``y`` of the same shape: ``rmse`` :math:`=\sqrt{\overline{(\hat y - y)^2}}`, ``max_abs``,
``mean_abs``, ``mean_error`` (bias); for ``spikes``/``counts`` outputs also ``spike_agreement``
(fraction of equal values) and ``rate_error`` :math:`=\overline{|r_{sim} - r_{float}|}`, with
:math:`r` the mean over time per sample and element.

**Accuracy** (labels given): the class of a sample is the argmax over the last axis of the
time-summed final output (ties: the lowest index); simulator: ``result.output_sum``; float: the
float model's last recorded output summed over time; twin: the twin's last output likewise.
"""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np

from targets.bundle import recover, replace_directory, write_file

from .proof import proof_of

__all__ = ["build_report", "write_report", "read_report", "check_report_destination", "compare_traces", "REPORT_FORMAT", "MAX_STEPS_LISTED"]

REPORT_FORMAT = "hwsnn-sim-report"
#: how many ``[t, count]`` pairs of steps with mismatches a report lists per array (and overall)
MAX_STEPS_LISTED = 200

_STATE_RANK = {"i": 0, "v": 1, "out_i": 2}
_SPIKING = ("spikes", "counts")


# -- helpers --------------------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    """Plain JSON data: NumPy scalars/arrays to Python, tuples to lists, NaN/inf to ``None``."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return f if math.isfinite(f) else None
    if x is None or isinstance(x, str):
        return x
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "__dict__"):  # a dataclass or simple object: its public fields
        return _jsonable({k: v for k, v in vars(x).items() if not k.startswith("_")})
    return str(x)


def _scalar(v: Any) -> Union[int, float]:
    v = np.asarray(v).item()
    return int(v) if isinstance(v, bool) else v


def _name_rank(name: str) -> tuple:
    if name == "output":
        return (2, "")
    return (0, _STATE_RANK[name], "") if name in _STATE_RANK else (1, name)


def _sorted_names(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=_name_rank)


def _compact_steps(per_step: np.ndarray) -> tuple[list[list[int]], int]:
    """``[[t, count], ...]`` for the steps with a nonzero count (the first MAX_STEPS_LISTED) and
    the number of such steps."""
    nz = np.flatnonzero(per_step)
    pairs = [[int(t), int(per_step[t])] for t in nz[:MAX_STEPS_LISTED]]
    return pairs, int(nz.size)


def _as_array(a: Any) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == bool:
        arr = arr.astype(np.int8)
    return arr


def _sim_arrays(result) -> dict[str, dict[str, np.ndarray]]:
    """The simulator's recorded arrays by layer and name (the final output from ``result.output``
    when the traces do not hold it)."""
    out: dict[str, dict[str, np.ndarray]] = {k: dict(v) for k, v in (result.traces or {}).items()}
    if result.layers and result.output is not None:
        last = result.layers[-1]
        out.setdefault(last, {}).setdefault("output", result.output)
    return out


def _layer_info(manifest: dict) -> list[dict]:
    """Per layer: name, op, output kind/exponent, input exponent, divisor of a kept sum."""
    info = []
    in_exp = (manifest.get("input") or {}).get("exponent", 0)
    for entry in manifest.get("layers", []):
        out = entry.get("output") or {}
        params = entry.get("params") or {}
        divisor = None
        if entry.get("op") == "voting":
            divisor = params.get("voting_size")
        elif entry.get("op") == "avgpool2d":
            divisor = params.get("divisor")
        rescale = None  # an active dropout outputs x * mask; the float layer x * mask / (1 - p)
        if entry.get("op") in ("dropout", "dropout2d") and params.get("active") and params.get("p") not in (None, 1):
            rescale = 1.0 / (1.0 - float(params["p"]))
        info.append({
            "name": entry["name"], "op": entry.get("op"), "kind": out.get("kind"), "exponent": out.get("exponent"),
            "input_exponent": in_exp, "divisor": divisor, "rescale": rescale,
            "output_shape": list(entry.get("output_shape", [])),
        })
        in_exp = out.get("exponent")
    return info


# -- sim vs twin ----------------------------------------------------------------------------------
def _compare_arrays(layer: str, name: str, sim: np.ndarray, twin: np.ndarray) -> tuple[dict, Optional[np.ndarray]]:
    """One array pair: the report entry and the per-step mismatch counts (``None`` on a shape mismatch)."""
    sim, twin = _as_array(sim), _as_array(twin)
    entry: dict[str, Any] = {"shape_sim": list(sim.shape), "shape_twin": list(twin.shape)}
    if sim.shape != twin.shape or sim.ndim < 2:
        why = ("shape mismatch: sim {} vs twin {}".format(list(sim.shape), list(twin.shape)) if sim.shape != twin.shape
               else f"arrays must be [T, N, ...]; got shape {list(sim.shape)}")
        entry.update(bit_exact=False, shape_mismatch=True, mismatches=None, values=None, message=f"{layer} {name}: {why}",
                     mismatch_steps=[], steps_with_mismatches=None, first=None)
        return entry, None
    diff = sim != twin  # NaN != NaN: a NaN is a mismatch
    T = sim.shape[0]
    per_step = diff.reshape(T, -1).sum(axis=1)
    n_bad = int(per_step.sum())
    pairs, n_steps = _compact_steps(per_step)
    entry.update(bit_exact=n_bad == 0, shape_mismatch=False, mismatches=n_bad, values=int(sim.size),
                 mismatch_steps=pairs, steps_with_mismatches=n_steps, first=None)
    if n_bad:
        t = int(np.flatnonzero(per_step)[0])
        flat = int(np.flatnonzero(diff[t].reshape(-1))[0])
        pos = np.unravel_index(flat, sim.shape[1:])
        n, idx = int(pos[0]), tuple(int(p) for p in pos[1:])
        entry["first"] = {"layer": layer, "name": name, "step": t, "sample": n, "index": list(idx),
                          "sim": _scalar(sim[(t, n, *idx)]), "twin": _scalar(twin[(t, n, *idx)])}
    return entry, per_step


def compare_traces(layers: list[str], twin: Optional[dict], sim: dict) -> dict:
    if twin is None:
        return {"compared": 0, "bit_exact": None, "layers": {}, "first_mismatch": None, "shape_mismatches": [],
                "mismatch_steps": [], "steps_with_mismatches": 0, "mismatches": 0,
                "not_compared": [], "note": "no twin traces given"}
    sec: dict[str, Any] = {"layers": {}, "not_compared": [], "shape_mismatches": []}
    total_steps: Optional[np.ndarray] = None
    candidates = []
    compared = 0
    for li, layer in enumerate(layers):
        s_arrs, t_arrs = sim.get(layer, {}), twin.get(layer, {})
        for name in _sorted_names([*s_arrs, *t_arrs]):
            if name not in s_arrs or name not in t_arrs:
                missing = "simulator" if name not in s_arrs else "twin"
                sec["not_compared"].append({"layer": layer, "name": name, "reason": f"not recorded by the {missing}"})
                continue
            entry, per_step = _compare_arrays(layer, name, s_arrs[name], t_arrs[name])
            compared += 1
            sec["layers"].setdefault(layer, {})[name] = entry
            if entry["shape_mismatch"]:
                sec["shape_mismatches"].append({"layer": layer, "name": name, "message": entry["message"],
                                                "shape_sim": entry["shape_sim"], "shape_twin": entry["shape_twin"]})
                continue
            if per_step is not None:
                if total_steps is None or total_steps.shape[0] < per_step.shape[0]:
                    grown = np.zeros(per_step.shape[0], np.int64)
                    if total_steps is not None:
                        grown[: total_steps.shape[0]] = total_steps
                    total_steps = grown
                total_steps[: per_step.shape[0]] += per_step
            f = entry["first"]
            if f is not None:
                candidates.append(((f["step"], li, _name_rank(name), f["sample"], tuple(f["index"])), f))
    for layer in twin:
        if layer not in layers:
            sec["not_compared"].append({"layer": layer, "name": "*", "reason": "the export has no layer of this name"})
    first = min(candidates, key=lambda c: c[0])[1] if candidates else None
    n_shape = len(sec["shape_mismatches"])
    if first is None and n_shape:
        sm = sec["shape_mismatches"][0]
        first = {"layer": sm["layer"], "name": sm["name"], "kind": "shape", "message": sm["message"],
                 "shape_sim": sm["shape_sim"], "shape_twin": sm["shape_twin"]}
    pairs, n_steps = _compact_steps(total_steps if total_steps is not None else np.zeros(0, np.int64))
    all_ok = compared > 0 and not candidates and not n_shape
    sec.update(compared=compared, bit_exact=(all_ok if compared else None), first_mismatch=first,
               mismatches=int(total_steps.sum()) if total_steps is not None else 0,
               mismatch_steps=pairs, steps_with_mismatches=n_steps)
    if not compared:
        sec["note"] = "no array was recorded by both the simulator and the twin"
    return sec


# -- sim vs float ---------------------------------------------------------------------------------
def _scale_of(info: dict, override: Optional[dict]) -> tuple[Optional[float], Optional[str]]:
    """The real value of one integer output unit of a layer, and a note on how it was found."""
    scale, note = _base_scale(info, override)
    if scale is not None and info.get("rescale"):
        scale *= info["rescale"]
        note = ((note + "; ") if note else "") + f"times the dropout rescale 1/(1-p) = {info['rescale']:g} (folded into the next layer)"
    return scale, note


def _base_scale(info: dict, override: Optional[dict]) -> tuple[Optional[float], Optional[str]]:
    name = info["name"]
    if override and name in override and override[name] is not None:
        return 2.0 ** int(override[name]), f"exponent {int(override[name])} given by the caller"
    if info["exponent"] is not None:
        return 2.0 ** int(info["exponent"]), None
    if info["divisor"] and info["input_exponent"] is not None:
        return (2.0 ** int(info["input_exponent"]) / int(info["divisor"]),
                f"sum kept (null exponent): divided by {int(info['divisor'])} at input exponent {int(info['input_exponent'])}")
    return None, "the output has no exponent (null) and no divisor rule applies: not dequantized"


def _float_section(info: list[dict], sim: dict, float_: Optional[dict], override: Optional[dict]) -> dict:
    if float_ is None:
        return {"layers": {}, "note": "no float model traces given"}
    sec: dict[str, Any] = {"layers": {}, "skipped": []}
    for inf in info:
        name = inf["name"]
        f_arr = (float_.get(name) or {}).get("output")
        if f_arr is None:
            continue
        s_arr = sim.get(name, {}).get("output")
        if s_arr is None:
            sec["skipped"].append({"layer": name, "reason": "the simulator did not record this layer's output"})
            continue
        s_arr, f_arr = _as_array(s_arr), np.asarray(f_arr, dtype=np.float64)
        if inf["op"] == "dense" and inf["kind"] == "counts":
            sec["skipped"].append({"layer": name, "reason": "per-event dense layer: its output is the event count per "
                                   "source (the weights are applied in the next neuron), not the float layer's output"})
            continue
        if s_arr.shape != f_arr.shape:
            sec["skipped"].append({"layer": name, "reason": f"shape mismatch: sim {list(s_arr.shape)} vs float {list(f_arr.shape)}"})
            continue
        scale, note = _scale_of(inf, override)
        if scale is None:
            sec["skipped"].append({"layer": name, "reason": note})
            continue
        deq = s_arr.astype(np.float64) * scale
        err = deq - f_arr
        n = int(err.size)
        e: dict[str, Any] = {
            "kind": inf["kind"], "exponent": inf["exponent"], "scale": scale, "values": n,
            "rmse": float(np.sqrt(np.mean(err**2))) if n else None,
            "max_abs": float(np.max(np.abs(err))) if n else None,
            "mean_abs": float(np.mean(np.abs(err))) if n else None,
            "mean_error": float(np.mean(err)) if n else None,
            "spike_agreement": None, "rate_error": None, "rate_sim": None, "rate_float": None,
        }
        if note:
            e["note"] = note
        if inf["kind"] in _SPIKING and n:
            e["spike_agreement"] = float(np.mean(deq == f_arr))
            r_sim, r_float = deq.mean(axis=0), f_arr.mean(axis=0)
            e.update(rate_error=float(np.mean(np.abs(r_sim - r_float))), rate_sim=float(r_sim.mean()),
                     rate_float=float(r_float.mean()))
        sec["layers"][name] = e
    for name in float_:
        if name not in {i["name"] for i in info}:
            sec["skipped"].append({"layer": name, "reason": "the export has no layer of this name"})
    return sec


# -- accuracy -------------------------------------------------------------------------------------
def _predict(summed: np.ndarray, labels: np.ndarray) -> tuple[Optional[np.ndarray], Optional[str]]:
    s = np.asarray(summed)
    if s.ndim < 1:
        return None, "the output has no class axis"
    p = np.argmax(s, axis=-1)
    if p.shape == labels.shape:
        return p, None
    if labels.ndim == 1 and s.ndim >= 2 and s.shape[0] == labels.shape[0]:
        return np.argmax(s.reshape(s.shape[0], -1), axis=1), "argmax over the flattened output of each sample"
    return None, f"predictions of shape {list(p.shape)} do not match labels of shape {list(labels.shape)}"


def _accuracy_section(result, layers: list[str], twin: Optional[dict], float_: Optional[dict], labels) -> Optional[dict]:
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iub":
        if labels.dtype.kind == "f" and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            return {"note": f"labels must be integer class indices; got dtype {labels.dtype}"}
    sec: dict[str, Any] = {"samples": int(labels.size), "notes": []}
    preds = {}
    last = layers[-1] if layers else None
    sources = {"sim": result.output_sum}
    if twin is not None and last in twin and "output" in twin[last]:
        sources["twin"] = np.asarray(twin[last]["output"]).sum(axis=0)
    if float_ is not None:
        f_last = last if last in float_ else None
        if f_last is None and float_:
            order = [k for k in layers if k in float_] or list(float_)
            f_last = order[-1]
            sec["notes"].append(f"float: the final layer {last!r} was not recorded; used {f_last!r}")
        if f_last is not None and "output" in float_[f_last]:
            sources["float"] = np.asarray(float_[f_last]["output"], dtype=np.float64).sum(axis=0)
    for who, summed in sources.items():
        p, note = _predict(summed, labels)
        if note:
            sec["notes"].append(f"{who}: {note}")
        if p is None:
            sec[who] = None
            continue
        preds[who] = p
        sec[who] = float(np.mean(p == labels)) if labels.size else None
    for a, b in (("sim", "twin"), ("sim", "float")):
        if a in preds and b in preds and preds[a].shape == preds[b].shape:
            sec[f"agreement_{a}_{b}"] = float(np.mean(preds[a] == preds[b])) if preds[a].size else None
    return sec


# -- the report -----------------------------------------------------------------------------------
def _headline(tw: dict, checks: Optional[dict] = None) -> str:
    """One line: ``BIT-EXACT: yes`` only when the three checks of :mod:`sim.proof` hold."""
    checks = checks or {}
    integrity, reference = checks.get("integrity"), checks.get("reference")
    if integrity is not None and not integrity.get("ok"):
        return f"BIT-EXACT: NO — the bundle fails its integrity check: {integrity.get('message', '')}"
    if tw.get("bit_exact") is False:
        f = tw["first_mismatch"]
        if f.get("kind") == "shape":
            return f"BIT-EXACT: NO — shape mismatch at layer {f['layer']} ({f['name']}): sim {f['shape_sim']} vs twin {f['shape_twin']}"
        n_shape = len(tw.get("shape_mismatches", []))
        also = f" (and {n_shape} shape mismatch{'es' if n_shape > 1 else ''})" if n_shape else ""
        return (f"BIT-EXACT: NO — first mismatch at layer {f['layer']} ({f['name']}), step {f['step']}, sample {f['sample']}, "
                f"index {_index(f['index'])}: sim {f['sim']} vs twin {f['twin']}{also}")
    if reference is not None and reference.get("ok") is False:
        f = reference.get("first_mismatch") or {}
        return (f"BIT-EXACT: NO — the simulator differs from the reference outputs recorded at export: layer "
                f"{f.get('layer')}, step {f.get('step')}, sample {f.get('sample')}, index {_index(f.get('index') or [])}: "
                f"sim {f.get('sim')} vs recorded {f.get('reference')} (the bundle was changed and signed again after export)")
    if tw.get("bit_exact") is None:
        return "BIT-EXACT: not checked — " + tw.get("note", "")
    missing = [what for what, c in (("the bundle digest", integrity), ("the recorded reference outputs", reference))
               if c is None or c.get("ok") is None]
    if missing:
        return ("BIT-EXACT: not proven — the simulator equals the twin, but " + " and ".join(missing)
                + " were not checked")
    return (f"BIT-EXACT: yes — bundle {integrity['digest'][:23]}… verified, simulator = twin, "
            f"simulator = recorded reference ({reference['values']} values)")


def _index(idx) -> str:
    return "(" + ", ".join(str(i) for i in idx) + ("," if len(idx) == 1 else "") + ")"


def build_report(
    result,
    manifest: dict,
    twin: Optional[dict] = None,
    float_: Optional[dict] = None,
    labels: Optional[np.ndarray] = None,
    float_exponents: Optional[dict] = None,
    checks: Optional[dict] = None,
) -> dict:
    """The report of one simulation as plain JSON-able data (see the module docstring).

    :param result: the :class:`~sim.result.SimResult` (run with ``record='states'`` to compare states)
    :param manifest: the export's manifest (its layers give the output kinds and exponents)
    :param twin: ``{layer: {"output" | "v" | "i" | "out_i": int array [T, N, ...]}}`` from the torch twin
    :param float_: ``{layer: {"output": float array [T, N, ...]}}`` from the float model (any subset of layers)
    :param labels: class index per sample ``[N]`` (or the shape of the argmax of the summed output)
    :param float_exponents: ``{layer: exponent}`` overriding the manifest's output exponent for the
        float comparison (e.g. where the manifest has ``null``)
    :param checks: ``{"integrity": ..., "reference": ...}`` of :mod:`sim.proof` (checks 1 and 3);
        without them the report compares the traces only and does not claim ``bit_exact``
    """
    info = _layer_info(manifest)
    layers = list(result.layers) if result.layers else [i["name"] for i in info]
    sim = _sim_arrays(result)
    tw = compare_traces(layers, twin, sim)
    fl = _float_section(info, sim, float_, float_exponents)
    acc = _accuracy_section(result, layers, twin, float_, labels)
    activity = {}
    for name, c in (result.counters or {}).items():
        activity[name] = {k: int(np.asarray(getattr(c, k)).sum()) for k in ("synaptic_events", "neuron_updates", "words_read")}
    sat = _jsonable(result.saturations)
    notes = []
    if twin is not None and not any(k != "output" for v in sim.values() for k in v):
        notes.append("the simulator recorded no states (run with record='states' to compare v/i/out_i)")
    report = {
        "format": REPORT_FORMAT,
        "format_version": 1,
        "headline": _headline(tw, checks),
        "bit_exact": proof_of((checks or {}).get("integrity"), tw["bit_exact"], (checks or {}).get("reference")),
        "checks": {"integrity": (checks or {}).get("integrity"), "twin": {"ok": tw["bit_exact"], "compared": tw["compared"],
                                                                      "mismatches": tw["mismatches"]},
                   "reference": (checks or {}).get("reference")},
        "bundle_digest": ((checks or {}).get("integrity") or {}).get("digest"),
        "target": result.target,
        "export_path": str(result.export_path),
        "steps": int(result.steps),
        "batch": int(result.batch),
        "wall_seconds": float(result.wall_seconds),
        "layers": layers,
        "layer_info": {i["name"]: i for i in info},
        "twin": tw,
        "float": fl,
        "accuracy": acc,
        "saturations": sat,
        "saturations_total": int(sum(v for d in sat.values() for v in d.values())),
        "activity": activity,
        "fit": _jsonable(result.fit),
        "costs": _jsonable(result.costs),
        "notes": notes,
    }
    return _jsonable(report)


# -- writing --------------------------------------------------------------------------------------
def _import_matplotlib():
    """``matplotlib.figure.Figure`` or ``None`` when matplotlib is not installed (no pyplot, no
    global backend change: figures are drawn with the Agg canvas)."""
    try:
        from matplotlib.figure import Figure  # noqa: WPS433 (lazy: optional dependency)
    except Exception:  # ImportError, or a broken install
        return None
    return Figure


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "layer"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _make_plots(report: dict, result, float_: Optional[dict], Figure) -> tuple[dict[str, bytes], list[str]]:
    """PNG bytes by file stem (``raster_<layer>`` per spiking layer, ``error_hist``) and the plots
    that failed (a failed plot never costs the others or the report)."""
    pngs: dict[str, bytes] = {}
    failed: list[str] = []
    sim = _sim_arrays(result)
    for layer in report["layers"]:
        try:
            _raster(pngs, report, layer, sim, float_, Figure)
        except Exception as err:
            failed.append(f"raster_{_safe(layer)} ({type(err).__name__}: {err})")
    if float_:
        try:
            _error_hist(pngs, report, sim, float_, Figure)
        except Exception as err:
            failed.append(f"error_hist ({type(err).__name__}: {err})")
    return pngs, failed


def _raster(pngs: dict, report: dict, layer: str, sim: dict, float_: Optional[dict], Figure) -> None:
    inf = report["layer_info"].get(layer, {})
    s = sim.get(layer, {}).get("output")
    if inf.get("kind") not in _SPIKING or s is None or np.asarray(s).ndim < 2:
        return
    s0 = np.asarray(s)[:, 0].reshape(np.asarray(s).shape[0], -1)
    f = (float_ or {}).get(layer, {}).get("output")
    f0 = np.asarray(f)[:, 0].reshape(s0.shape[0], -1) if f is not None and np.asarray(f).shape == np.asarray(s).shape else None
    panels = ([("float", f0)] if f0 is not None else []) + [("integer (sim)", s0)]
    fig = Figure(figsize=(4.5 * len(panels), 3.5))
    for k, (title, a) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        t, j = np.nonzero(a)
        ax.scatter(t, j, s=16, marker="|", linewidths=1, color="k" if k == len(panels) - 1 else "tab:blue")
        ax.set_xlim(-0.5, a.shape[0] - 0.5)
        ax.set_ylim(-0.5, max(a.shape[1], 1) - 0.5)
        ax.set_title(f"{layer}: {title}, sample 0")
        ax.set_xlabel("step")
        ax.set_ylabel("neuron")
    fig.tight_layout()
    pngs[f"raster_{_safe(layer)}"] = _png(fig)


def _error_hist(pngs: dict, report: dict, sim: dict, float_: dict, Figure) -> None:
    errs = {}
    for layer in report["layers"]:
        e = report.get("float", {}).get("layers", {}).get(layer)
        s = sim.get(layer, {}).get("output")
        f = (float_.get(layer) or {}).get("output")
        if e is None or s is None or f is None or e.get("scale") is None:
            continue
        err = (np.asarray(s, np.float64) * e["scale"] - np.asarray(f, np.float64)).ravel()
        err = err[np.isfinite(err)]
        if err.size:
            errs[layer] = err
    if errs:
        lo = min(float(v.min()) for v in errs.values())
        hi = max(float(v.max()) for v in errs.values())
        if hi - lo <= 1e-9 * max(1.0, abs(lo), abs(hi)):  # all errors equal (e.g. all zero): a unit-wide range around them
            lo, hi = lo - 0.5, hi + 0.5
        bins = np.linspace(lo, hi, 61)
        fig = Figure(figsize=(6, 4))
        ax = fig.add_subplot(1, 1, 1)
        for layer, err in errs.items():
            ax.hist(err, bins=bins, histtype="step", label=layer, log=True)
        ax.set_xlabel("dequantized sim - float")
        ax.set_ylabel("values")
        ax.set_title("quantization error per layer")
        ax.legend(fontsize="small")
        fig.tight_layout()
        pngs["error_hist"] = _png(fig)


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, dict)):
        s = json.dumps(v, sort_keys=True)
        return s if len(s) <= 120 else s[:117] + "..."
    return str(v)


def _is_records(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(r, dict) for r in v)


def _flat_rows(d: Any, prefix: str = "") -> list[list[str]]:
    """``[[key path, value]]`` of a nested dict (lists shown inline, shortened)."""
    if not isinstance(d, dict):
        return [[prefix or "value", _fmt(d)]]
    rows = []
    for k in sorted(d):
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(d[k], dict) and d[k]:
            rows.extend(_flat_rows(d[k], key))
        else:
            rows.append([key, _fmt(d[k])])
    return rows


def _document(report: dict) -> list[tuple]:
    """The report as blocks shared by the Markdown and HTML writers:
    ``("h1"|"h2"|"p", text)``, ``("table", headers, rows)``, ``("list", items)``, ``("img", stem, alt)``."""
    doc: list[tuple] = [("h1", report["headline"])]
    doc.append(("table", ["", ""], [
        ["target", _fmt(report["target"])], ["export", _fmt(report["export_path"])],
        ["steps", _fmt(report["steps"])], ["batch", _fmt(report["batch"])],
        ["wall time (s)", _fmt(report["wall_seconds"])], ["saturations (all layers)", _fmt(report["saturations_total"])],
    ]))
    doc.append(("h2", "The proof: three checks"))
    doc.append(("table", ["check", "result", "detail"], _proof_rows(report)))
    tw = report["twin"]
    doc.append(("h2", "Simulator vs torch twin"))
    if tw.get("note"):
        doc.append(("p", tw["note"]))
    rows = []
    for layer in report["layers"]:
        for name, e in tw.get("layers", {}).get(layer, {}).items():
            f = e.get("first")
            first = (f"t={f['step']} n={f['sample']} idx={tuple(f['index'])}: sim {f['sim']} vs twin {f['twin']}" if f
                     else (e.get("message") if e.get("shape_mismatch") else ""))
            steps = ", ".join(str(t) for t, _ in e.get("mismatch_steps", [])[:12])
            if e.get("steps_with_mismatches") and e["steps_with_mismatches"] > 12:
                steps += f", ... ({e['steps_with_mismatches']} steps)"
            rows.append([layer, name, _fmt(e["shape_sim"]), _fmt(e["bit_exact"]), _fmt(e["mismatches"]), first, steps])
    if rows:
        doc.append(("table", ["layer", "recorded", "shape", "bit-exact", "mismatches", "first mismatch", "steps with mismatches"], rows))
    if tw.get("mismatch_steps"):
        pairs = tw["mismatch_steps"]
        more = f" (first {len(pairs)} of {tw['steps_with_mismatches']})" if tw["steps_with_mismatches"] > len(pairs) else ""
        doc.append(("p", f"Mismatches per step [t: count]{more}: " + ", ".join(f"{t}: {c}" for t, c in pairs[:50])
                    + (" ..." if len(pairs) > 50 else "")))
    if tw.get("not_compared"):
        doc.append(("list", [f"not compared: {x['layer']} ({x['name']}): {x['reason']}" for x in tw["not_compared"]]))
    fl = report["float"]
    doc.append(("h2", "Simulator vs float model"))
    if fl.get("note"):
        doc.append(("p", fl["note"]))
    rows = [[layer, _fmt(e["kind"]), _fmt(e["exponent"]), _fmt(e["spike_agreement"]), _fmt(e["rate_error"]),
             _fmt(e["rmse"]), _fmt(e["max_abs"]), e.get("note", "")]
            for layer in report["layers"] for e in [fl.get("layers", {}).get(layer)] if e]
    if rows:
        doc.append(("table", ["layer", "kind", "exponent", "spike agreement", "rate error", "RMSE", "max |error|", "note"], rows))
    if fl.get("skipped"):
        doc.append(("list", [f"skipped: {x['layer']}: {x['reason']}" for x in fl["skipped"]]))
    acc = report.get("accuracy")
    if acc is not None:
        doc.append(("h2", "Accuracy"))
        if acc.get("note"):
            doc.append(("p", acc["note"]))
        else:
            rows = [[who, _fmt(acc.get(who))] for who in ("float", "sim", "twin") if who in acc]
            rows += [[k.replace("agreement_", "agreement ").replace("_", " vs "), _fmt(v)] for k, v in sorted(acc.items())
                     if k.startswith("agreement_")]
            doc.append(("table", ["model", f"accuracy ({acc['samples']} samples)"], rows))
            if acc.get("notes"):
                doc.append(("list", acc["notes"]))
    doc.append(("h2", "Saturations"))
    rows = [[layer, st, _fmt(n)] for layer in report["layers"] for st, n in sorted(report["saturations"].get(layer, {}).items())]
    doc.append(("table", ["layer", "state", "values brought into range"], rows) if rows else ("p", "none recorded"))
    if report.get("activity"):
        rows = [[layer, *(_fmt(a[k]) for k in ("synaptic_events", "neuron_updates", "words_read"))]
                for layer in report["layers"] for a in [report["activity"].get(layer)] if a]
        doc.append(("h2", "Activity (totals over the run)"))
        doc.append(("table", ["layer", "synaptic events", "neuron updates", "words read"], rows))
    for key, title in (("fit", "Fit to the target"), ("costs", "Costs")):
        doc.append(("h2", title))
        val = report.get(key)
        if not isinstance(val, dict) or not val:
            doc.append(("p", _fmt(val)))
            continue
        # lists of records (e.g. the fit checks) get a table of their own
        records = {k: v for k, v in val.items() if _is_records(v)}
        doc.append(("table", ["", ""], _flat_rows({k: v for k, v in val.items() if k not in records})))
        for k, v in sorted(records.items()):
            cols = list(dict.fromkeys(c for r in v for c in r))
            doc.append(("p", f"{k}:"))
            doc.append(("table", cols, [[_fmt(r.get(c)) for c in cols] for r in v]))
    plots = report.get("plots") or {}
    doc.append(("h2", "Plots"))
    for stem in plots.get("files", []):
        doc.append(("img", stem, stem.replace("_", " ")))
    if plots.get("note"):
        doc.append(("p", plots["note"]))
    if report.get("notes"):
        doc.append(("h2", "Notes"))
        doc.append(("list", report["notes"]))
    return doc


def _proof_rows(report: dict) -> list[list[str]]:
    ch = report.get("checks") or {}
    integ, tw, ref = ch.get("integrity"), ch.get("twin") or {}, ch.get("reference")

    def res(ok: Optional[bool]) -> str:
        return {True: "yes", False: "NO", None: "not checked"}[ok]

    rows = [["1. every file matches the bundle digest", res(None if integ is None else integ.get("ok")),
             "" if integ is None else f"{integ.get('digest')}: {integ.get('files')} files, {integ.get('tables')} tables"],
            ["2. simulator = torch twin, bit for bit", res(tw.get("ok")),
             f"{tw.get('compared', 0)} arrays compared, {tw.get('mismatches', 0)} values differ"]]
    if ref is None or not ref.get("checked"):
        rows.append(["3. simulator = reference recorded at export", "not checked", (ref or {}).get("note", "")])
    else:
        f = ref.get("first_mismatch")
        detail = (f"{ref['values']} values of {ref['compared']} layers, {ref['samples']} samples x {ref['steps']} steps"
                  + ("" if not f else f"; first difference: layer {f.get('layer')}, step {f.get('step')}, sample "
                     f"{f.get('sample')}, index {tuple(f.get('index') or [])}: sim {f.get('sim')} vs recorded {f.get('reference')}"))
        if ref.get("unexercised"):
            detail += f"; layers whose input stayed zero (not exercised): {', '.join(ref['unexercised'])}"
        rows.append(["3. simulator = reference recorded at export", res(ref.get("ok")), detail])
    return rows


def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _to_markdown(doc: list[tuple]) -> str:
    out = []
    for block in doc:
        kind = block[0]
        if kind == "h1":
            out.append(f"# {block[1]}\n")
        elif kind == "h2":
            out.append(f"## {block[1]}\n")
        elif kind == "p":
            out.append(f"{block[1]}\n")
        elif kind == "list":
            out.append("".join(f"- {x}\n" for x in block[1]))
        elif kind == "table":
            headers, rows = block[1], block[2]
            lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("\n".join(lines) + "\n")
        elif kind == "img":
            out.append(f"![{block[2]}](plots/{block[1]}.png)\n")
    return "\n".join(out)


def _to_html(doc: list[tuple], images: dict[str, bytes], title: str) -> str:
    e = html.escape
    body = []
    for block in doc:
        kind = block[0]
        if kind in ("h1", "h2"):
            cls = ' class="bad"' if kind == "h1" and block[1].startswith("BIT-EXACT: NO") else ""
            body.append(f"<{kind}{cls}>{e(block[1])}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{e(block[1])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(str(x))}</li>" for x in block[1]) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{e(str(h))}</th>" for h in block[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in block[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img" and block[1] in images:
            b64 = base64.b64encode(images[block[1]]).decode("ascii")
            body.append(f'<figure><img alt="{e(block[2])}" src="data:image/png;base64,{b64}"><figcaption>{e(block[2])}</figcaption></figure>')
    style = ("body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #bbb;padding:.2em .5em;text-align:left;font-size:90%}th{background:#eee}"
             "h1{color:#1a6b1a}h1.bad{color:#b00}img{max-width:100%}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def check_report_destination(out: Path) -> None:
    """Refuse a report directory that would replace anything but an earlier report: a file, or a
    non-empty directory without an hwsnn ``report.json``."""
    out = Path(out).expanduser().absolute()
    if not out.parent.is_dir():
        raise FileNotFoundError(f"report: the parent directory {out.parent} does not exist")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise FileExistsError(f"report: {out} exists and is not a directory; choose another --out")
        if any(out.iterdir()) and read_report(out) is None:
            raise FileExistsError(f"report: {out} is a non-empty directory that holds no hwsnn report; refusing to "
                                  "replace it (choose another --out)")


def read_report(out: Union[str, os.PathLike]) -> Optional[dict]:
    """The ``report.json`` of an hwsnn report directory, or ``None`` when there is none (or it is not one)."""
    try:
        data = json.loads((Path(out) / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == REPORT_FORMAT else None


def write_report(
    report: dict,
    out_dir: Union[str, os.PathLike],
    plots: bool = True,
    result=None,
    float_: Optional[dict] = None,
) -> dict[str, Path]:
    """Write ``report.json`` (sorted keys, indent 2), ``report.md``, ``report.html`` (self-contained,
    plots embedded) and, with matplotlib and ``plots=True``, ``plots/raster_<layer>.png`` and
    ``plots/error_hist.png`` (these need ``result``, and ``float_`` for the float panels and the
    error histogram). Without matplotlib the report says so; it never fails for that. The directory
    is written atomically as a whole (built beside ``out_dir``, then renamed into place); an existing
    ``out_dir`` is replaced only when it is empty or holds an hwsnn report.

    :returns: paths by key: ``json``, ``md``, ``html`` and one per plot (its file stem)
    """
    out = Path(out_dir).expanduser().absolute()
    check_report_destination(out)
    recover(out)
    report = copy.deepcopy(report)
    images: dict[str, bytes] = {}
    note = None
    if not plots:
        note = "plots not requested"
    else:
        Figure = _import_matplotlib()
        if Figure is None:
            note = "no plots: matplotlib is not installed (pip install matplotlib to get them)"
        elif result is None:
            note = "no plots: write_report was not given the SimResult"
        else:
            images, failed = _make_plots(report, result, float_, Figure)
            notes = []
            if float_ is None:
                notes.append("no float traces given: rasters show the simulator only, no error histogram")
            if failed:
                notes.append("plots that could not be drawn: " + "; ".join(failed))
            note = " ".join(notes) or None
    report["plots"] = {"files": sorted(images), "note": note}
    doc = _document(report)
    files: dict[str, bytes] = {f"plots/{stem}.png": data for stem, data in images.items()}
    files["report.json"] = (json.dumps(report, sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8")
    files["report.md"] = _to_markdown(doc).encode("utf-8")
    files["report.html"] = _to_html(doc, images, f"hwsnn report: {report['target']}").encode("utf-8")

    def fill(tmp: Path) -> None:
        for name, data in files.items():
            write_file(tmp / name, data)

    replace_directory(out, fill)
    paths = {stem: out / "plots" / f"{stem}.png" for stem in images}
    paths.update(json=out / "report.json", md=out / "report.md", html=out / "report.html")
    return paths
