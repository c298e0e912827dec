r"""One NIR node -> hwsnn float modules, by the conventions of :mod:`hwsnn.nir.conventions`.

``build_unit(unit, ctx)`` returns the modules of one chain unit: usually one, and a
:class:`~hwsnn.nir.modules.Scale` in front of a neuron whose input gain is not 1 (folded into the
weights before it by :func:`hwsnn.nir.import_from_nir` with ``fold=True``).

===================  ==============================================================================
NIR node             hwsnn
===================  ==============================================================================
Affine / Linear      ``layer.Linear`` (bias / no bias); hwsnn's ``VotingLayer`` or ``OutputCode`` where its metadata says so
Scale                :class:`~hwsnn.nir.modules.Scale`
Conv1d / Conv2d      ``layer.Conv1d`` / ``layer.Conv2d`` (an all-zero bias: ``bias=False``)
Flatten              ``layer.Flatten`` (NIR counts dimensions without the batch)
SumPool2d/AvgPool2d  ``layer.AvgPool2d`` (``divisor_override=1`` for the sum)
IF / LIF / CubaLIF   ``IFNode`` / ``LIFNode`` / ``CubaLIFNode`` (reset at the spike), or snnTorch's
                     delayed reset (:mod:`hwsnn.nir.delayed_reset`) with ``source='snntorch'``
LI / CubaLI          :class:`~hwsnn.nir.modules.LeakyIntegrator` / ``CubaLeakyIntegrator``
Threshold            :class:`~hwsnn.nir.modules.Threshold`
Delay                ``layer.Delay`` (one delay for the layer, a whole number of steps)
neuron <-> Linear    ``layer.RecurrentContainer`` (the neuron's input gain folded into the recurrent weights)
===================  ==============================================================================

Uniform per-neuron arrays become numbers; others stay tensors (time constants, thresholds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch
import torch.nn as nn

from targets.bundle import SpecError

from .. import layer, neuron
from .conventions import RESETS, SNAP_RTOL, NIRError, Source, load_meta, snap
from .delayed_reset import DelayedResetCuba, DelayedResetLIF
from .graph import Unit, kind
from .modules import CubaLeakyIntegrator, LeakyIntegrator, Scale, Threshold

__all__ = ["Context", "build_unit", "PARAMS_KEY"]

#: key of a node's exact hwsnn parameters in its metadata (time constants in steps, decays)
PARAMS_KEY = "hwsnn_params"


@dataclass
class Context:
    """What one import decided: ``dt``, the source's conventions, an explicit ``reset``, the reset
    the NIR version documents, the parameter dtype, and the notes and resets it records."""

    dt: float
    source: Source
    reset: Optional[str]
    version_reset: str
    dtype: torch.dtype
    fold: bool = False
    notes: list[str] = field(default_factory=list)
    resets: dict[str, str] = field(default_factory=dict)


def _arr(node: Any, attr: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.broadcast_to(np.asarray(getattr(node, attr), dtype=np.float64), shape).copy()


def _shape(node: Any, attrs: tuple[str, ...], name: str) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*(np.shape(getattr(node, a)) for a in attrs)))
    except ValueError:
        raise NIRError(f"node {name!r} ({kind(node)}): the shapes of {', '.join(attrs)} do not broadcast "
                       f"({[np.shape(getattr(node, a)) for a in attrs]})", name) from None


def _uniform(a: np.ndarray) -> bool:
    return a.size == 0 or bool(np.all(a == a.reshape(-1)[0]))


def _value(a: np.ndarray) -> Any:
    """A number when uniform, else a float64 tensor."""
    return float(a.reshape(-1)[0]) if _uniform(a) else torch.from_numpy(np.ascontiguousarray(a))


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A float64 tensor: 0-d when every value is the same, else per neuron."""
    return torch.tensor(_value(a), dtype=torch.float64) if _uniform(a) else torch.from_numpy(np.ascontiguousarray(a))


