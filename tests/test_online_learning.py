import copy

import pytest
import torch
import torch.nn as nn

from hwsnn import functional, layer
from hwsnn.neuron import OTTTLIFNode


def _net():
    torch.manual_seed(0)
    net = layer.OTTTSequential(layer.Linear(4, 8), OTTTLIFNode(), layer.Linear(8, 3), OTTTLIFNode())
    with torch.no_grad():  # make both layers fire often enough to have non-trivial traces
        net[0].weight.uniform_(-0.2, 1.0)
        net[2].weight.uniform_(-0.5, 0.8)
    return net


def _inputs(T=5, N=6):
    g = torch.Generator().manual_seed(1)
    return torch.rand(T, N, 4, generator=g) * 2.0


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------
def test_replace_for_grad_value_and_gradients():
    x = torch.rand(3, requires_grad=True)
    x_r = torch.rand(3, requires_grad=True)
    y = layer.ReplaceforGrad.apply(x, x_r)
    assert torch.equal(y, x_r)
    w = torch.tensor([1.0, 2.0, 3.0])
    (y * w).sum().backward()
    assert torch.equal(x.grad, w) and torch.equal(x_r.grad, w)


def test_grad_with_trace_value_from_spike_gradient_from_trace():
    lin = nn.Linear(5, 2)
    spike = (torch.rand(4, 5) > 0.5).float().requires_grad_(True)
    trace = torch.rand(4, 5)
    y = layer.GradwithTrace(lin)([spike, trace])
    assert torch.allclose(y, lin(spike))
    g = torch.rand(4, 2)
    (y * g).sum().backward()
    assert torch.allclose(lin.weight.grad, g.T @ trace)
    assert torch.allclose(lin.bias.grad, g.sum(0))
    # the input gradient reaches the spike (through W, as for a plain linear layer)
    assert torch.allclose(spike.grad, g @ lin.weight.detach())


def test_spike_trace_op_applies_module_to_both():
    pool = nn.AvgPool1d(2)
    spike = torch.rand(2, 3, 4, requires_grad=True)
    trace = torch.rand(2, 3, 4)
    s, tr = layer.SpikeTraceOp(pool)([spike, trace])
    assert torch.allclose(s, pool(spike)) and torch.allclose(tr, pool(trace))
    assert s.requires_grad and not tr.requires_grad


def test_wrappers_reject_non_pairs():
    with pytest.raises(TypeError, match="spike, trace"):
        layer.GradwithTrace(nn.Linear(2, 2))(torch.rand(2, 2))
    with pytest.raises(TypeError, match="spike, trace"):
        layer.SpikeTraceOp(nn.Flatten())([torch.rand(2, 2)])


# ---------------------------------------------------------------------------------------------
# OTTTSequential
# ---------------------------------------------------------------------------------------------
def test_ottt_second_layer_weight_gradient_is_outer_product_with_trace():
    net = _net()
    net.train()
    node1, lin2 = net[1], net[2]
    grads_u2, spikes1 = [], []

    def lin2_hook(module, inputs, output):
        if output.requires_grad:  # the gradient-carrying call of GradwithTrace
            output.register_hook(lambda g: grads_u2.append(g.detach().clone()))

    lin2.register_forward_hook(lin2_hook)
    node1.register_forward_hook(lambda m, i, o: spikes1.append(o[0].detach().clone()))
    x_seq = _inputs()
    target = torch.tensor([[1.0, 0.0, 1.0]]).expand(6, 3)
    discriminated = False
    for t in range(x_seq.shape[0]):
        net.zero_grad()
        grads_u2.clear()
        spikes1.clear()
        spike_out, trace_out = net(x_seq[t])
        assert torch.equal(trace_out, net[3].trace)
        loss = ((spike_out - target) ** 2).sum()
        loss.backward()
        assert len(grads_u2) == 1 and len(spikes1) == 1
        g, spike1, trace1 = grads_u2[0], spikes1[0], node1.trace
        expected_w = g.T @ trace1  # outer products with the trace, summed over the batch
        assert torch.allclose(lin2.weight.grad, expected_w, atol=1e-6)
        assert torch.allclose(lin2.bias.grad, g.sum(0), atol=1e-6)
        wrong_w = g.T @ spike1  # what BPTT-free backprop through the spike value would give
        if not torch.allclose(wrong_w, expected_w, atol=1e-4):
            discriminated = True
            assert not torch.allclose(lin2.weight.grad, wrong_w, atol=1e-4)
    assert discriminated, "trace and spike gave the same gradient at every step: the test did not discriminate"


def test_ottt_value_is_computed_from_spikes():
    net = _net().train()
    ref = copy.deepcopy(net)
    x_seq = _inputs()
    for t in range(x_seq.shape[0]):
        out = net(x_seq[t])
        # reference: plain composition, feeding the spikes only
        h = ref[0](x_seq[t])
        s1 = ref[1](h)[0]
        u2 = ref[2](s1)
        s2, tr2 = ref[3](u2)
        assert torch.allclose(out[0], s2) and torch.allclose(out[1], tr2)


def test_ottt_training_changes_weights_and_reduces_loss():
    net = _net().train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    x_seq = _inputs(T=4)
    target = torch.tensor([[1.0, 0.0, 0.0]]).expand(6, 3)
    w_before = [p.detach().clone() for p in net.parameters()]

    def epoch(train):
        total = 0.0
        functional.reset_net(net)
        for t in range(x_seq.shape[0]):
            out = net(x_seq[t])
            loss = ((out[0] - target) ** 2).mean()
            if train:
                opt.zero_grad()
                loss.backward()  # one backward per step: no graph across time
                opt.step()
            total += float(loss.detach())
        return total

    first = epoch(train=True)
    for _ in range(30):
        last = epoch(train=True)
    assert any(not torch.equal(a, b) for a, b in zip(w_before, net.parameters()))
    assert last < first


def test_ottt_eval_returns_plain_spikes():
    net = _net().eval()
    x_seq = _inputs()
    for t in range(x_seq.shape[0]):
        out = net(x_seq[t])
        assert isinstance(out, torch.Tensor) and out.shape == (6, 3)
        assert torch.all((out == 0) | (out == 1))


def test_ottt_parameter_free_module_and_neuron_after_neuron():
    torch.manual_seed(0)
    net = layer.OTTTSequential(
        nn.Linear(4, 8), OTTTLIFNode(), nn.Identity(), OTTTLIFNode(), nn.Linear(8, 2)
    ).train()
    with torch.no_grad():
        net[0].weight.uniform_(0.5, 1.0)
    ids = []
    net[2].register_forward_hook(lambda m, i, o: ids.append(i[0]))
    x = torch.rand(3, 4) + 1.0
    y = net(x)
    assert isinstance(y, torch.Tensor) and y.shape == (3, 2)
    # the parameter-free module saw the spike and then the trace
    assert len(ids) == 2
    # the second neuron got the spike of the first (not the pair)
    assert isinstance(net[3].trace, torch.Tensor) and net[3].trace.shape == (3, 8)


def test_ottt_lif_rejects_multi_step():
    with pytest.raises(ValueError, match="step_mode"):
        OTTTLIFNode(step_mode="m")
