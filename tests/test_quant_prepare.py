"""quant.prepare / quant.calibrate: the QAT forward equals the exported integer network bit for bit."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hwsnn.layer as L
import hwsnn.neuron as N
import quant
import sim
from hwsnn.fixed import FixedLinear
from hwsnn.functional import reset_net, set_step_mode
from quant.convert import dequantize_output, format_conversion_table, quantized_weight
from quant.prepare import QuantLinear
from targets import load as load_target

TARGETS = ["generic_int8", "ideal", "loihi", "xylo"]
KINDS = ["lif", "if", "cuba", "filter_delay", "dropout", "conv", "voting3", "bias"]


def _reset(target: str):
    """The reset kind each target allows (Loihi: hard, Xylo: soft)."""
    return None if "subtract" in load_target(target).neuron.reset else 0.0


def _lif(target: str, tau: float = 2.0) -> N.LIFNode:
    return N.LIFNode(tau=tau, decay_input=False, v_reset=_reset(target), detach_reset=True)


def make_net(kind: str, target: str, seed: int = 0) -> torch.nn.Sequential:
    """A small float network of ``kind`` that converts on ``target``; weights scaled up so that neurons fire."""
    torch.manual_seed(seed)
    bias = kind == "bias"
    if kind == "conv":
        layers = [L.Conv2d(2, 4, 3, padding=1, bias=False), _lif(target), L.Dropout2d(0.25), L.MaxPool2d(2),
                  L.AvgPool2d(2), L.Flatten(), L.Linear(16, 6, bias=False), _lif(target, 4.0), L.VotingLayer(2)]
    else:
        hidden = {"if": N.IFNode(v_reset=_reset(target)),
                  "cuba": N.CubaLIFNode(tau_syn=4.0, tau_mem=8.0, v_reset=_reset(target))}.get(kind, _lif(target))
        layers = [L.Linear(16, 24, bias=bias), hidden]
        if kind == "filter_delay":
            layers += [L.SynapseFilter(tau=4.0)]
            if load_target(target).synapse.max_delay >= 3:  # Xylo has no delay line
                layers += [L.Delay(3)]
        if kind == "dropout":
            layers += [L.Dropout(0.25)]
        out = 9 if kind == "voting3" else 8
        layers += [L.Linear(24, out, bias=bias), _lif(target, 4.0), L.VotingLayer(3 if kind == "voting3" else 2)]
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(3.0)
    set_step_mode(net, "m")
    return net


def make_input(kind: str, T: int = 16, n: int = 6, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    shape = (T, n, 2, 8, 8) if kind == "conv" else (T, n, 16)
    return (torch.rand(shape, generator=g) < 0.3).float()


def _skip_unsupported(kind: str, target: str) -> None:
    if kind == "if" and target == "xylo":
        pytest.skip("Xylo's membrane always leaks: IF has no twin there (refused by the converter)")
    if kind == "filter_delay" and target == "xylo":
        pytest.skip("Xylo has neither delay lines nor a filter for its multi-spike hidden outputs")
    if kind == "conv" and target == "xylo":
        pytest.skip("Xylo has no convolution (refused by the converter)")
    if kind == "bias" and target == "xylo":
        pytest.skip("Xylo has no dense bias (refused by the converter with a clear message)")


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", KINDS)
def test_prepared_forward_equals_the_converted_twin_bit_for_bit(kind, target):
    _skip_unsupported(kind, target)
    net = make_net(kind, target)
    x = make_input(kind)
    for mode in ("eval", "train"):
        getattr(net, mode)()
        qat = quant.prepare(net, target, seed=5)
        y = qat(x)
        y_int = qat.last_integer_output
        # a fresh conversion of the prepared model, independent of the QAT forward's cached twin
        twin = quant.convert(qat, target, seed=5, clip=True)
        if mode == "train":  # the QAT call drew masks with draw 0 after its reset; the fresh twin does too
            assert all(getattr(m, "draws", 1) == 1 for m in qat._twin if hasattr(m, "draws"))
        ref = twin(x.to(torch.int8))
        assert torch.equal(y_int, ref), f"{kind}/{target}/{mode}: integer outputs differ"
        value = dequantize_output(twin[-1], ref, twin.input_exponents[-1]).to(y.dtype)
        assert torch.equal(y.detach(), value), f"{kind}/{target}/{mode}: the QAT forward is not the twin's value"
        reset_net(twin)
    assert float(y_int.abs().sum()) > 0 or kind == "dropout", "the test network must produce output spikes"


@pytest.mark.parametrize("target", TARGETS)
def test_prepared_forward_equals_the_simulator_on_the_export(target, tmp_path):
    """The whole chain: QAT forward == NumPy simulator on the exported tables (eval mode)."""
    kind = "cuba" if target == "xylo" else "filter_delay"
    net = make_net(kind, target).eval()
    x = make_input(kind, T=20, n=5)
    qat = quant.prepare(net, target)
    y = qat(x)
    path = quant.export(qat.to_twin(), tmp_path / "exp")
    res = sim.run(path, x.to(torch.int8).numpy(), record="output")
    assert np.array_equal(res.output, qat.last_integer_output.numpy())
    assert y.abs().sum() > 0


def test_gradients_flow_to_weights_and_taus_stay_frozen():
    torch.manual_seed(0)
    net = torch.nn.Sequential(L.Linear(16, 24), N.CubaLIFNode(tau_syn=4.0, tau_mem=8.0), L.SynapseFilter(4.0, learnable=True),
                              L.Linear(24, 8), _lif("generic_int8"))
    with torch.no_grad():
        net[0].weight.mul_(3.0)
    set_step_mode(net, "m")
    qat = quant.prepare(net.train(), "generic_int8")
    y = qat(make_input("cuba"))
    (y.sum() + qat[2].out_i.sum()).backward()
    grads = {n: p.grad for n, p in qat.named_parameters() if p.requires_grad}
    assert set(grads) == {"0.weight", "0.bias", "3.weight", "3.bias"}
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads.values())
    assert net[2].w.requires_grad and not qat[2].w.requires_grad


def test_float_state_dict_loads_into_the_prepared_model():
    net = make_net("bias", "generic_int8")
    qat = quant.prepare(net, "generic_int8")
    assert set(qat.state_dict()) == set(net.state_dict())
    other = make_net("bias", "generic_int8", seed=9)
    qat.load_state_dict(other.state_dict(), strict=True)
    assert torch.equal(qat[0].weight, other[0].weight)
    assert isinstance(qat[0], QuantLinear)
    assert qat[0].quant_weight().bit_width == 8


def test_loihi_even_weight_grid_and_brevitas_exponents():
    net = make_net("lif", "loihi").eval()
    qat = quant.prepare(net, "loihi")
    assert qat[0].quant_weight().bit_width == 8  # 9-bit MIXED weights on a grid of 2
    twin = qat.to_twin()
    assert isinstance(twin[0], FixedLinear)
    assert bool((twin[0].weight % 2 == 0).all())
    w, e = quantized_weight(qat[0], load_target("loihi"))
    assert torch.equal(twin[0].weight.to(torch.float64) * 2.0**e, w)


def test_a_few_qat_steps_reduce_the_loss():
    torch.manual_seed(0)
    target = "generic_int8"
    net = make_net("lif", target)
    x = make_input("lif", T=12, n=64, seed=3)
    y = (x[:, :, :4].sum((0, 2)) > x[:, :, 4:8].sum((0, 2))).long() * 2 + (x[:, :, 8:].sum((0, 2)) > 12).long()
    net.train()
    qat = quant.prepare(net, target)
    opt = torch.optim.Adam([p for p in qat.parameters() if p.requires_grad], lr=5e-3)
    losses = []
    for _ in range(25):
        loss = F.cross_entropy(qat(x).mean(0) * 8.0, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < losses[0] - 0.05, losses


def _tables_of_a_qat_run(tmp_path, name: str, seed: int) -> dict[str, bytes]:
    torch.manual_seed(seed)
    net = make_net("dropout", "generic_int8", seed=seed).train()
    x = make_input("dropout", T=10, n=16, seed=seed)
    y = torch.arange(16) % 4
    qat = quant.prepare(net, "generic_int8", seed=seed)
    opt = torch.optim.Adam([p for p in qat.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        loss = F.cross_entropy(qat(x).mean(0) * 8.0, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = quant.export(qat.eval().to_twin(), tmp_path / name, examples={"inputs": x.to(torch.int8), "labels": y})
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_two_qat_runs_with_one_seed_export_byte_identical_tables(tmp_path):
    a = _tables_of_a_qat_run(tmp_path, "a", seed=4)
    b = _tables_of_a_qat_run(tmp_path, "b", seed=4)
    assert a.keys() == b.keys() and "tables.npz" in a
    assert all(a[k] == b[k] for k in a), [k for k in a if a[k] != b[k]]
    c = _tables_of_a_qat_run(tmp_path, "c", seed=5)
    assert c["tables.npz"] != a["tables.npz"]


def test_prepare_refuses_what_it_cannot_run():
    net = make_net("lif", "generic_int8")
    with pytest.raises(TypeError, match="nn.Sequential"):
        quant.prepare(net[0], "generic_int8")
    single = copy.deepcopy(net)
    set_step_mode(single, "s")
    with pytest.raises(ValueError, match="step_mode 's'"):
        quant.prepare(single, "generic_int8")
    qat = quant.prepare(net, "generic_int8")
    with pytest.raises(ValueError, match="input grid"):
        qat(torch.full((4, 2, 16), 0.5))
    with pytest.raises(ValueError, match=r"sequence \[T, N"):
        qat(torch.zeros(16))
    with pytest.raises(ValueError, match="hard reset"):
        quant.prepare(make_net("lif", "loihi"), "xylo")


# -- calibration ------------------------------------------------------------------------------------
def test_calibration_picks_exponents_from_the_observed_ranges():
    target = "generic_int8"
    tg = load_target(target)
    net = make_net("cuba", target).eval()
    x = make_input("cuba", T=16, n=32)
    cal = quant.calibrate(net, target, x, batch_size=16, max_batches=2)
    assert cal.batches == 2 and set(cal.state_exponents) == {"cubalifnode1", "lifnode3"}
    # recompute the membrane range of the hidden CUBA neuron by hand from the float model
    with torch.no_grad():
        cur = net[0](x[:, :32])
        m = net[1]
        i = torch.zeros_like(cur[0])
        v = torch.zeros_like(cur[0])
        h_max = i_max = 0.0
        for t in range(cur.shape[0]):
            i = i - i / m.tau_syn + cur[t]
            h = v - v / m.tau_mem + i
            h_max, i_max = max(h_max, float(h.abs().max())), max(i_max, float(i.abs().max()))
            v = h - (h >= 1.0).float() if m.v_reset is None else torch.where(h >= 1.0, torch.zeros_like(h), h)
    obs = cal.observed["cubalifnode1"]
    assert obs["h"] == pytest.approx(h_max, rel=1e-6) and obs["i"] == pytest.approx(i_max, rel=1e-6)
    e = cal.state_exponents["cubalifnode1"]
    hi = tg.widths.membrane.hi
    assert round(max(h_max, 1.0) * 2.0**-e) <= hi < round(max(h_max, 1.0) * 2.0 ** -(e - 1)) or \
        round(i_max * 2.0**-e) <= tg.widths.current.hi < round(i_max * 2.0 ** -(e - 1))
    assert "cubalifnode1" in cal.summary() and cal.weight_exponents.keys() == {"linear0", "linear2"}
    # the calibrated exponents reach the twin, and the QAT forward still equals it
    qat = quant.prepare(net, target, state_exponents=cal.state_exponents)
    twin = qat.to_twin()
    assert twin[1].exponents["v"] == e
    assert torch.equal(qat(x[:, :8]).detach(), dequantize_output(twin[-1], twin(x[:, :8].to(torch.int8)), twin.input_exponents[-1]).float())


def test_calibration_goes_coarser_for_large_states_and_finer_for_small_ones():
    target = "generic_int8"
    net = make_net("lif", target).eval()
    x = make_input("lif", T=16, n=32)
    default = quant.calibrate(net, target, x).default_exponents["lifnode1"]
    with torch.no_grad():
        net[0].weight.mul_(20.0)
    big = quant.calibrate(net, target, x).state_exponents["lifnode1"]
    with torch.no_grad():
        net[0].weight.mul_(1 / 2000.0)
    small = quant.calibrate(net, target, x).state_exponents["lifnode1"]
    assert big > default >= small


def test_calibration_errors():
    net = make_net("lif", "generic_int8")
    with pytest.raises(ValueError, match="no batches"):
        quant.calibrate(net, "generic_int8", [])
    with pytest.raises(ValueError, match="margin"):
        quant.calibrate(net, "generic_int8", make_input("lif"), margin=0.0)
    with pytest.raises(ValueError, match="not layers"):
        quant.convert(net, "generic_int8", state_exponents={"nope": -3})


# -- conversion details ---------------------------------------------------------------------------
def test_convert_coarsens_exponents_to_keep_the_weight_shift_in_range():
    for target in ("loihi", "xylo"):
        tg = load_target(target)
        twin = quant.convert(make_net("filter_delay", target).eval(), target)
        for m in twin:
            if isinstance(m, FixedLinear):
                assert tg.synapse.weight_shift_min <= m.weight_shift <= tg.synapse.weight_shift_max
    # a neuron whose calibrated grid is too fine for the shift range gets coarsened, not refused
    twin = quant.convert(make_net("lif", "loihi").eval(), "loihi", state_exponents={"lifnode1": -22})
    assert twin[1].exponents["v"] > -22 and twin[0].weight_shift == load_target("loihi").synapse.weight_shift_max


def test_dropout_is_folded_only_in_training_mode():
    net = make_net("dropout", "ideal")
    w = net[3].weight.detach().double()
    train = quant.convert(net.train(), "ideal")
    evalm = quant.convert(net.eval(), "ideal")
    tol = 2.0 ** train[3].weight_exponent
    assert torch.allclose(train[3].dequantize_weight(), w / 0.75, atol=tol)
    assert torch.allclose(evalm[3].dequantize_weight(), w, atol=2.0 ** evalm[3].weight_exponent)


def test_conversion_table_reports_exponents_taus_and_clips():
    net = make_net("filter_delay", "loihi").eval()
    net[1].tau = 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qat = quant.prepare(net, "loihi")
    rows = quant.conversion_table(qat.to_twin())
    by = {r["layer"]: r for r in rows}
    assert by["lifnode1"]["tau"] == "tau 3 -> 3.00073"  # 4096/1365
    assert by["synapsefilter2"]["tau"] == "4 -> 4"
    assert by["linear0"]["exponents"]["output"] == by["lifnode1"]["exponents"]["v"] + 6
    text = format_conversion_table(rows)
    assert "lifnode1" in text and "tau 3 -> 3.00073" in text