def _exact(node: Any, name: str, key: str, computed: np.ndarray) -> np.ndarray:
    """hwsnn's exact value of ``key`` from the node's metadata when present and consistent with
    ``computed`` (what the node's own fields give, after :func:`snap`: so within a relative
    ``4 * SNAP_RTOL``), else ``computed``."""
    params = (getattr(node, "metadata", None) or {}).get(PARAMS_KEY)
    if not isinstance(params, dict) or key not in params:
        return computed
    exact = np.broadcast_to(np.asarray(params[key], dtype=np.float64), computed.shape)
    if not np.allclose(exact, computed, rtol=4 * SNAP_RTOL, atol=0.0, equal_nan=False):
        raise NIRError(f"node {name!r} ({kind(node)}): {key} = {computed.reshape(-1)[:4]} per step does not match "
                       f"the value hwsnn recorded in its metadata ({exact.reshape(-1)[:4]}); was the node edited "
                       f"after export? Remove metadata[{PARAMS_KEY!r}] to import the node's own values", name)
    return exact.copy()


def _steps(node: Any, name: str, attr: str, ctx: Context, shape: tuple[int, ...], low: float, strict: bool) -> np.ndarray:
    """``attr / dt`` in steps (snapped), every value above ``low`` (or equal when not ``strict``)."""
    s = _exact(node, name, attr, snap(_arr(node, attr, shape) / ctx.dt))
    bad = ~np.isfinite(s) | ((s <= low) if strict else (s < low))
    if bad.any():
        v = s[bad].reshape(-1)[0]
        raise NIRError(f"node {name!r} ({kind(node)}): {attr}/dt = {v:g} steps at dt = {ctx.dt:g} s; hwsnn needs "
                       f"{'>' if strict else '>='} {low:g} (forward Euler is not a decay otherwise): pass the dt the "
                       "graph was written for (snnTorch and SpikingJelly: 1e-4, Norse: 1e-3)", name)
    return s


def _reset(node: Any, name: str, ctx: Context, meta: Optional[dict]) -> str:
    if ctx.reset is not None:
        r = ctx.reset
    elif meta is not None and meta.get("reset") in RESETS:
        r = meta["reset"]
    elif ctx.source.reset == "version":
        r = ctx.version_reset
    elif ctx.source.reset is not None:
        r = ctx.source.reset
    else:
        raise NIRError(f"node {name!r} ({kind(node)}): {ctx.source.name}'s exporter does not write which reset the "
                       "neuron has (snnTorch writes v_reset = 0 for its 'subtract' and 'zero' alike): pass "
                       "reset='subtract' (snnTorch's default) or reset='zero'", name)
    ctx.resets[name] = r
    return r


def _gain(node: Any, name: str, ctx: Context, shape: tuple[int, ...], attr: str, tau_attr: Optional[str]) -> np.ndarray:
    """The input gain of forward Euler: ``attr * dt / tau`` (``attr * dt`` without ``tau_attr``);
    ``r`` reads as 1 for a source that ignores it (Norse)."""
    g = _arr(node, attr, shape) if (attr != "r" or ctx.source.reads_r) else np.ones(shape)
    g = g * ctx.dt / (_arr(node, tau_attr, shape) if tau_attr else 1.0)
    if not np.all(np.isfinite(g)):
        raise NIRError(f"node {name!r} ({kind(node)}): the input gain {attr}*dt{'/' + tau_attr if tau_attr else ''} "
                       "is not finite", name)
    return snap(g)


def _leak_and_reset(node: Any, name: str, shape: tuple[int, ...], reset: str, has_leak: bool) -> Optional[float]:
    """hwsnn's ``v_reset`` (``None``: soft reset) after checking ``v_leak``/``v_reset`` against the reset kind."""
    v_reset = _arr(node, "v_reset", shape) if getattr(node, "v_reset", None) is not None else np.zeros(shape)
    v_leak = _arr(node, "v_leak", shape) if has_leak else None
    if reset == "subtract":
        if np.any(v_reset != 0):
            raise NIRError(f"node {name!r} ({kind(node)}): v_reset = {v_reset.reshape(-1)[:4]} with the subtractive "
                           "reset, which does not use v_reset; pass reset='zero' or write v_reset = 0", name)
        if has_leak and np.any(v_leak != 0):
            raise NIRError(f"node {name!r} ({kind(node)}): v_leak = {v_leak.reshape(-1)[:4]}; with the subtractive "
                           "reset hwsnn's neurons leak toward 0", name)
        return None
    if not _uniform(v_reset):
        raise NIRError(f"node {name!r} ({kind(node)}): per-neuron v_reset (values {np.unique(v_reset)[:4]}) has no "
                       "hwsnn neuron; one v_reset per layer", name)
    vr = float(v_reset.reshape(-1)[0])
    if has_leak and not np.allclose(v_leak, vr, rtol=1e-6, atol=1e-12):
        raise NIRError(f"node {name!r} ({kind(node)}): v_leak = {v_leak.reshape(-1)[:4]} differs from v_reset = {vr:g}; "
                       "hwsnn's neurons leak toward v_reset", name)
    return vr


