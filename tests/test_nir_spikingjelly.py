"""SpikingJelly <-> NIR <-> hwsnn, and a SpikingJelly model through the whole integer chain.

Needs nir, nirtorch and SpikingJelly 2.0 (installed with ``--no-deps``); skipped without them.
"""

from __future__ import annotations

import json
import re

import pytest
import torch

pytest.importorskip("nir")
pytest.importorskip("nirtorch")
sj_neuron = pytest.importorskip("spikingjelly.activation_based.neuron")

from spikingjelly.activation_based import functional as sj_functional  # noqa: E402
from spikingjelly.activation_based import layer as sj_layer  # noqa: E402
from spikingjelly.activation_based.nir_exchange import export_to_nir as sj_export  # noqa: E402
from spikingjelly.activation_based.nir_exchange import import_from_nir as sj_import  # noqa: E402

import hwsnn.nir as hn  # noqa: E402
from hwsnn import cli, functional, layer, neuron  # noqa: E402

T, N = 60, 6


def _peer_run(gm, x: torch.Tensor) -> torch.Tensor:
    state, out = None, []
    with torch.no_grad():
        for t in range(x.shape[0]):
            y, state = gm(x[t], state)
            out.append(y)
    return torch.stack(out)


def _scaled(net: torch.nn.Module, gain: float) -> torch.nn.Module:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(gain)
    return net


def _dense_net() -> torch.nn.Sequential:
    torch.manual_seed(7)
    net = torch.nn.Sequential(
        layer.Linear(10, 16), neuron.LIFNode(tau=4.0, decay_input=False, v_reset=0.0, v_threshold=0.8),
        layer.Linear(16, 16, bias=False), layer.RecurrentContainer(neuron.LIFNode(tau=2.0, v_reset=0.0), 16),
        layer.Linear(16, 12), neuron.IFNode(v_reset=0.0, v_threshold=1.5),
        layer.Linear(12, 6), neuron.CubaLIFNode(tau_syn=2.0, tau_mem=8.0, v_reset=0.0, v_threshold=0.5))
    functional.set_step_mode(net, "m")
    return _scaled(net, 3.0)


def _conv_net() -> torch.nn.Sequential:
    torch.manual_seed(8)
    net = torch.nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1), neuron.LIFNode(tau=2.0, v_reset=0.0, v_threshold=0.5),
        layer.AvgPool2d(2), layer.Flatten(), layer.Linear(4 * 4 * 4, 6),
        neuron.LIFNode(tau=4.0, decay_input=False, v_reset=0.0))
    functional.set_step_mode(net, "m")
    return _scaled(net, 3.0)


@pytest.mark.parametrize("make,shape", [(_dense_net, (10,)), (_conv_net, (2, 8, 8))])
def test_hwsnn_to_spikingjelly_same_spikes(make, shape):
    net = make()
    x = (torch.rand(T, N, *shape, generator=torch.Generator().manual_seed(3)) < 0.3).float()
    ref = net(x)
    graph = hn.export_to_nir(net, dt=1e-4, input_shape=shape)
    got = _peer_run(sj_import(graph, dt=1e-4), x)
    assert ref.sum() > 20 and (ref == 0).sum() > 20
    assert torch.equal(got, ref)


def _sj_net() -> torch.nn.Sequential:
    torch.manual_seed(9)
    net = torch.nn.Sequential(
        sj_layer.Linear(10, 16), sj_neuron.LIFNode(tau=2.0, v_reset=0.0),
        sj_layer.Linear(16, 12, bias=False), sj_neuron.IFNode(v_threshold=1.2, v_reset=0.0),
        sj_layer.Linear(12, 6), sj_neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75, v_threshold=0.5, v_reset=0.0),
        sj_layer.Linear(6, 6), sj_neuron.LIFNode(tau=4.0, decay_input=False, v_reset=0.0))
    return _scaled(net, 3.0)


