r"""``xylo_core``: a whole network on one SynSense Xylo core (``../shared/targets/xylo.md``).

Xylo has one hidden population of :math:`N` neurons and one readout population of :math:`M`:

* ``w_in`` ``[Nin, Nien, S]``: input channel -> hidden neuron ``0..Nien-1`` (the *first* ``Nien``),
  synapse ``s`` (``S`` = 1, or 2 with synapse 2); ``w_rec`` ``[N, N, S]`` (row = source); ``w_out``
  ``[Noen, M]`` (rows = the *last* ``Noen`` hidden neurons);
* one weight shift per matrix; effective weight :math:`\mathrm{wrap}_{16}(w \ll s)`;
* per neuron: ``dash_syn``, ``dash_syn2``, ``dash_mem`` (shift decays, :math:`\tau = 2^k`),
  ``threshold`` (> 0), ``bias``; ``alias``: one alias target per hidden neuron (``-1``: none).

A feed-forward stack of hidden layers is laid out in ``w_rec`` as blocks (``blocks``: the first
index of each hidden layer and :math:`N`); recurrent weights of a layer are its diagonal block.
Every hidden -> hidden hop costs one step; the readout sees the hidden spikes one step late.

One step (:math:`R` holds the hidden spike counts of the previous step):

1. input events: channel ``i = 0..Nin-1`` in order, :math:`c = \min(X_i, \text{input\_cap})` (or a
   refusal above it without ``clip_events``), :math:`I_s \leftarrow \mathrm{sat}(I_s + c\,w)` per
   source, saturating after every event;
2. recurrent events: hidden ``j = 0..N-1`` in order, :math:`c = R_j`, the same rule with ``w_rec``;
3. readout events: the last ``Noen`` hidden neurons' :math:`R` into the readout currents (``w_out``);
4. hidden neurons ``j = 0..N-1`` in order: :math:`I_s \mathrel{-}= D(I_s, k_s)`;
   :math:`\delta = \mathrm{wrap}(-D(V, k_m))`, :math:`\delta = \mathrm{sat}(\delta + I_1 + I_2)`,
   :math:`\delta = \mathrm{sat}(\delta + b)`, :math:`V = \mathrm{sat}(V + \delta)`; :math:`n = R_j`
   (alias deposits of this step), ``while V >= th and n < spike_cap: n += 1; V -= th``;
   :math:`R_j = n`; alias target ``a``: :math:`R_a = \min(R_a + n, \text{spike\_cap})`;
5. readout neurons: the same with one synapse, at most ``readout_cap`` spike, no alias.

:math:`D(x, k) = x \gg k`, but 1 when that is 0 and :math:`x > 0`. The op's output is the readout
spikes ``[M]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..target import Target, Width
from .base import OpSpec, TableFormat, param, register, table

__all__ = ["XyloCore", "DASH_WIDTH", "ALIAS_WIDTH", "HIDDEN_TABLES", "READOUT_TABLES", "fit_checks", "rule_problems"]

#: the 4-bit decay fields of the chip (dash_mem, dash_syn, dash_syn2, ...)
DASH_WIDTH = Width(bits=4, signed=False)
#: alias targets: -1 (none) or a hidden neuron index
ALIAS_WIDTH = Width(bits=16, signed=True)
#: per-hidden-neuron tables (``[N]``) and per-readout-neuron tables (``[M]``)
HIDDEN_TABLES = ("dash_syn", "dash_syn2", "dash_mem", "threshold", "bias", "alias")
READOUT_TABLES = ("dash_syn_out", "dash_mem_out", "threshold_out", "bias_out")


def rule_problems(target: Target) -> list[str]:
    """Why ``target`` does not compute the Xylo core's rules (module docstring); empty when it does.
    A target may keep ``limits.layout: xylo_core`` with other neuron rules (variants for tests), but
    a ``xylo_core`` op, and fusing layers into one, need Xylo's."""
    out = []
    if target.synapse.accumulation != "per_event_saturate" or target.synapse.weight_shift != "per_synapse":
        out.append("synapse.accumulation: per_event_saturate and synapse.weight_shift: per_synapse (Xylo's event rule)")
    if target.neuron.membrane_update != "saturated_delta" or target.decay.current_order != "add_then_decay":
        out.append("neuron.membrane_update: saturated_delta and decay.current_order: add_then_decay (the Xylo neuron)")
    if target.decay.mechanism != "shift" or target.decay.rounding != "xylo_min1":
        out.append("decay.mechanism: shift with rounding xylo_min1 (Xylo's decay)")
    if "subtract" not in target.neuron.reset or target.neuron.compare != ">=":
        out.append("the subtractive reset and compare '>='")
    if target.synapse.latency != 1 or target.synapse.first_latency != 0:
        out.append("synapse.latency: 1 and first_latency: 0 (the recurrent buffer)")
    return [f"target {target.name!r} does not compute the Xylo core's rules: needs {p}" for p in out]


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class XyloCore(OpSpec):
    kind = "xylo_core"
    summary = ("a whole network on one Xylo core: input events (`w_in`), the previous step's hidden spikes "
               "(`w_rec`, hidden layers as blocks) and readout events (`w_out`) saturating one by one; per-neuron "
               "CUBA neurons (two synapses), aliases; output: the readout spikes")

    inputs: int = param("Nin, input channels", ge=1)
    hidden: int = param("N, hidden neurons", ge=1)
    readout: int = param("M, readout neurons", ge=1)
    synapses: int = param("S, synaptic currents fed by the weight tables (2: synapse 2 is used)", ge=1, le=2)
    input_expansion: int = param("Nien: the input reaches hidden neurons 0..Nien-1 (w_in's second axis)", ge=1)
    output_expansion: int = param("Noen: the readout reads hidden neurons N-Noen..N-1 (w_out's rows)", ge=1)
    weight_shift_in: int = param("left shift of w_in")
    weight_shift_rec: int = param("left shift of w_rec (every block)")
    weight_shift_out: int = param("left shift of w_out")
    input_cap: int = param("input events per channel and step the chip takes (15)", ge=1)
    spike_cap: int = param("spikes per hidden neuron and step (31)", ge=1)
    readout_cap: int = param("spikes per readout neuron and step (1)", ge=1)
    clip_events: bool = param("input counts above input_cap are clipped (the chip's rule); false: refused")
    blocks: tuple[int, ...] = param("first hidden index of each hidden layer, then N (one block for an imported core)")
    block_names: str = param("comma-separated names of the hidden layers ('' when unknown)")
    state_exponents: tuple[int, ...] = param("exponent of each hidden layer's states (one per block), for reading "
                                             "them as real values")
    readout_exponent: int = param("exponent of the readout neurons' states")
    w_in: np.ndarray = table("[Nin, Nien, S] input weights (widths.weight)")
    w_rec: np.ndarray = table("[N, N, S] hidden weights, row = source (widths.weight)")
    w_out: np.ndarray = table("[Noen, M] readout weights, rows = the last Noen hidden neurons (widths.weight)")
    dash_syn: np.ndarray = table("[N] synapse 1 decay k (tau = 2^k), 4 bits")
    dash_syn2: Optional[np.ndarray] = table("[N] synapse 2 decay k, 4 bits (required with S = 2)", required=False)
    dash_mem: np.ndarray = table("[N] membrane decay k, 4 bits")
    threshold: np.ndarray = table("[N] thresholds (widths.threshold, > 0)")
    bias: np.ndarray = table("[N] biases added to the membrane every step (widths.bias)")
    alias: np.ndarray = table("[N] alias target of each hidden neuron, -1 for none (int16)")
    dash_syn_out: np.ndarray = table("[M] readout synapse decay k, 4 bits")
    dash_mem_out: np.ndarray = table("[M] readout membrane decay k, 4 bits")
    threshold_out: np.ndarray = table("[M] readout thresholds (> 0)")
    bias_out: np.ndarray = table("[M] readout biases (widths.bias)")

    # -- validation (target-free) -----------------------------------------------------------------
    def _consistency(self, problems: list[str]) -> None:
        n, m, nin, s = self.hidden, self.readout, self.inputs, self.synapses
        if self.input_shape != (nin,):
            problems.append(f"input_shape: {list(self.input_shape)}; a core with {nin} input channels takes [{nin}]")
        if self.input_kind == "values":
            problems.append("input_kind: the core takes 'spikes' or 'counts' (input events)")
        if (self.output_shape, self.output_kind, self.output_exponent) != ((m,), "spikes" if self.readout_cap == 1 else "counts", 0):
            problems.append(f"output: the core outputs its {m} readout neurons' spikes ([{m}], "
                            f"{'spikes' if self.readout_cap == 1 else 'counts'}, exponent 0); got "
                            f"({list(self.output_shape)}, {self.output_kind!r}, {self.output_exponent!r})")
        if self.input_expansion > n:
            problems.append(f"params.input_expansion: {self.input_expansion} > hidden {n}")
        if self.output_expansion > n:
            problems.append(f"params.output_expansion: {self.output_expansion} > hidden {n}")
        shapes = {"w_in": (nin, self.input_expansion, s), "w_rec": (n, n, s), "w_out": (self.output_expansion, m)}
        shapes.update({k: (n,) for k in HIDDEN_TABLES})
        shapes.update({k: (m,) for k in READOUT_TABLES})
        for role, want in shapes.items():
            arr = getattr(self, role)
            if arr is not None and arr.shape != want:
                problems.append(f"tables.{role}: shape {list(arr.shape)}; expected {list(want)}")
        if s == 2 and self.dash_syn2 is None:
            problems.append("tables.dash_syn2: required when synapses = 2 (synapse 2 has its own decay)")
        if self.alias is not None and self.alias.size and (int(self.alias.min()) < -1 or int(self.alias.max()) >= n):
            problems.append(f"tables.alias: values must be -1 (no alias) or a hidden neuron in [0, {n - 1}]; got "
                            f"[{int(self.alias.min())}, {int(self.alias.max())}]")
        b = self.blocks
        if len(b) < 2 or b[0] != 0 or b[-1] != n or any(x >= y for x, y in zip(b, b[1:])):
            problems.append(f"params.blocks: {list(b)}; expected increasing first indices starting at 0 and ending "
                            f"with N = {n}")
        elif len(self.state_exponents) != len(b) - 1:
            problems.append(f"params.state_exponents: {len(self.state_exponents)} values for {len(b) - 1} blocks")
        names = [x for x in self.block_names.split(",")] if self.block_names else []
        if names and len(names) != len(b) - 1:
            problems.append(f"params.block_names: {len(names)} names for {len(b) - 1} blocks")
        for role in ("threshold", "threshold_out"):
            arr = getattr(self, role)
            if arr is not None and arr.size and int(arr.min()) <= 0:
                problems.append(f"tables.{role}: {int(arr.min())} at neuron {int(np.argmin(arr))}; Xylo needs "
                                "thresholds > 0 (a threshold <= 0 fires the spike cap every step)")
        for role in ("dash_syn", "dash_syn2", "dash_mem", "dash_syn_out", "dash_mem_out"):
            arr = getattr(self, role)
            if arr is not None and arr.size and (int(arr.min()) < 0 or int(arr.max()) > DASH_WIDTH.hi):
                problems.append(f"tables.{role}: decays must lie in [0, {DASH_WIDTH.hi}]; got "
                                f"[{int(arr.min())}, {int(arr.max())}]")

    # -- the chip ---------------------------------------------------------------------------------
    def _check_target(self, target: Target, problems: list[str]) -> None:
        lim, syn, nrn = target.limits, target.synapse, target.neuron
        if lim.layout != "xylo_core":
            problems.append(f"op: target {target.name!r} has no Xylo core (limits.layout: {lim.layout})")
            return
        problems.extend(f"op: {p}" for p in rule_problems(target))
        if self.synapses > lim.hidden_synapses:
            problems.append(f"params.synapses: {self.synapses}; {target.name} has {lim.hidden_synapses} synaptic "
                            "current(s) per hidden neuron (no synapse 2)")
        if self.dash_syn2 is not None and lim.hidden_synapses < 2:
            problems.append(f"tables.dash_syn2: {target.name} has no synapse 2")
        for which in ("in", "rec", "out"):
            v = getattr(self, f"weight_shift_{which}")
            if not syn.weight_shift_min <= v <= syn.weight_shift_max:
                problems.append(f"params.weight_shift_{which}: {v} is outside the target's "
                                f"[{syn.weight_shift_min}, {syn.weight_shift_max}]")
        for key, want in (("input_cap", syn.max_input_events), ("spike_cap", nrn.max_spikes_per_step),
                          ("readout_cap", nrn.readout_max_spikes_per_step)):
            if getattr(self, key) != want:
                problems.append(f"params.{key}: {getattr(self, key)} but the target's is {want}")
        for role in ("dash_syn", "dash_syn2", "dash_mem", "dash_syn_out", "dash_mem_out"):
            arr = getattr(self, role)
            if arr is not None and arr.size and int(arr.max()) > target.decay.max_shift:
                problems.append(f"tables.{role}: {int(arr.max())} exceeds the target's decay.max_shift "
                                f"{target.decay.max_shift}")
        if not lim.aliases and bool((self.alias >= 0).any()):
            problems.append(f"tables.alias: {target.name} has no aliases")

    def table_format(self, role: str, target: Target) -> TableFormat:
        w = target.widths
        if role in ("w_in", "w_rec", "w_out"):
            return TableFormat.of(w.weight, None)
        if role.startswith("dash"):
            return TableFormat.of(DASH_WIDTH, None)
        if role == "alias":
            return TableFormat.of(ALIAS_WIDTH, None)
        if role.startswith("threshold"):
            return TableFormat.of(w.threshold, None)
        if role.startswith("bias"):
            return TableFormat.of(w.bias, None)
        return super().table_format(role, target)

    # -- views --------------------------------------------------------------------------------------
    def block_list(self) -> list[tuple[str, int, int]]:
        """``[(name, first, stop)]`` of the hidden layers (names ``hidden<k>`` when unknown)."""
        names = self.block_names.split(",") if self.block_names else [f"hidden{k}" for k in range(len(self.blocks) - 1)]
        return [(nm, a, b) for nm, a, b in zip(names, self.blocks, self.blocks[1:])]


