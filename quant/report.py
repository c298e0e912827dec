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

import copy
import json
import os
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

import sim
from hwsnn.fixed import FixedCubaLIFNode, FixedDropout, FixedIFNode, FixedLIFNode, FixedSynapseFilter, SynapticEvents
from hwsnn.fixed.recurrent import FixedRecurrent
from hwsnn.layer.dropout import Dropout as FloatDropout
from hwsnn.functional import reset_net, set_step_mode
from sim.report import build_report, write_report

from .export import _unique_names, twin_layers

__all__ = ["record_twin", "record_float", "make_report"]


def _np(t: Any) -> np.ndarray:
    if isinstance(t, SynapticEvents):
        t = t.counts
    if torch.is_tensor(t):
        return t.detach().cpu().numpy().copy()
    return np.array(t, copy=True)


def _state_names(layer: nn.Module) -> tuple[str, ...]:
    """The states recorded for a twin (the names :mod:`sim` records too)."""
    if isinstance(layer, FixedRecurrent):
        return _state_names(layer.neuron)
    if isinstance(layer, FixedCubaLIFNode):
        return ("i", "v")
    if isinstance(layer, (FixedIFNode, FixedLIFNode)):
        return ("v",)
    if isinstance(layer, FixedSynapseFilter):
        return ("out_i",)
    return ()


