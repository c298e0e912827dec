r"""The torch side of the bit-exact report: record the integer twin and the float model step by
step, run the NumPy simulator on the export, and hand everything to :mod:`sim.report`.

>>> report = make_report(twin_net, "out/export", x, float_model=net, labels=y, out_dir="out/report")  # doctest: +SKIP
>>> report["bit_exact"], report["headline"]                                                          # doctest: +SKIP

:func:`record_twin` steps a *copy* of the twin network one step at a time (single-step mode, the
way the hardware runs), so the user's network keeps its state and mode. Dropout twins replay the
mask the export describes: a copy whose twin has drawn a mask already (``mask_draw`` set) draws
that same mask again, as the manifest's ``draw`` (``mask_draw``, else ``draws``) tells the
simulator to.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np
import torch
import torch.nn as nn

import sim
from sim.report import build_report, write_report

from .record import as_numpy, as_tensor, leaves, record_float, record_twin, record_twin_layers, twin_dropout_masks

__all__ = ["record_twin", "record_float", "make_report"]


def make_report(
    twin_seq: nn.Module,
    export_dir: Union[str, os.PathLike, "sim.Export"],
    inputs: Union[torch.Tensor, np.ndarray],
    *,
    float_model: Optional[nn.Module] = None,
    labels: Optional[Union[torch.Tensor, np.ndarray]] = None,
    out_dir: Optional[Union[str, os.PathLike]] = None,
    plots: bool = True,
    progress: bool = False,
    chunk: Optional[int] = None,
    producer: str = "quant.report.make_report",
    training: Optional[dict] = None,
) -> dict:
    """The proof that the export of ``twin_seq`` computes what was simulated (:mod:`sim.proof`).

    Verifies the bundle (every file against the bundle digest, hex words included), runs the
    simulator on ``inputs`` (``record="states"``) and compares it with the twin recorded step by
    step (:func:`record_twin`), runs the simulator on the reference inputs recorded at export and
    compares every layer with the recorded outputs, records ``float_model``
    (:func:`record_float`) for the quantization error, builds the report
    (:func:`sim.report.build_report`: ``bit_exact`` only when all three checks hold) and, with
    ``out_dir``, writes it (:func:`sim.report.write_report`).

    :param producer: who made the report (``hwsnn run``, ``hwsnn report``), stored in ``report.json``
    :param training: where the network was trained (``device``, ``world_size``, ``backend``,
        ``kernels``; :meth:`quant.distributed.Session.info`), stored as ``report.json``'s ``training``
    :returns: the report dict (with ``files``: the written paths as strings, when ``out_dir`` is given)
    :raises targets.bundle.BundleError: the bundle is corrupt or was changed after export
    """
    from sim.proof import integrity_check, reference_check

    bundle = export_dir if isinstance(export_dir, sim.Export) else sim.load_export(export_dir, deep=True)
    kw = {} if chunk is None else {"chunk": int(chunk)}
    x = as_tensor(inputs)
    twin_rec, stepped = record_twin_layers(twin_seq, x)
    m_names = [op.name for op in bundle.ops]
    t_names = list(twin_rec)
    notes = []
    if len(m_names) == len(t_names) and m_names != t_names:
        twin_rec = {m: twin_rec[t] for m, t in zip(m_names, t_names)}
        notes.append(f"twin layers matched to the export's by position: {t_names} -> {m_names}")
    elif len(m_names) != len(t_names):
        notes.append(f"the twin network has {len(t_names)} layers, the export {len(m_names)}: compared by name only")
    result = sim.run(bundle, as_numpy(x), record="states", progress=progress, **kw)
    checks = {"integrity": integrity_check(bundle), "reference": reference_check(bundle, **kw)}
    float_rec = None
    if float_model is not None:
        masks = twin_dropout_masks(stepped)
        float_rec = record_float(float_model, x, m_names or t_names, dropout_masks=masks, states=plots and out_dir is not None)
        if masks and len(leaves(float_model)) == len(stepped):
            notes.append("the float model's training-mode dropout layers use the twin's masks")
    y = None if labels is None else as_numpy(labels)
    report = build_report(result, bundle.manifest, twin=twin_rec, float_=float_rec, labels=y, checks=checks)
    report["notes"] = notes + report.get("notes", [])
    report["producer"] = producer
    if training is not None:
        report["training"] = dict(training)
    if out_dir is not None:
        paths = write_report(report, out_dir, plots=plots, result=result, float_=float_rec, twin=twin_rec)
        report["files"] = {k: str(v) for k, v in paths.items()}
    return report
