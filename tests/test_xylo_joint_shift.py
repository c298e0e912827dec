"""One weight_shift_rec for every hidden -> hidden matrix of a Xylo network (quant.joint_shift, quant.convert).

Float networks whose layer-by-layer shifts differ (2 and 3 hidden layers, a recurrent population behind a
hidden projection) convert on Xylo with one shared shift, fuse into one core equal to the layered twins on
every state, keep their weights in int8, and name the layer that limited the shift. The plan is checked
against a brute-force search over every coarsening; other targets convert as before."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn import layer as L
from hwsnn import neuron as N
from hwsnn.fixed.arith import power_of_two_exponent
from hwsnn.fixed.neuron import choose_state_exponent
from hwsnn.functional import set_step_mode
from quant.convert import dequantize_output
from quant.joint_shift import Block, plan_shared_shift
from quant.record import record_twin
from quant.xylo import fuse


def _cuba(th: float = 1.0) -> N.CubaLIFNode:
    return N.CubaLIFNode(tau_syn=4.0, tau_mem=8.0, v_threshold=th, v_reset=None)


def float_net(kind: str, seed: int = 0) -> tuple[torch.nn.Sequential, dict[str, float]]:
    """A float Xylo network whose hidden -> hidden weights have very different ranges, and the gain
    of each hidden -> hidden layer (by layer name)."""
    torch.manual_seed(seed)
    if kind == "two":  # the first hidden layer recurrent (it has the input projection too)
        sizes, gains, rec = (12, 10), (0.5,), 0
    elif kind == "three":
        sizes, gains, rec = (12, 10, 8), (0.3, 6.0), None
    else:  # a recurrent population behind a hidden projection
        sizes, gains, rec = (12, 10), (0.4,), 1
    hh: dict[str, float] = {}

    def hidden(k: int) -> torch.nn.Module:
        if k != rec:
            return _cuba()
        hh[f"recurrentcontainer{len(layers)}"] = 3.0
        return L.RecurrentContainer(_cuba(), sizes[k])

    layers: list[torch.nn.Module] = [L.Linear(16, sizes[0], bias=False)]
    layers.append(hidden(0))
    for k in range(1, len(sizes)):
        hh[f"linear{len(layers)}"] = gains[k - 1]
        layers += [L.Linear(sizes[k - 1], sizes[k], bias=False)]
        layers.append(hidden(k))
    layers += [L.Linear(sizes[-1], 6, bias=False), _cuba(2.0), L.VotingLayer(2)]
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        for i, m in enumerate(net):
            name = f"{type(m).__name__.lower()}{i}"
            if isinstance(m, L.Linear) and name in hh:
                m.weight.mul_(hh[name])
            if isinstance(m, L.RecurrentContainer):
                m.rc.weight.mul_(hh[name])
    set_step_mode(net, "m")
    return net, hh


def independent_shifts(net: torch.nn.Sequential, hh: dict[str, float], target: str = "xylo") -> dict[str, int]:
    """Each hidden -> hidden layer's own shift, computed from the float weights and thresholds:
    s = e_w - e_n (spikes in), e_w the smallest exponent whose int8 grid holds max|w|."""
    tg = targets.load(target)
    out = {}
    for i, m in enumerate(net):
        name = f"{type(m).__name__.lower()}{i}"
        if name not in hh:
            continue
        if isinstance(m, L.RecurrentContainer):
            w, nrn = m.rc.weight, m.sub_module
        else:
            w, nrn = m.weight, next(n for n in net[i + 1:] if isinstance(n, (N.CubaLIFNode, L.RecurrentContainer)))
            nrn = getattr(nrn, "sub_module", nrn)
        e_w = power_of_two_exponent(float(w.detach().abs().max()), tg.widths.weight, tg.synapse.weight_step)
        out[name] = max(e_w - choose_state_exponent(float(nrn.v_threshold), tg), tg.synapse.weight_shift_min)
    return out


def _inputs(seed: int, t: int = 30, b: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(t, b, 16, generator=g) < 0.4) * torch.randint(0, 4, (t, b, 16), generator=g)).float()


@pytest.mark.parametrize("kind", ["two", "three", "recurrent"])
def test_differing_shifts_share_one_and_the_fused_core_equals_the_twins(tmp_path, kind):
    net, hh = float_net(kind)
    own = independent_shifts(net, hh)
    assert len(set(own.values())) > 1, own  # the layer-by-layer conversion would not fuse
    twin = quant.convert(net, "xylo")
    shifts = {m.layer_name: int(m.weight_shift) for m in twin if m.layer_name in hh}
    assert len(set(shifts.values())) == 1 and twin.weight_shift_rec == next(iter(shifts.values()))
    # the limiting layer: the smallest own shift of the layers feeding the neuron with the smallest largest shift
    limiting = min(own, key=lambda k: own[k])
    if kind != "recurrent":
        assert twin.weight_shift_rec == min(own.values())
        assert twin.conversion_notes == [n for n in twin.conversion_notes if f"limited by {limiting}" in n] != []
    rows = {r["layer"]: r for r in quant.conversion_table(twin)}
    limited = [k for k, r in rows.items() if "limited by this layer" in r.get("note", "")]
    assert len(limited) == 1 and f"weight_shift_rec = {twin.weight_shift_rec}" in rows[limited[0]]["note"]
    assert "note" in quant.format_conversion_table(list(rows.values())).splitlines()[0]
    for m in twin:  # int8 everywhere
        w = getattr(m, "weight", None)
        if torch.is_tensor(w):
            assert int(w.min()) >= -128 and int(w.max()) <= 127
    fused = fuse(twin)
    assert fused[0].weight_shifts[1] == twin.weight_shift_rec
    x = _inputs(1).to(torch.int64)
    want, got = record_twin(twin, x), record_twin(fused, x)
    core = got["xylo_core"]
    assert core["spikes"].sum() > 0
    for name, a, b in zip(fused[0].block_names, fused[0].blocks, fused[0].blocks[1:]):
        for ours, theirs in (("i", "i"), ("v", "v"), ("spikes", "output")):
            np.testing.assert_array_equal(core[ours][..., a:b], want[name][theirs], err_msg=f"{kind} {name}.{theirs}")
    last = [k for k in want if k.startswith("cubalifnode")][-1]
    np.testing.assert_array_equal(core["v_out"], want[last]["v"])
    path = quant.export(twin, tmp_path / kind, input_kind="counts")
    res = sim.run(path, x.numpy())
    np.testing.assert_array_equal(res.output, want["votinglayer" + str(len(net) - 1)]["output"])
    assert sim.fit_check(sim.load_export(path))["fits"]


def test_recurrent_population_coarsens_the_finer_matrix_and_names_it():
    net, hh = float_net("recurrent")
    own = independent_shifts(net, hh)
    twin = quant.convert(net, "xylo")
    rows = {r["layer"]: r for r in quant.conversion_table(twin)}
    lo, hi = sorted(own, key=lambda k: own[k])
    bits = own[hi] - own[lo]
    assert bits > 0
    assert f"weights coarsened by {bits} bit(s)" in rows[lo]["note"]
    assert f"{lo}: weights coarsened by {bits} bits" in twin.conversion_notes[0]


def test_qat_prepared_network_converts_with_one_shift():
    net, hh = float_net("three")
    qat = quant.prepare(net, "xylo")
    twin = qat.to_twin()
    assert len({int(m.weight_shift) for m in twin if m.layer_name in hh}) == 1
    fused = fuse(twin)
    x = _inputs(2)
    with torch.no_grad():
        y = qat(x)
    set_step_mode(fused, "m")
    from hwsnn.functional import reset_net
    reset_net(fused)
    out = dequantize_output(fused[-1], fused(x.to(torch.int64)), 0)
    assert y.abs().sum() > 0 and torch.equal(out, y.double())


def test_other_targets_keep_the_layer_by_layer_shifts():
    net, hh = float_net("three")
    own = independent_shifts(net, hh, "generic_int8")
    twin = quant.convert(net, "generic_int8")
    got = {m.layer_name: int(m.weight_shift) for m in twin if m.layer_name in hh}
    assert len(set(got.values())) > 1
    assert not hasattr(twin, "weight_shift_rec")
    assert all("note" not in r for r in quant.conversion_table(twin))


# -- the plan against a brute-force search ---------------------------------------------------------------------
def _brute(blocks, e_n, shift_min, shift_max, inputs, ths):
    """Every combination of neuron and weight coarsenings (0..6 bits) that leaves one shift: the least
    (thresholds below 4, weight bits, neuron bits)."""
    neurons = sorted(e_n)
    best = None
    for d in itertools.product(range(7), repeat=len(neurons)):
        dn = dict(zip(neurons, d))
        for S in range(shift_min, shift_max + 1):
            c = [S - (b.shift - dn[b.neuron]) for b in blocks]
            if min(c) < 0:
                continue
            w_bits = sum(c) + sum(max(0, shift_min - (inputs[n] - dn[n])) for n in inputs)
            cost = (sum(1 for n in neurons if (ths[n] >> dn[n]) < 4), w_bits, sum(d))
            if best is None or cost < best:
                best = cost
    return best


@pytest.mark.parametrize("seed", range(40))
def test_plan_loses_no_more_than_any_other_coarsening(seed):
    rnd = random.Random(seed)
    neurons = [f"h{k}" for k in range(rnd.randint(1, 3))]
    blocks = []
    for k, n in enumerate(neurons):
        if k:
            blocks.append(Block(f"fc{k}", n, rnd.randint(0, 6), rnd.randint(-12, -6)))
        if rnd.random() < 0.5 or not k:
            blocks.append(Block(n, n, rnd.randint(0, 6), rnd.randint(-12, -6)))
    e_n = {n: rnd.randint(-14, -10) for n in neurons}
    ths = {n: rnd.choice([6000, 40, 300]) for n in neurons}
    inputs = {neurons[0]: rnd.randint(0, 4)}
    plan = plan_shared_shift(blocks, e_n, shift_min=0, shift_max=15, input_shifts=inputs, thresholds=ths)
    new_e = {n: plan.state_exponents.get(n, e) for n, e in e_n.items()}
    for b in blocks:  # one shift, only coarser grids
        e_w = plan.weight_exponents.get(b.name, b.weight_exponent)
        assert e_w >= b.weight_exponent and new_e[b.neuron] >= e_n[b.neuron]
        assert (e_w - b.weight_exponent) - (new_e[b.neuron] - e_n[b.neuron]) + b.shift == plan.shift
    dn = {n: new_e[n] - e_n[n] for n in neurons}
    cost = (sum(1 for n in neurons if (ths[n] >> dn[n]) < 4),
            sum(plan.weight_bits.values()) + sum(max(0, -(inputs[n] - dn[n])) for n in inputs), sum(dn.values()))
    assert cost == _brute(blocks, e_n, 0, 15, inputs, ths)
    assert plan.limited_by in {b.name for b in blocks}
    assert plan.note.startswith(f"weight_shift_rec = {plan.shift}, limited by {plan.limited_by}")


def test_plan_without_hidden_matrices_is_empty():
    plan = plan_shared_shift([], {}, shift_min=0, shift_max=15)
    assert plan.shift is None and not plan.changes and plan.note == ""
