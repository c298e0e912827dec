"""The report's plots (matplotlib, optional: the ``report`` extra), drawn with the Agg canvas and
returned as PNG bytes by file stem; a plot that fails never costs the others or the report.

* ``raster_<layer>``: spikes of sample 0, float vs integer (simulator), with every value where the
  simulator and the twin differ marked in red;
* ``traces_<layer>``: membrane (and current) of a few neurons of sample 0: float, twin and
  simulator (dequantized: :math:`q\\,2^{e}`);
* ``quant_error``: the quantization error of each layer on a common relative scale
  (:math:`|\\hat y - y| / \\max|y|`);
* ``cycles``: cycles per step over time and the load of each core;
* ``confusion``: the simulator's confusion matrix (labels given);
* ``saturations``: values brought back into range per layer and state, zeros included.
"""

from __future__ import annotations

import io
import re
from typing import Any, Callable, Optional

import numpy as np

from .compare import SPIKING, sim_arrays

__all__ = ["make_plots", "import_figure"]


def import_figure():
    """``matplotlib.figure.Figure`` or ``None`` when matplotlib is not installed (no pyplot, no global
    backend change)."""
    try:
        from matplotlib.figure import Figure  # lazy: an optional dependency
    except Exception:  # ImportError, or a broken install
        return None
    return Figure


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name) or "layer"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def make_plots(report: dict, result, twin: Optional[dict], float_: Optional[dict],
               Figure) -> tuple[dict[str, bytes], list[str]]:
    """PNG bytes by file stem (module docstring) and the plots that failed (with why)."""
    pngs: dict[str, bytes] = {}
    failed: list[str] = []
    sim = sim_arrays(result)
    info = report.get("layer_info", {})

    def attempt(stem: str, draw: Callable[[], Any]) -> None:
        try:
            fig = draw()
            if fig is not None:
                pngs[stem] = _png(fig)
        except Exception as err:  # a broken plot is reported, never raised
            failed.append(f"{stem} ({type(err).__name__}: {err})")

    for layer in report["layers"]:
        attempt(f"raster_{_safe(layer)}", lambda layer=layer: _raster(report, layer, sim, twin, float_, Figure))
        attempt(f"traces_{_safe(layer)}", lambda layer=layer: _traces(layer, info.get(layer, {}), sim, twin, float_, Figure))
    if float_:
        attempt("quant_error", lambda: _quant_error(report, sim, float_, Figure))
    attempt("cycles", lambda: _cycles(result.costs, Figure))
    if (report.get("accuracy") or {}).get("confusion_sim"):
        attempt("confusion", lambda: _confusion(report["accuracy"]["confusion_sim"], Figure))
    attempt("saturations", lambda: _saturations(report.get("saturation_rows", []), Figure))
    return pngs, failed


def _raster(report: dict, layer: str, sim: dict, twin: Optional[dict], float_: Optional[dict], Figure):
    inf = report["layer_info"].get(layer, {})
    s = sim.get(layer, {}).get("output")
    if inf.get("kind") not in SPIKING or s is None or np.asarray(s).ndim < 2:
        return None
    s = np.asarray(s)
    s0 = s[:, 0].reshape(s.shape[0], -1)
    f = (float_ or {}).get(layer, {}).get("output")
    f0 = np.asarray(f)[:, 0].reshape(s0.shape[0], -1) if f is not None and np.asarray(f).shape == s.shape else None
    tw = (twin or {}).get(layer, {}).get("output")
    bad = None
    if tw is not None and np.asarray(tw).shape == s.shape:
        bad = np.asarray(tw)[:, 0].reshape(s0.shape) != s0
    panels = ([("float", f0)] if f0 is not None else []) + [("integer (simulator)", s0)]
    fig = Figure(figsize=(4.5 * len(panels), 3.4))
    for k, (title, a) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), k + 1)
        t, j = np.nonzero(a)
        ax.scatter(t, j, s=14, marker="|", linewidths=1, color="k" if k == len(panels) - 1 else "tab:blue")
        if k == len(panels) - 1 and bad is not None and bad.any():
            bt, bj = np.nonzero(bad)
            ax.scatter(bt, bj, s=30, marker="x", color="red", label=f"sim != twin ({int(bad.sum())})")
            ax.legend(fontsize="x-small", loc="upper right")
        ax.set_xlim(-0.5, a.shape[0] - 0.5)
        ax.set_ylim(-0.5, max(a.shape[1], 1) - 0.5)
        ax.set_title(f"{layer}: {title}, sample 0", fontsize="small")
        ax.set_xlabel("step")
        ax.set_ylabel("neuron")
    fig.tight_layout()
    return fig


