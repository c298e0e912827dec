r"""The comparisons of the report: simulator vs torch twin (must match), simulator vs float model
(the quantization error), accuracy and the confusion matrix. NumPy only.

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

import math
from pathlib import Path
from typing import Any, Iterable, Optional, Union

import numpy as np

__all__ = ["compare_traces", "float_section", "accuracy_section", "confusion", "layer_info", "sim_arrays", "jsonable",
           "MAX_STEPS_LISTED", "SPIKING"]

#: how many ``[t, count]`` pairs of steps with mismatches a report lists per array (and overall)
MAX_STEPS_LISTED = 200

_STATE_RANK = {"i": 0, "v": 1, "out_i": 2}
SPIKING = ("spikes", "counts")


# -- helpers --------------------------------------------------------------------------------------
def jsonable(x: Any) -> Any:
    """Plain JSON data: NumPy scalars/arrays to Python, tuples to lists, NaN/inf to ``None``."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
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
        return jsonable({k: v for k, v in vars(x).items() if not k.startswith("_")})
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


def sim_arrays(result) -> dict[str, dict[str, np.ndarray]]:
    """The simulator's recorded arrays by layer and name (the final output from ``result.output``
    when the traces do not hold it)."""
    out: dict[str, dict[str, np.ndarray]] = {k: dict(v) for k, v in (result.traces or {}).items()}
    if result.layers and result.output is not None:
        last = result.layers[-1]
        out.setdefault(last, {}).setdefault("output", result.output)
    return out


def layer_info(manifest: dict) -> list[dict]:
    """Per layer: name, op, output kind/exponent, input exponent, divisor of a kept sum, state exponent."""
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
            "state_exponent": params.get("state_exponent"),  # neurons and synapse filters: the states' exponent
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


def float_section(info: list[dict], sim: dict, float_: Optional[dict], override: Optional[dict]) -> dict:
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
        ref = float(np.max(np.abs(f_arr))) if n else 0.0
        e: dict[str, Any] = {
            "kind": inf["kind"], "exponent": inf["exponent"], "scale": scale, "values": n,
            "float_max_abs": ref,
            # on a common relative scale: the error over the largest float value of the layer
            "relative_rmse": float(np.sqrt(np.mean(err**2))) / ref if n and ref > 0 else None,
            "relative_max": float(np.max(np.abs(err))) / ref if n and ref > 0 else None,
            "rmse": float(np.sqrt(np.mean(err**2))) if n else None,
            "max_abs": float(np.max(np.abs(err))) if n else None,
            "mean_abs": float(np.mean(np.abs(err))) if n else None,
            "mean_error": float(np.mean(err)) if n else None,
            "spike_agreement": None, "rate_error": None, "rate_sim": None, "rate_float": None,
        }
        if note:
            e["note"] = note
        if inf["kind"] in SPIKING and n:
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


def accuracy_section(result, layers: list[str], twin: Optional[dict], float_: Optional[dict], labels) -> Optional[dict]:
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
    if "sim" in preds and labels.ndim == 1 and labels.size:
        classes = int(max(int(labels.max()), int(preds["sim"].max()))) + 1
        sec["confusion_sim"] = confusion(labels, preds["sim"], classes)
    return sec


def confusion(labels: np.ndarray, predicted: np.ndarray, classes: int) -> list[list[int]]:
    """``C[i][j]``: samples of class ``i`` predicted as ``j``."""
    c = np.zeros((classes, classes), np.int64)
    np.add.at(c, (labels.astype(np.int64), predicted.astype(np.int64)), 1)
    return c.tolist()


