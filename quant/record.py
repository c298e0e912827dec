r"""Recording the integer twin and the float model step by step (for the report and for the
reference outputs an export records).

:func:`record_twin` steps a *copy* of the twin network one step at a time (single-step mode, the
way the hardware runs), so the user's network keeps its state and mode. Dropout twins replay the
mask the export describes: a copy whose twin has drawn a mask already (``mask_draw`` set) draws
that same mask again, as the manifest's ``draw`` tells the simulator to.
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn as nn

from hwsnn.fixed import FixedCubaLIFNode, FixedDropout, FixedIFNode, FixedLIFNode, FixedModule, FixedSynapseFilter, SynapticEvents
from hwsnn.fixed.names import twin_layer_names
from hwsnn.fixed.recurrent import FixedRecurrent
from hwsnn.functional import reset_net, set_step_mode
from hwsnn.layer.dropout import Dropout as FloatDropout

__all__ = ["record_twin", "record_twin_layers", "record_outputs", "record_float", "twin_dropout_masks", "twin_layers", "layer_names",
           "as_numpy", "as_tensor", "leaves"]

def twin_layers(model: nn.Module) -> list[FixedModule]:
    """The twins of ``model`` in execution order: the module itself, or the leaves of nested
    :class:`torch.nn.Sequential` containers. Anything else is refused with its name."""
    if isinstance(model, FixedModule):
        return [model]
    if isinstance(model, nn.Sequential):
        out: list[FixedModule] = []
        for name, child in model.named_children():
            if isinstance(child, (nn.Sequential, FixedModule)):
                out.extend(twin_layers(child))
            else:
                raise TypeError(
                    f"export: child {name!r} ({type(child).__name__}) is not an integer twin; every layer of the "
                    "exported network must be a hwsnn.fixed twin (convert it with .to_fixed(target))"
                )
        return out
    raise TypeError(
        f"export: expected a twin or an nn.Sequential of twins; got {type(model).__name__} "
        "(networks with branches are not exportable yet; recurrence: hwsnn.fixed.FixedRecurrent)"
    )


def layer_names(layers: Sequence[FixedModule]) -> list[str]:
    """Unique export names of ``layers`` (:func:`hwsnn.fixed.names.twin_layer_names`)."""
    return twin_layer_names(layers)


def as_numpy(t: Any) -> np.ndarray:
    """A copy of a tensor, :class:`SynapticEvents` (its counts) or array as NumPy."""
    if isinstance(t, SynapticEvents):
        t = t.counts
    if torch.is_tensor(t):
        return t.detach().cpu().numpy().copy()
    return np.array(t, copy=True)


def as_tensor(inputs: Union[torch.Tensor, np.ndarray]) -> torch.Tensor:
    """``inputs`` as a tensor ``[T, N, ...]`` (an error names the shape otherwise)."""
    x = inputs if torch.is_tensor(inputs) else torch.as_tensor(np.asarray(inputs))
    if x.dim() < 2:
        raise ValueError(f"inputs must be [T, N, ...] (time, batch, one sample's shape); got shape {list(x.shape)}")
    return x


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
    return tuple(getattr(layer, "record_states", ()))  # e.g. the whole Xylo core (FixedXyloCore)


def record_twin(twin_seq: nn.Module, inputs: Union[torch.Tensor, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Run the twin network step by step on ``inputs`` ``[T, N, ...]`` and record, per layer (the
    export's layer names), ``output`` (a per-event dense layer's :class:`SynapticEvents`: its
    ``counts``) and the states after each step (``v``, ``i`` for neurons, ``out_i`` for synapse
    filters) as NumPy arrays ``[T, N, ...]``.

    The network is deep-copied, reset (:func:`~hwsnn.functional.reset_net`) and put in single-step
    mode; ``twin_seq`` itself is left as it was. A dropout twin that has drawn a mask replays it
    (the export's ``draw``), so the copy runs what the simulator runs from the export.
    """
    return record_twin_layers(twin_seq, inputs)[0]


def record_twin_layers(twin_seq: nn.Module, inputs: Union[torch.Tensor, np.ndarray],
                       states: bool = True) -> tuple[dict, list[nn.Module]]:
    """:func:`record_twin` plus the stepped copies of the twins (their dropout masks); without
    ``states`` only the outputs are recorded."""
    x = as_tensor(inputs)
    names = layer_names(twin_layers(twin_seq))
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
                rec[name].setdefault("output", []).append(as_numpy(h))
                for s in _state_names(m) if states else ():
                    value = getattr(m.neuron if isinstance(m, FixedRecurrent) else m, s, None)
                    if value is not None:
                        rec[name].setdefault(s, []).append(as_numpy(value))
    return {name: {k: np.stack(v) for k, v in d.items()} for name, d in rec.items()}, layers


