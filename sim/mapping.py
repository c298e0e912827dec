r"""Mapping of layers to cores, the fit check, and the cost model (cycles, latency, energy).

**Mapping** (deterministic, from the export alone):

* Each neuron layer (``if``/``lif``/``cuba``/``recurrent``) with :math:`n` neurons (one sample) and :math:`S`
  nonzero synapses into it (the nearest dense/conv/dropconnect layer before it, plus a recurrent
  layer's own matrix, stored with its target rows) gets
  :math:`c = \max(1, \lceil n / \text{neurons\_per\_core} \rceil, \lceil S / \text{synapses\_per\_core} \rceil)`
  cores (a missing limit counts as 1). Its neurons are split in :math:`c` contiguous blocks of
  :math:`\lceil n/c \rceil` (flat C order); the synapses into a neuron live on that neuron's core,
  so the synaptic layer feeding it uses the same blocks.
* A ``synapse_filter`` or ``delay`` layer right after a neuron layer of the same size runs on that
  layer's cores (a per-neuron state); elsewhere it gets cores of its own, as a neuron layer.
* ``dropout``, ``voting``, the ``output_code`` decoder, pooling and ``flatten`` are routing: no core, no cycles
  (they run off the chip).
* Cores are numbered in layer order from 0.
* On a Xylo target (``limits.layout: xylo_core``) the whole network runs on core 0: one op
  ``xylo_core`` (its :math:`N + M` neurons), or layered ops that
  :func:`targets.bundle.xylo_fuse.fuse_ops` lays out as one core (CUBA layers, the chip's latencies,
  one hidden weight shift); the fit is :func:`targets.bundle.xylo_core.fit_checks` on that core. A
  layered network that cannot be laid out so (LIF/IF neurons, mixed shifts...) does not fit, and the
  reason names the layer.

**Cost model** (``costs.cycle_model: per_core``; a Xylo core, or layered ops that fuse into one,
uses SynSense's model instead, :mod:`sim.xylo_cycles`, on the core's layout and the layers'
activity: ``cycles_per_step_mean`` is that model on the run's rasters, ``step_cycles``
the model on each step's, and ``clock_for_real_time_hz`` its worst case with a 20 % margin) (per time step; all cores run in parallel and synchronise at the end of the step):

.. math::
    \text{cycles}_c[t] = c_{syn}\,E_c[t] + c_{upd}\,U_c[t], \qquad
    \text{cycles}[t] = \max_c \text{cycles}_c[t]

with :math:`E_c` the synaptic events and :math:`U_c` the neuron updates on core :math:`c`
(``cycles_per_synaptic_event``, ``cycles_per_neuron_update`` of the target). The counters are
summed over the batch and divided by its size :math:`N` (exact for :math:`N = 1`; for a batch the
per-core means are taken before the maximum, a lower bound on the mean per-sample maximum).
Latency of a step: :math:`\text{cycles}[t]/f_{clk}`; real-time factor: :math:`dt` divided by the
mean step latency (above 1: faster than real time); energy per inference:
:math:`(e_{syn}\sum E + e_{upd}\sum U)/N`.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from targets.bundle import Bundle as Export
from targets.bundle.xylo_core import fit_checks as xylo_fit_checks
from targets.bundle.xylo_fuse import FuseError, fuse_ops

from .ops.signmode import lava_weights

__all__ = ["NEURON_OPS", "SYNAPTIC_OPS", "ROUTING_OPS", "core_map", "fit_check", "estimate_costs", "fused_core"]

NEURON_OPS = ("if", "lif", "cuba", "recurrent")
SYNAPTIC_OPS = ("dense", "conv2d", "dropconnect")
STATE_OPS = ("synapse_filter", "delay")
ROUTING_OPS = ("dropout", "dropout2d", "voting", "output_code", "avgpool2d", "maxpool2d", "flatten")


def _size(shape) -> int:
    return int(np.prod(shape, dtype=np.int64)) if len(shape) else 1


def _nnz(export: Export, entry: dict) -> int:
    name = entry.get("tables", {}).get("weight")
    return 0 if name is None else int(np.count_nonzero(export.tables[name]))


def _blocks(n: int, cores: int) -> list[tuple[int, int]]:
    size = -(-n // cores) if n else 0
    return [(i * size, min(n, (i + 1) * size)) for i in range(cores) if i * size < n] or [(0, n)]


def core_map(export: Export) -> list[dict]:
    """Per layer (in order): ``{"cores": [core id or None per block], "blocks": [(start, stop)], "neurons": n,
    "synapses": nonzero synapses stored per core}`` following the module's mapping rules."""
    lim = export.target.limits
    layers = export.layers
    plan: list[dict] = [dict(cores=[None], blocks=[(0, _size(e["output_shape"]))], neurons=0, synapses=[0]) for e in layers]
    next_core = 0
    for i, e in enumerate(layers):
        op = e["op"]
        n = _size(e["output_shape"])
        if op == "xylo_core":  # the whole chip: one core, N hidden + M readout neurons
            par = e.get("params", {})
            plan[i] = dict(cores=[next_core], blocks=[(0, n)], neurons=int(par["hidden"]) + int(par["readout"]),
                           synapses=[_nnz_core(export, e)])
            next_core += 1
        elif op in NEURON_OPS or (op in STATE_OPS and not _follows_neurons(layers, plan, i)):
            syn_idx = _feeding_synaptic(layers, i) if op in NEURON_OPS else None
            syn = (_nnz(export, layers[syn_idx]) if syn_idx is not None else 0) + (_nnz(export, e) if op == "recurrent" else 0)
            c = max(1, math.ceil(n / lim.neurons_per_core) if lim.neurons_per_core else 1,
                    math.ceil(syn / lim.synapses_per_core) if lim.synapses_per_core else 1)
            blocks = _blocks(n, c)
            ids = list(range(next_core, next_core + len(blocks)))
            next_core += len(blocks)
            per_core_syn = _synapses_per_block(export, layers[syn_idx], blocks) if syn_idx is not None else [0] * len(blocks)
            own = _synapses_per_block(export, e, blocks) if op == "recurrent" else [0] * len(blocks)
            plan[i] = dict(cores=ids, blocks=blocks, neurons=n, synapses=own)
            if syn_idx is not None:
                plan[syn_idx] = dict(cores=ids, blocks=blocks, neurons=0, synapses=per_core_syn)
        elif op in STATE_OPS:  # on the cores of the neuron layer before it
            prev = plan[i - 1]
            plan[i] = dict(cores=list(prev["cores"]), blocks=list(prev["blocks"]), neurons=0, synapses=[0] * len(prev["blocks"]))
    if lim.layout == "xylo_core":  # one chip, one core: every layer of a layered Xylo export runs on core 0
        for p in plan:
            p["cores"] = [None if c is None else 0 for c in p["cores"]]
    return plan


