import itertools

import numpy as np
import pytest
import torch

from hwsnn import functional, neuron, surrogate


def reference(x_seq, kind, v_threshold=1.0, v_reset=0.0, tau=2.0, decay_input=True):
    """Independent NumPy float64 implementation of the documented equations."""
    x_seq = np.asarray(x_seq, dtype=np.float64)
    vr = 0.0 if v_reset is None else v_reset
    v = np.full(x_seq.shape[1:], vr)
    spikes, vs = [], []
    for x in x_seq:
        if kind == "if":
            h = v + x
        elif decay_input:
            h = v + (x - (v - vr)) / tau
        else:
            h = v - (v - vr) / tau + x
        s = (h >= v_threshold).astype(np.float64)
        v = h - s * v_threshold if v_reset is None else s * v_reset + (1 - s) * h
        spikes.append(s)
        vs.append(v)
    return np.stack(spikes), np.stack(vs)


def make(kind, **kw):
    return neuron.IFNode(**kw) if kind == "if" else neuron.LIFNode(**kw)


CASES = [
    ("if", dict(v_reset=0.0)),
    ("if", dict(v_reset=None)),
    ("if", dict(v_reset=-0.3, v_threshold=0.7)),
    ("lif", dict(v_reset=0.0, tau=2.0, decay_input=True)),
    ("lif", dict(v_reset=None, tau=3.5, decay_input=True)),
    ("lif", dict(v_reset=0.2, tau=4.0, decay_input=False)),
    ("lif", dict(v_reset=None, tau=1.5, decay_input=False)),
]


@pytest.mark.parametrize("kind,kw", CASES)
@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_matches_reference_equations(kind, kw, step_mode):
    x = torch.randn(12, 3, 5, dtype=torch.float64) * 1.5
    n = make(kind, step_mode=step_mode, store_v_seq=True, **kw)
    if step_mode == "m":
        s = n(x)
        v_seq = n.v_seq
    else:
        outs = [(n(x[t]), n.v.clone()) for t in range(x.shape[0])]
        s = torch.stack([o[0] for o in outs])
        v_seq = torch.stack([o[1] for o in outs])
    ref_kw = {k: v for k, v in kw.items() if k in ("v_reset", "v_threshold", "tau", "decay_input")}
    s_ref, v_ref = reference(x.numpy(), kind, **ref_kw)
    assert 0 < s.sum() < s.numel(), "test input must produce both spikes and silence"
    np.testing.assert_array_equal(s.numpy(), s_ref)
    np.testing.assert_allclose(v_seq.numpy(), v_ref, rtol=1e-12, atol=1e-12)


def test_fire_is_inclusive_at_threshold():
    n = neuron.IFNode(v_threshold=1.0)
    assert n(torch.tensor([1.0, 0.999])).tolist() == [1.0, 0.0]
    assert n.v[0].item() == 0.0 and n.v[1].item() == pytest.approx(0.999)


def test_defaults_follow_the_seed():
    lif = neuron.LIFNode()
    assert (lif.tau, lif.decay_input, lif.v_threshold, lif.v_reset, lif.detach_reset, lif.step_mode, lif.store_v_seq) == (
        2.0, True, 1.0, 0.0, False, "s", False)
    assert isinstance(lif.surrogate_function, surrogate.Sigmoid) and lif.surrogate_function.alpha == 4.0
    assert neuron.IFNode(v_reset=None).v == 0.0


def test_v_starts_scalar_becomes_tensor_and_reinitialises_on_shape_change():
    n = neuron.IFNode(v_reset=-0.5)
    assert n.v == -0.5
    n(torch.full((4,), 0.2))
    assert isinstance(n.v, torch.Tensor) and n.v.shape == (4,)
    assert torch.allclose(n.v, torch.full((4,), -0.3))
    n(torch.zeros(2, 3))  # new shape: starts again from v_reset
    assert torch.allclose(n.v, torch.full((2, 3), -0.5))
    n.reset()
    assert n.v == -0.5


@pytest.mark.parametrize("kind,kw", CASES)
def test_single_and_multi_step_give_same_outputs_and_gradients(kind, kw):
    x = (torch.randn(8, 2, 6) * 1.5).requires_grad_()
    ns = make(kind, **kw)
    nm = make(kind, step_mode="m", **kw)
    ys = torch.stack([ns(x[t]) for t in range(8)])
    ym = nm(x)
    assert torch.equal(ys, ym)
    g = torch.randn_like(ys)
    (gs,) = torch.autograd.grad((ys * g).sum() + ns.v.sum(), x)
    (gm,) = torch.autograd.grad((ym * g).sum() + nm.v.sum(), x)
    torch.testing.assert_close(gs, gm)
    assert gs.abs().sum() > 0