def _sj_layers(net: torch.nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    sj_functional.set_step_mode(net, "m")
    sj_functional.reset_net(net)
    outs, h = [], x
    with torch.no_grad():
        for m in net:
            h = m(h)
            outs.append(h)
    return outs


def test_spikingjelly_graph_gives_spikingjelly_spikes(tmp_path):
    net = _sj_net()
    path = tmp_path / "sj.nir"
    sj_export(net, torch.zeros(1, 10), save_path=path, dt=1e-4)
    x = (torch.rand(T, N, 10, generator=torch.Generator().manual_seed(4)) < 0.3).float()
    ref = _sj_layers(net, x)
    hw = hn.import_from_nir(path, source="spikingjelly")
    assert [type(m).__name__ for m in hw][1::2] == ["LIFNode", "IFNode", "CubaLIFNode", "LIFNode"]
    assert hw[1].decay_input is True and hw[7].decay_input is False  # r = 1 and r = tau/dt
    outs, h = [], x
    with torch.no_grad():
        for m in hw:
            h = m(h)
            outs.append(h)
    for i in (1, 3, 5, 7):
        assert ref[i].sum() > 10, i
        assert torch.equal(outs[i], ref[i]), f"layer {i}: {(outs[i] != ref[i]).sum()} spikes differ"


def _summary(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        m = re.match(r"  (\S.*?)\s{2,}(\S.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


@pytest.mark.parametrize("target", ["generic_int8", "xylo"])
def test_spikingjelly_model_runs_the_integer_chain(tmp_path, capsys, target):
    """SpikingJelly -> export_to_nir -> `hwsnn run --model`: calibration, QAT on the run file's data,
    conversion, export, simulation and a bit-exact report; on Xylo (only the subtractive reset: --reset
    subtract says so) its LIF neurons are refused before training, naming the layer."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(sj_layer.Linear(16, 24, bias=False), sj_neuron.LIFNode(tau=4.0, decay_input=False, v_reset=0.0),
                              sj_layer.Linear(24, 10, bias=False), sj_neuron.LIFNode(tau=2.0, decay_input=False, v_reset=0.0))
    model = tmp_path / "sj.nir"
    sj_export(_scaled(net, 2.0), torch.zeros(1, 16), save_path=model, dt=1e-4)
    out_dir = tmp_path / "out"
    extra = ["--reset", "subtract"] if target == "xylo" else []
    status = cli.main(["run", "--model", str(model), "--dt", "1e-4", *extra, "--target", target, "--qat-epochs", "1",
                       "--train-samples", "64", "--test-samples", "24", "--no-progress", "--no-plots",
                       "--out", str(out_dir)])
    out, err = capsys.readouterr()
    if target == "xylo":  # LIF neurons do not exist on Xylo: refused before any training, naming the layer
        assert status == cli.EXIT_BAD_INPUT, out
        assert "cannot run on one Xylo core" in err and "lif neurons do not exist on Xylo" in err
        assert "use CubaLIFNode" in err and "QAT" not in out and not out_dir.exists()
        return
    assert status == cli.EXIT_OK, out
    assert "float training: skipped" in out and "conventions of 'nir'" in out
    rows = _summary(out)
    assert rows["bit-exact (digest, twin, reference)"] == "yes", out
    report = json.loads((out_dir / "report" / "report.json").read_text())
    assert report["bit_exact"] is True
    manifest = json.loads((out_dir / "export" / "manifest.json").read_text())
    assert [e["op"] for e in manifest["layers"]] == ["dense", "lif", "dense", "lif"]
    assert {e["params"]["reset"] for e in manifest["layers"] if e["op"] == "lif"} == {
        "subtract" if target == "xylo" else "zero"}
    assert manifest["dt"] == pytest.approx(1e-4)


def test_the_chip_reset_is_asked_for(tmp_path, capsys):
    net = torch.nn.Sequential(sj_layer.Linear(16, 10, bias=False), sj_neuron.LIFNode(tau=2.0, decay_input=False, v_reset=0.0))
    model = tmp_path / "sj.nir"
    sj_export(net, torch.zeros(1, 16), save_path=model, dt=1e-4)
    status = cli.main(["run", "--model", str(model), "--dt", "1e-4", "--target", "xylo", "--no-progress",
                       "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == cli.EXIT_BAD_INPUT
    assert re.search(r"node '\S+' resets to v_reset .* target 'xylo' .*--reset subtract", err), err
