"""Cycle, event, energy and fit numbers of the simulator against hand computation."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn.fixed import FixedLIFNode, FixedLinear
from hwsnn.functional import set_step_mode


def custom_target(**changes) -> targets.Target:
    d = copy.deepcopy(targets.to_dict(targets.load("generic_int8")))
    d["name"] = "hand"
    for path, value in changes.items():
        node = d
        keys = path.split(".")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return targets.from_dict(d)


W = torch.tensor([[1, 0, 2], [0, 0, 3]])  # nonzero synapses: input 0 -> 1, input 1 -> 0, input 2 -> 2
X = torch.tensor([[1, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=torch.int8).unsqueeze(1)  # [T=3, N=1, 3]


def tiny(tmp_path, target, name="e"):
    net = torch.nn.Sequential(FixedLinear(W, target, name="fc"), FixedLIFNode(target, 1000, 1, name="lif"))
    set_step_mode(net, "m")
    return quant.export(net, tmp_path / name)


def test_one_core_counts_and_cycles_by_hand(tmp_path):
    tg = custom_target()
    r = sim.run(tiny(tmp_path, tg), X.numpy())
    fc, lif = r.counters["fc"], r.counters["lif"]
    # events per step: t0 inputs 0,1 -> 1 + 0; t1 input 2 -> 2; t2 all -> 1 + 0 + 2
    assert fc.synaptic_events[:, 0].tolist() == [1, 2, 3]
    assert fc.words_read[:, 0].tolist() == [1, 2, 3]
    assert lif.neuron_updates[:, 0].tolist() == [2, 2, 2]
    assert lif.words_read[:, 0].tolist() == [2, 2, 2]  # one membrane word per update
    assert fc.cores == lif.cores == [0]
    # generic_int8: 1 cycle per event and per update, 1 pJ each, 100 MHz, dt = 1 ms
    assert r.costs["step_cycles"].tolist() == [3, 4, 5]
    assert r.costs["cycles_per_step_mean"] == pytest.approx(4.0)
    assert r.costs["cycles_per_inference"] == pytest.approx(12.0)
    assert r.costs["latency_per_step_s"] == pytest.approx(4 / 100e6)
    assert r.costs["real_time_factor"] == pytest.approx(1e-3 / (4 / 100e6))
    assert r.costs["energy_per_inference_j"] == pytest.approx(12e-12)
    assert r.costs["synaptic_events_per_inference"] == 6 and r.costs["neuron_updates_per_inference"] == 6


def test_two_cores_run_in_parallel_by_hand(tmp_path):
    tg = custom_target(**{"limits.neurons_per_core": 1, "costs.cycles_per_synaptic_event.value": 2})
    r = sim.run(tiny(tmp_path, tg), X.numpy())
    fc = r.counters["fc"]
    assert fc.cores == [0, 1]
    # core 0 holds neuron 0 (row [1, 0, 2]); core 1 neuron 1 (row [0, 0, 3])
    assert fc.synaptic_events.tolist() == [[1, 0], [1, 1], [2, 1]]
    # cycles = 2 * events + 1 * update per core; the step takes the slower core
    core0, core1 = [3, 3, 5], [1, 3, 3]
    assert r.costs["step_cycles"].tolist() == [max(a, b) for a, b in zip(core0, core1)]
    assert r.costs["core_cycles_per_inference"] == {0: sum(core0), 1: sum(core1)}


def test_a_batch_is_counted_per_inference(tmp_path):
    tg = custom_target()
    x = torch.cat([X, X], dim=1)  # the same sample twice
    r = sim.run(tiny(tmp_path, tg), x.numpy())
    assert r.counters["fc"].synaptic_events[:, 0].tolist() == [2, 4, 6]
    assert r.costs["energy_per_inference_j"] == pytest.approx(12e-12)
    assert r.costs["cycles_per_step_mean"] == pytest.approx(4.0)


def test_fit_check_lists_what_does_not_fit(tmp_path):
    # the twin itself refuses a fan-out above the limit, so the limits are tightened in the manifest
    from tests.bundle_tools import resign

    path = tiny(tmp_path, custom_target())
    resign(path, lambda m: m["target"]["parameters"]["limits"].update(neurons_per_core=1, cores=1, max_fan_out=1,
                                                                       input_channels=2))
    ex = sim.load_export(path)
    fit = sim.fit_check(ex)
    assert not fit["fits"]
    text = "\n".join(fit["problems"])
    assert "cores = 2 exceeds the limit 1" in text
    assert "fc: fan-out (largest) = 2 exceeds the limit 1" in text
    assert "input channels = 3 exceeds the limit 2" in text
    ok = sim.fit_check(sim.load_export(tiny(tmp_path, custom_target(), "ok")))
    assert ok["fits"] and ok["problems"] == []


def test_xylo_sized_network_fits_xylo_and_a_larger_one_does_not(tmp_path):
    tg = targets.load("xylo")
    g = torch.Generator().manual_seed(0)
    w = torch.randint(-50, 50, (1001, 16), generator=g) * (torch.rand(1001, 16, generator=g) < 0.03)
    net = torch.nn.Sequential(FixedLinear(w, tg, None, 0, first_layer=True, name="w_in"), FixedLIFNode(tg, 100, 2, name="h"))
    set_step_mode(net, "m")
    fit = sim.fit_check(sim.load_export(quant.export(net, tmp_path / "x", input_kind="counts")))
    assert not fit["fits"]
    assert any("hidden neurons = 1001 exceeds the limit 1000" in p for p in fit["problems"])


def test_inputs_are_checked(tmp_path):
    path = tiny(tmp_path, custom_target())
    with pytest.raises(TypeError, match="integer array"):
        sim.run(path, X.numpy().astype(np.float32))
    with pytest.raises(ValueError, match=r"shape \[T, N, 3\]"):
        sim.run(path, X.numpy()[..., :2])
    with pytest.raises(ValueError, match="0/1 spikes"):
        sim.run(path, X.numpy() * 2)
    with pytest.raises(ValueError, match="record must be one of"):
        sim.run(path, X.numpy(), record="everything")