def record_outputs(twin_seq: nn.Module, inputs: Union[torch.Tensor, np.ndarray]) -> dict[str, np.ndarray]:
    """Every layer's output ``[T, N, ...]`` of a reset copy of the twin network run in multi-step
    mode, layer after layer (the same integers as :func:`record_twin`'s single steps: the twins'
    two step modes are tested equal, and this is far faster for deep delay buffers)."""
    x = as_tensor(inputs)
    names = layer_names(twin_layers(twin_seq))
    net = copy.deepcopy(twin_seq)
    layers = twin_layers(net)
    for m in layers:
        if getattr(m, "mask_draw", None) is not None and getattr(m, "invariant", True):
            m.draws = int(m.mask_draw)
    reset_net(net)
    set_step_mode(net, "m")
    out: dict[str, np.ndarray] = {}
    with torch.no_grad():
        h: Any = x
        for name, m in zip(names, layers):
            h = m(h)
            out[name] = as_numpy(h)
    return out


def twin_dropout_masks(layers: Sequence[nn.Module]) -> dict[int, torch.Tensor]:
    """The keep masks (bool) of the active dropout twins that drew one, by layer position."""
    out = {}
    for k, m in enumerate(layers):
        if isinstance(m, FixedDropout) and m.training and m.mask() is not None:
            out[k] = m.mask()
    return out


def leaves(model: nn.Module) -> list[nn.Module]:
    """The leaf modules of nested :class:`torch.nn.Sequential` containers, in order."""
    if isinstance(model, nn.Sequential):
        return [leaf for child in model.children() for leaf in leaves(child)]
    return [model]


def record_float(
    float_seq: nn.Module,
    inputs: Union[torch.Tensor, np.ndarray],
    names: Sequence[str],
    *,
    dropout_masks: Optional[dict[int, torch.Tensor]] = None,
    states: bool = False,
) -> dict[str, dict[str, np.ndarray]]:
    """Run the float network (a reset copy, multi-step mode, ``torch.no_grad``) on ``inputs`` and
    record each layer's output as float64 ``[T, N, ...]`` under ``names`` (layer ``i`` of the float
    network <-> twin ``i``). If the float network has another number of layers than ``names``, only
    its final output is recorded, under ``names[-1]``.

    The float model runs as given (train or eval mode). ``dropout_masks`` ``{layer position: keep
    mask (bool)}`` (e.g. the twin's, as the report passes them) replaces the masks of the float
    dropout layers in training mode, scaled by :math:`1/(1-p)`, so that both see the same units
    dropped; otherwise a training-mode float dropout draws its own mask. With ``states``, the
    neurons' and synapse filters' states of sample 0 after each step are recorded too (``v``, ``i``,
    ``out_i``, ``[T, 1, ...]``; stepped one step at a time), for the report's traces.
    """
    names = list(names)
    x = as_tensor(inputs)
    net = copy.deepcopy(float_seq)
    reset_net(net)
    set_step_mode(net, "m")
    p = next((q for q in net.parameters() if q.is_floating_point()), None)
    x = x.to(p.dtype if p is not None else torch.float32)
    layers = leaves(net)
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
    if states and len(layers) == len(names):
        for k, st in _float_states(float_seq, x[:, :1], dropout_masks).items():
            out[names[k]].update(st)
    return out


def _float_states(float_seq: nn.Module, x: torch.Tensor, dropout_masks: Optional[dict]) -> dict[int, dict[str, np.ndarray]]:
    """The states (``v``, ``i``, ``out_i``) of the float layers after each step, by layer position,
    for the samples of ``x`` ``[T, n, ...]``, from a reset copy stepped one step at a time."""
    net = copy.deepcopy(float_seq)
    reset_net(net)
    set_step_mode(net, "s")
    layers = leaves(net)
    for k, keep in (dropout_masks or {}).items():
        m = layers[k]
        if isinstance(m, FloatDropout) and m.training:
            m.mask = keep[:x.shape[1]].to(x.dtype) * (1.0 / (1.0 - m.p))
    rec: dict[int, dict[str, list[np.ndarray]]] = {}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t]
            for k, m in enumerate(layers):
                h = m(h)
                holder = getattr(m, "sub_module", m)
                for s in ("i", "v", "out_i"):
                    value = getattr(holder, s, None) if s in getattr(holder, "_memories", {}) else None
                    if torch.is_tensor(value):
                        rec.setdefault(k, {}).setdefault(s, []).append(value.detach().cpu().to(torch.float64).numpy().copy())
    return {k: {s: np.stack(v) for s, v in d.items()} for k, d in rec.items()}