def _scale_before(g: np.ndarray, mods: list, ctx: Context, name: str) -> None:
    if np.all(g == 1.0):
        return
    mods.insert(0, Scale(torch.from_numpy(g)))
    ctx.notes.append(f"{name}: input gain {float(g.min()):g}..{float(g.max()):g} as a Scale before the neuron")


def _neuron(node: Any, name: str, ctx: Context, recurrent: bool) -> list:
    """The modules of a neuron node (a Scale in front when its input gain is not 1)."""
    t = kind(node)
    meta = load_meta(getattr(node, "metadata", None), f"node {name!r} ({t})")
    timing = (meta or {}).get("reset_timing", ctx.source.reset_timing)
    wipe = bool((meta or {}).get("wipe_input", recurrent))  # snnTorch: RLeaky's zero reset drops the step's input
    if t in ("LI", "CubaLI"):
        shape = _shape(node, ("tau",) if t == "LI" else ("tau_syn", "tau_mem"), name)
        v_leak = _value(_arr(node, "v_leak", shape))
        if t == "LI":
            tau = _steps(node, name, "tau", ctx, shape, 1.0, False)
            mods = [LeakyIntegrator(_tensor(tau), torch.as_tensor(v_leak, dtype=torch.float64))]
            _scale_before(_gain(node, name, ctx, shape, "r", "tau"), mods, ctx, name)
            return mods
        ts = _steps(node, name, "tau_syn", ctx, shape, 1.0, False)
        tm = _steps(node, name, "tau_mem", ctx, shape, 1.0, False)
        g = snap(_gain(node, name, ctx, shape, "w_in", "tau_syn") * _gain(node, name, ctx, shape, "r", "tau_mem"))
        mods = [CubaLeakyIntegrator(_tensor(ts), _tensor(tm), torch.as_tensor(v_leak, dtype=torch.float64))]
        _scale_before(g, mods, ctx, name)
        return mods
    shape = _shape(node, ("v_threshold",), name)
    reset = _reset(node, name, ctx, meta)
    vth = _value(_arr(node, "v_threshold", shape))
    if t == "IF":
        g = _gain(node, name, ctx, shape, "r", None)
        if timing == "next_step":
            mods = [DelayedResetLIF(1.0, torch.as_tensor(vth, dtype=torch.float64), reset, wipe_input=wipe)]
        else:
            mods = [neuron.IFNode(v_threshold=vth, v_reset=_leak_and_reset(node, name, shape, reset, False))]
        _scale_before(g, mods, ctx, name)
        return mods
    if t == "LIF":
        tau = _steps(node, name, "tau", ctx, shape, 1.0, timing == "spike")
        g = _gain(node, name, ctx, shape, "r", "tau")
        if timing == "next_step":
            _leak_and_reset(node, name, shape, "subtract", True)  # snnTorch: v_leak = v_reset = 0
            beta = _exact(node, name, "beta", 1.0 - 1.0 / tau)
            mods = [DelayedResetLIF(_tensor(beta), torch.as_tensor(vth, dtype=torch.float64), reset, wipe_input=wipe)]
            _scale_before(g, mods, ctx, name)
            return mods
        vr = _leak_and_reset(node, name, shape, reset, True)
        decay_input = False
        if not ctx.fold and not np.all(g == 1.0) and np.all(snap(g * tau) == 1.0):
            decay_input, g = True, np.ones(shape)  # r = 1: SpikingJelly's decay_input=True
        mods = [neuron.LIFNode(tau=_value(tau), decay_input=decay_input, v_threshold=vth, v_reset=vr)]
        _scale_before(g, mods, ctx, name)
        return mods
    if t == "CubaLIF":
        ts = _steps(node, name, "tau_syn", ctx, shape, 1.0, False)
        tm = _steps(node, name, "tau_mem", ctx, shape, 1.0, False)
        g = snap(_gain(node, name, ctx, shape, "w_in", "tau_syn") * _gain(node, name, ctx, shape, "r", "tau_mem"))
        if timing == "next_step":
            _leak_and_reset(node, name, shape, "subtract", True)
            alpha = _exact(node, name, "alpha", 1.0 - 1.0 / ts)
            beta = _exact(node, name, "beta", 1.0 - 1.0 / tm)
            mods = [DelayedResetCuba(_tensor(alpha), _tensor(beta), torch.as_tensor(vth, dtype=torch.float64), reset)]
        else:
            vr = _leak_and_reset(node, name, shape, reset, True)
            mods = [neuron.CubaLIFNode(tau_syn=_value(ts), tau_mem=_value(tm), v_threshold=vth, v_reset=vr)]
        _scale_before(g, mods, ctx, name)
        return mods
    raise NIRError(f"node {name!r}: {t} is not a neuron", name)  # pragma: no cover


