import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from hwsnn import functional, layer


# ---------------------------------------------------------------------------------------------
# Delay
# ---------------------------------------------------------------------------------------------
def _documented_input():
    x = torch.rand([5, 2])
    x[3:].zero_()
    return x.requires_grad_(True)


EXPECTED_GRAD = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])


def test_delay_spikingjelly_documented_example():
    x = _documented_input()
    m = layer.Delay(delay_steps=1, step_mode="m")
    y = m(x)
    assert torch.equal(y[0], torch.zeros(2))
    assert torch.equal(y[1:], x[:-1])
    y.sum().backward()
    assert torch.equal(x.grad, EXPECTED_GRAD)


def test_functional_delay_documented_example():
    x = _documented_input()
    y = functional.delay(x, 1)
    assert torch.equal(y[0], torch.zeros(2))
    assert torch.equal(y[1:], x[:-1])
    y.sum().backward()
    assert torch.equal(x.grad, EXPECTED_GRAD)


def _reference_delay(x, d):
    """Index-based reference: y[t] = x[t-d] if t >= d else 0."""
    y = torch.zeros_like(x)
    for t in range(x.shape[0]):
        if t - d >= 0:
            y[t] = x[t - d]
    return y


@pytest.mark.parametrize("d", [0, 1, 2, 3, 7])
def test_delay_chunked_multi_step_equals_single_step_stream(d):
    T = 10
    x = torch.rand(T, 2, 3)
    ref = _reference_delay(x, d)

    ms = layer.Delay(d, step_mode="s")
    ys = torch.stack([ms(x[t]) for t in range(T)])
    assert torch.equal(ys, ref)

    mm = layer.Delay(d, step_mode="m")
    chunks = [x[0:3], x[3:4], x[4:9], x[9:10]]  # chunk lengths 3, 1, 5, 1 (some < d)
    ym = torch.cat([mm(c) for c in chunks])
    assert torch.equal(ym, ref)

    # mixing modes on one module continues the same FIFO
    mx = layer.Delay(d, step_mode="m")
    part1 = mx(x[:4])
    mx.step_mode = "s"
    part2 = torch.stack([mx(x[t]) for t in range(4, T)])
    assert torch.equal(torch.cat([part1, part2]), ref)


def test_delay_zero_is_identity():
    x = torch.rand(4, 3)
    assert torch.equal(layer.Delay(0, step_mode="m")(x), x)
    assert torch.equal(layer.Delay(0)(x[0]), x[0])


def test_delay_reset_zeroes_fifo():
    m = layer.Delay(2, step_mode="m")
    m(torch.ones(3, 4))
    assert m.fifo.shape == (2, 4)
    assert torch.equal(m(torch.zeros(1, 4))[0], torch.ones(4))  # carried over
    m.reset()
    assert m.fifo is None
    assert torch.equal(m(torch.ones(2, 4)), torch.zeros(2, 4))


def test_delay_shape_change_reinitialises_fifo():
    m = layer.Delay(1)
    m(torch.ones(2, 3))
    y = m(torch.ones(5))
    assert torch.equal(y, torch.zeros(5))


@pytest.mark.parametrize("d", [1, 3])
def test_delay_single_and_multi_step_same_outputs_and_gradients(d):
    T = 6
    x = torch.rand(T, 2, 3)
    upstream = torch.rand_like(x)

    xs = x.clone().requires_grad_(True)
    ms = layer.Delay(d, step_mode="s")
    ys = torch.stack([ms(xs[t]) for t in range(T)])
    (ys * upstream).sum().backward()

    xm = x.clone().requires_grad_(True)
    mm = layer.Delay(d, step_mode="m")
    ym = mm(xm)
    (ym * upstream).sum().backward()

    assert torch.equal(ys, ym)
    assert torch.equal(xs.grad, xm.grad)
    # gradient of y[t] = x[t-d]: x[t] gets upstream[t+d]
    expected = torch.zeros_like(x)
    expected[: T - d] = upstream[d:]
    assert torch.equal(xm.grad, expected)


@pytest.mark.parametrize("d", [0, 1, 2, 5])
def test_delay_gradcheck(d):
    x = torch.rand(4, 2, 3, dtype=torch.float64, requires_grad=True)

    def f(inp):
        m = layer.Delay(d, step_mode="m")
        return torch.cat([m(inp[:1]), m(inp[1:])])  # across two calls

    assert torch.autograd.gradcheck(f, (x,))


