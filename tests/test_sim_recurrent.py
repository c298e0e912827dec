"""Recurrent populations: the torch twin (FixedRecurrent) against the simulator's ``recurrent`` op
(NumPy and compiled), against SynSense's xylosim where installed, and the compiled per-event path
(``sim.fast``) against the NumPy ops on target variants that exercise every branch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import quant
import sim
import targets
from hwsnn.fixed import FitError, FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedLinear
from hwsnn.fixed.recurrent import FixedRecurrent
from hwsnn.functional import reset_net, set_step_mode

JITS = [False] + ([True] if sim.fast.available() else [])


def _weights(g: torch.Generator, rows: int, cols: int, lo: int, hi: int, density: float, step: int = 1) -> torch.Tensor:
    w = torch.randint(lo // step, hi // step + 1, (rows, cols), generator=g) * step
    return w * (torch.rand(rows, cols, generator=g) < density)


def _net(tg, seed: int, n: int = 40, n_in: int = 8, n_out: int = 5, kind: str = "cuba", latency=None,
         rec_scale: int = 60, rec_shift: int = 0, clip: bool = False, reset=None) -> torch.nn.Sequential:
    """input dense -> recurrent population -> dense -> readout, with weights on the target's grid."""
    tg = targets.load(tg)
    g = torch.Generator().manual_seed(seed)
    step = tg.synapse.weight_step
    hi = min(tg.widths.weight.hi, 127)
    fan = tg.limits.max_fan_out or n
    dens = min(0.5, fan / n / 1.5)
    w_in = _weights(g, n, n_in, -hi, hi, 0.5, step)
    w_rec = _weights(g, n, n, -rec_scale, rec_scale, dens, step)
    w_out = _weights(g, n_out, n, -hi, hi, 0.5, step)
    per_event = tg.synapse.accumulation == "per_event_saturate"
    th = 300 if per_event else 40
    if kind == "cuba":
        hidden = FixedCubaLIFNode(tg, th, 2, 1, name="hidden", reset=reset)
    elif kind == "lif":
        hidden = FixedLIFNode(tg, th, 1, name="hidden", reset=reset)
    else:
        hidden = FixedIFNode(tg, th, name="hidden", reset=reset)
    in_shift = 2 if per_event else 0
    net = torch.nn.Sequential(
        FixedLinear(w_in, tg, None, in_shift, first_layer=True, name="w_in"),
        FixedRecurrent(hidden, w_rec, rec_shift, latency, name="hidden", clip=clip),
        FixedLinear(w_out, tg, None, 0, name="w_out", clip=clip),
        FixedCubaLIFNode(tg, th, 1, 1, readout=True, name="readout", reset=reset),
    )
    set_step_mode(net, "m")
    return net


def _inputs(tg, seed: int, t: int, batch: int, n_in: int = 8) -> np.ndarray:
    g = np.random.default_rng(seed)
    tg = targets.load(tg)
    if tg.synapse.accumulation == "per_event_saturate":
        return (g.integers(0, 4, (t, batch, n_in)) * (g.random((t, batch, n_in)) < 0.4)).astype(np.int64)
    return (g.random((t, batch, n_in)) < 0.4).astype(np.int64)


def _twin_run(net, x: np.ndarray):
    reset_net(net)
    for m in net:
        m.clear_counts()
    with torch.no_grad():
        y = net(torch.from_numpy(x))
    return y.numpy()


def _sim_equals_twin(net, x, tmp: Path, jit: bool, chunk: int = 7) -> sim.SimResult:
    y = _twin_run(net, x)
    kind = "counts" if int(x.max()) > 1 else "spikes"
    ex = sim.load_export(quant.export(net, tmp / "ex", input_kind=kind, overwrite=True))
    res = sim.run(ex, x, record="states", chunk=chunk, jit=jit)
    assert np.array_equal(res.output, y)
    twin_sat = {k: v for k, v in net[1].saturations.items() if v}
    sim_sat = {k: v for k, v in res.counters["hidden"].saturations_by_state.items() if v}
    assert sim_sat == twin_sat
    # hidden spikes, step by step, from a second run of the twin
    reset_net(net)
    with torch.no_grad():
        h = net[1](net[0](torch.from_numpy(x)))
    assert np.array_equal(res.traces["hidden"]["output"], h.numpy())
    return res


