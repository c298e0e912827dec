"""Whole networks through the contract: twin -> export -> NumPy simulator, bit for bit.

Random integer networks for every target and every layer kind (dense with latency and
per-synapse delays, conv2d, pooling, flatten, IF/LIF/CUBA, synapse filter, dropout masks,
dropconnect, delay FIFOs at the target's maximum depth, voting), with saturating weights and
negative states. Every layer's output and every state is compared at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import quant
import sim
from hwsnn.fixed import (
    FixedAvgPool2d,
    FixedConv2d,
    FixedCubaLIFNode,
    FixedDelay,
    FixedDropConnectLinear,
    FixedDropout,
    FixedDropout2d,
    FixedFlatten,
    FixedIFNode,
    FixedLIFNode,
    FixedLinear,
    FixedMaxPool2d,
    FixedSynapseFilter,
    FixedVotingLayer,
)
from hwsnn.functional import set_step_mode
from quant.report import record_twin

import targets
from sim import fast


@pytest.fixture(autouse=True, params=["compiled", "numpy"] if fast.available() else ["numpy"])
def sim_path(request, monkeypatch):
    """Every test runs on the compiled neuron path (sim.fast, when numba is installed) and on NumPy."""
    if request.param == "numpy":
        monkeypatch.setenv("HWSNN_SIM_JIT", "0")
    return request.param


def _w(g: torch.Generator, shape, width, scale: float = 1.0, step: int = 1) -> torch.Tensor:
    """Random weights over the whole width (``scale`` of it), on the target's grid."""
    hi = int(width.hi * scale)
    w = torch.randint(-hi, hi + 1, shape, generator=g)
    return (w // step) * step


def _compare(twin: torch.nn.Sequential, path, x: torch.Tensor, chunk: int = 7) -> sim.SimResult:
    rec = record_twin(twin, x)
    res = sim.run(path, x.numpy(), record="states", chunk=chunk)
    assert list(res.traces) == list(rec)
    for layer, names in rec.items():
        assert set(res.traces[layer]) == set(names), (layer, set(res.traces[layer]), set(names))
        for name, want in names.items():
            got = res.traces[layer][name]
            assert got.shape == want.shape, (layer, name, got.shape, want.shape)
            bad = np.argwhere(got.astype(np.int64) != want.astype(np.int64))
            assert bad.size == 0, f"{layer}.{name}: first mismatch at {tuple(bad[0])}: sim {got[tuple(bad[0])]} twin {want[tuple(bad[0])]}"
    return res


def mlp(target: str, seed: int, neuron: str) -> torch.nn.Sequential:
    """dense -> neuron -> synapse filter -> dropout -> delay -> dense (delays on loihi) -> neuron -> voting."""
    tg = targets.load(target)
    g = torch.Generator().manual_seed(seed)
    w, step = tg.widths, tg.synapse.weight_step
    zero = tg.decay.mechanism == "mul12"
    reset = "zero" if zero else ("subtract" if seed % 2 else "zero")
    e = -10 if target != "ideal" else -20

    def make_neuron(name, n, readout=False):
        th = int(w.threshold.hi // 4) if not zero else int(w.threshold.hi // 8)
        bias = torch.randint(-int(w.bias.hi // 64), int(w.bias.hi // 64) + 1, (n,), generator=g)
        kw = dict(state_exponent=e, reset=reset, bias=bias, readout=readout, name=name)
        if neuron == "if":
            return FixedIFNode(tg, th, **kw)
        if zero:
            dm, ds = 1 + seed % 300, 200 + seed % 500
        else:
            dm, ds = 1 + seed % 4, 2 + seed % 3
        if neuron == "lif":
            return FixedLIFNode(tg, th, dm, **kw)
        return FixedCubaLIFNode(tg, th, ds, dm, **kw)

    n1, n2 = 24, 20
    lif1 = make_neuron("hidden", n1)
    lif2 = make_neuron("readout", n2, readout=True)
    # weights large enough to saturate states (and, with ideal's wide grid, to exercise the int64 path)
    fc1 = FixedLinear(_w(g, (n1, 12), w.weight, 1.0, step), tg, _w(g, (n1,), w.bias, 0.05), 8 if target == "generic_int8" else 0,
                      first_layer=True, name="fc1", weight_exponent=e - 2)
    syn = FixedSynapseFilter(2, tg, name="syn")
    drop = FixedDropout(0.25, seed, tg, name="drop")
    delay = FixedDelay(tg.synapse.max_delay if target != "ideal" else 5, tg, name="fifo")
    delays = torch.randint(0, tg.synapse.max_delay + 1, (n2, n1), generator=g) if tg.synapse.per_synapse_delay else None
    fc2 = FixedLinear(_w(g, (n2, n1), w.weight, 0.5, step), tg, None, tg.synapse.weight_shift_min + 1 if target == "loihi" else -6,
                      delays=delays, name="fc2", weight_exponent=e)
    vote = FixedVotingLayer(2, tg, name="vote")
    net = torch.nn.Sequential(fc1, lif1, syn, drop, delay, fc2, lif2, vote)
    set_step_mode(net, "m")
    return net


@pytest.mark.parametrize("target", ["generic_int8", "ideal", "loihi"])
@pytest.mark.parametrize("neuron", ["if", "lif", "cuba"])
@pytest.mark.parametrize("seed", [0, 1])
def test_mlp_twin_and_sim_agree_bit_for_bit(tmp_path, target, neuron, seed):
    net = mlp(target, seed, neuron)
    path = quant.export(net, tmp_path / "e")
    g = torch.Generator().manual_seed(100 + seed)
    x = (torch.rand(100 if seed == 0 else 40, 3, 12, generator=g) < 0.4).to(torch.int8)
    res = _compare(net, path, x)
    sat = sum(sum(v.values()) for v in res.saturations.values())
    if target == "generic_int8":
        assert sat > 0, "the test network must drive some state into saturation"


def xylo_net(seed: int, neuron: str = "cuba") -> torch.nn.Sequential:
    tg = targets.load("xylo")
    g = torch.Generator().manual_seed(seed)
    hidden = 30

    def make(name, n, readout):
        bias = torch.randint(-100, 101, (n,), generator=g)
        if neuron == "cuba":
            return FixedCubaLIFNode(tg, 3000, 2 + seed % 3, 3 + seed % 4, bias=bias, readout=readout, name=name)
        return FixedLIFNode(tg, 3000, 2 + seed % 3, bias=bias, readout=readout, name=name)

    # sparse enough for the fan-out limit (64), strong enough to saturate the int16 current
    w_in = torch.randint(-127, 128, (hidden, 16), generator=g)
    w_out = torch.randint(-127, 128, (8, hidden), generator=g) * (torch.rand(8, hidden, generator=g) < 0.5)
    net = torch.nn.Sequential(
        FixedLinear(w_in, tg, None, 6, first_layer=True, name="w_in"),
        make("hidden", hidden, False),
        FixedLinear(w_out, tg, None, 4, name="w_out"),
        make("readout", 8, True),
    )
    set_step_mode(net, "m")
    return net


@pytest.mark.parametrize("neuron", ["cuba", "lif"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xylo_network_per_event_saturation_bit_for_bit(tmp_path, neuron, seed):
    net = xylo_net(seed, neuron)
    path = quant.export(net, tmp_path / "e", input_kind="counts")
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 16, (60, 2, 16), generator=g) * (torch.rand(60, 2, 16, generator=g) < 0.3)
    res = _compare(net, path, x)
    assert res.saturations["hidden"].get("i", 0) > 0, "events must saturate the current"
    assert int(res.traces["hidden"]["output"].max()) > 1, "hidden neurons must emit several spikes in a step"


@pytest.mark.parametrize("target", ["generic_int8", "ideal", "loihi"])
def test_conv_network_bit_for_bit(tmp_path, target):
    tg = targets.load(target)
    g = torch.Generator().manual_seed(7)
    w, step = tg.widths, tg.synapse.weight_step
    zero = tg.decay.mechanism == "mul12"
    e = -8 if target != "ideal" else -20
    th = int(w.threshold.hi // 8)
    decay = 300 if zero else 2
    conv = FixedConv2d(_w(g, (6, 2, 3, 3), w.weight, 1.0, step), tg, _w(g, (6,), w.bias, 0.01), 0, stride=1, padding=1,
                       first_layer=True, name="conv", weight_exponent=e)
    net = torch.nn.Sequential(
        conv,
        FixedLIFNode(tg, th, decay, state_exponent=e, reset="zero", name="lif_c"),
        FixedMaxPool2d(2, tg, name="maxp"),
        FixedDropout2d(0.5, 3, tg, name="drop2d"),
        FixedConv2d(_w(g, (4, 3, 3, 3), w.weight, 0.5, step), tg, None, 0, stride=2, padding=1, dilation=1, groups=2,
                    name="conv2", weight_exponent=e),
        FixedIFNode(tg, th, state_exponent=e, reset="zero", name="if_c"),
        FixedAvgPool2d(2, tg, name="avgp"),
        FixedFlatten(1, -1, tg, name="flat"),
        FixedLinear(_w(g, (10, 4), w.weight, 1.0, step), tg, None, 0, name="fc", weight_exponent=e),
        FixedLIFNode(tg, th // 64 or 1, decay, state_exponent=e, reset="zero", readout=True, name="out"),
        FixedVotingLayer(5, tg, name="vote"),
    )
    set_step_mode(net, "m")
    path = quant.export(net, tmp_path / "e", input_shape=(2, 8, 8))
    x = (torch.rand(30, 2, 2, 8, 8, generator=g) < 0.3).to(torch.int8)
    _compare(net, path, x, chunk=4)


def test_dropconnect_network_bit_for_bit(tmp_path):
    tg = targets.load("generic_int8")
    g = torch.Generator().manual_seed(3)
    for invariant in (False, True):
        net = torch.nn.Sequential(
            FixedDropConnectLinear(_w(g, (10, 8), tg.widths.weight), _w(g, (10,), tg.widths.bias, 0.01), 0.3, 9, tg,
                                   invariant=invariant, name="dc"),
            FixedLIFNode(tg, 200, 1, name="lif"),
        )
        set_step_mode(net, "s")
        path = quant.export(net, tmp_path / f"e{invariant}")
        x = (torch.rand(20, 4, 8, generator=g) < 0.5).to(torch.int8)
        _compare(net, path, x)


def test_results_do_not_depend_on_the_chunk_size(tmp_path):
    net = mlp("loihi", 0, "cuba")
    path = quant.export(net, tmp_path / "e")
    x = (torch.rand(50, 2, 12, generator=torch.Generator().manual_seed(0)) < 0.4).to(torch.int8).numpy()
    runs = [sim.run(path, x, record="states", chunk=c) for c in (1, 7, 50, 64)]
    for r in runs[1:]:
        for layer, tr in runs[0].traces.items():
            for k, v in tr.items():
                assert np.array_equal(v, r.traces[layer][k]), (layer, k)
        for layer, c in runs[0].counters.items():
            assert np.array_equal(c.synaptic_events, r.counters[layer].synaptic_events)
    lean = sim.run(path, x, record="none", chunk=5)
    assert lean.output is None and lean.traces == {}
    assert np.array_equal(lean.output_sum, runs[0].output.sum(axis=0))


def test_a_perturbed_table_shows_up_at_its_layer_and_step(tmp_path):
    """Mutation check at the simulator level: one changed weight changes that layer's output at the
    first step the input reaches it, and nothing before."""
    from tests.bundle_tools import resign

    net = mlp("generic_int8", 0, "lif")
    path = quant.export(net, tmp_path / "e")
    x = torch.zeros(20, 1, 12, dtype=torch.int8)
    x[5, 0, 3] = 1
    good = sim.run(path, x.numpy(), record="layers")
    bundle = sim.load_export(path)
    w = bundle.tables["fc1.weight"].copy()
    w[0, 3] = w[0, 3] + 1 if w[0, 3] < 127 else w[0, 3] - 1
    resign(path, edit_tables=lambda t: t.update({"fc1.weight": w}))
    bad = sim.run(path, x.numpy(), record="layers")
    diff = np.argwhere(good.traces["fc1"]["output"] != bad.traces["fc1"]["output"])
    assert diff.size and tuple(diff[0]) == (5, 0, 0)
