"""The SpikingJelly-2.0 forms of issue 17 checked without SpikingJelly: each against an independent
implementation inside hwsnn (a plain loop, an index-based reference, the fused neurons)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from hwsnn import base, functional, layer, neuron, surrogate


def _reference_delay(x: torch.Tensor, d: int) -> torch.Tensor:
    y = torch.zeros_like(x)
    for t in range(x.shape[0]):
        if t >= d:
            y[t] = x[t - d]
    return y


@pytest.mark.parametrize("d", [0, 1, 4])
def test_delay_step_loop_equals_index_reference(d):
    x = torch.randn(9, 2, 3)
    q: tuple = ()
    ys = []
    for t in range(9):
        y, q = functional.delay_step(x[t], q, d)
        ys.append(y)
        assert len(q) == min(d, t + 1)
    assert torch.equal(torch.stack(ys), _reference_delay(x, d))


@pytest.mark.parametrize("d,start,T", [(1, 0, 1), (2, 1, 1), (3, 2, 5), (4, 4, 2), (5, 0, 3)])
def test_delay_multi_step_equals_the_step_loop(d, start, T):
    x = torch.randn(T, 3, dtype=torch.float64, requires_grad=True)
    q0 = tuple(torch.randn(3, dtype=torch.float64, requires_grad=True) for _ in range(start))
    y1, q1 = functional.delay_multi_step(x, q0, d)
    q2, ys = q0, []
    for t in range(T):
        y, q2 = functional.delay_step(x[t], q2, d)
        ys.append(y)
    y2 = torch.stack(ys)
    assert torch.equal(y1, y2) and len(q1) == len(q2)
    assert all(torch.equal(a, b) for a, b in zip(q1, q2))
    w = torch.randn(T * 3 + 3 * len(q1), dtype=torch.float64)
    out1 = torch.cat([y1.flatten(), *[q.flatten() for q in q1]])
    out2 = torch.cat([y2.flatten(), *[q.flatten() for q in q2]])
    g1 = torch.autograd.grad((out1 * w).sum(), (x, *q0), allow_unused=True, materialize_grads=True)
    g2 = torch.autograd.grad((out2 * w).sum(), (x, *q0), allow_unused=True, materialize_grads=True)
    for a, b in zip(g1, g2):
        assert torch.equal(a, b)


def test_delay_multi_step_bad_queue():
    with pytest.raises(ValueError, match="more than delay_steps"):
        functional.delay_multi_step(torch.zeros(2, 3), (torch.zeros(3),) * 3, 2)
    with pytest.raises(ValueError, match="step shape"):
        functional.delay_multi_step(torch.zeros(2, 3), (torch.zeros(4),), 2)
    with pytest.raises(TypeError, match="delay_steps"):
        functional.delay_step(torch.zeros(3), (), True)


def test_seq_to_ann_forward_tuples_equal_a_per_step_loop():
    a, b = torch.randn(4, 2, 5), torch.randn(4, 2, 5)
    y = functional.seq_to_ann_forward((a, b), [lambda u, v: u * v, torch.tanh])
    assert torch.equal(y, torch.stack([torch.tanh(a[t] * b[t]) for t in range(4)]))
    x = torch.randn(3, 2, 1, 4, 4)
    vals, idx = functional.seq_to_ann_forward(x, nn.MaxPool2d(2, return_indices=True))
    for t in range(3):
        v_t, i_t = nn.functional.max_pool2d(x[t], 2, return_indices=True)
        assert torch.equal(vals[t], v_t) and torch.equal(idx[t], i_t)
    with pytest.raises(ValueError, match="empty tuple"):
        functional.seq_to_ann_forward((), torch.tanh)
    with pytest.raises(ValueError, match="leading"):
        functional.seq_to_ann_forward((a, b[:, :1]), lambda u, v: u)
    with pytest.raises(ValueError, match=r"x_seq\[1\]"):
        functional.seq_to_ann_forward((a, torch.zeros(4)), lambda u, v: u)


def test_step_mode_container_forms():
    lin = nn.Linear(3, 2)
    x = torch.randn(5, 4, 3)
    new = layer.StepModeContainer(False, "m", lin)
    old = layer.StepModeContainer(False, lin)
    assert old.step_mode == "s" and new.step_mode == "m"
    old.step_mode = "m"
    assert torch.equal(new(x), old(x)) and torch.equal(new(x), lin(x))
    with pytest.raises(TypeError, match="stateful"):
        layer.StepModeContainer("m", lin)


def test_supported_step_mode_names_and_classes():
    assert base.StepModule().supported_step_mode() == ("s", "m")
    assert base.SingleStepModule().supported_step_modes() == ("s",)
    assert base.MultiStepModule().supported_step_modes() == ("m",)
    c = layer.MultiStepContainer(nn.Identity())
    with pytest.raises(ValueError, match="step_mode"):
        c.step_mode = "s"
    functional.set_step_mode(nn.Sequential(c), "s")  # skipped: the container stays multi-step
    assert c.step_mode == "m"


class _PlainStepMode(nn.Module):
    """Not a StepModule but has a step_mode attribute: set_step_mode sets it (as SpikingJelly does)."""

    def __init__(self):
        super().__init__()
        self.step_mode = "s"


def test_set_step_mode_reaches_ottt_and_plain_attributes():
    net = nn.Sequential(nn.Linear(2, 2), neuron.OTTTLIFNode(), _PlainStepMode())
    functional.set_step_mode(net, "m")
    assert net[1].step_mode == "m" and net[2].step_mode == "m"


@pytest.mark.parametrize("training", [True, False])
def test_otttlifnode_multi_step_equals_single_steps(training):
    x = torch.rand(6, 3, 4) * 2
    a, b = neuron.OTTTLIFNode(store_v_seq=True), neuron.OTTTLIFNode()
    a.train(training)
    b.train(training)
    a.step_mode = "m"
    out_m = a(x)
    steps = [b(x[t]) for t in range(6)]
    if training:
        assert torch.equal(out_m[0], torch.stack([s for s, _ in steps]))
        assert torch.equal(out_m[1], torch.stack([tr for _, tr in steps]))
    else:
        assert torch.equal(out_m, torch.stack(steps))
    assert a.v_seq.shape == (6, 3, 4) and torch.equal(a.v_seq[-1], b.v)


@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_simple_nodes_equal_the_fused_neurons(v_reset, detach_reset):
    """SimpleIFNode/SimpleLIFNode (charge in self.v) against IFNode/LIFNode (hwsnn's own equations);
    with v_reset in {0, None} both start at 0."""
    x = (torch.randn(12, 3, 5) * 1.3).requires_grad_()
    kw = dict(v_reset=v_reset, detach_reset=detach_reset, step_mode="m", surrogate_function=surrogate.ATan())
    pairs = [
        (neuron.SimpleIFNode(**kw), neuron.IFNode(**kw, backend="torch")),
        (neuron.SimpleLIFNode(3.0, False, **kw), neuron.LIFNode(3.0, False, **kw, backend="torch")),
        (neuron.SimpleLIFNode(2.0, True, **kw), neuron.LIFNode(2.0, True, **kw, backend="torch")),
    ]
    for simple, fused in pairs:
        y1, y2 = simple(x), fused(x)
        assert torch.equal(y1, y2)
        torch.testing.assert_close(simple.v, fused.v)
        g = torch.randn_like(y1)
        (g1,) = torch.autograd.grad((y1 * g).sum() + simple.v.sum(), x)
        (g2,) = torch.autograd.grad((y2 * g).sum() + fused.v.sum(), x)
        torch.testing.assert_close(g1, g2)


def test_simple_base_node_state_and_errors():
    class Charge(neuron.SimpleBaseNode):
        def neuronal_charge(self, x):
            self.v = self.v + x

    n = Charge(v_threshold=torch.tensor([0.5, 2.0]))
    assert torch.equal(n(torch.tensor([1.0, 1.0])), torch.tensor([1.0, 0.0]))
    n(torch.zeros(3, 2))  # a new input shape restarts the membrane at 0
    assert n.v.shape == (3, 2)
    n.reset()
    assert n.v == 0.0
    with pytest.raises(TypeError, match="v_threshold"):
        Charge(v_threshold="1")
    with pytest.raises(ValueError, match="tau"):
        neuron.SimpleLIFNode(1.0, True)
    with pytest.raises(TypeError, match="tensor"):
        Charge()(1.0)


def test_reset_cache_helpers():
    net = nn.Sequential(nn.Linear(2, 2), neuron.IFNode(), layer.Delay(1))
    mods = functional.collect_reset_modules(net)
    assert [type(m) for m in mods] == [neuron.IFNode, layer.Delay]
    net(torch.ones(1, 2))
    functional.invalidate_reset_cache(net)
    functional.reset_collected_modules(mods)
    assert net[1].v == 0.0 and net[2].queue == []
    for fn in (functional.invalidate_reset_cache, functional.collect_reset_modules, functional.reset_net):
        with pytest.raises(TypeError, match="net"):
            fn([net])
    with pytest.raises(TypeError, match="reset"):
        functional.reset_collected_modules([nn.Linear(1, 1)])


def test_delay_queue_follows_to_and_detach():
    m = layer.Delay(2)
    x = torch.rand(3, requires_grad=True)
    m(x)
    assert m.queue[0].requires_grad
    m.detach()
    assert not m.queue[0].requires_grad
    m.double()
    assert m.queue[0].dtype == torch.float64