def fit_checks(core: XyloCore, target: Target) -> list[dict]:
    """What one Xylo chip (``target``) holds, checked for ``core``: ``[{check, layer, value, limit, ok,
    why}]`` (``why``: the sentence a failed check reports; ``limit`` ``None``: a yes/no check). The
    sizes of ``../shared/targets/xylo.md``: input channels, hidden and readout neurons, synaptic
    currents, the input projection (first ``input_expansion``) and the readout projection (last
    ``output_expansion`` hidden neurons), fan-out of a hidden neuron (the hidden neurons it reaches
    with a nonzero ``w_rec`` weight on either synapse; ``w_in`` and ``w_out`` are dense tables on the
    chip and are not limited by it), all hidden -> hidden synapses (``limits.recurrent_synapses``),
    weight and shift ranges, aliases. A readout count above
    ``limits.readout_neurons_warn`` passes with ``warn`` set."""
    lim, syn, w = target.limits, target.synapse, target.widths.weight
    nm = core.name
    out: list[dict] = []

    def add(check: str, value, limit, ok=None, why: str = "", warn: str = "") -> None:
        ok = (limit is None or value <= limit) if ok is None else ok
        out.append(dict(check=check, layer=nm, value=value, limit=limit, ok=bool(ok),
                        why=why or f"{check} = {value} exceeds the limit {limit} of {target.name}", warn=warn))

    if lim.layout != "xylo_core":
        add("Xylo core available", 0, None, False, f"target {target.name!r} has no Xylo core (limits.layout: {lim.layout})")
        return out
    add("input channels", core.inputs, lim.input_channels)
    add("hidden neurons", core.hidden, lim.hidden_neurons)
    warn = ""
    if lim.readout_neurons_warn is not None and core.readout > lim.readout_neurons_warn:
        warn = f"{core.readout} readout neurons: Rockpool warns above {lim.readout_neurons_warn} on {target.name}"
    add("readout neurons", core.readout, lim.readout_neurons, warn=warn)
    add("synaptic currents per hidden neuron", core.synapses, lim.hidden_synapses,
        why=f"synapse 2 is used but {target.name} has {lim.hidden_synapses} synaptic current per hidden neuron")
    if lim.input_expansion is not None:
        add("input projection (hidden neurons reached)", core.input_expansion, lim.input_expansion,
            why=f"the input reaches {core.input_expansion} hidden neurons; {target.name} projects it to the first "
                f"{lim.input_expansion} only")
    if lim.output_expansion is not None:
        add("readout projection (hidden neurons read)", core.output_expansion, lim.output_expansion,
            why=f"the readout reads {core.output_expansion} hidden neurons; {target.name} reads the last "
                f"{lim.output_expansion} only")
    # the chip stores, per hidden neuron, a list of its hidden targets (fan-out memory; the weights of
    # synapse 1 and 2 sit at the same index), while w_in and w_out are dense tables (Rockpool's
    # syns61201 memory map): fan-out counts the distinct hidden targets with a nonzero weight
    links = np.any(np.asarray(core.w_rec) != 0, axis=2)
    if lim.max_fan_out is not None:
        nz = np.count_nonzero(links, axis=1)
        j = int(np.argmax(nz)) if nz.size else 0
        add("fan-out of a hidden neuron (largest)", int(nz.max()) if nz.size else 0, lim.max_fan_out,
            why=f"hidden neuron {j} projects to {int(nz.max()) if nz.size else 0} hidden neurons (w_rec); "
                f"{target.name} allows {lim.max_fan_out}")
    if lim.recurrent_synapses is not None:
        total = int(np.count_nonzero(links))
        add("hidden -> hidden synapses (all)", total, lim.recurrent_synapses,
            why=f"w_rec holds {total} hidden -> hidden synapses; {target.name} stores {lim.recurrent_synapses}")
    for role in ("w_in", "w_rec", "w_out"):
        a = np.asarray(getattr(core, role), np.int64)
        big = int(np.abs(a).max()) if a.size else 0
        ok = a.size == 0 or (int(a.min()) >= w.lo and int(a.max()) <= w.hi)
        add(f"{role} in {w.bits}-bit", big, w.hi, ok, f"{role}: weights span [{int(a.min())}, {int(a.max())}]; "
            f"{target.name} stores [{w.lo}, {w.hi}]")
    for which in ("in", "rec", "out"):
        v = getattr(core, f"weight_shift_{which}")
        add(f"weight_shift_{which}", v, syn.weight_shift_max, syn.weight_shift_min <= v <= syn.weight_shift_max,
            f"weight_shift_{which} = {v} is outside {target.name}'s [{syn.weight_shift_min}, {syn.weight_shift_max}]")
    n_alias = int((np.asarray(core.alias) >= 0).sum())
    add("aliases", n_alias, None, lim.aliases or n_alias == 0, f"{n_alias} aliases but {target.name} has none")
    return out
