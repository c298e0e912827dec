"""The bit-exact report (sim.report, quant.report): hand-built SimResults with known mismatches,
float numbers checked by hand, the files written, the no-matplotlib path, and end to end on a
small twin network: bit-exact as exported, and a mutated weight found at the right layer and step."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import sim.report as R
from sim.result import LayerCounters, SimResult

# -- a hand-built result ----------------------------------------------------------------------------
T, N = 6, 3


def manifest() -> dict:
    def layer(name, op, shape, kind, exp, params=None):
        return {"name": name, "op": op, "input_shape": [4], "output_shape": shape,
                "output": {"kind": kind, "exponent": exp}, "params": params or {}, "tables": {}}

    return {"input": {"shape": [4], "exponent": 0, "kind": "spikes"}, "layers": [
        layer("fc", "dense", [4], "values", -2),
        layer("lif", "lif", [4], "spikes", 0, {"state_exponent": -4}),
        layer("vote", "voting", [2], "values", None, {"voting_size": 2, "shift": False, "divisor_log2": 1}),
    ]}


def traces(seed: int = 0) -> dict:
    g = np.random.default_rng(seed)
    return {
        "fc": {"output": g.integers(-50, 50, (T, N, 4))},
        "lif": {"v": g.integers(-100, 100, (T, N, 4)), "output": g.integers(0, 2, (T, N, 4)).astype(np.int8)},
        "vote": {"output": g.integers(0, 3, (T, N, 2))},
    }


def make_result(tr: dict, layers=("fc", "lif", "vote")) -> SimResult:
    last = tr[layers[-1]]["output"]
    t, n = last.shape[:2]
    z = np.zeros((t, 1), np.int64)
    counters = {"lif": LayerCounters("lif", "lif", [0], z, z + n * 4, z + n * 4, np.zeros(t, np.int64), {"v": 3, "i": 0})}
    return SimResult(export_path="/x/export", target="generic_int8", steps=t, batch=n, layers=list(layers),
                     exponents={"fc": -2, "lif": 0, "vote": None}, output=last, output_sum=last.sum(axis=0),
                     traces=tr, counters=counters, costs={"cycles_per_step_mean": 12.5, "energy_per_inference_j": 1e-9},
                     fit={"fits": True, "checks": [{"check": "cores", "layer": "(network)", "value": 1, "limit": 4, "ok": True}],
                          "problems": []},
                     wall_seconds=0.01)


def copy_traces(tr: dict) -> dict:
    return {k: {n: a.copy() for n, a in v.items()} for k, v in tr.items()}


# -- sim vs twin ----------------------------------------------------------------------------------
def test_identical_traces_are_bit_exact():
    tr = traces()
    rep = R.build_report(make_result(tr), manifest(), twin=copy_traces(tr))
    # the traces agree, but without the bundle's digest and reference checks nothing is proven
    assert rep["twin"]["bit_exact"] is True and rep["bit_exact"] is None
    assert rep["headline"].startswith("BIT-EXACT: not proven — the simulator equals the twin")
    checks = {"integrity": {"ok": True, "digest": "sha256:" + "ab" * 32, "files": 3, "tables": 2},
              "reference": {"ok": True, "checked": True, "values": 10, "compared": 2, "samples": 1, "steps": 2}}
    proven = R.build_report(make_result(tr), manifest(), twin=copy_traces(tr), checks=checks)
    assert proven["bit_exact"] is True and proven["headline"].startswith("BIT-EXACT: yes — bundle sha256:abab")
    failed = R.build_report(make_result(tr), manifest(), twin=copy_traces(tr),
                            checks={**checks, "reference": {**checks["reference"], "ok": False, "first_mismatch": {
                                "layer": "lif", "step": 1, "sample": 0, "index": [2], "sim": 1, "reference": 0}}})
    assert failed["bit_exact"] is False and "differs from the reference outputs recorded at export: layer lif" in failed["headline"]
    tw = rep["twin"]
    assert tw["compared"] == 4 and tw["first_mismatch"] is None and tw["mismatch_steps"] == []
    assert all(e["bit_exact"] and e["mismatches"] == 0 for d in tw["layers"].values() for e in d.values())
    assert rep["saturations"] == {"lif": {"v": 3, "i": 0}} and rep["saturations_total"] == 3
    assert rep["fit"]["fits"] is True and rep["costs"]["cycles_per_step_mean"] == 12.5
    assert (rep["target"], rep["steps"], rep["batch"]) == ("generic_int8", T, N)
    json.dumps(rep, allow_nan=False)  # plain data


def test_without_twin_bit_exactness_is_not_checked():
    rep = R.build_report(make_result(traces()), manifest())
    assert rep["bit_exact"] is None and rep["headline"].startswith("BIT-EXACT: not checked")


def test_first_mismatch_is_ordered_by_step_then_layer():
    tr = traces()
    tw = copy_traces(tr)
    tw["lif"]["v"][3, 1, 2] += 1          # later step, earlier layer
    tw["vote"]["output"][2, 0, 1] += 5    # earliest step so far
    rep = R.build_report(make_result(tr), manifest(), twin=tw)
    f = rep["twin"]["first_mismatch"]
    assert rep["bit_exact"] is False
    assert (f["layer"], f["name"], f["step"], f["sample"], f["index"]) == ("vote", "output", 2, 0, [1])
    assert (f["sim"], f["twin"]) == (int(tr["vote"]["output"][2, 0, 1]), int(tr["vote"]["output"][2, 0, 1]) + 5)
    assert rep["headline"] == (f"BIT-EXACT: NO — first mismatch at layer vote (output), step 2, sample 0, index (1,): "
                               f"sim {f['sim']} vs twin {f['twin']}")
    assert rep["twin"]["mismatch_steps"] == [[2, 1], [3, 1]] and rep["twin"]["mismatches"] == 2
    lv = rep["twin"]["layers"]["lif"]["v"]
    assert (lv["bit_exact"], lv["mismatches"], lv["mismatch_steps"]) == (False, 1, [[3, 1]])
    assert rep["twin"]["layers"]["lif"]["output"]["bit_exact"] is True

    # same step, an earlier layer wins; within it the first sample, then C order
    tw["fc"]["output"][2, 2, 0] -= 1
    tw["fc"]["output"][2, 1, 3] -= 1
    f = R.build_report(make_result(tr), manifest(), twin=tw)["twin"]["first_mismatch"]
    assert (f["layer"], f["step"], f["sample"], f["index"]) == ("fc", 2, 1, [3])
    assert f["sim"] - f["twin"] == 1

    # within a layer and step, the state comes before the output
    tw = copy_traces(tr)
    tw["lif"]["output"][1, 0, 0] ^= 1
    tw["lif"]["v"][1, 2, 3] += 7
    f = R.build_report(make_result(tr), manifest(), twin=tw)["twin"]["first_mismatch"]
    assert (f["layer"], f["name"], f["step"], f["sample"], f["index"]) == ("lif", "v", 1, 2, [3])


def test_shape_mismatch_is_a_mismatch_with_a_message():
    tr = traces()
    tw = copy_traces(tr)
    tw["fc"]["output"] = tw["fc"]["output"][:, :, :3]
    rep = R.build_report(make_result(tr), manifest(), twin=tw)
    assert rep["bit_exact"] is False
    e = rep["twin"]["layers"]["fc"]["output"]
    assert e["shape_mismatch"] and e["shape_sim"] == [T, N, 4] and e["shape_twin"] == [T, N, 3]
    assert "shape mismatch: sim [6, 3, 4] vs twin [6, 3, 3]" in e["message"]
    assert rep["headline"].startswith("BIT-EXACT: NO — shape mismatch at layer fc (output)")
    # a value mismatch elsewhere is still the first mismatch; the shape problem stays listed
    tw["lif"]["v"][4, 0, 0] += 1
    rep = R.build_report(make_result(tr), manifest(), twin=tw)
    assert rep["twin"]["first_mismatch"]["layer"] == "lif" and len(rep["twin"]["shape_mismatches"]) == 1


def test_arrays_recorded_by_one_side_only_are_listed_not_failed():
    tr = traces()
    tw = copy_traces(tr)
    tw["lif"]["i"] = np.zeros((T, N, 4), np.int64)
    del tw["fc"]
    tw["ghost"] = {"output": np.zeros((T, N, 1))}
    rep = R.build_report(make_result(tr), manifest(), twin=tw)
    assert rep["twin"]["bit_exact"] is True
    nc = {(x["layer"], x["name"]) for x in rep["twin"]["not_compared"]}
    assert nc == {("fc", "output"), ("lif", "i"), ("ghost", "*")}


# -- sim vs float, accuracy -------------------------------------------------------------------------
def test_float_comparison_matches_a_hand_computation():
    tr = {
        "fc": {"output": np.array([[[4, -2]], [[0, 8]]])},                # exponent -2
        "lif": {"output": np.array([[[1, 0]], [[1, 1]]], np.int8)},
        "vote": {"output": np.array([[[3]], [[1]]])},                    # sum kept: / 2 at input exponent 0
    }
    fl = {
        "fc": {"output": np.array([[[1.1, -0.5]], [[0.2, 1.5]]])},
        "lif": {"output": np.array([[[1.0, 0.0]], [[0.0, 1.0]]])},
        "vote": {"output": np.array([[[1.5]], [[1.0]]])},
    }
    rep = R.build_report(make_result(tr), manifest(), float_=fl)
    fc, lif, vote = (rep["float"]["layers"][k] for k in ("fc", "lif", "vote"))
    # fc: errors -0.1, 0, -0.2, 0.5
    assert math.isclose(fc["rmse"], math.sqrt((0.01 + 0.04 + 0.25) / 4))
    assert math.isclose(fc["max_abs"], 0.5) and math.isclose(fc["mean_abs"], 0.2) and fc["spike_agreement"] is None
    # lif: 3 of 4 equal; rates sim [1, .5], float [.5, .5] -> mean |diff| 0.25
    assert lif["spike_agreement"] == 0.75 and lif["rate_error"] == 0.25 and lif["rmse"] == 0.5
    # vote: 3/2 and 1/2 against 1.5 and 1.0
    assert vote["scale"] == 0.5 and math.isclose(vote["rmse"], math.sqrt(0.25 / 2)) and "sum kept" in vote["note"]


def test_float_comparison_skips_what_it_cannot_compare():
    tr = traces()
    fl = {"fc": {"output": np.zeros((T, N, 5))}, "nope": {"output": np.zeros((T, N, 1))}}
    rep = R.build_report(make_result(tr), manifest(), float_=fl)
    assert rep["float"]["layers"] == {}
    reasons = {x["layer"]: x["reason"] for x in rep["float"]["skipped"]}
    assert "shape mismatch" in reasons["fc"] and "no layer" in reasons["nope"]
    # an exponent given by the caller replaces the manifest's
    fl = {"fc": {"output": tr["fc"]["output"] * 2.0**-3}}
    rep = R.build_report(make_result(tr), manifest(), float_=fl, float_exponents={"fc": -3})
    assert rep["float"]["layers"]["fc"]["rmse"] == 0.0


def test_accuracy_of_sim_twin_and_float():
    tr = traces()
    out = np.zeros((T, N, 2), np.int64)
    out[:, 0, 1] = 1      # sample 0 -> class 1
    out[:, 1, 0] = 1      # sample 1 -> class 0
    # sample 2: a tie -> class 0 (lowest index)
    tr["vote"]["output"] = out
    tw = copy_traces(tr)
    tw["vote"]["output"][:, 2, 1] = 1  # the twin says class 1 for sample 2
    fl = {"vote": {"output": np.zeros((T, N, 2))}}
    fl["vote"]["output"][:, :, 1] = 1.0   # float: class 1 everywhere
    labels = np.array([1, 0, 1])
    acc = R.build_report(make_result(tr), manifest(), twin=tw, float_=fl, labels=labels)["accuracy"]
    assert acc["sim"] == pytest.approx(2 / 3) and acc["twin"] == 1.0 and acc["float"] == pytest.approx(2 / 3)
    assert acc["agreement_sim_twin"] == pytest.approx(2 / 3) and acc["agreement_sim_float"] == pytest.approx(1 / 3)
    assert acc["samples"] == 3
    # no labels: no accuracy section
    assert R.build_report(make_result(tr), manifest())["accuracy"] is None


# -- files ------------------------------------------------------------------------------------------
def test_files_are_written(tmp_path):
    tr = traces()
    tw = copy_traces(tr)
    tw["lif"]["v"][3, 1, 2] += 1
    fl = {"lif": {"output": tr["lif"]["output"].astype(float)}}
    rep = R.build_report(make_result(tr), manifest(), twin=tw, float_=fl, labels=np.zeros(N, int))
    paths = R.write_report(rep, tmp_path / "rep", plots=False)
    data = json.loads(paths["json"].read_text())
    assert data["bit_exact"] is False and data["twin"]["first_mismatch"]["step"] == 3
    assert paths["json"].read_text() == json.dumps(data, sort_keys=True, indent=2) + "\n"
    md = paths["md"].read_text()
    assert md.splitlines()[0] == f"# BIT-EXACT: NO — first mismatch at layer lif (v), step 3, sample 1, index (2,): sim {tr['lif']['v'][3, 1, 2]} vs twin {tr['lif']['v'][3, 1, 2] + 1}"
    assert "| lif | v |" in md and "## Simulator vs float model" in md and "## Accuracy" in md and "plots not requested" in md
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html and "<td>lif</td>" in html and "BIT-EXACT: NO" in html
    assert not (tmp_path / "rep" / "plots").exists()
    assert not [p for p in (tmp_path / "rep").iterdir() if p.name.startswith(".")]  # no temporaries left
    # rewriting replaces the files
    R.write_report(R.build_report(make_result(tr), manifest(), twin=copy_traces(tr)), tmp_path / "rep", plots=False)
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# BIT-EXACT: not proven")


def test_without_matplotlib_there_are_no_plots_and_the_report_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    tr = traces()
    rep = R.build_report(make_result(tr), manifest(), twin=copy_traces(tr), float_={"lif": {"output": tr["lif"]["output"] * 1.0}})
    paths = R.write_report(rep, tmp_path, plots=True, result=make_result(tr), float_={"lif": {"output": tr["lif"]["output"] * 1.0}})
    assert set(paths) == {"json", "md", "html"} and not (tmp_path / "plots").exists()
    assert "matplotlib is not installed" in paths["md"].read_text()
    assert "matplotlib is not installed" in paths["html"].read_text()
    assert json.loads(paths["json"].read_text())["plots"]["files"] == []


def test_plots_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    tr = traces()
    fl = {"lif": {"output": tr["lif"]["output"] * 1.0}, "fc": {"output": tr["fc"]["output"] * 0.25 + 0.1}}
    rep = R.build_report(make_result(tr), manifest(), twin=copy_traces(tr), float_=fl)
    paths = R.write_report(rep, tmp_path, result=make_result(tr), float_=fl, twin=copy_traces(tr))
    assert paths["raster_lif"] == tmp_path / "plots" / "raster_lif.png" and paths["quant_error"].is_file()
    assert {"saturations", "traces_lif"} <= set(paths)
    assert paths["raster_lif"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "data:image/png;base64," in paths["html"].read_text()
    assert "plots/raster_lif.png" in paths["md"].read_text()


def test_sim_report_never_imports_torch():
    code = "import sys, sim.report; assert 'torch' not in sys.modules and 'hwsnn' not in sys.modules and 'quant' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


# -- end to end: a twin network, its export, the simulator -----------------------------------------


def _net_and_twin(target: str = "generic_int8"):
    from tests.test_fixed_network import convert, float_net

    net = float_net(0)
    return net, convert(net, target, 0)


def test_make_report_end_to_end_is_bit_exact(tmp_path):
    import quant
    from quant.report import make_report, record_twin
    from tests.test_fixed_network import spikes

    net, twin = _net_and_twin()
    x = spikes(0, T=24, batch=4)
    twin(x)  # a twin that has run before export: the report replays the exported dropout mask
    draws = twin[3].draws
    path = quant.export(twin, tmp_path / "export")
    labels = torch.tensor([0, 1, 2, 3])
    rep = make_report(twin, path, x, float_model=net, labels=labels, out_dir=tmp_path / "rep", chunk=7)
    assert rep["bit_exact"] is True, rep["headline"]
    assert rep["headline"].startswith("BIT-EXACT: yes — bundle sha256:")
    assert twin[3].draws == draws and all(m.step_mode == "m" for m in twin)  # the user's twin is untouched
    compared = {(k, n) for k, d in rep["twin"]["layers"].items() for n in d}
    assert {("lif1", "v"), ("syn", "out_i"), ("lif2", "v"), ("vote", "output"), ("fc1", "output")} <= compared
    assert set(rep["float"]["layers"]) == {"fc1", "lif1", "syn", "drop", "fc2", "lif2", "vote"}
    assert rep["float"]["layers"]["lif1"]["spike_agreement"] >= 0.9   # the float model with the twin's dropout mask
    assert set(rep["accuracy"]) >= {"sim", "twin", "float"} and rep["accuracy"]["sim"] == rep["accuracy"]["twin"]
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# BIT-EXACT: yes")
    # record_twin alone: [T, N, ...] arrays per layer, the twin's per-event-free outputs
    rec = record_twin(twin, x)
    assert rec["lif1"]["v"].shape == (24, 4, 32) and rec["fc2"]["output"].shape == (24, 4, 20)


def _tamper_weight(export: Path, table: str, index: tuple, new_value: int) -> None:
    """Change one weight and sign the bundle again, so that the export still loads."""
    from tests.bundle_tools import resign

    def edit(tables):
        tables[table] = tables[table].copy()
        tables[table][index] = new_value

    resign(export, edit_tables=edit)


def test_make_report_finds_a_mutated_weight(tmp_path):
    import quant
    from quant.report import make_report, record_twin
    from tests.test_fixed_network import spikes

    _, twin = _net_and_twin()
    x = spikes(1, T=20, batch=3)
    path = quant.export(twin, tmp_path / "export")
    drop_out = record_twin(twin, x)["drop"]["output"]          # fc2's input
    o, j = 5, int(np.argmax((drop_out != 0).any(axis=(0, 1))))   # a synapse whose source is active
    t_first = int(np.flatnonzero((drop_out[:, :, j] != 0).any(axis=1))[0])
    n_first = int(np.flatnonzero(drop_out[t_first, :, j] != 0)[0])
    w = int(twin[4].weight[o, j])
    _tamper_weight(path, "fc2.weight", (o, j), w + 37 if w + 37 <= 127 else w - 37)
    import sim

    sim.load_export(path)  # the checksums were fixed: it loads
    rep = make_report(twin, path, x, out_dir=tmp_path / "rep", plots=False)
    assert rep["bit_exact"] is False
    f = rep["twin"]["first_mismatch"]
    assert (f["layer"], f["name"], f["step"], f["sample"], f["index"]) == ("fc2", "output", t_first, n_first, [o])
    assert f["sim"] != f["twin"]
    assert rep["twin"]["layers"]["fc1"]["output"]["bit_exact"] and rep["twin"]["layers"]["lif1"]["v"]["bit_exact"]
    assert rep["twin"]["layers"]["fc2"]["output"]["mismatch_steps"][0][0] == t_first
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.startswith(f"# BIT-EXACT: NO — first mismatch at layer fc2 (output), step {t_first}, sample {n_first}, index ({o},)")


def test_make_report_on_a_per_event_xylo_network(tmp_path):
    """Per-event dense layers output SynapticEvents in the twin: their counts are compared."""
    import hwsnn.layer as L
    import hwsnn.neuron as Nn
    import quant
    from quant.report import make_report

    torch.manual_seed(5)
    net = torch.nn.Sequential(L.Linear(16, 24, bias=False), Nn.CubaLIFNode(tau_syn=4.0, tau_mem=8.0, v_reset=None),
                              L.Linear(24, 8, bias=False), Nn.CubaLIFNode(tau_syn=4.0, tau_mem=8.0, v_reset=None))
    lif1 = net[1].to_fixed("xylo", name="hidden")
    lif2 = net[3].to_fixed("xylo", name="readout", readout=True)
    fc1 = net[0].to_fixed("xylo", output_exponent=lif1.input_exponent, first_layer=True, name="w_in")
    fc2 = net[2].to_fixed("xylo", input_exponent=0, output_exponent=lif2.input_exponent, name="w_out")
    twin = torch.nn.Sequential(fc1, lif1, fc2, lif2)
    x = torch.randint(0, 4, (20, 2, 16), generator=torch.Generator().manual_seed(5))
    path = quant.export(twin, tmp_path / "export", input_kind="counts")
    rep = make_report(twin, path, x, float_model=net)
    assert rep["bit_exact"] is True, rep["headline"]
    assert rep["twin"]["layers"]["w_in"]["output"]["shape_sim"] == [20, 2, 16]   # event counts per source
    assert set(rep["twin"]["layers"]["hidden"]) == {"i", "v", "output"}
    assert set(rep["float"]["layers"]) == {"hidden", "readout"}
    assert any("per-event" in s["reason"] for s in rep["float"]["skipped"])
