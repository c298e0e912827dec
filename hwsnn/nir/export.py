r""":func:`export_to_nir`: an hwsnn network as a ``nir.NIRGraph`` (and a ``.nir`` file).

A float network (an ``nn.Sequential`` of hwsnn layers, or one layer) is written node by node, the
inverse of :mod:`hwsnn.nir.nodes`, in the form snnTorch and SpikingJelly write and read:

* ``Linear`` -> ``Linear`` / ``Affine``; ``Conv1d``/``Conv2d`` -> their nodes (a missing bias as
  zeros); ``AvgPool2d`` -> ``AvgPool2d`` (``divisor_override=1``: ``SumPool2d``); ``Flatten``;
  ``Delay(d)`` -> ``Delay`` of ``d * dt``; ``VotingLayer(v)`` -> the ``Linear`` of the group means;
  ``OutputCode`` -> the ``Linear`` of its score matrix :math:`2C - 1` (entries +1/-1);
* ``LIFNode(tau)`` -> ``LIF`` with ``tau * dt``, ``r = tau`` (``decay_input=True``: ``r = 1``),
  ``v_leak = v_reset``; ``CubaLIFNode`` -> ``CubaLIF`` with ``r = tau_mem``, ``w_in = tau_syn``;
  ``IFNode`` -> ``IF`` with ``r = 1/dt``; a soft reset writes ``v_reset = 0`` (what NIR >= 1.0.6
  can say) and ``reset: subtract`` in hwsnn's metadata;
* ``RecurrentContainer(neuron)`` -> the neuron node ``name`` and its weight ``name.rec`` in a
  cycle (``name -> name.rec -> name``), as nirtorch flattens snnTorch's ``RLeaky``;
* the modules of :mod:`hwsnn.nir` back to their nodes; ``Dropout`` in eval mode (the identity)
  is left out and named in the metadata.

``dt`` (default 1e-4, snnTorch's and SpikingJelly's) is recorded in the graph's metadata with
each neuron's reset kind and timing and the exact time constants in steps, so that
:func:`hwsnn.nir.import_from_nir` reads the graph back to the same network. An integer twin
network is written by :mod:`hwsnn.nir.twin` (values dequantized, the integers in metadata).
"""

from __future__ import annotations

import copy
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from .. import __version__, layer, neuron
from ..base import MemoryModule
from ..fixed import FixedModule
from ..fixed.names import twin_layer_names
from ..functional import set_step_mode
from .chain import chain_graph, write_graph
from .conventions import META_KEY, NIRError, check_dt, dump_meta, require_nir
from .delayed_reset import DelayedResetCuba, DelayedResetLIF
from .graph import sanitize
from .modules import CubaLeakyIntegrator, LeakyIntegrator, Scale, Threshold
from .nodes import PARAMS_KEY
from .twin import twin_graph

__all__ = ["export_to_nir", "layers_of"]


def _np(t: Any, shape: tuple[int, ...]) -> np.ndarray:
    """``t`` (number, array or tensor) as a float64 array broadcast to ``shape`` (a copy)."""
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return np.broadcast_to(a.astype(np.float64), shape).copy()


def layers_of(model: nn.Module) -> tuple[list[nn.Module], list[str]]:
    """The layers of ``model`` (an ``nn.Sequential`` or one layer) and their node names (the
    Sequential's ``layer_names`` when it has them, else its child names)."""
    layers = list(model) if isinstance(model, nn.Sequential) else [model]
    raw = getattr(model, "layer_names", None) if isinstance(model, nn.Sequential) else None
    if raw is None or len(raw) != len(layers):
        raw = [n for n, _ in model.named_children()] if isinstance(model, nn.Sequential) else ["0"]
    taken = {"input", "output"}
    return layers, [sanitize(n, taken) for n in raw]


def _neuron_meta(layer_kind: str, reset: str, timing: str = "spike", **extra: Any) -> str:
    return dump_meta({"layer": layer_kind, "reset": reset, "reset_timing": timing, **extra})


