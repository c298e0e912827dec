"""Writing a report: ``report.json`` (the machine-readable source of every figure), ``report.md``
and one self-contained ``report.html`` (plots embedded), rendered from the Jinja2 templates in
``templates/``, plus the plots as PNG files. The directory is written atomically as a whole."""

from __future__ import annotations

import base64
import copy
import json
import os
from pathlib import Path
from typing import Any, Optional, Union

from targets.bundle import recover, replace_directory, write_file

from .build import REPORT_FORMAT
from .plots import import_figure, make_plots

__all__ = ["write_report", "read_report", "check_report_destination", "render"]

_TEMPLATES = Path(__file__).resolve().parent / "templates"


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


def _twin_rows(report: dict) -> list[list[str]]:
    rows = []
    tw = report["twin"]
    for layer in report["layers"]:
        for name, e in tw.get("layers", {}).get(layer, {}).items():
            f = e.get("first")
            first = (f"t={f['step']} n={f['sample']} idx={tuple(f['index'])}: sim {f['sim']} vs twin {f['twin']}" if f
                     else (e.get("message") if e.get("shape_mismatch") else ""))
            steps = ", ".join(str(t) for t, _ in e.get("mismatch_steps", [])[:12])
            if e.get("steps_with_mismatches") and e["steps_with_mismatches"] > 12:
                steps += f", ... ({e['steps_with_mismatches']} steps)"
            rows.append([layer, name, _fmt(e["shape_sim"]), _fmt(e["bit_exact"]), _fmt(e["mismatches"]), first, steps])
    return rows


def _float_rows(report: dict) -> list[list[str]]:
    fl = report["float"]
    return [[layer, _fmt(e["kind"]), _fmt(e["exponent"]), _fmt(e["spike_agreement"]), _fmt(e["rate_error"]),
             _fmt(e["rmse"]), _fmt(e["max_abs"]), _fmt(e.get("relative_rmse")), e.get("note", "")]
            for layer in report["layers"] for e in [fl.get("layers", {}).get(layer)] if e]


def _fit_tables(report: dict) -> list[tuple[str, list[list[str]]]]:
    fit = report.get("fit") or {}
    out = []
    for key, v in sorted(fit.items()):
        if isinstance(v, list) and v and all(isinstance(r, dict) for r in v):
            cols = list(dict.fromkeys(c for r in v for c in r))
            out.append((key, [cols] + [[_fmt(r.get(c)) for c in cols] for r in v]))
    return out


def render(report: dict, images: dict[str, bytes], which: str, plots_note: Optional[str] = None) -> str:
    """The report as Markdown (``which='md'``) or self-contained HTML (``'html'``)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)), undefined=jinja2.StrictUndefined,
                             autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
                             keep_trailing_newline=True, trim_blocks=False)
    env.filters["cell"] = lambda s: str(s).replace("|", "\\|").replace("\n", " ")
    table = {r["figure"]: r for r in report.get("costs_table", [])}
    summary = report.get("summary") or {}
    bit = summary.get("bit_exact")
    context = dict(
        r=report, s=summary, images={k: base64.b64encode(v).decode("ascii") for k, v in images.items()} if which == "html"
        else images, plots_note=plots_note, twin_rows=_twin_rows(report), float_rows=_float_rows(report),
        fit_tables=_fit_tables(report), head_class="ok" if bit else ("bad" if bit is False else "open"),
        yesno=lambda v: {True: "yes", False: "NO", None: "not checked"}.get(v, str(v)),
        css=lambda res: {"yes": "yes", "NO": "no"}.get(res, "na"),
        pct=lambda v: "n/a" if v is None else f"{100 * v:.1f} %",
        cost=lambda name: table[name]["display"] if name in table else "n/a",
    )
    return env.get_template(f"report.{which}.j2").render(**context)


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
    twin: Optional[dict] = None,
) -> dict[str, Path]:
    """Write ``report.json`` (sorted keys, indent 2), ``report.md``, ``report.html`` (self-contained,
    plots embedded) and, with matplotlib and ``plots=True``, the plots of :mod:`sim.report.plots`
    as ``plots/<stem>.png`` (they need ``result``; ``float_`` and ``twin`` add the float panels, the
    membrane traces and the mismatch marks). Without matplotlib the report says so; it never fails
    for that. The directory is written atomically as a whole (built beside ``out_dir``, then renamed
    into place); an existing ``out_dir`` is replaced only when it is empty or holds an hwsnn report.

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
        Figure = import_figure()
        if Figure is None:
            note = "no plots: matplotlib is not installed (pip install 'hwsnn[report]' to get them)"
        elif result is None:
            note = "no plots: write_report was not given the SimResult"
        else:
            images, failed = make_plots(report, result, twin, float_, Figure)
            notes = []
            if float_ is None:
                notes.append("no float traces given: rasters show the simulator only, no quantization-error plot")
            if failed:
                notes.append("plots that could not be drawn: " + "; ".join(failed))
            note = " ".join(notes) or None
    report["plots"] = {"files": sorted(images), "note": note}
    files: dict[str, bytes] = {f"plots/{stem}.png": data for stem, data in images.items()}
    files["report.json"] = (json.dumps(report, sort_keys=True, indent=2, allow_nan=False) + "\n").encode("utf-8")
    files["report.md"] = render(report, images, "md", note).encode("utf-8")
    files["report.html"] = render(report, images, "html", note).encode("utf-8")

    def fill(tmp: Path) -> None:
        for name, data in files.items():
            write_file(tmp / name, data)

    replace_directory(out, fill)
    paths = {stem: out / "plots" / f"{stem}.png" for stem in images}
    paths.update(json=out / "report.json", md=out / "report.md", html=out / "report.html")
    return paths