def _as_tensor(inputs: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
    x = inputs if torch.is_tensor(inputs) else torch.as_tensor(np.asarray(inputs))
    if x.dim() < 2:
        raise ValueError(f"inputs must be [T, N, ...] (time, batch, one sample's shape); got shape {list(x.shape)}")
    return x


def record_twin(twin_seq: nn.Module, inputs: Union[torch.Tensor, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Run the twin network step by step on ``inputs`` ``[T, N, ...]`` and record, per layer (the
    export's layer names), ``output`` (a per-event dense layer's :class:`SynapticEvents`: its
    ``counts``) and the states after each step (``v``, ``i`` for neurons, ``out_i`` for synapse
    filters) as NumPy arrays ``[T, N, ...]``.

    The network is deep-copied, reset (:func:`~hwsnn.functional.reset_net`) and put in single-step
    mode; ``twin_seq`` itself is left as it was. A dropout twin that has drawn a mask replays it
    (the export's ``draw``), so the copy runs what the simulator runs from the export.
    """
    return _record_twin(twin_seq, inputs)[0]


def _record_twin(twin_seq: nn.Module, inputs: Union[torch.Tensor, np.ndarray]) -> tuple[dict, list[nn.Module]]:
    """:func:`record_twin` plus the stepped copies of the twins (their dropout masks)."""
    x = _as_tensor(inputs)
    names = _unique_names(twin_layers(twin_seq))
    net = copy.deepcopy(twin_seq)
    layers = twin_layers(net)
    for m in layers:  # replay the exported masks (the manifest's draw: that of the held masks, else the next)
        if getattr(m, "mask_draw", None) is not None and getattr(m, "invariant", True):
            m.draws = int(m.mask_draw)
    reset_net(net)
    set_step_mode(net, "s")
    rec: dict[str, dict[str, list[np.ndarray]]] = {n: {} for n in names}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h: Any = x[t]
            for name, m in zip(names, layers):
                h = m(h)
                rec[name].setdefault("output", []).append(_np(h))
                for s in _state_names(m):
                    value = getattr(m.neuron if isinstance(m, FixedRecurrent) else m, s, None)
                    if value is not None:
                        rec[name].setdefault(s, []).append(_np(value))
    return {name: {k: np.stack(v) for k, v in d.items()} for name, d in rec.items()}, layers


def _twin_dropout_masks(layers: Sequence[nn.Module]) -> dict[int, torch.Tensor]:
    """The keep masks (bool) of the active dropout twins that drew one, by layer position."""
    out = {}
    for k, m in enumerate(layers):
        if isinstance(m, FixedDropout) and m.training and m.mask() is not None:
            out[k] = m.mask()
    return out


def _leaves(model: nn.Module) -> list[nn.Module]:
    if isinstance(model, nn.Sequential):
        return [leaf for child in model.children() for leaf in _leaves(child)]
    return [model]


def record_float(
    float_seq: nn.Module,
    inputs: Union[torch.Tensor, np.ndarray],
    names: Sequence[str],
    *,
    dropout_masks: Optional[dict[int, torch.Tensor]] = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run the float network (a reset copy, multi-step mode, ``torch.no_grad``) on ``inputs`` and
    record each layer's output as float64 ``[T, N, ...]`` under ``names`` (layer ``i`` of the float
    network <-> twin ``i``). If the float network has another number of layers than ``names``, only
    its final output is recorded, under ``names[-1]``.

    The float model runs as given (train or eval mode). ``dropout_masks`` ``{layer position: keep
    mask (bool)}`` (e.g. the twin's, as :func:`make_report` passes them) replaces the masks of the
    float dropout layers in training mode, scaled by :math:`1/(1-p)`, so that both see the same
    units dropped; otherwise a training-mode float dropout draws its own mask.
    """
    names = list(names)
    x = _as_tensor(inputs)
    net = copy.deepcopy(float_seq)
    reset_net(net)
    set_step_mode(net, "m")
    p = next((q for q in net.parameters() if q.is_floating_point()), None)
    x = x.to(p.dtype if p is not None else torch.float32)
    layers = _leaves(net)
    out: dict[str, dict[str, np.ndarray]] = {}
    if dropout_masks and len(layers) == len(names):
        for k, keep in dropout_masks.items():
            m = layers[k]
            if isinstance(m, FloatDropout) and m.training:
                m.mask = keep.to(x.dtype) * (1.0 / (1.0 - m.p))
    with torch.no_grad():
        if len(layers) == len(names):
            h = x
            for name, m in zip(names, layers):
                h = m(h)
                out[name] = {"output": h.detach().cpu().to(torch.float64).numpy()}
        elif names:
            out[names[-1]] = {"output": net(x).detach().cpu().to(torch.float64).numpy()}
    return out


def _manifest(export_dir: Union[str, os.PathLike, "sim.Export"]) -> dict:
    if isinstance(export_dir, sim.Export):
        return export_dir.manifest
    return json.loads((Path(export_dir) / "manifest.json").read_text(encoding="utf-8"))


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
) -> dict:
    """Check the export of ``twin_seq`` against the twin and (optionally) the float model.

    Records the twin step by step (:func:`record_twin`), runs ``sim.run(export_dir, inputs,
    record="states")``, records ``float_model`` (:func:`record_float`), builds the report
    (:func:`sim.report.build_report`) and, with ``out_dir``, writes it (:func:`sim.report.write_report`).

    :returns: the report dict (with ``files``: the written paths as strings, when ``out_dir`` is given)
    """
    x = _as_tensor(inputs)
    twin_rec, stepped = _record_twin(twin_seq, x)
    manifest = _manifest(export_dir)
    m_names = [e["name"] for e in manifest.get("layers", [])]
    t_names = list(twin_rec)
    notes = []
    if len(m_names) == len(t_names) and m_names != t_names:
        twin_rec = {m: twin_rec[t] for m, t in zip(m_names, t_names)}
        notes.append(f"twin layers matched to the export's by position: {t_names} -> {m_names}")
    elif len(m_names) != len(t_names):
        notes.append(f"the twin network has {len(t_names)} layers, the export {len(m_names)}: compared by name only")
    kw = {} if chunk is None else {"chunk": int(chunk)}
    result = sim.run(export_dir, _np(x), record="states", progress=progress, **kw)
    float_rec = None
    if float_model is not None:
        masks = _twin_dropout_masks(stepped)
        float_rec = record_float(float_model, x, m_names or t_names, dropout_masks=masks)
        if masks and len(_leaves(float_model)) == len(stepped):
            notes.append("the float model's training-mode dropout layers use the twin's masks")
    y = None if labels is None else _np(labels)
    report = build_report(result, manifest, twin=twin_rec, float_=float_rec, labels=y)
    report["notes"] = notes + report.get("notes", [])
    if out_dir is not None:
        paths = write_report(report, out_dir, plots=plots, result=result, float_=float_rec)
        report["files"] = {k: str(v) for k, v in paths.items()}
    return report