@pytest.mark.parametrize("jit", JITS)
@pytest.mark.parametrize("target", ["generic_int8", "ideal", "loihi", "xylo"])
@pytest.mark.parametrize("kind", ["cuba", "lif"])
def test_sim_recurrent_equals_twin(tmp_path, target, kind, jit):
    for seed in range(2):
        net = _net(target, seed, kind=kind)
        x = _inputs(target, seed, 60, 3)
        res = _sim_equals_twin(net, x, tmp_path, jit)
        assert res.traces["hidden"]["output"].sum() > 0  # the population is active
        # recurrent synaptic events: each fed-back spike reaches the nonzero synapses of its column
        w = net[1].weight.numpy() != 0
        h = res.traces["hidden"]["output"].astype(np.int64)
        lat = net[1].latency
        fed = np.zeros_like(h)
        fed[lat:] = h[:-lat]
        if target == "xylo":
            fed = np.minimum(fed, targets.load(target).neuron.max_spikes_per_step)
        expect = (fed.sum(axis=1) @ w.T.astype(np.int64)).sum(axis=1)
        assert np.array_equal(res.counters["hidden"].synaptic_events.sum(axis=1), expect)


@pytest.mark.parametrize("jit", JITS)
@pytest.mark.parametrize("latency", [1, 2, 5])
def test_latency_and_chunks(tmp_path, latency, jit):
    for target in ("generic_int8", "xylo"):
        net = _net(target, 3, latency=latency)
        assert net[1].latency == latency
        x = _inputs(target, 3, 41, 2)
        outs = [_sim_equals_twin(net, x, tmp_path, jit, chunk=c).output for c in (1, 6, 41)]
        assert all(np.array_equal(outs[0], o) for o in outs)


def test_default_latency_is_at_least_one():
    for target in ("generic_int8", "loihi", "xylo"):
        tg = targets.load(target)
        assert _net(target, 0)[1].latency == max(1, tg.synapse.latency)
    with pytest.raises(ValueError, match="latency must be >= 1"):
        _net("generic_int8", 0, latency=0)


@pytest.mark.parametrize("jit", JITS)
def test_saturation_and_multi_spikes_on_xylo(tmp_path, jit):
    """Strong recurrent weights: currents saturate per event and neurons fire several spikes per step."""
    net = _net("xylo", 5, rec_scale=127, rec_shift=3)
    x = _inputs("xylo", 5, 80, 2)
    res = _sim_equals_twin(net, x, tmp_path, jit)
    assert res.counters["hidden"].saturations_by_state.get("i", 0) > 0
    assert res.traces["hidden"]["output"].max() > 1


@pytest.mark.parametrize("jit", JITS)
def test_fed_back_counts_above_the_cap(tmp_path, jit):
    """A hidden neuron may fire 31 spikes; with a recurrent event cap below that the twin and the
    simulator refuse, or clip and count the same values."""
    net = _net("xylo", 7, rec_scale=127, rec_shift=3)
    x = _inputs("xylo", 7, 50, 1)
    assert int(_hidden(net, x).max()) > 2
    ex_dir = quant.export(net, tmp_path / "cap", input_kind="counts")
    manifest = Path(ex_dir) / "manifest.json"
    m = json.loads(manifest.read_text())
    entry = next(e for e in m["layers"] if e["name"] == "hidden")
    assert entry["op"] == "recurrent" and entry["params"]["event_cap"] == 31
    # the simulator's own check of the cap, on an op description built with a lower cap (the format
    # itself refuses a bundle whose cap differs from the target's: an edit of it is named)
    from targets.bundle import BundleError
    from tests.bundle_tools import resign

    spec = sim.load_export(ex_dir).ops[1]
    low = spec.replace(event_cap=2)
    with pytest.raises(ValueError, match="params.event_cap: 2 but the target's hidden spike cap is 31"):
        low.check(sim.load_export(ex_dir).target)
    resign(ex_dir, lambda man: next(e for e in man["layers"] if e["name"] == "hidden")["params"].update(event_cap=2))
    with pytest.raises(BundleError, match="event_cap: 2 but the target's hidden spike cap is 31"):
        sim.load_export(ex_dir)
    from sim.ops.recurrent import RecurrentOp

    class LowCap(RecurrentOp):  # the cap of a chip whose neurons fire more than its recurrent events carry
        def __init__(self, spec, target, batch, cap, clip):
            super().__init__(spec, target, batch)
            self.event_cap, self.clip_events = cap, clip

    op = LowCap(spec, net[0].target, 1, 2, False)
    op.jit = jit
    from sim.ops.base import Events

    events = Events(np.zeros((50, 1, 8), np.int64), np.zeros((spec.features, 8), np.int64))
    big = np.full((1, spec.features), 5, np.int64)
    with pytest.raises(ValueError, match="event cap"):
        op._fed_back(big)
    op.clip_events = True
    capped, n = op._fed_back(big)
    assert capped.max() == 2 and n == spec.features and op.clipped["input_events"] == n
    del events


