r"""One weight shift for every hidden -> hidden matrix of a Xylo network (``weight_shift_rec``).

Xylo holds all hidden -> hidden weights in one matrix ``w_rec`` with **one** left shift
(``../shared/targets/xylo.md``): the dense layers between hidden CUBA layers and the recurrent
matrices of :class:`~hwsnn.layer.RecurrentContainer` populations must share it. Converted layer
by layer (:func:`quant.convert`), matrix :math:`m` feeding hidden neuron layer :math:`n` gets

.. math::
    s_m = e_{w,m} + e_x - e_n \qquad (e_x = 0 \text{ for spikes})

with :math:`e_{w,m}` the smallest weight exponent whose int8 grid holds :math:`\max|w_m|` and
:math:`e_n` the neuron's state exponent (threshold near :math:`2^{13}`). Only coarsening is
allowed (never a finer grid: the weights would leave int8, the threshold the membrane width):

* coarsening the **weights** of :math:`m` by :math:`c` bits (:math:`e_{w,m} + c`) raises
  :math:`s_m` by :math:`c`; every weight is rounded to a grid :math:`2^c` times coarser (an int8
  matrix keeps :math:`8 - c` bits);
* coarsening the **neuron** :math:`n` by :math:`d` bits (:math:`e_n + d`) lowers the shift of every
  matrix into :math:`n` by :math:`d`; the weights stay exact, the threshold mantissa and the leak
  lose :math:`d` of their ~13 bits.

The plan: a neuron's matrices must end with the same shift :math:`S`, so with
:math:`M_n = \max_{m \to n} s_m`,

.. math::
    d_n = \max(0, M_n - S), \qquad c_m = \max(M_n, S) - s_m .

Only a neuron fed by two matrices with different :math:`s_m` (a recurrent population behind a
hidden projection) needs :math:`c_m > 0` whatever :math:`S` is. :math:`S` is chosen to lose the
fewest **weight** bits first (:math:`\sum c_m`, plus input-projection bits when coarsening the first
hidden layer pushes its input shift below the minimum), then the fewest neuron bits
(:math:`\sum d_n`), then the largest :math:`S`: the result is :math:`S = \min_n M_n`, set by the layer
whose weights are smallest relative to its neuron's threshold (the *limiting* layer). Neuron
coarsening loses least: with :math:`S \ge 0` the coarsened state grid :math:`2^{e_{w,m} - S}` is still
never coarser than the weight grid of the matrices feeding it, so thresholds and leaks are rounded
to at most one weight step, while coarsening weights rounds every synapse. A neuron is not
coarsened so far that its threshold mantissa drops below 4 (such an :math:`S` is skipped while
another exists).

On targets whose ``limits.layout`` is not ``xylo_core`` nothing changes. :func:`plan_shared_shift`
plans (torch-free), :func:`hidden_blocks` reads its inputs from a converted twin network, and
:func:`share_rec_shift` (called by :func:`quant.convert`) converts again with the planned exponents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

__all__ = ["Block", "SharedShiftPlan", "plan_shared_shift", "hidden_blocks", "share_rec_shift"]


@dataclass(frozen=True)
class Block:
    """One hidden -> hidden matrix: its layer name, the hidden layer it feeds, its shift and weight exponent."""

    name: str
    neuron: str
    shift: int
    weight_exponent: int


@dataclass
class SharedShiftPlan:
    """The shared shift ``shift`` (``None``: no hidden -> hidden matrix), the ``limited_by`` block,
    the coarser exponents to convert with (``state_exponents`` per neuron layer, ``weight_exponents``
    per matrix layer; only those that change) and the bits each loses."""

    shift: Optional[int] = None
    limited_by: str = ""
    state_exponents: dict[str, int] = field(default_factory=dict)
    weight_exponents: dict[str, int] = field(default_factory=dict)
    neuron_bits: dict[str, int] = field(default_factory=dict)
    weight_bits: dict[str, int] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.state_exponents or self.weight_exponents)

    @property
    def note(self) -> str:
        """``weight_shift_rec = S, limited by <layer>`` and what was coarsened (empty without blocks)."""
        if self.shift is None:
            return ""
        parts = [f"weight_shift_rec = {self.shift}, limited by {self.limited_by}"]
        parts += [f"{k}: weights coarsened by {b} bit{'s' * (b != 1)}" for k, b in self.weight_bits.items()]
        parts += [f"{k}: state coarsened by {b} bit{'s' * (b != 1)}" for k, b in self.neuron_bits.items()]
        return "; ".join(parts)


def plan_shared_shift(blocks: Sequence[Block], neuron_exponents: dict[str, int], *, shift_min: int, shift_max: int,
                      input_shifts: Optional[dict[str, int]] = None,
                      thresholds: Optional[dict[str, int]] = None) -> SharedShiftPlan:
    r"""The plan of the module docstring for ``blocks`` (the shifts of a layer-by-layer conversion).

    :param neuron_exponents: state exponent :math:`e_n` of every neuron layer a block feeds
    :param shift_min, shift_max: the target's weight shift range
    :param input_shifts: shift of the input projection of a hidden layer that also has one (the
        first), whose weights lose bits if coarsening the neuron pushes it below ``shift_min``
    :param thresholds: threshold mantissa (largest, per layer) of the neurons, to keep it >= 4
    """
    plan = SharedShiftPlan()
    if not blocks:
        return plan
    input_shifts, thresholds = dict(input_shifts or {}), dict(thresholds or {})
    top: dict[str, int] = {}
    for b in blocks:
        top[b.neuron] = max(top.get(b.neuron, b.shift), b.shift)

    def cost(s: int) -> tuple[int, int, int]:
        d = {n: max(0, m - s) for n, m in top.items()}
        w_bits = sum(max(top[b.neuron], s) - b.shift for b in blocks)
        w_bits += sum(max(0, shift_min - (input_shifts[n] - d[n])) for n in d if n in input_shifts)
        too_coarse = sum(1 for n in d if n in thresholds and (thresholds[n] >> d[n]) < 4)
        return (too_coarse, w_bits, sum(d.values()))

    lo, hi = shift_min, min(shift_max, max(top.values()))
    best = min(range(lo, hi + 1), key=lambda s: (cost(s), -s)) if lo <= hi else min(top.values())
    plan.shift = best
    limiting = [b for b in blocks if b.shift == top[b.neuron] == best]
    plan.limited_by = (limiting or sorted(blocks, key=lambda b: b.shift))[0].name
    for n, m in top.items():
        if m > best:
            plan.state_exponents[n] = neuron_exponents[n] + (m - best)
            plan.neuron_bits[n] = m - best
    for b in blocks:
        c = max(top[b.neuron], best) - b.shift
        if c > 0:
            plan.weight_exponents[b.name] = b.weight_exponent + c
            plan.weight_bits[b.name] = c
    return plan


def hidden_blocks(twin: Sequence[object]) -> tuple[list[Block], dict[str, int], dict[str, int], dict[str, int], dict[str, object]]:
    """``(blocks, neuron_exponents, input_shifts, thresholds, layers)`` of a layered Xylo twin network
    (``FixedLinear(first_layer) -> hidden -> [FixedLinear -> hidden]* -> FixedLinear -> readout``):
    every projection between hidden layers and every recurrent matrix of a hidden population, the
    state exponents and largest threshold mantissas of the hidden layers, the input projection's shift of
    the hidden layer it feeds, and the twin layers by name. Recurrent matrices are named after their
    population (its layer name)."""
    from hwsnn.fixed import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedRecurrent

    mods = list(twin)
    neurons = [k for k, m in enumerate(mods) if isinstance(m, (FixedIFNode, FixedLIFNode, FixedCubaLIFNode, FixedRecurrent))]
    hidden = neurons[:-1]  # the last neuron layer is the readout
    blocks: list[Block] = []
    exps: dict[str, int] = {}
    inputs: dict[str, int] = {}
    ths: dict[str, int] = {}
    layers: dict[str, object] = {}
    for k in hidden:
        nrn = mods[k]
        cell = getattr(nrn, "neuron", nrn)
        name = nrn.layer_name
        layers[name] = nrn
        exps[name] = int(cell.state_exponent)
        th = getattr(cell, "threshold_int")
        ths[name] = int(th.max()) if hasattr(th, "max") else int(th)
        src = next((j for j in range(k - 1, -1, -1) if hasattr(mods[j], "weight_shift") or j in neurons), None)
        src = None if src in neurons else src
        if src is not None:
            lin = mods[src]
            layers[lin.layer_name] = lin
            if getattr(lin, "first_layer", False):
                inputs[name] = int(lin.weight_shift)
            else:
                blocks.append(Block(lin.layer_name, name, int(lin.weight_shift), int(lin.weight_exponent)))
        if hasattr(nrn, "neuron") and hasattr(nrn, "weight_shift"):
            blocks.append(Block(name, name, int(nrn.weight_shift), int(nrn.weight_exponent)))
    return blocks, exps, inputs, ths, layers


def _is_synaptic_twin(m: Any) -> bool:
    return hasattr(m, "weight_shift") and not hasattr(m, "neuron")


def share_rec_shift(net: Any, tg: Any, exps: dict, run: Callable[[dict], Any]) -> Any:
    """:func:`quant.convert`'s last step on a Xylo core: the plan (:func:`plan_shared_shift`) for the twin
    network ``net``; where it changes exponents, ``exps`` (state exponents by layer name) takes the coarser
    ones and ``run(weight_exponents)`` converts again. The twins get ``conversion_note`` (the limiting layer,
    coarsened grids), the network ``weight_shift_rec`` and ``conversion_notes``."""
    blocks, e_n, e_in, ths, _ = hidden_blocks(net)
    syn = tg.synapse
    plan = plan_shared_shift(blocks, e_n, shift_min=syn.weight_shift_min, shift_max=syn.weight_shift_max,
                             input_shifts=e_in, thresholds=ths)
    if plan.changes:
        for name, e in plan.state_exponents.items():
            exps[name] = max(e, exps.get(name, e))
        net = run(plan.weight_exponents)
    layers = hidden_blocks(net)[4]
    for m in layers.values():  # (reused twins may carry the note of an earlier conversion)
        if not _is_synaptic_twin(m):
            m.conversion_note = ""
    for b in blocks:
        notes = [getattr(layers[b.name], "conversion_note", "")] if b.name != b.neuron else []
        if b.name == plan.limited_by:
            notes.append(f"weight_shift_rec = {plan.shift}, limited by this layer")
        if b.name in plan.weight_bits:
            notes.append(f"weights coarsened by {plan.weight_bits[b.name]} bit(s) for weight_shift_rec = {plan.shift}")
        if b.neuron in plan.neuron_bits and b.neuron == b.name:
            notes.append(f"state coarsened by {plan.neuron_bits[b.neuron]} bit(s) for weight_shift_rec = {plan.shift}")
        layers[b.name].conversion_note = "; ".join(n for n in notes if n)
    for name, bits in plan.neuron_bits.items():
        if not getattr(layers[name], "conversion_note", ""):
            layers[name].conversion_note = f"state coarsened by {bits} bit(s) for weight_shift_rec = {plan.shift}"
    net.weight_shift_rec = plan.shift
    net.conversion_notes = [plan.note] if plan.note else []
    return net
