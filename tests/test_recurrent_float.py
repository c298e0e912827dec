"""hwsnn.layer.RecurrentContainer: y_t = f(x_t + W y_{t-1} + b), its BPTT, its integer twin and the quant pipeline."""

from __future__ import annotations

import copy

import pytest
import torch

import hwsnn.layer as L
import hwsnn.neuron as N
import quant
from hwsnn.fixed import FitError, FixedRecurrent
from hwsnn.fixed.recurrent import finest_state_exponent
from hwsnn.functional import reset_net, set_step_mode
from quant.convert import dequantize_output
from targets import load as load_target

TARGETS = ["generic_int8", "loihi", "xylo"]


def lif(target: str = "generic_int8", **kw) -> N.LIFNode:
    """An LIF every target can compute (Loihi: zero reset only; decay_input=False)."""
    return N.LIFNode(tau=2.0, decay_input=False, v_reset=0.0 if target == "loihi" else None, **kw)


def rec_net(seed: int, target: str, recurrent_scale: float = 1.5) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    net = torch.nn.Sequential(L.Linear(12, 16, bias=False), L.RecurrentContainer(lif(target), 16),
                              L.Linear(16, 6, bias=False), lif(target))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
        net[1].rc.weight.mul_(recurrent_scale)
    set_step_mode(net, "m")
    return net


def spikes(seed: int, T: int = 30, batch: int = 8, features: int = 12) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, batch, features, generator=g) < 0.3).to(torch.int8)


# -- float layer -----------------------------------------------------------------------------------
@pytest.mark.parametrize("neuron", ["if", "lif", "cuba"])
def test_forward_equals_hand_written_loop(neuron):
    make = {"if": lambda: N.IFNode(v_reset=None), "lif": lambda: N.LIFNode(tau=3.0),
            "cuba": lambda: N.CubaLIFNode(tau_syn=2.0, tau_mem=4.0)}[neuron]
    layer = L.RecurrentContainer(make(), 5, bias=True, step_mode="m")
    with torch.no_grad():
        layer.rc.weight.mul_(3.0)
    x = torch.rand(12, 3, 5) * 1.5
    ref, w, b = make(), layer.rc.weight.detach(), layer.rc.bias.detach()
    y, ys = torch.zeros(3, 5), []
    for t in range(12):
        y = ref(x[t] + y @ w.T + b)
        ys.append(y)
    out = layer(x)
    assert torch.equal(out, torch.stack(ys))
    assert 0 < out.mean() < 1 and torch.equal(layer.y, out[-1])


def test_single_and_multi_step_agree_and_reset():
    layer = L.RecurrentContainer(N.LIFNode(tau=2.0), 6)
    with torch.no_grad():
        layer.rc.weight.mul_(4.0)
    x = torch.rand(10, 2, 6) * 2
    single = torch.stack([layer(x[t]) for t in range(10)])
    layer.reset()
    assert layer.y is None and layer.sub_module.v == 0.0
    layer.step_mode = "m"
    assert torch.equal(layer(x), single)
    reset_net(layer)
    assert torch.equal(layer(x), single), "after reset the layer must start from y = 0, v = 0 again"
    assert not torch.equal(layer(x), single), "without reset the state carries over"


def test_set_step_mode_keeps_the_sub_module_single_step():
    net = torch.nn.Sequential(L.Linear(3, 4), L.RecurrentContainer(N.IFNode(), 4))
    set_step_mode(net, "m")
    assert net[1].step_mode == "m" and net[1].sub_module.step_mode == "s"
    assert net(torch.rand(5, 2, 3)).shape == (5, 2, 4)


def test_gradients_reach_rc_weight_and_flow_through_time():
    torch.manual_seed(0)
    layer = L.RecurrentContainer(N.LIFNode(tau=2.0, decay_input=False), 8, step_mode="m")
    with torch.no_grad():
        layer.rc.weight.mul_(3.0)
    x = (torch.rand(15, 4, 8) * 1.5).requires_grad_()
    layer(x).sum().backward()
    assert layer.rc.weight.grad is not None and layer.rc.weight.grad.abs().sum() > 0
    # through time via W only: a memoryless f, so x_0 reaches y_{T-1} only through W y_{t-1}
    for scale, reaches in ((1.0, True), (0.0, False)):
        rnn = L.RecurrentContainer(torch.nn.Tanh(), 8, step_mode="m")
        with torch.no_grad():
            rnn.rc.weight.mul_(scale)
        x = torch.randn(6, 4, 8, requires_grad=True)
        rnn(x)[-1].sum().backward()
        assert bool(x.grad[0].abs().sum() > 0) is reaches
        assert x.grad[-1].abs().sum() > 0