def neuron_node(m: nn.Module, name: str, shape: tuple[int, ...], dt: float) -> Any:
    """The NIR node of a float neuron module ``m`` with one sample's ``shape``."""
    nir = require_nir()
    S = shape
    if isinstance(m, (DelayedResetLIF, DelayedResetCuba)):
        beta = _np(m.beta, S)
        vth = _np(m.v_threshold, S)
        meta = {META_KEY: _neuron_meta(type(m).__name__, m.reset_kind, "next_step", wipe_input=m.wipe_input)}
        if isinstance(m, DelayedResetCuba):
            alpha = _np(m.alpha, S)
            if np.any(alpha >= 1) or np.any(beta >= 1):
                raise NIRError(f"layer {name!r} ({type(m).__name__}): alpha or beta = 1 (no decay) has no finite NIR tau", name)
            ts, tm = dt / (1 - alpha), dt / (1 - beta)
            meta[PARAMS_KEY] = {"alpha": alpha, "beta": beta}
            return nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / dt, v_leak=np.zeros(S), v_threshold=vth,
                               v_reset=np.zeros(S), w_in=ts / dt, metadata=meta)
        if np.all(beta == 1):
            return nir.IF(r=np.full(S, 1.0 / dt), v_threshold=vth, v_reset=np.zeros(S), metadata=meta)
        if np.any(beta >= 1):
            raise NIRError(f"layer {name!r} (DelayedResetLIF): beta = 1 (no leak) for some neurons has no finite NIR tau", name)
        tau = dt / (1 - beta)
        meta[PARAMS_KEY] = {"beta": beta}
        return nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(S), v_threshold=vth, v_reset=np.zeros(S), metadata=meta)
    if isinstance(m, LeakyIntegrator):
        tau = _np(m.tau, S)
        return nir.LI(tau=tau * dt, r=tau.copy(), v_leak=_np(m.v_leak, S),
                      metadata={META_KEY: dump_meta({"layer": "LeakyIntegrator"}), PARAMS_KEY: {"tau": tau}})
    if isinstance(m, CubaLeakyIntegrator):
        ts, tm = _np(m.tau_syn, S), _np(m.tau_mem, S)
        return nir.CubaLI(tau_syn=ts * dt, tau_mem=tm * dt, r=tm.copy(), v_leak=_np(m.v_leak, S), w_in=ts.copy(),
                          metadata={META_KEY: dump_meta({"layer": "CubaLeakyIntegrator"}),
                                    PARAMS_KEY: {"tau_syn": ts, "tau_mem": tm}})
    vth = _np(m.v_threshold, S)
    reset = "subtract" if m.v_reset is None else "zero"
    vr = 0.0 if m.v_reset is None else float(m.v_reset)
    meta = {META_KEY: _neuron_meta(type(m).__name__, reset)}
    if isinstance(m, neuron.CubaLIFNode):
        ts, tm = _np(m.tau_syn, S), _np(m.tau_mem, S)
        meta[PARAMS_KEY] = {"tau_syn": ts, "tau_mem": tm}
        return nir.CubaLIF(tau_syn=ts * dt, tau_mem=tm * dt, r=tm.copy(), v_leak=np.full(S, vr), v_threshold=vth,
                           v_reset=np.full(S, vr), w_in=ts.copy(), metadata=meta)
    if isinstance(m, neuron.LIFNode):
        tau = _np(m.tau, S)
        meta[PARAMS_KEY] = {"tau": tau}
        return nir.LIF(tau=tau * dt, r=np.ones(S) if m.decay_input else tau.copy(), v_leak=np.full(S, vr),
                       v_threshold=vth, v_reset=np.full(S, vr), metadata=meta)
    if isinstance(m, neuron.IFNode):
        return nir.IF(r=np.full(S, 1.0 / dt), v_threshold=vth, v_reset=np.full(S, vr), metadata=meta)
    raise NIRError(f"layer {name!r} ({type(m).__name__}): this neuron has no NIR node (IFNode, LIFNode, CubaLIFNode "
                   "and the modules of hwsnn.nir do)", name)


def _weight_node(m: nn.Module, shape: tuple[int, ...], name: str) -> Any:
    nir = require_nir()
    w = m.weight.detach().cpu().numpy().copy()
    if isinstance(m, nn.Linear):
        return nir.Linear(weight=w) if m.bias is None else nir.Affine(weight=w, bias=m.bias.detach().cpu().numpy().copy())
    if getattr(m, "padding_mode", "zeros") != "zeros":
        raise NIRError(f"layer {name!r} ({type(m).__name__}): padding_mode {m.padding_mode!r}; NIR convolutions pad with zeros", name)
    bias = np.zeros(w.shape[0], w.dtype) if m.bias is None else m.bias.detach().cpu().numpy().copy()
    meta = {META_KEY: dump_meta({"layer": type(m).__name__, "bias": m.bias is not None})}
    pad = m.padding if isinstance(m.padding, str) else tuple(int(p) for p in m.padding)
    if isinstance(m, nn.Conv1d):
        return nir.Conv1d(input_shape=int(shape[-1]), weight=w, stride=int(m.stride[0]),
                          padding=pad if isinstance(pad, str) else pad[0], dilation=int(m.dilation[0]),
                          groups=int(m.groups), bias=bias, metadata=meta)
    return nir.Conv2d(input_shape=tuple(int(s) for s in shape[-2:]), weight=w, stride=tuple(int(s) for s in m.stride),
                      padding=pad, dilation=tuple(int(d) for d in m.dilation), groups=int(m.groups), bias=bias,
                      metadata=meta)