def _tuple(v: Any, n: int, name: str, what: str) -> Any:
    if isinstance(v, (str, bytes)):
        v = v.decode() if isinstance(v, bytes) else v
        if v not in ("same", "valid"):
            raise NIRError(f"node {name!r}: {what} {v!r} is not 'same', 'valid' or integers", name)
        return v
    a = np.asarray(v).reshape(-1)
    if a.size == 1:
        a = np.repeat(a, n)
    if a.size != n or a.dtype.kind not in "iuf" or np.any(a != np.round(a)):
        raise NIRError(f"node {name!r}: {what} {v!r} must be {n} whole number(s)", name)
    return tuple(int(x) for x in a)


def _weights(node: Any, name: str, ctx: Context) -> list:
    t = kind(node)
    w = np.asarray(node.weight)
    meta = load_meta(getattr(node, "metadata", None), f"node {name!r} ({t})")
    if t in ("Linear", "Affine"):
        if w.ndim != 2:
            raise NIRError(f"node {name!r} ({t}): weight of shape {list(w.shape)}; hwsnn imports [out, in] weights", name)
        if meta and meta.get("layer") == "VotingLayer":
            v = int(meta.get("voting_size", 0))
            want = np.kron(np.eye(w.shape[0]), np.full((1, v), 1.0 / v)) if v >= 1 else None
            if want is None or want.shape != w.shape or not np.allclose(w, want) or t != "Linear":
                raise NIRError(f"node {name!r} ({t}): hwsnn's metadata calls it a VotingLayer({v}) but its weights "
                               "are not the group means", name)
            return [layer.VotingLayer(v)]
        if meta and meta.get("layer") == "OutputCode":
            if t != "Linear" or not np.isin(w, (-1.0, 1.0)).all():
                raise NIRError(f"node {name!r} ({t}): hwsnn's metadata calls it an OutputCode but its weights are not "
                               "a Linear of +1/-1 entries", name)
            try:
                return [layer.OutputCode(w.shape[0], w.shape[1], codebook=(w > 0).astype(np.uint8))]
            except (ValueError, SpecError) as err:
                raise NIRError(f"node {name!r} ({t}): not a valid output code: {err}", name) from None
        m = layer.Linear(w.shape[1], w.shape[0], bias=t == "Affine", dtype=ctx.dtype)
        with torch.no_grad():
            m.weight.copy_(torch.from_numpy(w.astype(np.float64)))
            if t == "Affine":
                m.bias.copy_(torch.from_numpy(np.broadcast_to(np.asarray(node.bias, np.float64), (w.shape[0],)).copy()))
        return [m]
    dims = 1 if t == "Conv1d" else 2
    if w.ndim != dims + 2:
        raise NIRError(f"node {name!r} ({t}): weight of shape {list(w.shape)}; expected [out, in/groups, kernel]", name)
    groups = int(np.asarray(node.groups).reshape(-1)[0])
    bias = np.broadcast_to(np.asarray(node.bias, np.float64), (w.shape[0],)).copy()
    keep_bias = bool(np.any(bias != 0)) if not (meta and "bias" in meta) else bool(meta["bias"])
    cls = layer.Conv1d if dims == 1 else layer.Conv2d
    m = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=_tuple(node.stride, dims, name, "stride"),
            padding=_tuple(node.padding, dims, name, "padding"), dilation=_tuple(node.dilation, dims, name, "dilation"),
            groups=groups, bias=keep_bias, dtype=ctx.dtype)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(w.astype(np.float64)))
        if keep_bias:
            m.bias.copy_(torch.from_numpy(bias))
    return [m]