def test_input_checks():
    layer = L.RecurrentContainer(N.IFNode(), 4)
    with pytest.raises(ValueError, match="last dimension 4 .*got shape \\(2, 3\\)"):
        layer(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="expects a tensor"):
        layer([0.0] * 4)
    layer.step_mode = "m"
    with pytest.raises(ValueError, match="\\[T, N, 4\\]"):
        layer(torch.zeros(5, 2, 3))
    with pytest.raises(ValueError, match="time axis"):
        layer(torch.zeros(4))
    with pytest.raises(ValueError, match="step_mode 's'.*IFNode"):
        L.RecurrentContainer(N.IFNode(step_mode="m"), 4)
    with pytest.raises(ValueError, match="features must be an integer >= 1"):
        L.RecurrentContainer(N.IFNode(), 0)
    with pytest.raises(ValueError, match="must keep the shape"):
        L.RecurrentContainer(torch.nn.Linear(4, 3), 4)(torch.zeros(2, 4))


# -- integer twin ----------------------------------------------------------------------------------
def test_twin_exponents_and_weights():
    layer = L.RecurrentContainer(lif(), 6)
    twin = layer.to_fixed("generic_int8", name="rec")
    assert isinstance(twin, FixedRecurrent) and twin.layer_name == "rec"
    e_in = twin.neuron.input_exponent
    assert twin.weight_exponent == e_in + twin.weight_shift
    w = twin.weight.to(torch.float64)
    assert 64 <= w.abs().max() <= 127, "the largest weight uses the 8-bit width"
    assert torch.allclose(w * 2.0 ** twin.weight_exponent, layer.rc.weight.double(), atol=2.0 ** (twin.weight_exponent - 1))
    pinned = layer.to_fixed("generic_int8", weight_shift=twin.weight_shift + 1, clip=True)
    assert pinned.weight_exponent == twin.weight_exponent + 1


def test_twin_shift_range_coarsens_or_refuses():
    layer = L.RecurrentContainer(lif("loihi"), 4)
    with torch.no_grad():
        layer.rc.weight.fill_(4.0)
    twin = layer.to_fixed("loihi")  # e_w = -5, s_max = 7, input_shift 6: the state exponent coarsens to -18
    assert twin.weight_shift == 7 and twin.neuron.state_exponent == -18
    with pytest.raises(FitError, match="recurrent weight shift .* = 10 does not fit on target 'loihi'"):
        layer.to_fixed("loihi", state_exponent=-21)
    small = L.RecurrentContainer(lif("xylo"), 4)
    assert small.to_fixed("xylo").weight_shift > 0
    with torch.no_grad():
        small.rc.weight.fill_(1e-3)  # finer than the neuron's input grid: Xylo's shift stops at 0
    twin = small.to_fixed("xylo")
    assert twin.weight_shift == 0 and (twin.weight == round(1e-3 * 2.0 ** -twin.weight_exponent)).all()


def test_recurrent_bias_is_folded_into_the_neuron():
    for neuron, gain in ((N.IFNode(v_reset=None), 1.0), (N.LIFNode(tau=4.0, v_reset=None), 0.25)):
        layer = L.RecurrentContainer(neuron, 5, bias=True)
        twin = layer.to_fixed("generic_int8")
        real = twin.neuron.bias_int.double() * 2.0 ** twin.neuron.state_exponent
        assert torch.allclose(real, gain * layer.rc.bias.double(), atol=2.0 ** twin.neuron.state_exponent)
    with torch.no_grad():
        layer.rc.bias.fill_(0.01)
    layer.sub_module = lif("loihi")  # Loihi: mantissa << exponent, here 0.01 / 2^-21 = 20972 > 13 bits
    neuron = layer.to_fixed("loihi").neuron
    assert neuron.bias_exp == 3 and torch.allclose(neuron.bias_int.double() * 2.0 ** neuron.state_exponent,
                                                   torch.full((5,), 0.01, dtype=torch.float64), atol=2.0 ** -18)


@pytest.mark.parametrize("target", TARGETS)
def test_converted_network_tracks_the_float_network(target):
    """Hidden spikes of Linear -> RecurrentContainer(LIF) -> Linear -> LIF: the twin disagrees with the
    float layer on few spikes, far fewer than a float layer without recurrence does (Loihi: one step of
    input latency; Xylo: counts > 1 of its multi-spike neurons count as 1)."""
    lat = 1 if target == "loihi" else 0
    for seed in range(2):
        net = rec_net(seed, target)
        twin = quant.convert(net, target)
        assert isinstance(twin[1], FixedRecurrent) and twin[0].output_exponent == twin[1].neuron.input_exponent
        no_rec = rec_net(seed, target, recurrent_scale=0.0)
        x = spikes(seed)
        with torch.no_grad():
            hidden_f = net[:2](x.float())
            hidden_0 = no_rec[:2](x.float())
        out_t = twin(x)
        reset_net(twin)
        hidden_t = twin[:2](x).clamp(max=1).float()
        T = x.shape[0]
        f, t, z = hidden_f[: T - lat], hidden_t[lat:], hidden_0[: T - lat]
        wrong = float((f != t).sum()) / float(f.sum())
        wrong_without = float((z != t).sum()) / float(f.sum())
        assert f.sum() > 100 and out_t.shape == (T, 8, 6)
        assert wrong < 0.2, (target, seed, wrong)
        assert wrong_without > 2.5 * wrong + 0.1, (target, seed, wrong, wrong_without)