def layer_nodes(m: nn.Module, name: str, shape: tuple[int, ...], dt: float) -> Optional[tuple[dict, list]]:
    """``({node name: node}, internal edges)`` of one float layer (the first node is the entry, the
    first again the exit), ``None`` for a layer that is left out (eval-mode dropout, identity)."""
    nir = require_nir()
    if isinstance(m, (layer.Dropout, layer.Dropout2d, nn.Dropout, nn.Identity)):
        if m.training and not isinstance(m, nn.Identity):
            raise NIRError(f"layer {name!r} ({type(m).__name__}): dropout masks have no NIR node; export the model "
                           "in eval mode (dropout is the identity there)", name)
        return None
    if isinstance(m, layer.RecurrentContainer):
        n = neuron_node(m.sub_module, name, shape, dt)
        return {name: n, f"{name}.rec": _weight_node(m.rc, shape, name)}, [(name, f"{name}.rec"), (f"{name}.rec", name)]
    if isinstance(m, (neuron.BaseNode, DelayedResetLIF, LeakyIntegrator, CubaLeakyIntegrator)):
        return {name: neuron_node(m, name, shape, dt)}, []
    if isinstance(m, layer.VotingLayer):
        v, f = int(m.voting_size), int(shape[-1])
        if len(shape) != 1 or f % v:
            raise NIRError(f"layer {name!r} (VotingLayer): input {list(shape)}; NIR's Linear needs one axis divisible by {v}", name)
        w = np.kron(np.eye(f // v), np.full((1, v), 1.0 / v))
        return {name: nir.Linear(weight=w, metadata={META_KEY: dump_meta({"layer": "VotingLayer", "voting_size": v})})}, []
    if isinstance(m, layer.OutputCode):
        if len(shape) != 1 or int(shape[-1]) != m.readouts:
            raise NIRError(f"layer {name!r} (OutputCode): input {list(shape)}; NIR's Linear needs one axis of "
                           f"{m.readouts}", name)
        meta = {"layer": "OutputCode", "classes": m.classes, "readouts": m.readouts}
        return {name: nir.Linear(weight=m.signs().detach().cpu().numpy().astype(np.float64),
                                 metadata={META_KEY: dump_meta(meta)})}, []
    if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return {name: _weight_node(m, shape, name)}, []
    if isinstance(m, Scale):
        return {name: nir.Scale(scale=_np(m.scale, shape))}, []
    if isinstance(m, Threshold):
        return {name: nir.Threshold(threshold=_np(m.threshold, shape))}, []
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or (not m.count_include_pad and np.any(m.padding)) or m.divisor_override not in (None, 1):
            raise NIRError(f"layer {name!r} (AvgPool2d): ceil_mode, count_include_pad=False with padding and other "
                           "divisors have no NIR node", name)
        pair = lambda v: np.array(v if isinstance(v, (tuple, list)) else (v, v))  # noqa: E731
        cls = nir.SumPool2d if m.divisor_override == 1 else nir.AvgPool2d
        return {name: cls(kernel_size=pair(m.kernel_size), stride=pair(m.stride or m.kernel_size),
                          padding=pair(m.padding))}, []
    if isinstance(m, nn.Flatten):
        s, e = int(m.start_dim), int(m.end_dim)
        if s == 0 or e == 0:
            raise NIRError(f"layer {name!r} (Flatten): start_dim/end_dim 0 merges the batch axis; NIR has none", name)
        return {name: nir.Flatten(input_type={"input": np.array(shape)}, start_dim=s - 1 if s > 0 else s,
                                  end_dim=e - 1 if e > 0 else e)}, []
    if isinstance(m, layer.Delay):
        return {name: nir.Delay(delay=np.full(shape, m.delay_steps * dt))}, []
    raise NIRError(f"layer {name!r} ({type(m).__name__}) has no NIR node; exported: Linear, Conv1d, Conv2d, AvgPool2d, "
                   "Flatten, Delay, VotingLayer, OutputCode, IFNode, LIFNode, CubaLIFNode, RecurrentContainer, eval-mode Dropout "
                   "and the modules of hwsnn.nir", name)


def fresh_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` with every memory at its reset value (``model`` keeps its state: the
    memories are put aside, the modules reset for the copy, then given back)."""
    saved = [(m, list(m.named_memories())) for m in model.modules() if isinstance(m, MemoryModule)]
    try:
        for m, _ in saved:
            m.reset()
        return copy.deepcopy(model)
    finally:
        for m, mem in saved:
            for name, value in mem:
                setattr(m, name, value)


def probe_shapes(layers: Sequence[nn.Module], input_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """One sample's input shape of every layer and the final output shape (``len(layers) + 1``),
    from one step of a reset copy on zeros."""
    probe = fresh_copy(nn.Sequential(*layers))
    set_step_mode(probe, "s")
    p = next((t for t in probe.parameters() if t.is_floating_point()), None)
    x = torch.zeros((1, *input_shape), dtype=p.dtype if p is not None else torch.float32)
    shapes = []
    with torch.no_grad():
        for i, m in enumerate(probe):
            shapes.append(tuple(int(s) for s in x.shape[1:]))
            try:
                x = m(x)
            except (RuntimeError, ValueError) as err:
                raise ValueError(f"export_to_nir: layer {i} ({type(m).__name__}) does not take one step of shape "
                                 f"{list(shapes[-1])}: {err}") from None
    shapes.append(tuple(int(s) for s in x.shape[1:]))
    return shapes


def default_input_shape(layers: Sequence[nn.Module]) -> tuple[int, ...]:
    first = layers[0] if layers else None
    if isinstance(first, nn.Linear):
        return (int(first.in_features),)
    if isinstance(first, layer.RecurrentContainer):
        return (int(first.features),)
    raise ValueError("export_to_nir: cannot infer the input shape (the network does not start with a Linear); pass "
                     "input_shape=(C, H, W) or (features,) for one sample")


def export_to_nir(model: nn.Module, dt: float = 1e-4, *, input_shape: Optional[Sequence[int]] = None,
                  path: Any = None, input_kind: str = "spikes", input_exponent: int = 0) -> Any:
    r"""The NIR graph of an hwsnn network (module docstring); written to ``path`` when given.

    :param model: an ``nn.Sequential`` of hwsnn float layers or of integer twins, or one layer
    :param dt: the time step in seconds (time constants are written as ``tau_steps * dt``; recorded
        in the metadata)
    :param input_shape: one sample's input shape; default: the first Linear's ``in_features``
    :param path: also write the graph there (``nir.write``, atomic)
    :param input_kind: twins only: ``'spikes'``, ``'counts'`` or ``'values'`` (the export format's)
    :param input_exponent: twins only: the exponent of ``values`` inputs
    :raises NIRError: a layer with no NIR node (named), a graph NIR's type check refuses
    """
    require_nir()
    dt = check_dt(dt, "export_to_nir: dt")
    layers, names = layers_of(model)
    if not layers:
        raise ValueError("export_to_nir: the network has no layers")
    if any(isinstance(m, FixedModule) for m in layers):
        if all(isinstance(m, FixedModule) for m in layers):
            names = twin_layer_names(layers)  # the names of the bundle's ops (quant.export)
        graph = twin_graph(layers, names, dt, input_shape, input_kind, input_exponent)
    else:
        shape_in = tuple(int(s) for s in input_shape) if input_shape is not None else default_input_shape(layers)
        for m, name in zip(layers, names):  # refusals name the layer before any probing
            if isinstance(m, (layer.Dropout, layer.Dropout2d, nn.Dropout)) and m.training:
                layer_nodes(m, name, (), dt)
        shapes = probe_shapes(layers, shape_in)
        items, skipped = [], []
        for m, name, shape in zip(layers, names, shapes):
            got = layer_nodes(m, name, shape, dt)
            if got is None:
                skipped.append(name)
                continue
            ns, internal = got
            items.append((next(iter(ns)), ns, internal))
        meta = {META_KEY: dump_meta({"kind": "float", "dt": dt, "producer": f"hwsnn {__version__}",
                                     "compare": ">=", "skipped": skipped})}
        graph = chain_graph(items, shape_in, shapes[-1], meta)
    if path is not None:
        write_graph(graph, path)
    return graph
