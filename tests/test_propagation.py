"""The seed tutorials' propagation patterns and container behaviour."""

import pytest
import torch
import torch.nn as nn

from hwsnn import functional, layer, neuron


def test_if_node_single_step_loop_equals_container_equals_multi_step():
    T, N = 8, 4
    x = torch.rand(T, N) * 2
    if_node = neuron.IFNode()
    loop = torch.stack([if_node(x[t]) for t in range(T)])
    functional.reset_net(if_node)
    container = layer.MultiStepContainer(if_node)(x)
    functional.reset_net(if_node)
    multi = neuron.IFNode(step_mode="m")(x)
    assert torch.equal(loop, container) and torch.equal(loop, multi)
    assert 0 < loop.sum() < loop.numel()


def _conv_net():
    return nn.Sequential(
        layer.Conv2d(3, 8, kernel_size=3, padding=1, bias=False),
        layer.BatchNorm2d(8),
        neuron.IFNode(),
        layer.MaxPool2d(2, 2),
        neuron.IFNode(),
        layer.Flatten(start_dim=1),
        layer.Linear(8 * 4 * 4, 10),
        neuron.IFNode(),
    )


def test_step_by_step_equals_layer_by_layer_conv_bn_if():
    x_seq = torch.rand(4, 2, 3, 8, 8) * 8
    net = _conv_net()
    for p in net[1].parameters():
        nn.init.uniform_(p, 0.5, 1.5)
    net.eval()  # BN with running statistics: identical in both patterns
    with torch.no_grad():
        step_by_step = functional.multi_step_forward(x_seq, net)
        functional.reset_net(net)
        functional.set_step_mode(net, "m")
        layer_by_layer = net(x_seq)
    assert torch.equal(step_by_step, layer_by_layer)
    assert step_by_step.sum() > 0


def test_layer_by_layer_gradients_equal_step_by_step():
    x_seq = torch.rand(4, 2, 3, 8, 8) * 8
    net = _conv_net().eval()
    y1 = functional.multi_step_forward(x_seq, net)
    g1 = torch.autograd.grad(y1.sum(), net[0].weight)[0]
    functional.reset_net(net)
    functional.set_step_mode(net, "m")
    y2 = net(x_seq)
    g2 = torch.autograd.grad(y2.sum(), net[0].weight)[0]
    torch.testing.assert_close(g1, g2)


class NetStepByStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, kernel_size=3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.sn = neuron.IFNode()

    def forward(self, x):
        return self.sn(self.bn(self.conv(x)))


class NetLayerByLayer1(NetStepByStep):
    def forward(self, x_seq):
        x_seq = functional.seq_to_ann_forward(x_seq, [self.conv, self.bn])
        return functional.multi_step_forward(x_seq, self.sn)


class NetLayerByLayer2(NetStepByStep):
    def __init__(self):
        super().__init__()
        del self.sn
        self.sn = neuron.IFNode(step_mode="m")

    def forward(self, x_seq):
        return self.sn(functional.seq_to_ann_forward(x_seq, [self.conv, self.bn]))


def test_three_patterns_share_state_dict_keys_and_outputs():
    nets = [NetStepByStep(), NetLayerByLayer1(), NetLayerByLayer2()]
    keys = [list(n.state_dict().keys()) for n in nets]
    assert keys[0] == keys[1] == keys[2] == [
        "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    for n in nets[1:]:
        n.load_state_dict(nets[0].state_dict())
    for n in nets:
        n.eval()
    x_seq = torch.rand(3, 2, 3, 6, 6) * 4
    y0 = functional.multi_step_forward(x_seq, nets[0])
    assert torch.equal(y0, nets[1](x_seq)) and torch.equal(y0, nets[2](x_seq))


def test_wrappers_keep_torch_state_dict_keys():
    for ours, theirs in [
        (layer.Linear(3, 4), nn.Linear(3, 4)),
        (layer.Conv2d(1, 2, 3), nn.Conv2d(1, 2, 3)),
        (layer.BatchNorm2d(3), nn.BatchNorm2d(3)),
    ]:
        assert list(ours.state_dict()) == list(theirs.state_dict())
        ours.load_state_dict(theirs.state_dict())


def test_seq_to_ann_container_folds_time():
    conv, bn = nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4)
    c = layer.SeqToANNContainer(conv, bn).eval()
    x = torch.rand(5, 3, 2, 7, 7)
    y = c(x)
    assert y.shape == (5, 3, 4, 5, 5)
    assert torch.allclose(y[2], bn(conv(x[2])))
    assert list(c.state_dict())[0] == "0.weight"


def test_step_mode_container_both_ways():
    x = torch.rand(6, 3, 4) * 2
    stateful = layer.StepModeContainer(True, nn.Linear(4, 4), neuron.IFNode())
    y_s = torch.stack([stateful(x[t]) for t in range(6)])
    functional.reset_net(stateful)
    stateful.step_mode = "m"
    assert torch.equal(stateful(x), y_s)
    stateless = layer.StepModeContainer(False, nn.Linear(4, 2))
    stateless.step_mode = "m"
    assert torch.allclose(stateless(x), stateless[0](x))


def test_containers_reject_children_in_the_wrong_mode():
    with pytest.raises(ValueError, match=r"step_mode 's'.*IFNode"):
        layer.MultiStepContainer(neuron.IFNode(step_mode="m"))
    with pytest.raises(ValueError, match="stateless"):
        layer.SeqToANNContainer(nn.Linear(2, 2), neuron.IFNode())
    c = layer.StepModeContainer(True, neuron.IFNode())
    c[0].step_mode = "m"  # changed after construction: caught at call time
    with pytest.raises(ValueError, match="step_mode 's'"):
        c(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="stateful"):
        layer.StepModeContainer(nn.Linear(2, 2))


@pytest.mark.parametrize("module,bad_shape", [
    (layer.Conv2d(2, 4, 3, step_mode="m"), (3, 2, 7, 7)),
    (layer.BatchNorm2d(2, step_mode="m"), (3, 2, 7, 7)),
    (layer.AvgPool2d(2, step_mode="m"), (2, 7, 7)),
])
def test_multi_step_wrapper_without_time_axis(module, bad_shape):
    with pytest.raises(ValueError, match="time axis"):
        module(torch.zeros(bad_shape))
