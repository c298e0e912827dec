"""A layered Xylo twin network fused into the one core the chip runs (quant.xylo.fuse) computes
the same integers: every hidden layer's current and membrane, the readout's, and the output, at
every step, on random networks of every variant (feed-forward stacks, recurrent populations,
saturating weights, multi-spikes, biases, input counts above 15); the simulator agrees on the
fused export; networks the core cannot hold are refused naming the layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn.fixed import FixedCubaLIFNode, FixedLIFNode, FixedLinear
from quant.record import record_twin
from quant.xylo import FuseError, fuse
from xylo_nets import layered


def _inputs(seed: int, t: int = 40, b: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 7)
    return (torch.rand(t, b, 16, generator=g) < 0.5) * torch.randint(0, 20, (t, b, 16), generator=g)


@pytest.mark.parametrize("target", ["xylo", "xylo_audio3", "xylo_imu"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_core_equals_the_layered_twins_on_every_state(tmp_path, target, seed):
    shapes = [((12, 10), (False, True)), ((20,), (True,)), ((8, 9, 7), (False, False, True))][seed]
    net = layered(target, seed, sizes=shapes[0], recurrent=shapes[1], shift_rec=(2, 2))
    fused = fuse(net)
    x = _inputs(seed)
    want = record_twin(net, x)
    got = record_twin(fused, x)
    core = got["xylo_core"]
    assert np.array_equal(got["vote"]["output"], want["vote"]["output"])
    assert want["out"]["output"].sum() > 0
    for k, (name, a, b) in enumerate(zip(fused[0].block_names, fused[0].blocks, fused[0].blocks[1:])):
        for ours, theirs in (("i", "i"), ("v", "v"), ("spikes", "output")):
            np.testing.assert_array_equal(core[ours][..., a:b], want[name][theirs], err_msg=f"{target} {name}.{theirs}")
    np.testing.assert_array_equal(core["i_out"], want["out"]["i"])
    np.testing.assert_array_equal(core["v_out"], want["out"]["v"])
    assert core["spikes"].max() > 1  # multi-spikes exercised
    path = quant.export(fused, tmp_path / "fused", input_kind="counts")
    res = sim.run(path, x.numpy(), record="states")
    np.testing.assert_array_equal(res.output, want["vote"]["output"])
    np.testing.assert_array_equal(res.traces["xylo_core"]["v"], core["v"])
    fit = sim.fit_check(sim.load_export(path))
    assert fit["fits"], fit["problems"]


def test_lif_hidden_layer_is_refused_naming_it():
    with pytest.raises(FuseError, match=r"h0: lif neurons do not exist on Xylo.*use CubaLIFNode"):
        fuse(layered("xylo", 0, hidden_neuron=FixedLIFNode))


def test_two_hidden_shifts_are_refused_naming_the_layers():
    with pytest.raises(FuseError, match=r"one weight_shift_rec.*'fc1': 1.*'h1 \(recurrent\)': 2"):
        fuse(layered("xylo", 0, shift_rec=(1, 2)))


def test_fuse_needs_a_xylo_target_and_the_layer_pattern():
    tg = targets.load("generic_int8")
    net = torch.nn.Sequential(FixedLinear(torch.ones(3, 2, dtype=torch.int64), tg, None, 0, first_layer=True, name="fc"),
                              FixedCubaLIFNode(tg, 10, 1, 1, name="h"))
    with pytest.raises(FuseError, match="has no Xylo core"):
        fuse(net)
    xy = layered("xylo", 0)
    with pytest.raises(FuseError, match="at least one hidden layer and a readout"):
        fuse(torch.nn.Sequential(xy[0], xy[1]))


@pytest.mark.parametrize("target", ["xylo", "xylo_audio3", "xylo_imu"])
def test_a_layered_export_is_costed_as_the_core_it_fuses_into(tmp_path, target):
    """SynSense's cycle model applies to a layered Xylo export too: the layered simulator gathers the
    activity from its layers and the model runs on the fused layout; the figures equal those of the
    fused core's own export on the same inputs (independent ops: layered CUBA layers vs the core)."""
    net = layered(target, 3, sizes=(10, 9), recurrent=(True, False), shift_rec=(2, 2))
    x = _inputs(3, t=30)
    lay = sim.run(quant.export(net, tmp_path / "layered", input_kind="counts"), x.numpy())
    fus = sim.run(quant.export(fuse(net), tmp_path / "fused", input_kind="counts"), x.numpy())
    for key in ("cycles_per_step_mean", "cycles_per_step_max", "clock_for_real_time_hz", "cycles_per_step_model"):
        assert lay.costs[key] == pytest.approx(fus.costs[key], rel=1e-12), key
    np.testing.assert_allclose(lay.costs["step_cycles"], fus.costs["step_cycles"], rtol=1e-12)
    assert lay.costs["cycles_model"] == targets.load(target).costs.cycle_model
    assert len(set(np.round(lay.costs["step_cycles"], 6))) > 1  # the activity changes from step to step


def test_a_network_with_dropouts_between_its_layers_is_costed_as_its_fused_core(tmp_path):
    """Inactive dropouts between the hidden layers (as in the default Xylo network) hold no neurons:
    the cost model must read the neuron layers' activity, not a dropout's or a projection's."""
    from hwsnn import layer as L, neuron as N
    from hwsnn.functional import set_step_mode

    torch.manual_seed(0)
    cuba = lambda: N.CubaLIFNode(tau_syn=2.0, tau_mem=2.0, v_threshold=0.5, v_reset=None)  # noqa: E731
    net = torch.nn.Sequential(L.Linear(16, 24, bias=False), cuba(), L.Dropout(0.25), L.Linear(24, 20, bias=False),
                              cuba(), L.Dropout(0.25), L.Linear(20, 8, bias=False), cuba(), L.OutputCode(10, 8))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)
    set_step_mode(net, "m")
    twin = quant.convert(net.eval(), "xylo")
    x = (_inputs(4, t=30) > 0).to(torch.int64)
    lay = sim.run(quant.export(twin, tmp_path / "layered"), x.numpy())
    fus = sim.run(quant.export(fuse(twin, input_kind="spikes"), tmp_path / "fused"), x.numpy())
    assert [op.kind for op in sim.load_export(tmp_path / "layered").ops].count("dropout") == 2
    assert lay.fit["fits"], lay.fit["problems"]
    for key in ("cycles_per_step_mean", "cycles_per_step_max", "cycles_per_step_model"):
        assert lay.costs[key] == pytest.approx(fus.costs[key], rel=1e-12), key
    np.testing.assert_allclose(lay.costs["step_cycles"], fus.costs["step_cycles"], rtol=1e-12)
    assert len(set(np.round(lay.costs["step_cycles"], 6))) > 1
