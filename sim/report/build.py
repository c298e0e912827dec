r"""The report as data: :func:`build_report` turns a :class:`~sim.result.SimResult`, the traces
recorded elsewhere (plain arrays) and the checks of :mod:`sim.proof` into plain JSON-able data, the
machine-readable source of every figure the Markdown and HTML pages show.

**The headline** (``report["summary"]``, one screen): bit-exact (the three checks of the proof),
the bundle digest, whether the network fits the target (and what does not), accuracy float /
QAT (the twin, whose integers the QAT forward computes) / integer (the simulator), energy per
inference, latency and cycles per step, and the clock needed for real time:
:math:`f_{rt} = \max_t \mathrm{cycles}(t) / dt`.

**Sim vs twin.** For each layer (manifest order) and each name recorded by both (``output``,
states ``v``/``i``/``out_i``), the integer arrays ``[T, N, ...]`` must be equal element for
element; the *first mismatch* is the smallest ``(step, layer position, name rank, sample, index)``
(:func:`sim.report.compare.compare_traces`).

**Sim vs float.** The simulator's integer output :math:`q` stands for :math:`\hat y = q\,2^{e}`;
per layer: RMSE, max and mean absolute error, and the same on a common relative scale
(divided by the layer's largest float value); for spiking layers spike agreement and rate error.

**Accuracy** (labels given): argmax over the last axis of the time-summed final output; the
confusion matrix of the simulator's predictions.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..proof import proof_of
from .compare import (accuracy_section, compare_traces, float_section, jsonable, layer_info, sim_arrays)
from .decoder import decoder_section

__all__ = ["build_report", "REPORT_FORMAT", "costs_table", "saturation_rows", "proof_rows"]

REPORT_FORMAT = "hwsnn-sim-report"

#: the states each op kind can bring back into range (listed with zero counts too)
_SATURABLE = {
    "dense": ("accumulator",), "conv2d": ("accumulator",), "dropconnect": ("accumulator",),
    "voting": ("accumulator",), "output_code": ("accumulator",), "avgpool2d": ("accumulator",), "if": ("i", "v"), "lif": ("i", "v"),
    "cuba": ("i", "v"), "recurrent": ("i", "v", "accumulator"), "synapse_filter": ("out_i",),
}


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


def proof_rows(report: dict) -> list[dict]:
    """The three checks as rows ``{check, result, detail}`` (``result``: yes / NO / not checked)."""
    ch = report.get("checks") or {}
    integ, tw, ref = ch.get("integrity"), ch.get("twin") or {}, ch.get("reference")

    def res(ok: Optional[bool]) -> str:
        return {True: "yes", False: "NO", None: "not checked"}[ok]

    rows = [{"check": "1. every file matches the bundle digest", "result": res(None if integ is None else integ.get("ok")),
             "detail": "" if integ is None else f"{integ.get('digest')}: {integ.get('files')} files, {integ.get('tables')} tables"},
            {"check": "2. simulator = torch twin, bit for bit", "result": res(tw.get("ok")),
             "detail": f"{tw.get('compared', 0)} arrays compared, {tw.get('mismatches', 0)} values differ"}]
    if ref is None or not ref.get("checked"):
        rows.append({"check": "3. simulator = reference recorded at export", "result": "not checked",
                     "detail": (ref or {}).get("note", "")})
    else:
        f = ref.get("first_mismatch")
        detail = (f"{ref['values']} values of {ref['compared']} layers, {ref['samples']} samples x {ref['steps']} steps"
                  + ("" if not f else f"; first difference: layer {f.get('layer')}, step {f.get('step')}, sample "
                     f"{f.get('sample')}, index {tuple(f.get('index') or [])}: sim {f.get('sim')} vs recorded {f.get('reference')}"))
        if ref.get("unexercised"):
            detail += f"; layers whose input stayed zero (not exercised): {', '.join(ref['unexercised'])}"
        rows.append({"check": "3. simulator = reference recorded at export", "result": res(ref.get("ok")), "detail": detail})
    return rows


def _si(value: Optional[float], unit: str) -> str:
    """``value`` with an SI prefix: ``1.05e-08 J`` -> ``10.5 nJ``."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if value == 0:
        return f"0 {unit}"
    for scale, prefix in ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p")):
        if abs(value) >= scale:
            return f"{value / scale:.4g} {prefix}{unit}"
    return f"{value / 1e-15:.4g} f{unit}"


