"""The Xylo core's fit check and the hand-off to Rockpool: the ``rockpool-xylo`` view written into a
signed bundle, loaded back and run by Rockpool's XyloSim (equal to hwsnn's simulator), bad
specifications refused with the key named, networks the chip cannot hold refused with the limit
named, and a missing Rockpool named with its pip line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn.fixed import FixedCubaLIFNode, FixedLIFNode, FixedLinear
from hwsnn.functional import set_step_mode
from quant import views
from quant.xylo import from_rockpool_xylo, load_rockpool_xylo, to_rockpool_xylo
from targets.bundle import BundleError, load_bundle
from xylo_nets import layered, need_xylosim, random_inputs, random_spec


def _problems(spec: dict, variant: str, tmp_path) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    imp = from_rockpool_xylo(spec, variant, out_dir=tmp_path / "big")
    fit = sim.fit_check(sim.load_export(imp.export))
    assert not fit["fits"]
    return "\n".join(fit["problems"])


@pytest.mark.parametrize("variant", ["syns61201", "syns65302", "syns63300"])
def test_view_is_signed_and_xylosim_built_from_it_equals_the_simulator(tmp_path, variant):
    need_xylosim()
    imp = from_rockpool_xylo(random_spec(11, variant, low_threshold=True), variant, out_dir=tmp_path / "core")
    bundle = views.add_view(imp.export, "rockpool-xylo")
    assert bundle.manifest["views"]["rockpool-xylo"]["files"] == ["rockpool_xylo/spec.json", "rockpool_xylo/spec.npz"]
    meta = json.loads((tmp_path / "core" / "rockpool_xylo" / "spec.json").read_text())
    assert meta["variant"] == variant
    kw = load_rockpool_xylo(tmp_path / "core")
    x = random_inputs(11, 50, batch=1)
    res = sim.run(bundle, x)
    xs = quant.xylo.xylo_sim_class(variant).from_specification(**kw)
    out, _, _ = xs.evolve(np.minimum(x[:, 0], 15), record=False)
    assert res.output.sum() > 0
    np.testing.assert_array_equal(res.output[:, 0], np.asarray(out))
    assert sim.fit_check(bundle)["fits"]
    # the view is covered by the digest: a changed byte is refused on load
    npz = tmp_path / "core" / "rockpool_xylo" / "spec.npz"
    data = bytearray(npz.read_bytes())
    data[-30] ^= 1
    npz.write_bytes(bytes(data))
    with pytest.raises(BundleError):
        load_rockpool_xylo(load_bundle(tmp_path / "core"))


def test_view_is_listed_and_refuses_what_is_no_xylo_core(tmp_path):
    assert "rockpool-xylo" in views.available_views()
    tg = targets.load("generic_int8")
    net = torch.nn.Sequential(FixedLinear(torch.ones(4, 3, dtype=torch.int64), tg, None, 0, first_layer=True, name="fc"),
                              FixedCubaLIFNode(tg, 100, 2, 2, name="h"))
    set_step_mode(net, "m")
    path = quant.export(net, tmp_path / "x", input_kind="counts")
    with pytest.raises(ValueError, match="needs one Xylo core .* for target 'generic_int8'"):
        views.add_view(path, "rockpool-xylo")
    with pytest.raises(ValueError, match="no 'rockpool-xylo' view"):
        load_rockpool_xylo(path)
    lif = quant.export(layered("xylo", 0, hidden_neuron=FixedLIFNode), tmp_path / "lif", input_kind="counts")
    with pytest.raises(ValueError, match="cannot be laid out as one Xylo core: h0: lif neurons do not exist on Xylo"):
        views.add_view(lif, "rockpool-xylo")


@pytest.mark.parametrize("target", ["xylo", "xylo_imu"])
def test_a_layered_cuba_export_hands_off_to_xylosim(tmp_path, target):
    """The user's path: a layered CUBA network exported for Xylo, the view written into its bundle,
    Rockpool's XyloSim built from the view: its readout spikes equal the simulator's on the bundle."""
    need_xylosim()
    net = layered(target, 4, sizes=(14, 9), recurrent=(True, False), vote=False)
    g = torch.Generator().manual_seed(4)
    x = ((torch.rand(60, 1, 16, generator=g) < 0.4) * torch.randint(0, 16, (60, 1, 16), generator=g)).numpy()
    path = quant.export(net, tmp_path / "layered", input_kind="counts")
    bundle = views.add_view(path, "rockpool-xylo")
    res = sim.run(bundle, x)
    assert sim.fit_check(bundle)["fits"], sim.fit_check(bundle)["problems"]
    kw = load_rockpool_xylo(bundle)
    out, _, _ = quant.xylo.xylo_sim_class(target).from_specification(**kw).evolve(x[:, 0], record=False)
    assert res.output.sum() > 0
    np.testing.assert_array_equal(res.output[:, 0], np.asarray(out))


def test_core_fits_and_each_limit_is_named(tmp_path):
    ok = from_rockpool_xylo(random_spec(1, "syns61201"), "syns61201", out_dir=tmp_path / "ok")
    fit = sim.fit_check(sim.load_export(ok.export))
    assert fit["fits"] and fit["cores_used"] == 1, fit["problems"]
    assert {c["check"] for c in fit["checks"]} >= {"input channels", "hidden neurons", "readout neurons"}
    # XyloAudio 2: 8 readout neurons, 1000 hidden, fan-out 64
    p = _problems(random_spec(2, "syns61201", m=9, n=20), "syns61201", tmp_path / "a")
    assert "readout neurons = 9 exceeds the limit 8 of xylo" in p
    p = _problems(random_spec(2, "syns61201", n=1001, m=2, density=0.01, aliases=0), "syns61201", tmp_path / "b")
    assert "hidden neurons = 1001 exceeds the limit 1000 of xylo" in p
    p = _problems(random_spec(2, "syns61201", n=100, density=0.9), "syns61201", tmp_path / "c")
    assert "projects to" in p and "hidden neurons (w_rec); xylo allows 64" in p
    # XyloIMU: 496 hidden, projections to the first / from the last 128
    spec = random_spec(3, "syns63300", n=300, m=2, density=0.005, aliases=0)
    spec["weights_in"] = np.zeros((16, 200, 1), np.int64)
    p = _problems(spec, "syns63300", tmp_path / "d")
    assert "the input reaches 200 hidden neurons; xylo_imu projects it to the first 128 only" in p
    with pytest.raises(ValueError, match="the input reaches 200 hidden neurons"):
        to_rockpool_xylo(tmp_path / "d" / "big")
    # XyloAudio 3: 32 readouts, more than 16 only warned about
    big_out = from_rockpool_xylo(random_spec(4, "syns65302", m=20), "syns65302", out_dir=tmp_path / "e")
    fit = sim.fit_check(sim.load_export(big_out.export))
    assert fit["fits"] and any("Rockpool warns above 16" in w for w in fit["warnings"])


def test_layered_network_on_xylo_is_refused_with_the_reason(tmp_path):
    tg = targets.load("xylo")
    g = torch.Generator().manual_seed(0)
    w1 = torch.randint(-20, 20, (10, 16), generator=g)
    w2 = torch.randint(-20, 20, (4, 10), generator=g)
    net = torch.nn.Sequential(FixedLinear(w1, tg, None, 0, first_layer=True, name="fc1"), FixedLIFNode(tg, 100, 2, name="lif1"),
                              FixedLinear(w2, tg, None, 0, name="fc2"),
                              FixedCubaLIFNode(tg, 100, 2, 2, readout=True, name="out"))
    set_step_mode(net, "m")
    fit = sim.fit_check(sim.load_export(quant.export(net, tmp_path / "x", input_kind="counts")))
    text = "\n".join(fit["problems"])
    assert not fit["fits"]
    assert "lif1: lif neurons do not exist on Xylo" in text and "use CubaLIFNode" in text
    assert "runs the whole network as one Xylo core" in text
    assert "cores = " not in text  # the per-layer core count is not Xylo's limit


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(weigths_in=1), "weigths_in: unknown key"),
    (lambda s: s.update(weights_in=s["weights_in"] + 0.5), "weights_in: must hold integers"),
    (lambda s: s.pop("threshold"), "threshold: missing"),
    (lambda s: s.update(threshold=np.zeros(40, np.int64)), "thresholds > 0"),
    (lambda s: s.update(dash_mem=np.full(40, 16)), "dash_mem"),
    (lambda s: s.update(weight_shift_rec=1.5), "weight_shift_rec: expected an integer"),
    (lambda s: s.update(aliases=[[1, 2]] + [[]] * 39), r"aliases\[0\]: \[1, 2\]; Xylo has one alias target"),
    (lambda s: s.update(bias=np.zeros(39, np.int64)), r"bias: shape \[39\]; expected \[40\]"),
    (lambda s: s.update(weights_in=np.full((16, 40, 2), 300)), "w_in"),
])
def test_bad_specifications_name_the_key(edit, message):
    spec = random_spec(6, "syns61201")
    edit(spec)
    with pytest.raises(ValueError, match=message):
        from_rockpool_xylo(spec, "syns61201")


def test_synapse_2_is_refused_on_xylo_imu_and_unknown_variants_are_named():
    spec = random_spec(7, "syns61201", n=20)
    with pytest.raises(ValueError, match="synapse-2 weights, but syns63300 has one synapse"):
        from_rockpool_xylo(spec, "syns63300")
    with pytest.raises(ValueError, match="variant must be one of syns61201, syns63300, syns65302"):
        from_rockpool_xylo(spec, "xylo9")
    with pytest.raises(TypeError, match="spec must be a mapping"):
        from_rockpool_xylo([1, 2], "syns61201")


def test_missing_rockpool_is_named_with_its_pip_line(monkeypatch):
    import importlib.util
    import sys

    from quant.xylo import rockpool as rp

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "rockpool" else real(name, *a))
    for key in [k for k in sys.modules if k.startswith("rockpool.devices.xylo")]:
        monkeypatch.delitem(sys.modules, key)
    with pytest.raises(ImportError, match=r"pip install 'hwsnn\[xylo\]' \(rockpool==3\.1\.0"):
        rp.rockpool_xylo("syns61201")


def test_an_imported_core_is_simulated_reported_and_costed(tmp_path, capsys):
    """A Rockpool user's path: import a specification with test vectors, `hwsnn report` proves it
    bit-exact and shows the fit and SynSense's cycle model; `hwsnn formats` lists the view."""
    from hwsnn import cli

    x = random_inputs(8, 30, batch=3)
    imp = from_rockpool_xylo(random_spec(8, "syns65302"), "syns65302", out_dir=tmp_path / "core", examples={"inputs": x})
    assert cli.main(["report", str(imp.export), "--out", str(tmp_path / "rep"), "--no-plots"]) == 0
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert rep["bit_exact"] is True and rep["fit"]["fits"] is True
    want = sim.xylo_cycles.clock_for_real_time(load_bundle(imp.export).ops[0], "syns63300", 1e-3)
    assert rep["costs"]["clock_for_real_time_hz"] == pytest.approx(want)
    capsys.readouterr()
    assert cli.main(["formats"]) == 0
    assert "rockpool-xylo" in capsys.readouterr().out