def test_delay_detach_cuts_graph():
    m = layer.Delay(2, step_mode="m")
    x = torch.rand(3, 2, requires_grad=True)
    m(x)
    assert m.fifo.requires_grad
    m.detach()
    assert not m.fifo.requires_grad


def test_delay_steps_read_only():
    m = layer.Delay(3)
    assert m.delay_steps == 3
    with pytest.raises(AttributeError):
        m.delay_steps = 4


@pytest.mark.parametrize("d,exc", [(-1, ValueError), (1.0, TypeError), ("2", TypeError), (True, TypeError), (None, TypeError)])
def test_delay_bad_delay_steps(d, exc):
    with pytest.raises(exc, match="delay_steps"):
        layer.Delay(d)


def test_delay_multi_step_needs_time_axis():
    with pytest.raises(ValueError, match="T"):
        layer.Delay(1, step_mode="m")(torch.zeros(0, 3))


# ---------------------------------------------------------------------------------------------
# VotingLayer
# ---------------------------------------------------------------------------------------------
def _avg_pool_reference(x, v):
    lead = x.shape[:-1]
    flat = x.reshape(-1, 1, x.shape[-1])
    return F.avg_pool1d(flat, v, v).reshape(*lead, -1)


@pytest.mark.parametrize("v", [1, 2, 5])
def test_voting_matches_avg_pool_single_step(v):
    x = torch.rand(3, 4 * v)
    y = layer.VotingLayer(v)(x)
    assert y.shape == (3, 4)
    assert torch.allclose(y, _avg_pool_reference(x, v))


@pytest.mark.parametrize("v", [1, 3])
def test_voting_matches_avg_pool_multi_step_and_more_dims(v):
    x = torch.rand(5, 2, 7 * v)
    m = layer.VotingLayer(v, step_mode="m")
    assert torch.allclose(m(x), _avg_pool_reference(x, v))
    x4 = torch.rand(2, 3, 4, 2 * v)
    assert torch.allclose(layer.VotingLayer(v)(x4), _avg_pool_reference(x4, v))


def test_voting_single_and_multi_step_agree():
    x = torch.rand(4, 3, 20)
    ym = layer.VotingLayer(10, step_mode="m")(x)
    ys = torch.stack([layer.VotingLayer(10)(x[t]) for t in range(4)])
    assert torch.equal(ym, ys)


def test_voting_pairs_with_redundant_one_hot():
    labels = torch.tensor([0, 2, 1])
    oh = functional.redundant_one_hot(labels, 3, 4)
    assert torch.equal(layer.VotingLayer(4)(oh), F.one_hot(labels, 3).float())


def test_voting_gradcheck():
    x = torch.rand(3, 2, 12, dtype=torch.float64, requires_grad=True)
    m = layer.VotingLayer(4, step_mode="m")
    assert torch.autograd.gradcheck(m, (x,))


def test_voting_indivisible_last_dim_raises():
    with pytest.raises(ValueError, match="multiple of voting_size"):
        layer.VotingLayer(10)(torch.rand(2, 25))
    with pytest.raises(ValueError, match="multiple of voting_size"):
        layer.VotingLayer(3, step_mode="m")(torch.rand(2, 2, 10))


@pytest.mark.parametrize("v,exc", [(0, ValueError), (-2, ValueError), (2.0, TypeError), (True, TypeError)])
def test_voting_bad_voting_size(v, exc):
    with pytest.raises(exc, match="voting_size"):
        layer.VotingLayer(v)


def test_voting_step_mode_settable_by_set_step_mode():
    net = nn.Sequential(layer.VotingLayer(2))
    functional.set_step_mode(net, "m")
    assert net[0].step_mode == "m"


# ---------------------------------------------------------------------------------------------
# PrintShapeModule
# ---------------------------------------------------------------------------------------------
def test_print_shape_module(capsys):
    x = torch.rand(2, 3)
    m = layer.PrintShapeModule("here")
    assert m(x) is x
    out = capsys.readouterr().out
    assert out.strip() == f"here {x.shape}"
    layer.PrintShapeModule()(x)
    assert capsys.readouterr().out.startswith("PrintShapeModule torch.Size([2, 3])")
