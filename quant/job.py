"""The main job's integer stages: convert the trained float network, export, simulate, report.

Used by ``hwsnn run`` (after float training) and ``hwsnn export``. Each stage prints one summary
line; :func:`integer_stages` returns the numbers of the final summary table.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn as nn

from targets import Target

from .convert import convert
from .export import export

__all__ = ["integer_stages", "export_stage"]


def export_stage(float_net: nn.Module, target: Union[str, Target], out_dir: Union[str, Path], x: torch.Tensor,
                 y: Optional[torch.Tensor], *, seed: int = 0, clip: bool = True, overwrite: bool = False,
                 hex_files: bool = True) -> tuple[nn.Sequential, Path]:
    """Convert ``float_net`` (eval mode: dropout off) to the twin network and export it with the
    held-out spikes ``x`` [T, N, C] (and labels ``y``) as the export's test vectors."""
    float_net.eval()
    twin = convert(float_net, target, seed=seed, clip=clip)
    twin.eval()
    examples = {"inputs": x.to(torch.int8)}
    if y is not None:
        examples["labels"] = y
    path = export(twin, out_dir, examples=examples, overwrite=overwrite, hex_files=hex_files)
    return twin, path


def integer_stages(
    float_net: nn.Module,
    target: Union[str, Target],
    out: Union[str, Path],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int = 0,
    progress: bool = True,
    plots: bool = True,
    overwrite: bool = True,
) -> dict:
    """Conversion -> export -> simulation -> report for the trained ``float_net`` on held-out ``x``/``y``.

    Writes ``out/export`` and ``out/report``; returns the summary numbers."""
    from .report import make_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    twin, path = export_stage(float_net, target, out / "export", x, y, seed=seed, overwrite=overwrite)
    clipped = {m.layer_name: dict(m.clipped) for m in twin if getattr(m, "clipped", None)}
    print(f"  conversion + export: {len(twin)} layers, clipped {clipped or 'nothing'} -> {path} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    report = make_report(twin, path, x.to(torch.int8), float_model=float_net, labels=y, out_dir=out / "report", plots=plots,
                         progress=progress)
    print(f"  simulation + report: {time.perf_counter() - t0:.1f} s -> {out / 'report'}")
    return dict(report=report, export=path, report_dir=out / "report")