def _fan_spec(targets_of_0: int, *, both_synapses: bool, n: int = 100) -> dict:
    spec = random_spec(5, "syns61201", n=n, m=8, density=0.0, aliases=0)
    spec["weights_rec"] = np.zeros((n, n, 2), np.int64)
    spec["weights_rec"][0, 1:1 + targets_of_0, 0] = 3
    if both_synapses:  # the same targets on synapse 2: one fan-out entry each on the chip
        spec["weights_rec"][0, 1:1 + targets_of_0, 1] = -2
    spec["weights_out"] = np.ones((n, 8), np.int64)  # a dense table: not fan-out
    spec["weights_in"] = np.ones((16, n, 2), np.int64)  # likewise
    return spec


@pytest.mark.parametrize("targets_of_0,both,fits", [(64, True, True), (64, False, True), (65, False, False)])
def test_fan_out_counts_distinct_hidden_targets_only(tmp_path, targets_of_0, both, fits):
    """XyloAudio 2 keeps per hidden neuron a list of its hidden targets (64 at most; both synapses'
    weights at one entry); the input and readout weights are dense tables and count nothing."""
    imp = from_rockpool_xylo(_fan_spec(targets_of_0, both_synapses=both), "syns61201", out_dir=tmp_path / "f")
    fit = sim.fit_check(sim.load_export(imp.export))
    fan = next(c for c in fit["checks"] if c["check"] == "fan-out of a hidden neuron (largest)")
    assert fan["value"] == targets_of_0 and fit["fits"] is fits, fit["problems"]
    if not fits:
        assert "hidden neuron 0 projects to 65 hidden neurons (w_rec); xylo allows 64" in fit["problems"][0]


def test_all_hidden_synapses_are_limited_by_the_fan_out_memory(tmp_path):
    """32000 hidden -> hidden synapses in all on XyloAudio 2 (1000 neurons x average fan-out 32)."""
    n = 600
    spec = random_spec(6, "syns61201", n=n, m=2, density=0.0, aliases=0)
    w = np.zeros((n, n, 1), np.int64)
    for src in range(n):  # 60 targets each: every neuron within 64, 36000 in all
        w[src, (src + 1 + np.arange(60)) % n, 0] = 1
    spec["weights_rec"] = w
    spec.pop("dash_syn_2", None)
    imp = from_rockpool_xylo(spec, "syns61201", out_dir=tmp_path / "g")
    fit = sim.fit_check(sim.load_export(imp.export))
    assert not fit["fits"]
    assert fit["problems"] == ["xylo_core: w_rec holds 36000 hidden -> hidden synapses; xylo stores 32000"], fit["problems"]