def _hidden(net, x: np.ndarray) -> np.ndarray:
    reset_net(net)
    with torch.no_grad():
        return net[1](net[0](torch.from_numpy(x))).numpy()


def test_twin_refuses_bad_inputs():
    tg = targets.load("xylo")
    hidden = FixedCubaLIFNode(tg, 100, 2, 1)
    with pytest.raises(ValueError, match="square"):
        FixedRecurrent(hidden, torch.zeros(4, 5, dtype=torch.int64))
    with pytest.raises(TypeError, match="neuron twin"):
        FixedRecurrent(torch.nn.Identity(), torch.zeros(4, 4, dtype=torch.int64))
    rec = FixedRecurrent(hidden, torch.zeros(4, 4, dtype=torch.int64))
    with pytest.raises(TypeError, match="SynapticEvents"):
        rec(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(FitError):
        FixedRecurrent(FixedCubaLIFNode(tg, 100, 2, 1), torch.full((4, 4), 300, dtype=torch.int64))
    fan = tg.limits.max_fan_out
    with pytest.raises(FitError, match="fan-out"):
        FixedRecurrent(FixedCubaLIFNode(tg, 100, 2, 1), torch.ones(fan + 1, fan + 1, dtype=torch.int64))


def test_sim_refuses_plain_values_on_xylo(tmp_path):
    net = _net("xylo", 0)
    ex = sim.load_export(quant.export(net, tmp_path / "e", input_kind="counts"))
    op = sim.build_ops(ex, 1)[1]
    with pytest.raises(ValueError, match="synaptic events"):
        op.run(np.zeros((2, 1, 40), np.int64), 0)


def test_load_twin_round_trip_and_mapping(tmp_path):
    for target in ("generic_int8", "xylo"):
        net = _net(target, 2)
        x = _inputs(target, 2, 30, 2)
        y = _twin_run(net, x)
        ex = sim.load_export(quant.export(net, tmp_path / target, input_kind="counts" if target == "xylo" else "spikes"))
        tw = quant.load_twin(ex)
        assert isinstance(tw[1], FixedRecurrent)
        with torch.no_grad():
            assert np.array_equal(tw(torch.from_numpy(x)).numpy(), y)
        plan = sim.mapping.core_map(ex)
        rec_nnz = int(np.count_nonzero(net[1].weight))
        assert sum(plan[1]["synapses"]) == rec_nnz  # the recurrent matrix lives on the population's cores
        fit = sim.mapping.fit_check(ex, plan)
        if target == "xylo":  # the whole network is one core: fan-out = hidden targets per hidden neuron
            fan = [c for c in fit["checks"] if c["check"] == "fan-out of a hidden neuron (largest)"]
            assert fan and fan[0]["value"] == int(np.count_nonzero(net[1].weight, axis=0).max())
        else:
            assert any(c["layer"] == "hidden" and c["check"] == "fan-out (largest)" for c in fit["checks"])


@pytest.mark.skipif(not sim.fast.available(), reason="numba is not installed")
def test_jit_true_requires_numba(monkeypatch, tmp_path):
    net = _net("xylo", 0)
    x = _inputs("xylo", 0, 5, 1)
    ex = sim.load_export(quant.export(net, tmp_path / "e", input_kind="counts"))
    monkeypatch.setenv("HWSNN_SIM_JIT", "0")
    with pytest.raises(RuntimeError, match="numba"):
        sim.run(ex, x, jit=True)
    assert np.array_equal(sim.run(ex, x).output, _twin_run(net, x))  # falls back to NumPy


# -- the compiled path against NumPy on target variants -----------------------------------------------
VARIANTS = {
    "xylo": {},
    "zero_reset_direct": {"neuron": {"reset": ["zero", "subtract"], "membrane_update": "direct", "compare": ">"}},
    "floor_decay_then_add": {"decay": {"rounding": "floor", "current_order": "decay_then_add"}},
    "toward_zero_single_spike": {"decay": {"rounding": "toward_zero"}, "neuron": {"max_spikes_per_step": 1}},
}


def _variant(tmp: Path, name: str) -> targets.Target:
    d = yaml.safe_load((Path(targets.__file__).parent / "xylo.yaml").read_text())
    d["name"] = f"xylo_{name}"
    for section, values in VARIANTS[name].items():
        d[section].update(values)
    path = tmp / f"{d['name']}.yaml"
    path.write_text(yaml.safe_dump(d))
    return targets.load(path)


@pytest.mark.skipif(not sim.fast.available(), reason="numba is not installed")
@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("kind", ["cuba", "lif"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_compiled_equals_numpy(tmp_path, variant, kind, reset):
    tg = _variant(tmp_path, variant)
    if reset not in tg.neuron.reset:
        pytest.skip(f"{variant} has no {reset} reset")
    for seed, strong in ((0, False), (1, True)):
        net = _net(tg, seed, kind=kind, reset=reset, rec_scale=127 if strong else 60, rec_shift=6 if strong else 0)
        x = _inputs("xylo", seed, 50, 2)
        y = _twin_run(net, x)
        ex = sim.load_export(quant.export(net, tmp_path / f"{seed}", input_kind="counts", overwrite=True))
        a = sim.run(ex, x, record="states", chunk=9, jit=False)
        b = sim.run(ex, x, record="states", chunk=13, jit=True)
        assert np.array_equal(a.output, y) and np.array_equal(b.output, y)
        for layer in a.traces:
            for key in a.traces[layer]:
                assert np.array_equal(a.traces[layer][key], b.traces[layer][key]), (layer, key)
            ca, cb = a.counters[layer], b.counters[layer]
            for f in ("synaptic_events", "neuron_updates", "words_read", "saturations"):
                assert np.array_equal(getattr(ca, f), getattr(cb, f)), (layer, f)
            assert {k: v for k, v in ca.saturations_by_state.items() if v} == \
                   {k: v for k, v in cb.saturations_by_state.items() if v}
        if strong:
            assert a.counters["hidden"].saturations.sum() > 0


def _xylosim_readout(net, x: np.ndarray) -> np.ndarray:
    xs = pytest.importorskip("xylosim.v2")
    w_in, w_rec, w_out = (net[0].weight.numpy(), net[1].weight.numpy(), net[2].weight.numpy())
    hid, ro = net[1].neuron, net[3]
    n, n_out = w_rec.shape[0], w_out.shape[0]

    def synapses(w):
        return [[xs.XyloSynapse(int(j), 0, int(w[j, i])) for j in np.flatnonzero(w[:, i])] for i in range(w.shape[1])]

    syn = (synapses(w_in), synapses(w_rec), synapses(w_out))
    layer = xs.XyloLayer(*syn, [[] for _ in range(n)], [hid.threshold] * n, [ro.threshold] * n_out, False,
                         [0] * n, [0] * n_out, net[0].weight_shift, net[1].weight_shift, net[2].weight_shift,
                         [hid.decay_mem] * n, [ro.decay_mem] * n_out, [[hid.decay_syn, hid.decay_syn]] * n,
                         [[ro.decay_syn, ro.decay_syn]] * n_out, "test")
    out = np.asarray(layer.evolve(x[:, 0, :].tolist()))
    assert syn  # the engine keeps raw pointers to the synapse objects until here
    return out


@pytest.mark.parametrize("seed,strong", [(0, False), (1, False), (2, True), (3, True)])
def test_twin_and_sim_equal_xylosim(tmp_path, seed, strong):
    """The recurrent Xylo network, readout spikes: SynSense's xylosim = the twin = the simulator."""
    net = _net("xylo", seed, rec_scale=127 if strong else 60, rec_shift=4 if strong else 0)
    x = _inputs("xylo", seed, 120, 1)
    ref = _xylosim_readout(net, x)
    res = _sim_equals_twin(net, x, tmp_path, jit=bool(JITS[-1]))
    assert np.array_equal(res.output[:, 0], ref)
    assert res.output.sum() > 0
    if strong:
        assert res.counters["hidden"].saturations_by_state.get("i", 0) > 0


def test_report_on_a_recurrent_network(tmp_path):
    from quant.report import make_report

    for target in ("generic_int8", "xylo"):
        net = _net(target, 4)
        x = _inputs(target, 4, 30, 2)
        path = quant.export(net, tmp_path / target, input_kind="counts" if target == "xylo" else "spikes")
        rep = make_report(net, path, x, out_dir=tmp_path / f"r_{target}", plots=False)
        assert rep["bit_exact"]
        compared = rep["twin"]["layers"]["hidden"]
        assert {"output", "v", "i"} <= set(compared)  # the population's states are compared too
        assert not [c for c in rep["twin"]["not_compared"] if c["layer"] == "hidden"]
