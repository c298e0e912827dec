"""quant.convert: a float nn.Sequential to its twin network with chained exponents."""

from __future__ import annotations

import copy

import pytest
import torch

import hwsnn.layer as L
import hwsnn.neuron as N
import quant
from hwsnn.fixed import FixedLIFNode, FixedLinear
from hwsnn.functional import set_step_mode
from tests.test_fixed_network import convert as hand_convert
from tests.test_fixed_network import float_net, spikes

NAMES = ["fc1", "lif1", "syn", "drop", "fc2", "lif2", "vote"]


@pytest.mark.parametrize("target", ["generic_int8", "ideal"])
def test_convert_equals_the_hand_written_chain(target):
    net = float_net(3)
    before = copy.deepcopy(net.state_dict())
    auto = quant.convert(net, target, seed=0, names=NAMES)  # dropout at index 3: seed 0 + 3 = the hand chain's 3
    hand = hand_convert(net, target, 3)
    x = spikes(4, T=30)
    assert torch.equal(auto(x), hand(x))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "the float model must not change"
    fc1, lif1, fc2, lif2 = auto[0], auto[1], auto[4], auto[5]
    assert fc1.output_exponent == lif1.input_exponent and fc2.output_exponent == lif2.input_exponent
    assert fc1.first_layer and not fc2.first_layer
    assert lif2.readout and not lif1.readout
    assert fc2.input_exponent == auto[2].exponents["out_i"]


def test_dropout_rescale_is_folded_into_the_next_weights():
    torch.manual_seed(0)
    net = torch.nn.Sequential(L.Linear(8, 8, bias=False), N.LIFNode(tau=2.0), L.Dropout(0.5),
                              L.Linear(8, 4, bias=False), N.LIFNode(tau=2.0))
    set_step_mode(net, "m")
    twin = quant.convert(net, "ideal")
    w = twin[3].dequantize_weight()
    assert torch.allclose(w, 2.0 * net[3].weight.double(), atol=2.0 ** twin[3].weight_exponent)


def test_conv_pool_flatten_network_converts_and_runs():
    torch.manual_seed(1)
    net = torch.nn.Sequential(L.Conv2d(2, 4, 3, padding=1), N.IFNode(), L.MaxPool2d(2), L.AvgPool2d(2), L.Flatten(),
                              L.Linear(4 * 2 * 2, 6), N.LIFNode(tau=4.0), L.VotingLayer(2))
    set_step_mode(net, "m")
    twin = quant.convert(net, "generic_int8")
    y = twin((torch.rand(5, 3, 2, 8, 8) < 0.3).to(torch.int8))
    assert y.shape == (5, 3, 3)
    # spikes (exponent 0) -> max pool keeps 0 -> 2x2 average: exponent -2 -> flatten keeps it -> the dense input
    assert twin[3].output_exponent(0) == -2 and twin[5].input_exponent == -2
    assert twin[5].output_exponent == twin[6].input_exponent


def test_convert_refuses_what_it_cannot_convert():
    with pytest.raises(TypeError, match="nn.Sequential"):
        quant.convert(L.Linear(2, 2), "generic_int8")
    with pytest.raises(TypeError, match="no integer twin for BatchNorm1d"):
        quant.convert(torch.nn.Sequential(L.Linear(2, 2), torch.nn.BatchNorm1d(2)), "generic_int8")
    with pytest.raises(ValueError, match="2 names for 1 layers"):
        quant.convert(torch.nn.Sequential(L.Linear(2, 2)), "generic_int8", names=["a", "b"])
    net = torch.nn.Sequential(L.Linear(2, 2), N.LIFNode(tau=2.0))
    with pytest.raises(ValueError, match="decay_input=True cannot be computed on target 'loihi'"):
        quant.convert(net, "loihi")
    assert isinstance(quant.convert(net, "generic_int8")[0], FixedLinear)
    assert isinstance(quant.convert(net, "generic_int8")[1], FixedLIFNode)