def costs_table(costs: dict) -> list[dict]:
    """The costs as named, unit-ful figures ``{figure, value, unit, display}``."""
    dt = costs.get("dt_s")
    peak = costs.get("cycles_per_step_max")
    rt_clock = costs.get("clock_for_real_time_hz") or ((peak / dt) if dt and peak is not None else None)
    rows = [
        ("cycles per step (mean)", costs.get("cycles_per_step_mean"), "cycles", None),
        ("cycles per step (max)", peak, "cycles", None),
        ("cycles per inference", costs.get("cycles_per_inference"), "cycles", None),
        ("clock of the target", costs.get("clock_hz"), "Hz", "Hz"),
        ("clock needed for real time", rt_clock, "Hz", "Hz"),
        ("latency per step", costs.get("latency_per_step_s"), "s", "s"),
        ("latency per inference", costs.get("latency_per_inference_s"), "s", "s"),
        ("time step dt", dt, "s", "s"),
        ("real-time factor (dt / latency per step)", costs.get("real_time_factor"), "", None),
        ("energy per inference", costs.get("energy_per_inference_j"), "J", "J"),
        ("synaptic events per inference", costs.get("synaptic_events_per_inference"), "events", None),
        ("neuron updates per inference", costs.get("neuron_updates_per_inference"), "updates", None),
        ("memory words read per inference", costs.get("words_read_per_inference"), "words", None),
    ]
    out = []
    for name, value, unit, si in rows:
        v = None if value is None or not np.isfinite(value) else float(value)
        display = _si(v, si) if si else ("n/a" if v is None else f"{v:.4g} {unit}".strip())
        out.append({"figure": name, "value": v, "unit": unit, "display": display})
    return out


def saturation_rows(result, manifest: dict) -> list[dict]:
    """Per layer and state: the values brought back into range, zeros included."""
    counted = result.saturations or {}
    rows = []
    for entry in manifest.get("layers", []):
        name, op = entry["name"], entry.get("op")
        states = dict.fromkeys(_SATURABLE.get(op, ()))
        states.update(dict.fromkeys(counted.get(name, {})))
        for st in states:
            rows.append({"layer": name, "state": st, "count": int(counted.get(name, {}).get(st, 0))})
    return rows


def _summary(report: dict, costs: dict) -> dict:
    acc = report.get("accuracy") or {}
    fit = report.get("fit") or {}
    table = {r["figure"]: r for r in report["costs_table"]}
    return {
        "bit_exact": report["bit_exact"],
        "checks": {k: (v or {}).get("ok") for k, v in (report.get("checks") or {}).items()},
        "bundle_digest": report.get("bundle_digest"),
        "fits": fit.get("fits"), "fit_problems": list(fit.get("problems", [])),
        "accuracy_float": acc.get("float"), "accuracy_qat": acc.get("twin"), "accuracy_integer": acc.get("sim"),
        "decoder": (report.get("decoder") or {}).get("text"),
        "energy_per_inference_j": costs.get("energy_per_inference_j"),
        "latency_per_step_s": costs.get("latency_per_step_s"),
        "cycles_per_step_mean": costs.get("cycles_per_step_mean"),
        "cycles_per_step_max": costs.get("cycles_per_step_max"),
        "clock_for_real_time_hz": table["clock needed for real time"]["value"],
        "unverified_figures": list(costs.get("unverified_figures", [])),
    }


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
    info = layer_info(manifest)
    layers = list(result.layers) if result.layers else [i["name"] for i in info]
    sim = sim_arrays(result)
    tw = compare_traces(layers, twin, sim)
    fl = float_section(info, sim, float_, float_exponents)
    acc = accuracy_section(result, layers, twin, float_, labels)
    activity = {}
    for name, c in (result.counters or {}).items():
        activity[name] = {k: int(np.asarray(getattr(c, k)).sum()) for k in ("synaptic_events", "neuron_updates", "words_read")}
    sat = jsonable(result.saturations)
    notes = []
    if twin is not None and not any(k != "output" for v in sim.values() for k in v):
        notes.append("the simulator recorded no states (run with record='states' to compare v/i/out_i)")
    checks = checks or {}
    costs = jsonable(result.costs)
    report: dict[str, Any] = {
        "format": REPORT_FORMAT,
        "format_version": 2,
        "headline": _headline(tw, checks),
        "bit_exact": proof_of(checks.get("integrity"), tw["bit_exact"], checks.get("reference")),
        "checks": {"integrity": checks.get("integrity"), "twin": {"ok": tw["bit_exact"], "compared": tw["compared"],
                                                                 "mismatches": tw["mismatches"]},
                   "reference": checks.get("reference")},
        "bundle_digest": (checks.get("integrity") or {}).get("digest"),
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
        "saturation_rows": saturation_rows(result, manifest),
        "saturations_total": int(sum(v for d in sat.values() for v in d.values())),
        "activity": activity,
        "fit": jsonable(result.fit),
        "decoder": decoder_section(manifest, result.fit),
        "costs": costs,
        "costs_table": costs_table(costs),
        "notes": notes,
    }
    report["proof"] = proof_rows(report)
    report["summary"] = _summary(report, costs)
    return jsonable(report)