def build_unit(unit: Unit, ctx: Context) -> list:
    """The hwsnn modules of one chain unit (module docstring)."""
    node, name, t = unit.node, unit.name, kind(unit.node)
    if unit.rec is not None:
        mods = _neuron(node, name, ctx, recurrent=True)
        rec = _weights(unit.rec, unit.rec_name, ctx)[0]
        m = rec.out_features
        if not isinstance(rec, nn.Linear) or rec.in_features != m:
            raise NIRError(f"node {unit.rec_name!r} ({kind(unit.rec)}): a recurrent weight must be square; got "
                           f"[{rec.out_features}, {rec.in_features}]", unit.rec_name)
        container = layer.RecurrentContainer(mods[-1], m, bias=rec.bias is not None)
        gain = mods[0].scale.to(torch.float64) if len(mods) == 2 else None
        with torch.no_grad():
            w = rec.weight.to(torch.float64)
            b = None if rec.bias is None else rec.bias.to(torch.float64)
            if gain is not None:  # the neuron's gain scales its whole input: x and the fed-back W y + b
                g = gain.reshape(-1).expand(m) if gain.numel() in (1, m) else None
                if g is None:
                    raise NIRError(f"node {name!r}: its input gain has shape {tuple(gain.shape)}; expected one per neuron", name)
                w, b = w * g[:, None], (None if b is None else b * g)
            container.rc.weight.copy_(w)
            if b is not None:
                container.rc.bias.copy_(b)
        container.rc.to(ctx.dtype)
        return mods[:-1] + [container]
    if t in ("IF", "LIF", "CubaLIF", "LI", "CubaLI"):
        return _neuron(node, name, ctx, recurrent=False)
    if t in ("Linear", "Affine", "Conv1d", "Conv2d"):
        return _weights(node, name, ctx)
    if t == "Scale":
        return [Scale(_tensor(np.asarray(node.scale, np.float64)))]
    if t == "Threshold":
        return [Threshold(_tensor(np.asarray(node.threshold, np.float64)))]
    if t == "Flatten":
        s, e = int(node.start_dim), int(node.end_dim)
        return [layer.Flatten(s + 1 if s >= 0 else s, e + 1 if e >= 0 else e)]
    if t in ("SumPool2d", "AvgPool2d"):
        k = _tuple(node.kernel_size, 2, name, "kernel_size")
        return [layer.AvgPool2d(k, _tuple(node.stride, 2, name, "stride"), _tuple(node.padding, 2, name, "padding"),
                                divisor_override=1 if t == "SumPool2d" else None)]
    if t == "Delay":
        d = snap(np.asarray(node.delay, np.float64) / ctx.dt)
        if d.size == 0 or not _uniform(d) or d.reshape(-1)[0] < 0 or d.reshape(-1)[0] != round(d.reshape(-1)[0]):
            raise NIRError(f"node {name!r} (Delay): delays {np.unique(d)[:6]} steps at dt = {ctx.dt:g} s; hwsnn's Delay "
                           "takes one whole number of steps >= 0 for the layer", name)
        return [layer.Delay(int(d.reshape(-1)[0]))]
    known = "Input, Output, Affine, Linear, Scale, Conv1d, Conv2d, Flatten, SumPool2d, AvgPool2d, IF, LIF, LI, " \
            "CubaLIF, CubaLI, Delay, Threshold, recurrent populations"
    raise NIRError(f"node {name!r}: NIR node type {t} has no hwsnn import (imported: {known})", name)
