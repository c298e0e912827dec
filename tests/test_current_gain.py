"""Xylo's current takes the input before it decays; the converter folds that gain into the weights
(hwsnn.fixed.current_gain), so the twin's current follows the float CubaLIFNode's."""

from __future__ import annotations

import pytest
import torch

import quant
import targets
from hwsnn import functional, layer, neuron
from hwsnn.fixed import FixedCubaLIFNode, FixedLIFNode
from hwsnn.fixed.current_gain import fold_input_gain, input_gain


def _net(tau_syn: float) -> torch.nn.Sequential:
    torch.manual_seed(3)
    net = torch.nn.Sequential(layer.Linear(12, 20, bias=False),
                              neuron.CubaLIFNode(tau_syn=tau_syn, tau_mem=4.0, v_threshold=4.0, v_reset=None))
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    functional.set_step_mode(net, "m")
    return net.eval()


@pytest.mark.parametrize("tau_syn", [2.0, 4.0, 8.0])
def test_the_twin_current_follows_the_float_current_on_xylo(tau_syn):
    """With the fold the twin's current (dequantized) equals the float current up to the rounding of the
    weights and decays; without it, it would be the float current times 1 - 1/tau_syn."""
    net = _net(tau_syn)
    x = (torch.rand(15, 4, 12, generator=torch.Generator().manual_seed(1)) < 0.4).float()
    cur_f = []
    for t in range(x.shape[0]):  # the float current, step by step (a spike does not reset the current)
        net[0].step_mode = net[1].step_mode = "s"
        net[1](net[0](x[t]))
        cur_f.append(net[1].i.clone())
    cur_f = torch.stack(cur_f).double()
    twin = quant.convert(net, "xylo")
    cur_t = []
    for t in range(x.shape[0]):
        twin[0].step_mode = twin[1].step_mode = "s"
        twin[1](twin[0](x[t].to(torch.int8)))
        cur_t.append(twin[1].dequantize("i").clone())
    cur_t = torch.stack(cur_t)
    assert twin[1].saturations.get("i", 0) == 0  # within int16: the comparison is of the arithmetic, not of clipping
    scale = cur_f.abs().max()
    assert scale > 1
    err = (cur_t - cur_f).abs().max() / scale
    g = 1 - 1 / tau_syn
    assert err < 0.03, err                                   # followed
    assert ((cur_t / g - cur_f).abs().max() / scale) > 10 * err  # not the unfolded g x float current


def test_input_gain_and_where_it_applies():
    xy, gen = targets.load("xylo"), targets.load("generic_int8")
    assert input_gain(FixedCubaLIFNode(xy, 100, 1, 2)) == 0.5
    assert input_gain(FixedCubaLIFNode(xy, 100, 2, 2)) == 0.75
    assert input_gain(FixedCubaLIFNode(xy, 100, 0, 2)) is None   # tau_syn 1: the chip erases the input
    assert input_gain(FixedCubaLIFNode(gen, 100, 1, 2)) is None  # decay_then_add: the float form
    assert input_gain(FixedLIFNode(xy, 100, 1)) is None
    w = torch.ones(3, 2)
    assert torch.equal(fold_input_gain(w, torch.tensor([0.5, 0.25, 1.0])), torch.tensor([[2.0, 2.0], [4.0, 4.0], [1.0, 1.0]]))


def test_tau_syn_two_folds_exactly_into_the_weight_exponent():
    """g = 1/2: the twin keeps the integers of the unfolded weights, one exponent up."""
    net = _net(2.0)
    twin = quant.convert(net, "xylo")
    twin_gen = quant.convert(net, "generic_int8")  # no fold there (same weight width, 8 bits)
    assert torch.equal(twin[0].weight, twin_gen[0].weight)
    assert twin[0].exponents["weight"] == twin_gen[0].exponents["weight"] + 1