def _nnz_core(export: Export, entry: dict) -> int:
    tabs = entry.get("tables", {})
    return sum(int(np.count_nonzero(export.tables[tabs[r]])) for r in ("w_in", "w_rec", "w_out") if r in tabs)


def _follows_neurons(layers: list[dict], plan: list[dict], i: int) -> bool:
    if i == 0:
        return False
    prev = layers[i - 1]
    return (prev["op"] in NEURON_OPS or prev["op"] in STATE_OPS) and plan[i - 1]["cores"][0] is not None and \
        _size(prev["output_shape"]) == _size(layers[i]["output_shape"])


def _feeding_synaptic(layers: list[dict], i: int) -> Optional[int]:
    """Index of the synaptic layer whose output reaches neuron layer ``i`` through routing layers only."""
    j = i - 1
    while j >= 0 and layers[j]["op"] in ("dropout", "dropout2d", "delay"):
        j -= 1
    if j >= 0 and layers[j]["op"] in SYNAPTIC_OPS and _size(layers[j]["output_shape"]) == _size(layers[i]["output_shape"]):
        return j
    return None


def _synapses_per_block(export: Export, entry: dict, blocks: list[tuple[int, int]]) -> list[int]:
    """Nonzero weights stored on each block's core: dense rows of the block; conv: the filters of
    the channels the block touches (shared weights are stored once per core)."""
    w = export.tables.get(entry.get("tables", {}).get("weight", ""), None)
    if w is None:
        return [0] * len(blocks)
    if entry["op"] in ("dense", "dropconnect", "recurrent"):
        rows = np.count_nonzero(w, axis=1)
        return [int(rows[a:b].sum()) for a, b in blocks]
    per_channel = np.count_nonzero(w.reshape(w.shape[0], -1), axis=1)
    hw = _size(entry["output_shape"][1:])
    return [int(per_channel[a // hw:(b - 1) // hw + 1].sum()) if b > a else 0 for a, b in blocks]


def fit_check(export: Export, plan: Optional[list[dict]] = None) -> dict:
    """Check the export against the target's limits. Returns ``{"fits": bool, "checks": [...],
    "problems": [text, ...]}``; each check is ``{check, layer, value, limit, ok}``."""
    tg = export.target
    lim, syn = tg.limits, tg.synapse
    plan = core_map(export) if plan is None else plan
    checks: list[dict] = []

    def add(check: str, layer: str, value, limit, ok: Optional[bool] = None, why: str = "") -> None:
        ok = (limit is None or value <= limit) if ok is None else ok
        checks.append(dict(check=check, layer=layer, value=value, limit=limit, ok=bool(ok), why=why))

    cores_used = sorted({c for p in plan for c in p["cores"] if c is not None})
    xylo = lim.layout == "xylo_core"  # one core: its own checks (_xylo_fit) replace the per-core ones
    if not xylo:
        add("cores", "(network)", len(cores_used), lim.cores)
    per_core_neurons: dict[int, int] = {}
    per_core_syn: dict[int, int] = {}
    for e, p in zip(export.layers, plan) if not xylo else ():
        for c, (a, b), s in zip(p["cores"], p["blocks"], p["synapses"]):
            if c is None:
                continue
            if e["op"] in NEURON_OPS:
                per_core_neurons[c] = per_core_neurons.get(c, 0) + (b - a)
            per_core_syn[c] = per_core_syn.get(c, 0) + (s if e["op"] in SYNAPTIC_OPS or e["op"] == "recurrent" else 0)
    if per_core_neurons:
        add("neurons per core (largest)", "(network)", max(per_core_neurons.values()), lim.neurons_per_core)
    if per_core_syn:
        add("synapses per core (largest)", "(network)", max(per_core_syn.values()), lim.synapses_per_core)
    hidden = readout = 0
    for e in export.layers:
        name, op, par = e["name"], e["op"], e.get("params", {})
        tabs = e.get("tables", {})
        if op in NEURON_OPS:
            if par.get("readout"):
                readout += _size(e["output_shape"])
            else:
                hidden += _size(e["output_shape"])
        if "weight" in tabs and op in ("dense", "dropconnect", "recurrent") and not xylo:  # Xylo: the core's checks
            w = export.tables[tabs["weight"]]
            nz = w != 0
            add("fan-in (largest)", name, int(nz.sum(1).max()) if nz.size else 0, lim.max_fan_in)
            add("fan-out (largest)", name, int(nz.sum(0).max()) if nz.size else 0, lim.max_fan_out)
        if "weight" in tabs:
            w = export.tables[tabs["weight"]].astype(np.int64)
            wd = tg.widths.weight
            if syn.sign_modes:  # Loihi: the grid of the matrix's own sign mode (sim.ops.signmode)
                used, mode = lava_weights(w, wd.bits, syn.weight_step)
                add(f"weights as Lava keeps them ({mode} sign mode)", name, int(np.abs(w).max()) if w.size else 0,
                    wd.hi, bool(np.array_equal(used, w)))
            else:
                ok = bool(w.size == 0 or (w.min() >= wd.lo and w.max() <= wd.hi and not np.any(w % syn.weight_step)))
                add(f"weights in {wd.bits}-bit{' multiples of %d' % syn.weight_step if syn.weight_step > 1 else ''}",
                    name, int(np.abs(w).max()) if w.size else 0, wd.hi, ok)
        if op == "delay":
            add("delay depth", name, int(par["delay_steps"]), syn.max_delay)
        if "delays" in tabs:
            d = export.tables[tabs["delays"]]
            add("per-synapse delay (largest)", name, int(d.max()) if d.size else 0, syn.max_delay,
                ok=bool(syn.per_synapse_delay and (d.size == 0 or d.max() <= syn.max_delay)))
        if op == "conv2d" and tg.synapse.accumulation != "sum":
            add("convolution supported", name, 1, 0, ok=False)
    if xylo:
        return _xylo_fit(export, checks, add, len(cores_used))
    add("input channels", "(input)", _size(export.manifest["input"]["shape"]), lim.input_channels)
    add("hidden neurons", "(network)", hidden, lim.hidden_neurons)
    add("readout neurons", "(network)", readout, lim.readout_neurons)
    return _result(tg.name, checks, len(cores_used))


def _result(target: str, checks: list[dict], cores: int) -> dict:
    problems = [f"{c['layer']}: {c['why']}" if c.get("why") else
                f"{c['layer']}: {c['check']} = {c['value']} exceeds the limit {c['limit']}" if c["limit"] is not None
                else f"{c['layer']}: {c['check']} not available on target {target!r}" for c in checks if not c["ok"]]
    warnings = [f"{c['layer']}: {c['warn']}" for c in checks if c.get("warn")]
    return dict(fits=not problems, checks=checks, problems=problems, warnings=warnings, cores_used=cores)


def _with_off_chip(fit: dict, ops) -> dict:
    """``fit`` with ``off_chip``: the ops after the readout, which the host runs (name, op; e.g. the
    ``output_code`` decoder)."""
    fit["off_chip"] = [{"layer": op.name, "op": op.kind} for op in ops]
    return fit


def _xylo_fit(export: Export, checks: list[dict], add, cores: int) -> dict:
    """The fit on a Xylo target: one ``xylo_core`` op (routing ops after it run off the chip), checked by
    :func:`~targets.bundle.xylo_core.fit_checks`; layered ops are checked as the core
    :func:`~targets.bundle.xylo_fuse.fuse_ops` lays them out, or refused with the reason. A fitting
    network's result lists the ops after the readout in ``off_chip`` (they run on the host)."""
    tg = export.target
    ops = list(export.ops)
    core = [op for op in ops if op.kind == "xylo_core"]
    if len(core) == 1 and ops[0] is core[0] and all(op.kind in ROUTING_OPS for op in ops[1:]):
        checks.extend(xylo_fit_checks(core[0], tg))
        return _with_off_chip(_result(tg.name, checks, cores), ops[1:])
    if core:
        add("one xylo_core op first", "(network)", len(core), None, False,
            f"a Xylo chip holds one xylo_core op (then routing only); the export has {[op.kind for op in ops]}")
        return _result(tg.name, checks, cores)
    try:
        fused, off = fused_core(export)
    except FuseError as err:
        add("mapped onto the Xylo core", "(network)", 0, None, False,
            f"{tg.name} runs the whole network as one Xylo core (one hidden population, one weight shift per "
            f"matrix); this network cannot be laid out as one: {err}")
    else:  # the layered ops are the core's blocks, step for step (targets.bundle.xylo_fuse)
        checks.extend(xylo_fit_checks(fused, tg))
        return _with_off_chip(_result(tg.name, checks, cores), off)
    hidden = readout = 0
    for op in ops:
        nrn = op.neuron if op.kind == "recurrent" else op
        if nrn.kind in ("lif", "if"):
            add("CUBA neuron", op.name, 0, None, False,
                f"{nrn.kind} neurons do not exist on Xylo (every Xylo neuron has a decaying synaptic current): "
                "use CubaLIFNode")
        if op.kind in NEURON_OPS:
            n = _size(op.output_shape)
            if getattr(nrn, "readout", False):
                readout += n
            else:
                hidden += n
    add("input channels", "(input)", _size(export.manifest["input"]["shape"]), tg.limits.input_channels)
    add("hidden neurons", "(network)", hidden, tg.limits.hidden_neurons)
    add("readout neurons", "(network)", readout, tg.limits.readout_neurons)
    return _result(tg.name, checks, cores)


def estimate_costs(export: Export, counters: dict, steps: int, batch: int) -> dict:
    """Cycles per step, latency, real-time factor and energy from per-layer counters (module docstring)."""
    tg = export.target
    c = tg.costs
    cps, cpu = c.cycles_per_synaptic_event.value, c.cycles_per_neuron_update.value
    per_core: dict[int, np.ndarray] = {}
    events_total = updates_total = words_total = 0
    for lc in counters.values():
        events_total += int(lc.synaptic_events.sum())
        updates_total += int(lc.neuron_updates.sum())
        words_total += int(lc.words_read.sum())
        for b, core in enumerate(lc.cores):
            if core is None:
                continue
            cyc = cps * lc.synaptic_events[:, b] + cpu * lc.neuron_updates[:, b]
            per_core[core] = per_core.get(core, 0) + cyc
    n = max(batch, 1)
    if c.cycle_model != "per_core":
        model = _xylo_model_cycles(export, counters, steps, n)
        if model is not None:
            per_core = {0: model.pop("step_cycles") * n}
    else:
        model = None
    if per_core:
        stack = np.stack([np.asarray(v, dtype=np.float64) for v in per_core.values()], axis=1) / n
        step_cycles = stack.max(axis=1)
        core_busy = stack.sum(axis=0)
    else:
        step_cycles = np.zeros(steps)
        core_busy = np.zeros(0)
    clock = c.clock_hz.value
    mean_cycles = float(step_cycles.mean()) if steps else 0.0
    if model is not None:  # SynSense's model on the run's rasters (with aliases it is not the mean of the steps')
        mean_cycles = model["cycles_per_step_model"]
    latency = mean_cycles / clock if clock else float("nan")
    dt = float(export.manifest["dt"])
    energy = (c.energy_per_synaptic_event.value * events_total + c.energy_per_neuron_update.value * updates_total) / n
    unverified = [k for k in ("clock_hz", "cycles_per_synaptic_event", "cycles_per_neuron_update",
                              "energy_per_synaptic_event", "energy_per_neuron_update")
                  if getattr(c, k).source.strip().lower().startswith("unverified")]
    return dict(
        cycles_per_step_mean=mean_cycles,
        cycles_per_step_max=float(step_cycles.max()) if steps else 0.0,
        cycles_per_inference=float(step_cycles.sum()),
        step_cycles=step_cycles,
        latency_per_step_s=latency,
        latency_per_inference_s=float(step_cycles.sum()) / clock if clock else float("nan"),
        real_time_factor=(dt / latency) if latency > 0 else float("inf"),
        energy_per_inference_j=energy,
        synaptic_events_per_inference=events_total / n,
        neuron_updates_per_inference=updates_total / n,
        words_read_per_inference=words_total / n,
        core_cycles_per_inference={int(k): float(v) for k, v in zip(per_core.keys(), core_busy)},
        clock_hz=clock,
        dt_s=dt,
        unverified_figures=unverified,
        **(model or {}),
    )


def fused_core(export: Export):
    """``(core, off_chip)`` of a layered Xylo export (:func:`~targets.bundle.xylo_fuse.fuse_ops`), computed
    once per loaded bundle (its ``cache``) for the fit check and the cost model;
    :class:`~targets.bundle.xylo_fuse.FuseError` when it does not fuse (raised again on every call)."""
    hit = export.cache.get("xylo_fuse")
    if hit is None:
        try:
            hit = export.cache["xylo_fuse"] = fuse_ops(export.ops, export.target)
        except FuseError as err:
            hit = export.cache["xylo_fuse"] = err
    if isinstance(hit, FuseError):
        raise hit
    return hit


def _layered_activity(export: Export, counters: dict) -> Optional[dict]:
    """For a layered export on a Xylo target: the core it fuses into (``core``) and the cycle model's
    activity counters gathered from its layers (``input_active``: the first op's input,
    ``hidden_active``: the hidden neuron layers' outputs summed, ``output_active``: the readout's),
    ``[T, 1]`` each, as the core's own op counts them; ``None`` when it does not fuse or the run did
    not count them."""
    try:
        core, off = fused_core(export)
    except FuseError:
        return None
    ops = list(export.ops)
    # the neuron layers on the chip, in order (inactive dropouts between them hold no neurons)
    neurons = [op.name for op in ops[:len(ops) - len(off)] if op.kind in NEURON_OPS]
    if len(neurons) != len(core.blocks):  # hidden layers + the readout
        return None
    try:
        hidden = sum(counters[n].activity["output_active"] for n in neurons[:-1])
        return {"core": core, "input_active": counters[ops[0].name].activity["input_active"],
                "hidden_active": hidden, "output_active": counters[neurons[-1]].activity["output_active"]}
    except KeyError:
        return None


def _xylo_model_cycles(export: Export, counters: dict, steps: int, batch: int) -> Optional[dict]:
    """SynSense's cycle model (:mod:`sim.xylo_cycles`) for an export that is a Xylo core, or layered
    ops that fuse into one (:func:`targets.bundle.xylo_fuse.fuse_ops`, activity from the layers):
    ``step_cycles`` (the model on each step's activity), ``cycles_per_step_model`` (on the whole run's
    rasters: what Rockpool's ``cycles_model`` gives for them, batch 1) and ``clock_for_real_time_hz``
    (its ``est_clock_freq``). ``None`` for other exports."""
    from . import xylo_cycles

    ops = list(export.ops)
    if not ops:
        return None
    if ops[0].kind == "xylo_core":
        core = ops[0]
        act = counters[core.name].activity
    else:
        act = _layered_activity(export, counters)
        if act is None:
            return None
        core = act.pop("core")
    model = export.target.costs.cycle_model
    sizes = {"input_active": core.inputs, "hidden_active": core.hidden, "output_active": core.readout}
    per_step = {k: act[k][:, 0].astype(np.float64) / (batch * sizes[k]) for k in sizes}
    step = np.array([xylo_cycles.cycles_per_step(core, model, *(per_step[k][t] for k in sizes)) for t in range(steps)])
    whole = [float(per_step[k].mean()) if steps else 0.0 for k in sizes]
    return dict(step_cycles=step, cycles_model=model,
                cycles_per_step_model=xylo_cycles.cycles_per_step(core, model, *whole),
                clock_for_real_time_hz=xylo_cycles.clock_for_real_time(core, model, float(export.manifest["dt"])))