def test_reset_restores_initial_state():
    n = neuron.LIFNode(step_mode="m")
    x = torch.rand(5, 3) * 3
    first = n(x)
    n.reset()
    assert n.v == 0.0
    assert torch.equal(n(x), first)


def test_detach_reset_only_changes_the_reset_gradient():
    x = (torch.rand(6, 4) * 2).requires_grad_()
    grads, outs = [], []
    for detach in (False, True):
        n = neuron.LIFNode(detach_reset=detach, step_mode="m", store_v_seq=True)
        s = n(x)
        outs.append(s)
        (g,) = torch.autograd.grad(s.sum() + n.v_seq.sum(), x)
        grads.append(g)
        # the emitted spike keeps its surrogate gradient even with detach_reset
        assert s.requires_grad
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(grads[0], grads[1])


@pytest.mark.parametrize("kind,kw", CASES)
@pytest.mark.parametrize("sg", [surrogate.Sigmoid, surrogate.ATan])
def test_gradcheck_with_smooth_surrogate(kind, kw, sg):
    n = make(kind, step_mode="m", surrogate_function=sg(spiking=False), **kw)
    x = (torch.randn(5, 3, dtype=torch.float64) * 1.5).requires_grad_()

    def f(x):
        n.reset()
        return n(x), n.v

    assert torch.autograd.gradcheck(f, (x,))


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_tensor_threshold_from_set_threshold_margin(step_mode):
    out = neuron.LIFNode(step_mode=step_mode)
    label = torch.nn.functional.one_hot(torch.tensor([0, 2, 1]), 3).float()
    functional.set_threshold_margin(out, label)
    assert out.v_threshold.shape == (3, 3)
    x = torch.rand(4, 3, 3) * 3
    y = out(x) if step_mode == "m" else torch.stack([out(x[t]) for t in range(4)])
    # reference with the per-element threshold
    vth = label * 1.1 + (1 - label) * 0.9
    v = torch.zeros(3, 3)
    for t in range(4):
        h = v + (x[t] - v) / 2.0
        s = (h >= vth).float()
        assert torch.equal(y[t], s)
        v = (1 - s) * h
    out.eval()
    functional.set_threshold_margin(out, label)
    assert out.v_threshold == 1.0


def test_tensor_threshold_that_would_enlarge_the_state_is_rejected():
    n = neuron.IFNode(v_threshold=torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="v_threshold"):
        n(torch.zeros(3, 4))


@pytest.mark.parametrize("tau", [1.0, 0.5, -2.0])
def test_bad_tau(tau):
    with pytest.raises(ValueError, match="tau must be > 1"):
        neuron.LIFNode(tau=tau)


@pytest.mark.parametrize("arg,value,exc", [
    ("tau", "2", TypeError), ("v_threshold", "1", TypeError), ("v_reset", float("nan"), TypeError),
    ("surrogate_function", 3, TypeError),
])
def test_bad_constructor_arguments(arg, value, exc):
    with pytest.raises(exc, match=arg):
        neuron.LIFNode(**{arg: value})


def test_ottt_node_returns_spike_and_trace_in_training_and_spike_in_eval():
    n = neuron.OTTTLIFNode()
    assert (n.decay_input, n.v_reset, n.detach_reset) == (False, None, True)
    x = torch.rand(6, 4) * 2
    trace_ref = torch.zeros(4)
    for t in range(6):
        spike, trace = n(x[t])
        trace_ref = trace_ref * (1 - 1 / n.tau) + spike.detach()
        assert torch.allclose(trace, trace_ref) and not trace.requires_grad
    n.reset()
    n.eval()
    assert isinstance(n(x[0]), torch.Tensor)
    with pytest.raises(ValueError, match="step_mode"):
        neuron.OTTTLIFNode(step_mode="m")


def test_ottt_node_detaches_v_between_steps():
    n = neuron.OTTTLIFNode()
    x = (torch.rand(3, 4) * 2).requires_grad_()
    n(x[0])
    spike, _ = n(x[1])
    (g,) = torch.autograd.grad(spike.sum(), x, allow_unused=True)
    assert torch.all(g[0] == 0) and g[1].abs().sum() > 0