def test_convert_a_recurrent_sequential_single_step_and_calibrated():
    loihi = rec_net(0, "loihi")
    with torch.no_grad():
        loihi[1].rc.weight.fill_(4.0)
    twin = quant.convert(loihi, "loihi", names=["fc1", "rec", "fc2", "out"], state_exponents={"rec": -21})
    assert finest_state_exponent(loihi[1], load_target("loihi")) == -18 == twin[1].neuron.state_exponent, \
        "a calibrated exponent too fine for the recurrent weight shift is coarsened"
    assert twin[1].weight_shift == 7
    net = rec_net(0, "generic_int8")
    twin = quant.convert(net, "generic_int8")
    assert twin[0].output_exponent == twin[1].neuron.input_exponent and twin.input_exponents[2] == 0
    x = spikes(1, T=10)
    y_m = twin(x)
    reset_net(twin)
    set_step_mode(twin, "s")
    assert torch.equal(torch.stack([twin(x[t]) for t in range(10)]), y_m)
    hidden = twin[:2](x[0])
    assert hidden.sum() > 0 and torch.equal(dequantize_output(twin[1], hidden, twin.input_exponents[1]), hidden.double())
    rows = quant.conversion_table(quant.convert(net, "generic_int8"))
    assert rows[1]["kind"] == "FixedRecurrent"


@pytest.mark.parametrize("target", TARGETS)
def test_qat_forward_is_the_twin_and_trains_rc(target):
    net = rec_net(0, target)
    cal = quant.calibrate(net, target, spikes(0).float())
    charges = []  # max |H| of the neuron inside the loop, by hand
    rec = copy.deepcopy(net[1])
    rec.step_mode = "s"
    rec.sub_module.register_forward_pre_hook(lambda mod, args: charges.append(float(mod.neuronal_charge(
        args[0], mod.v if torch.is_tensor(mod.v) else torch.zeros_like(args[0])).abs().max())))
    with torch.no_grad():
        for z in net[0](spikes(0).float()):
            rec(z)
    assert cal.observed["recurrentcontainer1"]["h"] == pytest.approx(max(charges))
    qat = quant.prepare(net, target, state_exponents=cal.state_exponents)
    x = spikes(3).float()
    y = qat(x)
    used = qat._current_twin()[1]  # the float layer carries the chip's states: y_{T-1} and the membrane
    assert torch.equal(qat[1].y.detach().double(), used.history[-1].double())
    assert torch.equal(qat[1].sub_module.v.detach().double(), used.dequantize("v").double())
    twin = quant.convert(qat, target, state_exponents=cal.state_exponents, names=qat.layer_names)
    assert torch.equal(y.detach().double(), twin(x.to(torch.int8)).double())
    y.sum().backward()
    assert qat[1].rc.weight.grad.abs().sum() > 0 and qat[0].weight.grad.abs().sum() > 0


def test_refusals():
    with pytest.raises(TypeError, match="needs a spiking neuron .*got Tanh"):
        L.RecurrentContainer(torch.nn.Tanh(), 3).to_fixed("generic_int8")
    with pytest.raises(FitError, match="CUBA current.*bias=False"):
        L.RecurrentContainer(N.CubaLIFNode(), 3, bias=True).to_fixed("generic_int8")
    with pytest.raises(ValueError, match="weight_exponent or weight_shift, not both"):
        L.RecurrentContainer(N.IFNode(), 3).to_fixed("generic_int8", weight_exponent=-8, weight_shift=0)
    with pytest.raises(FitError, match="recurrent weight shift .* allowed \\[0, 15\\]"):
        L.RecurrentContainer(lif("xylo"), 3).to_fixed("xylo", weight_shift=-1)
    with pytest.raises(TypeError, match="rec \\(RecurrentContainer\\) wraps Tanh"):
        net = torch.nn.Sequential(L.Linear(3, 3), L.RecurrentContainer(torch.nn.Tanh(), 3))
        set_step_mode(net, "m")
        quant.calibrate(net, "generic_int8", torch.rand(4, 2, 3), names=["fc", "rec"])
