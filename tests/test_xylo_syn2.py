"""Xylo's synapse 2 from a float network: ``layer.DualLinear`` + ``neuron.CubaLIF2Node`` (two synaptic
currents, two time constants) against plain loops; their conversion to one Xylo core with
``synapses = 2`` (``w_in``/``w_rec[..., 1]``, ``dash_syn2``) against the float network within the
integer rounding; the export simulated equal to the twin on every state, and Rockpool's XyloSim
built from the exported specification equal to hwsnn's simulator on every state (XyloAudio 2 and 3);
XyloIMU, other targets, QAT and layouts the core cannot hold refused, naming the layer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import quant
import sim
from hwsnn import layer, neuron
from hwsnn.fixed import FixedXyloCore, to_fixed, xylo_core_from_float
from hwsnn.functional import reset_net, set_step_mode
from quant import views
from quant.record import record_twin
from quant.xylo import fuse, load_rockpool_xylo
from targets.bundle.xylo_fuse import FuseError
from xylo_nets import need_xylosim, xylosim_run

XYLOSIM_STATE = {"i": "Isyn", "i2": "Isyn2", "v": "Vmem", "spikes": "Spikes", "i_out": "Isyn_out", "v_out": "Vmem_out"}


# -- the float layers --------------------------------------------------------------------------------
def _loop_cuba2(x: np.ndarray, ts1: float, ts2: float, tm: float, vth: float, v_reset, cap: int = 1):
    """An independent model: per step, per neuron, in float64 (module docstring of hwsnn.neuron.cuba2)."""
    T = x.shape[0]
    shape = x.shape[1:-1]
    i1, i2, v = np.zeros(shape), np.zeros(shape), np.full(shape, 0.0 if v_reset is None else v_reset)
    out = {k: np.zeros((T,) + shape) for k in ("s", "i", "i2", "v")}
    for t in range(T):
        for idx in np.ndindex(*shape):
            a = i1[idx] + x[(t,) + idx + (0,)]
            b = i2[idx] + x[(t,) + idx + (1,)]
            i1[idx] = a - a / ts1
            i2[idx] = b - b / ts2
            vr = 0.0 if v_reset is None else v_reset
            h = v[idx] - (v[idx] - vr) / tm + i1[idx] + i2[idx]
            s, rest = 0, h  # up to `cap` spikes, one threshold at a time (the chip's loop)
            while rest >= vth and s < cap:
                s, rest = s + 1, rest - vth
            v[idx] = rest if v_reset is None else (vr if s else h)
            out["s"][(t,) + idx] = s
        out["i"][t], out["i2"][t], out["v"][t] = i1, i2, v
    return out


@pytest.mark.parametrize("taus, v_reset, cap", [((2.0, 8.0, 4.0), None, 1), ((1.0, 3.0, 1.5), 0.2, 1),
                                                ((16.0, 1.0, 1.0), None, 1), ((2.0, 4.0, 8.0), None, 31),
                                                ((4.0, 2.0, 2.0), -0.1, 3)])
def test_cuba2_node_equals_a_plain_loop(taus, v_reset, cap):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(25, 3, 5, 2, generator=g, dtype=torch.float64) * (0.8 if cap == 1 else 2.5)
    want = _loop_cuba2(x.numpy(), *taus, 0.7, v_reset, cap)
    node = neuron.CubaLIF2Node(*taus, v_threshold=0.7, v_reset=v_reset, step_mode="m", store_v_seq=True, max_spikes=cap)
    s = node(x)
    assert s.shape == (25, 3, 5) and 0 < int((s > 0).sum()) < s.numel()
    assert (int(s.max()) > 2) == (cap > 1)  # the case exercises bursts where it allows them
    np.testing.assert_array_equal(s.numpy(), want["s"])
    np.testing.assert_allclose(node.v_seq.numpy(), want["v"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(node.i.numpy(), want["i"][-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(node.i2.numpy(), want["i2"][-1], rtol=0, atol=1e-12)
    # single-step mode, the currents after every step
    node.reset()
    node.step_mode = "s"
    for t in range(x.shape[0]):
        assert torch.equal(node(x[t]), s[t])
        np.testing.assert_allclose(node.i2.numpy(), want["i2"][t], rtol=0, atol=1e-12)
    # the surrogate gradient reaches both currents' inputs
    xg = x.clone().requires_grad_(True)
    node.reset()
    node.step_mode = "m"
    node(xg).sum().backward()
    for s_ in range(2):  # tau = 1 erases its current: no gradient reaches that input
        assert (xg.grad[..., s_].abs().sum() > 0) == (taus[s_] > 1), s_


def test_cuba2_node_refuses_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="tau_syn2"):
        neuron.CubaLIF2Node(2.0, 0.5)
    with pytest.raises(TypeError, match="tau_mem"):
        neuron.CubaLIF2Node(2.0, 2.0, "4")
    with pytest.raises(ValueError, match=r"trailing synapse axis of size 2 .* got shape \(3, 4\)"):
        neuron.CubaLIF2Node()(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="expects a tensor"):
        neuron.CubaLIF2Node()([1.0, 2.0])
    with pytest.raises(ValueError, match="max_spikes must be an integer >= 1; got 0"):
        neuron.CubaLIF2Node(max_spikes=0)


def test_dual_linear_equals_one_linear_per_synapse():
    g = torch.Generator().manual_seed(1)
    lin = layer.DualLinear(7, 5, bias=True, step_mode="m")
    x = torch.randn(4, 3, 7, generator=g)
    y = lin(x)
    assert y.shape == (4, 3, 5, 2)
    for s in range(2):
        ref = torch.nn.functional.linear(x, lin.weight[s], lin.bias[s])
        torch.testing.assert_close(y[..., s], ref, rtol=1e-6, atol=1e-6)
    assert float(lin.weight.detach().abs().max()) <= 1 / math.sqrt(7)
    lin.step_mode = "s"
    torch.testing.assert_close(lin(x[0]), y[0])
    with pytest.raises(ValueError, match=r"inputs \[\.\.\., 7\]; got shape \(3, 6\)"):
        lin(torch.zeros(3, 6))
    with pytest.raises(ValueError, match="in_features must be an integer >= 1"):
        layer.DualLinear(0, 3)


# -- conversion to one Xylo core -----------------------------------------------------------------------
E_W = -9  # the float weights below lie on the grid 2^-9 (integers up to 127): the twin holds them exactly


def _grid_weights(g: torch.Generator, *shape: int, density: float = 0.5) -> torch.Tensor:
    w = torch.randint(-127, 128, shape, generator=g) * (torch.rand(shape, generator=g) < density)
    w.view(-1)[0] = 127  # the largest magnitude sets the grid
    return w.to(torch.float32) * 2.0 ** E_W


def _net(seed: int, sizes=(20, 12), m: int = 6, vote: bool = True, dual=(True, True), vth: float = 0.25,
         recurrent=(False, False), max_spikes: int = 1) -> torch.nn.Sequential:
    """A float Xylo network: two-synapse hidden layers (``dual``) or one-synapse ones, recurrent where
    ``recurrent`` (DualRecurrentContainer / RecurrentContainer), a one-synapse CUBA readout, a vote;
    weights on the grid 2^-9, time constants powers of two."""
    g = torch.Generator().manual_seed(seed)
    mods: list[torch.nn.Module] = []
    prev = 16
    taus = [(2.0, 8.0, 4.0), (4.0, 1.0, 2.0), (8.0, 2.0, 16.0)]
    for k, n in enumerate(sizes):
        if dual[k]:
            proj = layer.DualLinear(prev, n)
            nrn = neuron.CubaLIF2Node(*taus[k % 3], v_threshold=vth + 0.05 * k, max_spikes=max_spikes)
        else:
            proj = layer.Linear(prev, n, bias=False)
            nrn = neuron.CubaLIFNode(taus[k % 3][0], taus[k % 3][2], v_threshold=0.3, v_reset=None)
        with torch.no_grad():
            proj.weight.copy_(_grid_weights(g, *proj.weight.shape))
        if recurrent[k]:
            nrn = (layer.DualRecurrentContainer if dual[k] else layer.RecurrentContainer)(nrn, n)
            with torch.no_grad():
                w = _grid_weights(g, *nrn.rc.weight.shape, density=0.2)
                nrn.rc.weight.copy_((w * 2.0 ** (-E_W - 2)).round() * 2.0 ** E_W)  # weaker feedback, on the grid
        mods += [proj, nrn]
        prev = n
    ro = layer.Linear(prev, m, bias=False)
    with torch.no_grad():
        ro.weight.copy_(_grid_weights(g, m, prev))
    mods += [ro, neuron.CubaLIFNode(2.0, 4.0, v_threshold=0.2, v_reset=None)]
    if vote:
        mods.append(layer.VotingLayer(2))
    net = torch.nn.Sequential(*mods)
    set_step_mode(net, "m")
    return net.eval()


def _events(seed: int, steps: int, batch: int = 2, p: float = 0.35, top: int = 6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 77)
    return ((torch.rand(steps, batch, 16, generator=g) < p) * torch.randint(1, top, (steps, batch, 16), generator=g)).to(torch.int64)


def test_layout_holds_both_synapse_planes_and_the_decays():
    net = _net(0, dual=(True, False), recurrent=(True, True))
    twin = quant.convert(net, "xylo", names=["fc0", "h0", "fc1", "h1", "fc_out", "out", "vote"])
    core = twin[0]
    assert isinstance(core, FixedXyloCore) and core.synapses == 2
    assert core.blocks == (0, 20, 32) and core.block_names == ("h0", "h1")
    e0, e1 = core.state_exponents
    s_in, s_rec, s_out = core.weight_shifts
    assert s_in == E_W - e0 and s_out == E_W - core.readout_exponent
    w0 = (net[0].weight.detach() * 2.0 ** -E_W).round().to(torch.int64)  # [2, 20, 16]
    for s in range(2):
        assert torch.equal(core.w_in[:, :, s], w0[s].T)
    as_int = lambda w, e: (w.detach() * 2.0 ** -(e + s_rec)).round().to(torch.int64)  # noqa: E731
    assert torch.equal(core.w_rec[:20, 20:, 0], as_int(net[2].weight, e1).T)  # the hop h0 -> h1, synapse 1
    for s in range(2):  # h0's recurrent matrices on the diagonal, one per synapse
        assert torch.equal(core.w_rec[:20, :20, s], as_int(net[1].rc.weight[s], e0).T)
    assert torch.equal(core.w_rec[20:, 20:, 0], as_int(net[3].rc.weight, e1).T)  # h1: one synapse
    assert not core.w_rec[20:, 20:, 1].any() and not core.w_rec[20:, :20].any() and not core.w_rec[:20, 20:, 1].any()

    def finest(w):  # the finest power-of-two grid holding max |w| in int8
        e, m = -40, float(w.detach().abs().max())
        while round(m * 2.0 ** -e) > 127:
            e += 1
        return e

    # one shift for every hidden -> hidden matrix: the largest any of them needs
    assert s_rec == max(finest(net[2].weight) - e1, finest(net[1].rc.weight) - e0, finest(net[3].rc.weight) - e1)
    want = torch.tensor([int(round(math.log2(t))) for t in (2.0, 8.0, 4.0)])
    assert torch.equal(torch.stack([core.dash_syn[:20], core.dash_syn2[:20], core.dash_mem[:20]])[:, 0], want)
    assert torch.equal(core.dash_syn[20:], torch.full((12,), 2)) and torch.equal(core.dash_mem[20:], torch.full((12,), 1))
    assert torch.equal(core.threshold[:20], torch.full((20,), round(0.25 * 2.0 ** -e0)))
    assert int(core.dash_syn_out[0]) == 1 and int(core.dash_mem_out[0]) == 2
    assert type(twin[1]).__name__ == "FixedVotingLayer"
    # quant.xylo.fuse keeps a core followed by routing twins as it is
    x = _events(0, 20)
    assert torch.equal(fuse(twin)(x), twin(x))


@pytest.mark.parametrize("recurrent, max_spikes", [((False, False), 1), ((False, False), 31), ((True, True), 31)])
def test_twin_follows_the_float_network_within_the_integer_rounding(recurrent, max_spikes):
    """Hidden states of the core (x 2^e) against the float layers stepped as the chip times them: the
    input projection in its own step, the next hidden layer one step later (recurrent feedback: last
    step's spikes in both worlds). With weights on the twin's
    grid and power-of-two time constants the only differences are the decays' roundings: a current
    within 2^k LSB, the membrane within 2^k_m (1 + 2^k_1 + 2^k_2) LSB, while the spikes agree."""
    net = _net(5, sizes=(20, 12), dual=(True, True), vth=0.75, recurrent=recurrent, max_spikes=max_spikes)
    # calibrated exponents: range +-32 for thresholds of 0.75-0.8 (the default keeps 2 bits above them)
    twin = quant.convert(net, "xylo", names=["fc0", "h0", "fc1", "h1", "fc", "out", "vote"],
                         state_exponents={"h0": -10, "h1": -10})
    core = twin[0]
    assert core.state_exponents == (-10, -10)
    x = _events(5, 60, batch=3, p=0.25, top=2)  # spikes: the int16 states stay clear of saturation
    rec = record_twin(torch.nn.Sequential(core), x)["xylo_core"]
    core(x)
    assert not any(core.saturations[k] for k in ("i", "i2", "dv", "v")), core.saturations  # (hidden states)
    fc0, h0, fc1, h1 = net[0], net[1], net[2], net[3]
    reset_net(net)
    for m in (fc0, h0, fc1, h1):
        m.step_mode = "s"
    e0, e1 = core.state_exponents
    prev = torch.zeros(3, 20)
    checked = spikes = 0
    # per neuron: its spikes have agreed so far (a spike on the other side of the threshold parts the membranes;
    # a sample whose spikes parted feeds the next layer, and its own recurrence, differently from the next step on)
    agree = [torch.ones(3, 20, dtype=torch.bool), torch.ones(3, 12, dtype=torch.bool)]
    with torch.no_grad():
        for t in range(x.shape[0]):
            s0 = h0(fc0(x[t].float()))
            s1 = h1(fc1(prev))  # the hidden -> hidden hop: last step's spikes
            prev = s0
            # a layer's currents follow while its inputs did through last step: the layer before, and
            # (recurrent) its own spikes
            before = [a.all(dim=1, keepdim=True) for a in agree]
            upstream = [before[0] if recurrent[0] else torch.ones(3, 1, dtype=torch.bool),
                        before[0] & (before[1] if recurrent[1] else True)]
            for k, nrn, sl, e, fl_s in ((0, h0, slice(0, 20), e0, s0), (1, h1, slice(20, 32), e1, s1)):
                nrn = getattr(nrn, "sub_module", nrn)  # (the neuron of a recurrent container)
                same = torch.from_numpy(rec["spikes"][t][:, sl]).double() == fl_s.double()
                agree[k] = agree[k] & same & upstream[k]
                ks = (math.log2(nrn.tau_syn), math.log2(nrn.tau_syn2), math.log2(nrn.tau_mem))
                tols = {"i": 2 ** ks[0] + 1, "i2": 2 ** ks[1] + 1, "v": 2 ** ks[2] * (1 + 2 ** ks[0] + 2 ** ks[1]) + 1}
                for state, tol in tols.items():
                    mask = agree[k] if state == "v" else upstream[k].expand_as(agree[k])
                    got = torch.from_numpy(rec[state][t][:, sl]).double() * 2.0 ** e
                    err = ((got - getattr(nrn, state).double()).abs() / 2.0 ** e)[mask]
                    assert err.numel() == 0 or float(err.max()) <= tol, f"layer {k} {state} step {t}: {float(err.max()):.1f} LSB > {tol}"
                    checked += err.numel()
                spikes += int(fl_s[agree[k]].sum())
    assert checked > (1000 if any(recurrent) else 3000) and spikes > 50, (checked, spikes)


@pytest.mark.parametrize("target, dual, recurrent", [("xylo", (True, True), (True, False)),
                                                     ("xylo_audio3", (True, False), (False, True)),
                                                     ("xylo_audio3", (True, True), (True, True))])
def test_export_simulates_equal_to_the_twin_and_xylosim_equals_the_simulator(tmp_path, target, dual, recurrent):
    """The user's path on XyloAudio 2 and 3: float network -> twin (one core, synapse 2) -> signed export ->
    hwsnn's simulator equal to the twin on every state; the Rockpool view written into the bundle ->
    XyloSim.from_specification -> equal to the simulator on every state (Isyn, Isyn2, Vmem, spikes,
    readout) at every step."""
    net = _net(11, sizes=(20, 14), dual=dual, recurrent=recurrent)
    twin = quant.convert(net, target, clip=True)
    assert twin[0].synapses == 2 and twin[0].w_in[..., 1].any() and twin[0].w_rec[..., 1].any() == (dual[1] or recurrent[0])
    x = _events(11, 50, batch=2, p=0.5, top=20)  # some counts above 15: clipped as the chip does
    path = quant.export(twin, tmp_path / "syn2", input_kind="counts")
    bundle = sim.load_export(path)
    assert [op.kind for op in bundle.ops] == ["xylo_core", "voting"] and bundle.ops[0].synapses == 2
    fit = sim.fit_check(bundle)
    assert fit["fits"], fit["problems"]
    rec = record_twin(torch.nn.Sequential(twin[0]), x)["xylo_core"]
    res = sim.run(bundle, x.numpy(), record="states", chunk=9)
    for name, want in rec.items():
        got = res.traces["xylo_core"][name].astype(np.int64)
        bad = np.argwhere(got != want.astype(np.int64))
        assert bad.size == 0, f"{target} {name}: first mismatch at {tuple(bad[0])}"
    np.testing.assert_array_equal(res.output, twin(x).numpy())
    assert rec["i2"].any() and rec["spikes"].any() and rec["i_out"].any()
    need_xylosim()
    bundle = views.add_view(path, "rockpool-xylo")
    kw = load_rockpool_xylo(bundle)
    assert kw["weights_in"].shape[-1] == 2 and "dash_syn_2" in kw
    for b in range(x.shape[1]):
        out, ref = xylosim_run(kw, target, np.minimum(x[:, b].numpy(), 15))
        for ours, theirs in XYLOSIM_STATE.items():
            got = res.traces["xylo_core"][ours][:, b].astype(np.int64)
            bad = np.argwhere(got != ref[theirs].astype(np.int64))
            assert bad.size == 0, (f"{target} {ours} vs xylosim {theirs}, sample {b}: first mismatch at {tuple(bad[0])}: "
                                   f"ours {got[tuple(bad[0])]} xylosim {ref[theirs][tuple(bad[0])]}")
        assert ref["Isyn2"].any()
        np.testing.assert_array_equal(np.asarray(out), res.traces["xylo_core"]["output"][:, b])


# -- refusals -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("target, message", [
    ("xylo_imu", r"dual0 \(DualLinear\): uses synapse 2, but xylo_imu has 1 synaptic current per hidden neuron"),
    ("loihi", r"dual0 \(DualLinear\): two synaptic currents per neuron \(synapse 2\) exist only on a Xylo core"),
    ("generic_int8", r"target 'generic_int8' has none"),
])
def test_targets_without_synapse_2_refuse_naming_the_layer(target, message):
    net = _net(2)
    with pytest.raises(ValueError, match=message):
        quant.convert(net, target, names=["dual0", "h0", "dual1", "h1", "fc", "out", "vote"])
    with pytest.raises(ValueError, match=message.replace("dual0", "fc_syn")):
        to_fixed(net[0], target, name="fc_syn")


def test_a_layer_alone_has_no_twin_and_qat_refuses_naming_the_layer():
    net = _net(3)
    with pytest.raises(TypeError, match=r"h \(CubaLIF2Node\): Xylo's synapse 2 exists only inside the whole core.*quant.convert"):
        to_fixed(net[1], "xylo", name="h")
    with pytest.raises(ValueError, match=r"prepare: quantization-aware training of two-synapse layers .*: "
                                         r"duallinear0 \(DualLinear\), cubalif2node1 \(CubaLIF2Node\), duallinear2"):
        quant.prepare(net, "xylo")


@pytest.mark.parametrize("edit, message", [
    (lambda mods: mods.__setitem__(5, neuron.CubaLIF2Node()), r"fc \(Linear\) -> out \(CubaLIF2Node\): the Xylo readout has one"),
    (lambda mods: mods.__setitem__(4, layer.DualLinear(12, 6)), r"fc \(DualLinear\) -> out \(CubaLIFNode\): the Xylo readout"),
    (lambda mods: mods.__setitem__(1, neuron.CubaLIFNode(v_reset=None)), r"a hidden layer on the Xylo core is DualLinear \+ CubaLIF2Node"),
    (lambda mods: mods.__setitem__(0, layer.DualLinear(16, 20, bias=True)), r"d0 \(DualLinear\): a projection bias has no place"),
    (lambda mods: mods.__setitem__(1, neuron.CubaLIF2Node(v_reset=0.0)), r"h0: hard reset \(v_reset=0.0\) needs reset 'zero'"),
    (lambda mods: mods.__setitem__(3, layer.RecurrentContainer(neuron.CubaLIF2Node(), 12)),
     r"d1 \(DualLinear\) -> h1 \(RecurrentContainer\): a hidden layer on the Xylo core is DualLinear \+ CubaLIF2Node"),
    (lambda mods: mods.__setitem__(3, layer.DualRecurrentContainer(neuron.CubaLIF2Node(), 11)), r"h1 \(DualRecurrentContainer\): 11 recurrent features; d1 feeds 12"),
    (lambda mods: mods.__setitem__(5, layer.RecurrentContainer(neuron.CubaLIFNode(v_reset=None), 6)), r"the Xylo readout has one synaptic current and no recurrence"),
    (lambda mods: mods.__setitem__(6, layer.Flatten()) or mods.append(layer.Linear(3, 2)), r"\(Linear\): only projections and CUBA"),
    (lambda mods: mods.__setitem__(1, neuron.CubaLIF2Node(tau_syn2=2.0 ** 17)), r"h0: tau_syn2 = 131072.0 does not fit"),
    (lambda mods: mods.__setitem__(1, neuron.CubaLIF2Node(max_spikes=5)), r"h0 \(CubaLIF2Node\): max_spikes 5; .* use max_spikes=31"),
])
def test_layouts_the_core_cannot_hold_are_refused_naming_the_layer(edit, message):
    mods = list(_net(4))
    edit(mods)
    net = torch.nn.Sequential(*mods)
    names = ["d0", "h0", "d1", "h1", "fc", "out", "vote", "extra"][:len(mods)]
    with pytest.raises((ValueError, TypeError), match=message):
        xylo_core_from_float(net, "xylo", names=names)


def test_input_exponent_and_names_are_checked():
    net = _net(6)
    with pytest.raises(ValueError, match="input_exponent 2; the Xylo core takes input event counts"):
        quant.convert(net, "xylo", input_exponent=2)
    with pytest.raises(ValueError, match=r"state_exponents names \['nope'\] are not layers"):
        quant.convert(net, "xylo", state_exponents={"nope": -3})
    twin = quant.convert(net, "xylo", state_exponents={"cubalif2node1": -10})
    assert twin[0].state_exponents[0] == -10
    with pytest.raises(ValueError, match="input events per step"):
        quant.convert(net, "xylo")[0](torch.full((2, 1, 16), 16))  # without clip, counts above 15 are refused


def test_calibration_observes_both_currents_and_keeps_the_core_clear_of_saturation():
    """quant.calibrate on a two-synapse network: the ranges it observes equal those of the float layers
    run as they are (max |I_1|, |I_2| of the first layer); converted with them, the core's hidden states
    do not saturate on that data, where the threshold-based default exponents do (the float neurons burst
    as the chip does, max_spikes=31, so the currents downstream are the ones calibrated)."""
    net = _net(8, recurrent=(True, False), vth=0.75, max_spikes=31)
    names = ["fc0", "h0", "fc1", "h1", "fc", "out", "vote"]
    x = _events(8, 40, batch=4, p=0.25, top=2)  # spikes (a drive far above threshold bursts on the chip)
    cal = quant.calibrate(net, "xylo", x.float(), names=names)
    assert set(cal.state_exponents) == {"h0", "h1", "out"}
    reset_net(net)
    fc0, h0 = net[0], net[1]
    fc0.step_mode = h0.step_mode = "s"
    i_max = 0.0
    with torch.no_grad():
        for t in range(x.shape[0]):
            h0(fc0(x[t].float()))
            i_max = max(i_max, float(h0.sub_module.i.abs().max()), float(h0.sub_module.i2.abs().max()))
    assert cal.observed["h0"]["i"] == pytest.approx(i_max, rel=1e-6)
    set_step_mode(net, "m")
    sat = {}
    for which, exps in (("default", None), ("calibrated", cal.state_exponents)):
        core = quant.convert(net, "xylo", names=names, clip=True, state_exponents=exps)[0]
        core(x)
        sat[which] = sum(core.saturations[k] for k in ("i", "i2", "v"))
    assert sat["default"] > 0 and sat["calibrated"] == 0, sat


def test_fuse_ops_keeps_a_core_with_routing_after_it_and_refuses_anything_else():
    import dataclasses

    import targets
    from targets.bundle.xylo_fuse import fuse_ops

    twin = quant.convert(_net(9), "xylo")
    ops = quant.network_spec(twin, input_kind="counts").ops
    tg = targets.load("xylo")
    core, off = fuse_ops(ops, tg)
    assert core is ops[0] and [op.kind for op in off] == ["voting"]
    with pytest.raises(FuseError, match=r"votinglayer6: after the Xylo core only routing ops .* got 'xylo_core'"):
        fuse_ops([ops[0], dataclasses.replace(ops[0], name="votinglayer6")], tg)


def test_a_shift_beyond_the_chip_coarsens_the_neuron():
    """A threshold far below the weights would need weight_shift_in = e_w - e > 15: the neuron's grid
    is coarsened until the shift is the chip's largest (the weights keep their grid)."""
    mods = list(_net(10))
    import targets
    from hwsnn.fixed.neuron import choose_state_exponent

    mods[1] = neuron.CubaLIF2Node(2.0, 4.0, 2.0, v_threshold=2.0 ** -14)
    default = choose_state_exponent(2.0 ** -14, targets.load("xylo"))
    assert E_W - default > 15  # the case this test is about
    core = quant.convert(torch.nn.Sequential(*mods), "xylo")[0]
    assert core.weight_shifts[0] == 15 and core.state_exponents[0] == E_W - 15
    assert int(core.w_in.abs().max()) == 127 and int(core.threshold[0]) == round(2.0 ** -14 * 2.0 ** -(E_W - 15))
