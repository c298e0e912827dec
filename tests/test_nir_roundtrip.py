"""hwsnn -> NIR -> hwsnn is the identity (parameters and spikes), for float and twin networks, and
the ``nir`` view of a bundle (needs nir; skipped without it)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

import hwsnn.nir as hn  # noqa: E402
import quant  # noqa: E402
from hwsnn import functional, layer, neuron  # noqa: E402
from hwsnn.nir import DelayedResetCuba, DelayedResetLIF  # noqa: E402
from quant import views  # noqa: E402
from targets.bundle import BundleError, load_bundle  # noqa: E402

T, N = 40, 4


def _float_net() -> torch.nn.Sequential:
    torch.manual_seed(11)
    per = torch.tensor([2.0, 2.5, 4.0, 7.3] * 4)
    net = torch.nn.Sequential(
        layer.Linear(12, 16), neuron.LIFNode(tau=per, decay_input=False, v_reset=None, v_threshold=torch.linspace(0.5, 1.5, 16)),
        layer.Dropout(0.3), layer.Linear(16, 16, bias=False),
        layer.RecurrentContainer(neuron.CubaLIFNode(tau_syn=3.0, tau_mem=torch.linspace(1.5, 9.0, 16), v_reset=0.25), 16,
                                 bias=True),
        layer.Delay(2), hn.Scale(torch.linspace(0.5, 2.0, 16)), neuron.IFNode(v_reset=None, v_threshold=0.7),
        layer.Linear(16, 16), neuron.LIFNode(tau=3.5, decay_input=True, v_reset=-0.1, v_threshold=0.3),
        layer.Linear(16, 12), DelayedResetLIF(torch.linspace(0.6, 0.95, 12), 0.8, reset="zero", wipe_input=True),
        layer.Linear(12, 8), DelayedResetCuba(0.5, torch.linspace(0.7, 0.9, 8), 0.6, reset="subtract"),
        layer.Linear(8, 8), hn.Threshold(0.2), layer.VotingLayer(2), layer.Linear(4, 4),
        hn.CubaLeakyIntegrator(2.0, 6.0, v_leak=0.1), hn.LeakyIntegrator(torch.tensor([2.0, 3.0, 5.0, 9.0])))
    net.eval()
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(3.0)
    return net


def _conv_net() -> torch.nn.Sequential:
    torch.manual_seed(12)
    net = torch.nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1, bias=False), neuron.LIFNode(tau=2.0, decay_input=False, v_reset=None),
        layer.AvgPool2d(2, divisor_override=1), layer.Conv2d(4, 4, 3, stride=2, padding="valid"),
        neuron.CubaLIFNode(tau_syn=2.0, tau_mem=4.0, v_reset=None), layer.AvgPool2d(1), layer.Flatten(),
        layer.Linear(4, 5), neuron.LIFNode(tau=4.0, v_reset=None))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(3.0)
    return net


def _attrs(m: torch.nn.Module) -> dict:
    out = {}
    for k in ("tau", "tau_syn", "tau_mem", "v_threshold", "v_reset", "decay_input", "delay_steps", "voting_size",
              "reset_kind", "wipe_input", "kernel_size", "stride", "padding", "divisor_override", "start_dim",
              "end_dim", "groups", "dilation"):
        if hasattr(m, k):
            v = getattr(m, k)
            if isinstance(m, torch.nn.AvgPool2d) and k in ("kernel_size", "stride", "padding") and isinstance(v, int):
                v = (v, v)  # AvgPool2d(2) and AvgPool2d((2, 2)) are the same layer
            out[k] = v.tolist() if isinstance(v, torch.Tensor) else v
    return out


def _same_network(a: torch.nn.Sequential, b: torch.nn.Sequential) -> None:
    la = [m for m in a if not isinstance(m, layer.Dropout)]
    assert [type(m) for m in la] == [type(m) for m in b]
    for ma, mb in zip(la, b):
        assert _attrs(ma) == _attrs(mb), type(ma).__name__
        sa, sb = ma.state_dict(), mb.state_dict()
        assert sa.keys() == sb.keys(), type(ma).__name__
        for k in sa:
            assert torch.equal(sa[k].to(torch.float64), sb[k].to(torch.float64)), (type(ma).__name__, k)
        if isinstance(ma, layer.RecurrentContainer):
            assert _attrs(ma.sub_module) == _attrs(mb.sub_module)


@pytest.mark.parametrize("make,shape", [(_float_net, (12,)), (_conv_net, (2, 8, 8))])
def test_float_network_round_trip_is_the_identity(make, shape, tmp_path):
    net = make()
    path = tmp_path / "net.nir"
    graph = hn.export_to_nir(net, dt=1e-3, input_shape=shape, path=path)
    assert path.is_file()
    back = hn.import_from_nir(path)
    assert back.nir_import.dt == 1e-3 and back.nir_import.source == "hwsnn"
    _same_network(net, back)
    x = (torch.rand(T, N, *shape, generator=torch.Generator().manual_seed(5)) < 0.4).float()
    functional.reset_net(net)
    with torch.no_grad():
        ref, got = net(x), back(x)
    assert torch.equal(ref, got)
    assert ref.abs().sum() > 0
    meta = json.loads(graph.metadata["hwsnn"])
    assert meta["kind"] == "float" and meta["dt"] == 1e-3


def test_dropout_in_training_mode_is_refused():
    net = torch.nn.Sequential(layer.Linear(4, 4), layer.Dropout(0.5))
    with pytest.raises(hn.NIRError, match=r"layer '1' \(Dropout\).*eval mode"):
        hn.export_to_nir(net)


@pytest.mark.parametrize("bad,msg", [
    (layer.SynapseFilter(tau=2.0), r"layer '1' \(SynapseFilter\) has no NIR node"),
    (layer.MaxPool2d(2), r"layer '1' \(MaxPool2d\) has no NIR node"),
    (layer.AvgPool2d(2, ceil_mode=True), r"layer '1' \(AvgPool2d\): ceil_mode"),
])
def test_layers_without_a_node_are_named(bad, msg):
    first = layer.Conv2d(1, 1, 1) if isinstance(bad, (layer.MaxPool2d, layer.AvgPool2d)) else layer.Linear(4, 4)
    with pytest.raises(hn.NIRError, match=msg):
        hn.export_to_nir(torch.nn.Sequential(first, bad), input_shape=(1, 4, 4) if first.__class__ is layer.Conv2d else None)


def _twin_net(target: str) -> torch.nn.Sequential:
    torch.manual_seed(13)
    reset = 0.0 if target == "loihi" else None
    net = torch.nn.Sequential(
        layer.Linear(16, 24, bias=False), neuron.LIFNode(tau=4.0, decay_input=False, v_reset=reset),
        layer.Linear(24, 24, bias=False),
        layer.RecurrentContainer(neuron.CubaLIFNode(tau_syn=2.0, tau_mem=4.0, v_reset=reset), 24),
        layer.Linear(24, 8, bias=False), neuron.LIFNode(tau=2.0, decay_input=False, v_reset=reset), layer.VotingLayer(2))
    functional.set_step_mode(net, "m")
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(4.0)
    return net


@pytest.mark.parametrize("target", ["generic_int8", "xylo", "loihi"])
def test_twin_round_trip_is_the_identity(target, tmp_path):
    twin = quant.convert(_twin_net(target).eval(), target)
    path = tmp_path / "twin.nir"
    hn.export_to_nir(twin, dt=1e-3, path=path)
    back = hn.twin_from_nir(path)
    specs = quant.network_spec(twin, input_shape=(16,))
    specs_back = quant.network_spec(back, input_shape=(16,))
    assert [op.to_dict() for op in specs.ops] == [op.to_dict() for op in specs_back.ops]
    for a, b in zip(specs.ops, specs_back.ops):
        assert a == b  # every field and table
    x = (torch.rand(T, N, 16, generator=torch.Generator().manual_seed(6)) < 0.3).to(torch.int8)
    functional.reset_net(twin)
    ref, got = twin(x), back(x)
    assert ref.sum() > 0 and torch.equal(ref, got)


def test_twin_float_view_holds_the_dequantized_integers(tmp_path):
    twin = quant.convert(_twin_net("xylo").eval(), "xylo")
    graph = hn.export_to_nir(twin, dt=1e-3)
    spec = quant.network_spec(twin, input_shape=(16,))
    dense, lif = spec.ops[0], spec.ops[1]
    w = graph.nodes[dense.name].weight
    assert np.array_equal(w, dense.weight * 2.0 ** dense.weight_exponent)
    node = graph.nodes[lif.name]
    assert np.all(node.v_threshold == lif.threshold_int * 2.0 ** lif.state_exponent)
    assert np.allclose(node.tau, 2.0 ** lif.decay_mem * 1e-3)
    cuba = graph.nodes[spec.ops[3].name]  # Xylo's current takes its input before it decays: w_in = tau (1 - 2^-k)
    k = spec.ops[3].neuron.decay_syn
    assert np.allclose(cuba.w_in, 2.0 ** k * (1 - 2.0 ** -k))
    meta = json.loads(graph.metadata["hwsnn"])
    assert meta["kind"] == "twin" and meta["target_name"] == "xylo" and meta["compare"] == ">="
    assert json.loads(node.metadata["hwsnn"])["max_spikes"] == 31
    fl = hn.import_from_nir(graph)  # a downstream tool's view: hwsnn float layers with those values
    assert torch.equal(fl[0].weight.to(torch.float64), torch.from_numpy(w))


def test_an_edited_twin_graph_is_refused(tmp_path):
    twin = quant.convert(_twin_net("generic_int8").eval(), "generic_int8")
    graph = hn.export_to_nir(twin, dt=1e-3)
    name = next(k for k, v in graph.nodes.items() if type(v).__name__ == "Linear")
    graph.nodes[name].weight = graph.nodes[name].weight * 1.5
    with pytest.raises(hn.NIRError, match=rf"node '{name}' \(Linear\): weight differs from the dequantized integers"):
        hn.twin_from_nir(graph)
    with pytest.raises(hn.NIRError, match="not written from an hwsnn twin network"):
        hn.twin_from_nir(hn.export_to_nir(_twin_net("generic_int8")))


def test_an_edited_float_graph_is_refused():
    net = torch.nn.Sequential(layer.Linear(4, 4), neuron.LIFNode(tau=2.5, decay_input=False))
    graph = hn.export_to_nir(net, dt=1e-3)
    graph.nodes["1"].tau = graph.nodes["1"].tau * 2
    with pytest.raises(hn.NIRError, match=r"node '1' \(LIF\): tau = .* does not match .* edited after export"):
        hn.import_from_nir(graph)


def test_the_nir_view_is_written_into_the_bundle(tmp_path):
    twin = quant.convert(_twin_net("xylo").eval(), "xylo")
    path = quant.export(twin, tmp_path / "b", dt=1e-3)
    assert "nir" in views.available_views()
    bundle = views.add_view(path, "nir")
    assert bundle.manifest["views"]["nir"] == {"format": "nir", "files": ["model.nir"]}
    again = views.available_views()["nir"].make(load_bundle(path))["model.nir"]
    assert again == (path / "model.nir").read_bytes()  # deterministic bytes
    back = hn.twin_from_nir(path / "model.nir")
    x = (torch.rand(T, N, 16, generator=torch.Generator().manual_seed(7)) < 0.3).to(torch.int8)
    ref = quant.load_twin(path)(x)
    assert ref.sum() > 0 and torch.equal(back(x), ref)
    copy = tmp_path / "c"
    shutil.copytree(path, copy)
    data = bytearray((copy / "model.nir").read_bytes())
    data[-100] ^= 1
    (copy / "model.nir").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="model.nir"):
        load_bundle(copy)