def _traces(layer: str, info: dict, sim: dict, twin: Optional[dict], float_: Optional[dict], Figure):
    states = [s for s in ("v", "i", "out_i") if s in sim.get(layer, {})]
    e = info.get("state_exponent")
    if not states or e is None:
        return None
    fig = Figure(figsize=(5.0 * len(states), 3.2))
    for k, st in enumerate(states):
        s = np.asarray(sim[layer][st])
        flat = s[:, 0].reshape(s.shape[0], -1).astype(np.float64) * 2.0 ** e
        active = np.argsort(-np.abs(flat).sum(axis=0), kind="stable")[:3]
        ax = fig.add_subplot(1, len(states), k + 1)
        for n, idx in enumerate(active):
            color = f"C{n}"
            ax.plot(flat[:, idx], color=color, lw=1.5, label=f"sim #{idx}")
            tw = (twin or {}).get(layer, {}).get(st)
            if tw is not None and np.asarray(tw).shape == s.shape:
                t0 = np.asarray(tw)[:, 0].reshape(s.shape[0], -1).astype(np.float64) * 2.0 ** e
                ax.plot(t0[:, idx], color=color, lw=0.8, ls="--", label=f"twin #{idx}")
            fl = (float_ or {}).get(layer, {}).get(st)
            if fl is not None and np.asarray(fl).shape[0] == s.shape[0]:
                f0 = np.asarray(fl, np.float64)[:, 0].reshape(s.shape[0], -1)
                if f0.shape[1] == flat.shape[1]:
                    ax.plot(f0[:, idx], color=color, lw=0.8, ls=":", label=f"float #{idx}")
        ax.set_title(f"{layer}: {st} (sample 0)", fontsize="small")
        ax.set_xlabel("step")
        ax.legend(fontsize="xx-small", ncol=3)
    fig.tight_layout()
    return fig


def _quant_error(report: dict, sim: dict, float_: dict, Figure):
    data, names = [], []
    for layer in report["layers"]:
        e = report.get("float", {}).get("layers", {}).get(layer)
        s = sim.get(layer, {}).get("output")
        f = (float_.get(layer) or {}).get("output")
        if e is None or s is None or f is None or e.get("scale") is None or not e.get("float_max_abs"):
            continue
        err = np.abs(np.asarray(s, np.float64) * e["scale"] - np.asarray(f, np.float64)).ravel() / e["float_max_abs"]
        err = err[np.isfinite(err)]
        if err.size:
            data.append(err if err.size <= 20000 else err[np.linspace(0, err.size - 1, 20000).astype(int)])
            names.append(layer)
    if not data:
        return None
    fig = Figure(figsize=(max(5.0, 0.8 * len(data) + 2), 3.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.boxplot(data, whis=(0, 100))
    ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right", fontsize="small")
    ax.set_ylabel("|dequantized sim - float| / max|float|")
    ax.set_title("quantization error per layer (common relative scale)", fontsize="small")
    fig.tight_layout()
    return fig


def _cycles(costs: dict, Figure):
    raw = costs.get("step_cycles")
    steps = np.asarray([] if raw is None else raw, np.float64)
    cores = costs.get("core_cycles_per_inference") or {}
    if not steps.size and not cores:
        return None
    fig = Figure(figsize=(9, 3.2))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(steps, lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("cycles (slowest core)")
    ax.set_title("cycles per step", fontsize="small")
    ax2 = fig.add_subplot(1, 2, 2)
    keys = sorted(cores, key=lambda k: int(k))
    ax2.bar([str(k) for k in keys], [cores[k] for k in keys])
    ax2.set_xlabel("core")
    ax2.set_ylabel("cycles per inference")
    ax2.set_title("load per core", fontsize="small")
    fig.tight_layout()
    return fig


def _confusion(matrix: list, Figure):
    m = np.asarray(matrix)
    fig = Figure(figsize=(4.2, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    if m.shape[0] <= 20:
        for (i, j), v in np.ndenumerate(m):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=6,
                        color="white" if v > m.max() / 2 else "black")
    ax.set_xlabel("predicted (simulator)")
    ax.set_ylabel("label")
    ax.set_title("confusion matrix", fontsize="small")
    fig.tight_layout()
    return fig


def _saturations(rows: list[dict], Figure):
    if not rows:
        return None
    labels = [f"{r['layer']}.{r['state']}" for r in rows]
    counts = [r["count"] for r in rows]
    fig = Figure(figsize=(6, 0.25 * len(rows) + 1.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(labels, counts, color=["tab:red" if c else "tab:gray" for c in counts])
    ax.invert_yaxis()
    ax.set_xlabel("values brought back into range")
    ax.set_title("saturations per state (zeros included)", fontsize="small")
    for y, c in enumerate(counts):
        ax.text(c, y, f" {c}", va="center", fontsize=6)
    fig.tight_layout()
    return fig
