import math

import pytest
import torch
import torch.nn as nn

from hwsnn import functional, layer, neuron, surrogate


def test_redundant_one_hot_seed_example():
    labels = torch.tensor([0, 1, 1, 0])
    y = functional.redundant_one_hot(labels, num_classes=3, n=2)
    expected = torch.tensor(
        [[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]], dtype=torch.get_default_dtype()
    )
    assert torch.equal(y, expected)


@pytest.mark.parametrize("labels,exc", [
    (torch.tensor([0, 3]), ValueError), (torch.tensor([-1, 0]), ValueError), (torch.tensor([0.0, 1.0]), TypeError)
])
def test_redundant_one_hot_bad_labels(labels, exc):
    with pytest.raises(exc, match="labels"):
        functional.redundant_one_hot(labels, 3, 2)


def test_redundant_one_hot_bad_counts():
    with pytest.raises(ValueError, match="n must"):
        functional.redundant_one_hot(torch.tensor([0]), 3, 0)


def test_first_spike_index_hand_made():
    spikes = torch.tensor([
        [0, 0, 1, 1, 0, 1],
        [1, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0],
    ], dtype=torch.float32)
    expected = torch.tensor([
        [0, 0, 1, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0],
    ], dtype=torch.bool)
    assert torch.equal(functional.first_spike_index(spikes), expected)


def test_kaiming_normal_conv_linear_weight_touches_only_conv_and_linear():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    for p in net.parameters():
        nn.init.zeros_(p)
    functional.kaiming_normal_conv_linear_weight(net)
    assert net[0].weight.abs().sum() > 0 and net[3].weight.abs().sum() > 0
    assert net[1].weight.abs().sum() == 0
    # std of kaiming normal with a = sqrt(5): gain / sqrt(fan_in), gain = sqrt(2 / (1 + a^2))
    big = nn.Linear(2000, 500)
    functional.kaiming_normal_conv_linear_weight(big)
    expected = math.sqrt(2.0 / 6.0) / math.sqrt(2000)
    assert big.weight.std().item() == pytest.approx(expected, rel=0.03)


def test_delay_function_seed_example():
    x = torch.rand(5, 2)
    x[3:].zero_()
    x.requires_grad_()
    y = functional.delay(x, 1)
    assert torch.equal(y[0], torch.zeros(2)) and torch.equal(y[1:], x[:-1])
    y.sum().backward()
    assert torch.equal(x.grad, torch.tensor([[1.0, 1], [1, 1], [1, 1], [1, 1], [0, 0]]))
    assert torch.equal(functional.delay(x, 7), torch.zeros_like(x))
    assert functional.delay(x, 0) is x


@pytest.mark.parametrize("d,exc", [(-1, ValueError), (1.0, TypeError), (True, TypeError)])
def test_delay_bad_steps(d, exc):
    with pytest.raises(exc, match="delay_steps"):
        functional.delay(torch.zeros(3, 2), d)


def test_reset_net_walks_the_tree_every_call():
    net = nn.Sequential(neuron.IFNode())
    functional.reset_net(net)
    net.append(neuron.LIFNode())  # added after a first reset_net
    net(torch.ones(3) * 2)
    assert isinstance(net[1].v, torch.Tensor)
    functional.reset_net(net)
    assert net[0].v == 0.0 and net[1].v == 0.0


def test_set_step_mode_and_detach_net():
    net = nn.Sequential(layer.Linear(3, 4), neuron.LIFNode(), nn.Sequential(neuron.IFNode()))
    functional.set_step_mode(net, "m")
    assert [m.step_mode for m in (net[0], net[1], net[2][0])] == ["m", "m", "m"]
    x = torch.rand(4, 2, 3, requires_grad=True)
    net(x)
    assert net[1].v.requires_grad
    functional.detach_net(net)
    assert not net[1].v.requires_grad and not net[2][0].v.requires_grad
    with pytest.raises(ValueError, match="step_mode"):
        functional.set_step_mode(net, "q")


def test_set_step_mode_leaves_containers_children_alone():
    inner = neuron.IFNode()
    net = nn.Sequential(layer.MultiStepContainer(inner), layer.StepModeContainer(True, neuron.IFNode()))
    functional.set_step_mode(net, "m")
    assert inner.step_mode == "s" and net[1][0].step_mode == "s"
    assert net[0].step_mode == "m" and net[1].step_mode == "m"
    functional.set_step_mode(net, "s")
    assert net[0].step_mode == "m"  # a MultiStepContainer always takes sequences


def test_seq_to_ann_and_multi_step_forward():
    lin = nn.Linear(3, 2)
    x = torch.rand(4, 5, 3)
    assert torch.allclose(functional.seq_to_ann_forward(x, lin), lin(x))
    assert torch.allclose(functional.seq_to_ann_forward(x, [lin, nn.ReLU()]), torch.relu(lin(x)))
    with pytest.raises(ValueError, match="time axis"):
        functional.seq_to_ann_forward(torch.rand(3), lin)
    n = neuron.IFNode()
    y = functional.multi_step_forward(x, n)
    n.reset()
    assert torch.equal(y, torch.stack([n(x[t]) for t in range(4)]))


def test_pure_steps_compose_to_the_module():
    x = torch.rand(6, 3) * 2
    v = torch.zeros(3)
    n = neuron.LIFNode(tau=3.0, decay_input=False, v_reset=None)
    for t in range(6):
        s, v = functional.lif_step(x[t], v, 3.0, False, 1.0, None, surrogate.heaviside)
        assert torch.equal(s, n(x[t]))
        assert torch.allclose(v, n.v)
