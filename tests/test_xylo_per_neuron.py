"""Per-neuron CubaLIFNode parameters on Xylo (hwsnn.fixed.per_neuron): per-neuron tau_syn, tau_mem and
v_threshold (trainable included) become per-neuron dash_syn, dash_mem and thresholds of the twin; the export
(tables ``*_per_neuron`` of the ``cuba`` op) simulates to the twin's integers on every state, the twin tracks
the float layer within the rounding bound, and the fused core equals SynSense's XyloSim. Targets whose
neurons share one value per layer refuse, naming the layer and the parameter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn import layer as L
from hwsnn import neuron as N
from hwsnn.fixed import FixedCubaLIFNode
from hwsnn.functional import reset_net, set_step_mode
from quant.record import record_twin
from quant.xylo import fuse, to_rockpool_xylo
from targets.bundle import SpecError
from xylo_nets import xylosim_run

XYLOSIM_STATE = {"i": "Isyn", "v": "Vmem", "spikes": "Spikes", "i_out": "Isyn_out", "v_out": "Vmem_out"}


def per_neuron_cuba(n: int, g: torch.Generator, th: float = 1.0, trainable: bool = False) -> N.CubaLIFNode:
    """A CUBA layer of ``n`` neurons with its own tau_syn, tau_mem (not all powers of two) and threshold each."""
    tau_syn = 2.0 ** (torch.rand(n, generator=g, dtype=torch.float64) * 4.0)  # 1 .. 16
    tau_mem = 2.0 ** (0.6 + torch.rand(n, generator=g, dtype=torch.float64) * 4.5)
    vth = (0.4 + torch.rand(n, generator=g)) * th
    node = N.CubaLIFNode(tau_syn=tau_syn, tau_mem=tau_mem, v_threshold=vth, v_reset=None)
    if trainable:
        node.v_threshold = torch.nn.Parameter(vth.clone())
    return node


def float_net(seed: int, recurrent: bool = False, trainable: bool = False) -> torch.nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    hidden2 = per_neuron_cuba(10, g, trainable=trainable)
    layers = [L.Linear(16, 12, bias=False), per_neuron_cuba(12, g, trainable=trainable), L.Linear(12, 10, bias=False),
              L.RecurrentContainer(hidden2, 10) if recurrent else hidden2,
              L.Linear(10, 6, bias=False), per_neuron_cuba(6, g, 2.0), L.VotingLayer(2)]
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        net[0].weight.mul_(4.0)
        net[2].weight.mul_(3.0)
        net[4].weight.mul_(3.0)
    set_step_mode(net, "m")
    return net


def counts(seed: int, t: int = 40, b: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 100)
    return (torch.rand(t, b, 16, generator=g) < 0.4) * torch.randint(0, 5, (t, b, 16), generator=g)


def _cubas(twin):
    return [getattr(m, "neuron", m) for m in twin if isinstance(getattr(m, "neuron", m), FixedCubaLIFNode)]


@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_per_neuron_twin_exports_and_simulates_to_the_same_integers(tmp_path, seed, recurrent):
    net = float_net(seed, recurrent)
    twin = quant.convert(net, "xylo")
    for nrn, m in zip(_cubas(twin), [m for m in net if isinstance(m, (N.CubaLIFNode, L.RecurrentContainer))]):
        f = getattr(m, "sub_module", m)
        assert nrn.per_neuron and isinstance(nrn.threshold, torch.Tensor)
        # independent: k = round(log2 tau) per neuron, threshold = round(vth * 2^-e) per neuron
        np.testing.assert_array_equal(nrn.decay_syn.numpy(), np.round(np.log2(f.tau_syn.numpy())).astype(np.int64))
        np.testing.assert_array_equal(nrn.decay_mem.numpy(), np.round(np.log2(f.tau_mem.numpy())).astype(np.int64))
        want_th = np.round(f.v_threshold.detach().double().numpy() * 2.0 ** -nrn.state_exponent).astype(np.int64)
        np.testing.assert_array_equal(nrn.threshold.numpy(), want_th)
        assert len(set(nrn.decay_syn.tolist())) > 1 and len(set(nrn.threshold.tolist())) > 1
    x = counts(seed)
    want = record_twin(twin, x)
    path = quant.export(twin, tmp_path / "b", input_kind="counts")
    res = sim.run(path, x.numpy(), record="states")
    for layer, states in want.items():
        for s, arr in states.items():
            if s in res.traces.get(layer, {}):
                np.testing.assert_array_equal(res.traces[layer][s], arr, err_msg=f"{layer}.{s}")
    hidden = [k for k in want if k.startswith(("cubalifnode", "recurrentcontainer"))]
    assert all(want[k]["output"].sum() > 0 for k in hidden)
    assert want[hidden[0]]["output"].max() > 1  # multi-spikes through per-neuron thresholds
    np.testing.assert_array_equal(res.output, want[f"votinglayer{len(net) - 1}"]["output"])
    # the multi-step forward (no fused kernel for per-neuron twins) equals the steps; the loaded twin too
    reset_net(twin)
    assert np.array_equal(twin(x).numpy(), want[f"votinglayer{len(net) - 1}"]["output"])
    loaded = quant.load_twin(path)
    set_step_mode(loaded, "m")
    assert np.array_equal(loaded(x).numpy(), want[f"votinglayer{len(net) - 1}"]["output"])
    rows = {r["layer"]: r for r in quant.conversion_table(twin)}
    assert ".." in rows[hidden[0]]["tau"]  # tau requested vs used as ranges


def test_twin_tracks_the_float_layer_within_the_rounding_bound():
    """One per-neuron layer fed the same currents: the twin's current is the float one times the
    per-neuron current gain 1 - 2^-k (Xylo adds before it decays), so the float layer fed X (1 - 2^-k)
    is the twin's real-valued model. Each twin decay rounds by at most one LSB, so the current is within
    2^k_syn + 1 LSB and the membrane within 2^k_mem (2^k_syn + 2) LSB, per neuron, while no neuron fires."""
    g = torch.Generator().manual_seed(3)
    n = 24
    f = per_neuron_cuba(n, g, th=40.0)
    tw = quant.convert(torch.nn.Sequential(f), "xylo")[0]
    e = tw.state_exponent
    x_int = torch.randint(-8, 13, (80, 3, n), generator=g)
    set_step_mode(tw, "s")
    i_q, v_q = [], []
    for t in range(len(x_int)):
        assert int(tw(x_int[t]).sum()) == 0
        i_q.append(tw.i.double() * 2.0 ** e)
        v_q.append(tw.v.double() * 2.0 ** e)
    ks, km = tw.decay_syn.double(), tw.decay_mem.double()

    def errors(ks_ref: torch.Tensor, km_ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ref = N.CubaLIFNode(tau_syn=2.0 ** ks_ref, tau_mem=2.0 ** km_ref, v_threshold=1e9, v_reset=None)
        x = x_int.double() * 2.0 ** e * (1.0 - 2.0 ** -ks_ref)
        err_i, err_v = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
        for t in range(len(x)):
            ref(x[t])
            err_i = torch.maximum(err_i, (i_q[t] - ref.i).abs().amax(0))
            err_v = torch.maximum(err_v, (v_q[t] - ref.v).abs().amax(0))
        return err_i, err_v

    lsb = 2.0 ** e
    tol_i = (2.0 ** ks + 1) * lsb
    tol_v = 2.0 ** km * (2.0 ** ks + 2) * lsb
    err_i, err_v = errors(ks, km)
    assert bool((err_i <= tol_i).all()), (err_i / lsb, tol_i / lsb)
    assert bool((err_v <= tol_v).all()), (err_v / lsb, tol_v / lsb)
    # the bound can fail: the decays of the neighbouring neurons break it
    wrong_i, wrong_v = errors(ks.roll(1), km.roll(1))
    assert bool((wrong_i > tol_i).any()) and bool((wrong_v > tol_v).any())
    # the thresholds are the float ones to half a step, each neuron its own
    vth = f.v_threshold.double()
    assert bool(((tw.threshold.double() * lsb - vth).abs() <= lsb / 2).all())


def test_fused_per_neuron_core_equals_xylosim(tmp_path):
    net = float_net(5, recurrent=True)
    twin = quant.convert(net, "xylo")
    fused = fuse(twin)
    core = fused[0]
    assert len(set(core.dash_syn.tolist())) > 1 and len(set(core.threshold.tolist())) > 1
    assert len(set(core.dash_mem_out.tolist())) > 1 and len(set(core.threshold_out.tolist())) > 1
    x = counts(5, t=50)
    rec = record_twin(fused, x)["xylo_core"]
    assert rec["spikes"].sum() > 0
    path = quant.export(twin, tmp_path / "layered", input_kind="counts")
    kw = to_rockpool_xylo(path)
    np.testing.assert_array_equal(kw["dash_syn"], core.dash_syn.numpy())
    np.testing.assert_array_equal(kw["threshold_out"], core.threshold_out.numpy())
    for b in range(x.shape[1]):
        out, ref = xylosim_run(kw, "syns61201", np.minimum(x[:, b].numpy(), 15))
        for ours, theirs in XYLOSIM_STATE.items():
            np.testing.assert_array_equal(rec[ours][:, b], ref[theirs].astype(np.int64), err_msg=f"{ours}, sample {b}")


def test_trainable_per_neuron_thresholds_convert_and_qat_forward_is_the_twin():
    net = float_net(2, trainable=True)
    assert isinstance(net[1].v_threshold, torch.nn.Parameter)
    qat = quant.prepare(net, "xylo")
    twin = qat.to_twin()
    assert isinstance(twin[1].threshold, torch.Tensor) and twin[1].threshold.shape == (12,)
    x = counts(2)
    with torch.no_grad():
        y = qat(x.float())
    reset_net(twin)
    from quant.convert import dequantize_output
    assert torch.equal(dequantize_output(twin[-1], twin(x), 0), y.double())


@pytest.mark.parametrize("target", ["loihi", "generic_int8"])
def test_targets_with_one_value_per_layer_refuse_naming_layer_and_parameter(target):
    g = torch.Generator().manual_seed(0)
    f = per_neuron_cuba(5, g)
    f.v_reset = 0.0  # (Loihi resets to zero)
    with pytest.raises(ValueError, match=rf"cuba: per-neuron v_threshold .* target '{target}' holds one threshold per layer"):
        quant.convert(torch.nn.Sequential(f), target, names=["cuba"])
    f.v_threshold = 1.0
    with pytest.raises(ValueError, match=rf"cuba: per-neuron tau_syn .* target '{target}' holds one decay per layer"):
        quant.convert(torch.nn.Sequential(f), target, names=["cuba"])
    tg = targets.load(target)
    with pytest.raises(ValueError, match=rf"h: per-neuron threshold .* cannot be held by target '{target}'"):
        FixedCubaLIFNode(tg, torch.tensor([3, 4]), 1, 1, name="h")
    xylo = FixedCubaLIFNode(targets.load("xylo"), torch.tensor([3, 4]), torch.tensor([1, 2]), 1, name="h")
    with pytest.raises(ValueError, match=r"h: per-neuron threshold of shape \(2,\) does not fit the input step of shape \(1, 3\)"):
        xylo(torch.zeros(1, 3, dtype=torch.int64))


def test_per_neuron_op_tables_are_checked(tmp_path):
    twin = quant.convert(float_net(0), "xylo")
    op = twin[1].to_spec("h", (12,), "counts", 0)
    assert op.threshold == int(op.threshold_per_neuron[0]) and op.decay_syn_per_neuron.shape == (12,)
    op.check(targets.load("xylo"))
    with pytest.raises(SpecError, match="limits.layout xylo_core"):
        op.check(targets.load("generic_int8"))
    import dataclasses
    with pytest.raises(SpecError, match="tables.threshold_per_neuron: shape"):
        dataclasses.replace(op, threshold_per_neuron=op.threshold_per_neuron[:3])
    with pytest.raises(SpecError, match="params.threshold: .* is the first neuron's"):
        dataclasses.replace(op, threshold=op.threshold + 1, threshold_int=op.threshold + 1)


def test_nir_view_holds_the_per_neuron_values_and_reads_back():
    pytest.importorskip("nir")
    from hwsnn.nir.twin import twin_from_nir, twin_graph

    twin = quant.convert(float_net(0), "xylo")
    layers = list(twin)
    g = twin_graph(layers, [m.layer_name for m in layers], 1e-3, (16,), "counts", 0)
    node = next(v for v in g.nodes.values() if type(v).__name__ == "CubaLIF")
    h = twin[1]
    np.testing.assert_allclose(node.v_threshold, h.threshold.double().numpy() * 2.0 ** h.state_exponent)
    np.testing.assert_allclose(node.tau_syn, 2.0 ** h.decay_syn.double().numpy() * 1e-3)
    back = twin_from_nir(g)
    x = counts(0)
    reset_net(twin)
    assert torch.equal(back(x), twin(x))
