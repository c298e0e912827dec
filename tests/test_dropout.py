import math

import pytest
import torch
import torch.nn as nn

from hwsnn import functional, layer


# ---------------------------------------------------------------------------------------------
# Dropout / Dropout2d
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,shape", [(layer.Dropout, (4, 6, 5)), (layer.Dropout2d, (4, 6, 5, 5))])
def test_mask_fixed_over_time_and_redrawn_after_reset(cls, shape):
    T = 6
    m = cls(p=0.5)
    m.train()
    x = torch.ones(T, *shape)
    ys = [m(x[t]) for t in range(T)]
    zero0 = ys[0] == 0
    assert zero0.any() and (~zero0).any()
    for y in ys[1:]:
        assert torch.equal(y == 0, zero0)
        assert torch.equal(y, ys[0])
    m.reset()
    assert m.mask is None
    y_new = m(x[0])
    assert not torch.equal(y_new == 0, zero0)


@pytest.mark.parametrize("cls", [layer.Dropout, layer.Dropout2d])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 0.9])
def test_mask_values_are_zero_or_inverse_keep(cls, p):
    m = cls(p=p)
    y = m(torch.ones(8, 16, 4, 4))
    scale = torch.tensor(1.0 / (1.0 - p))
    assert torch.all((y == 0) | (y == scale))
    if p == 0.0:
        assert torch.all(y == 1)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_keep_rate_binomial(p):
    n = 200_000
    m = layer.Dropout(p=p)
    y = m(torch.ones(n))
    kept = int((y != 0).sum())
    mean, sd = n * (1 - p), math.sqrt(n * p * (1 - p))
    assert abs(kept - mean) < 5 * sd


def test_dropout2d_keep_rate_binomial_and_whole_channels():
    p = 0.3
    N, C, H, W = 100, 200, 3, 4
    m = layer.Dropout2d(p=p)
    y = m(torch.ones(N, C, H, W))
    assert m.mask.shape == (N, C, 1, 1)
    per_channel_zero = (y == 0).flatten(2)
    # every channel is either entirely zero or entirely kept
    assert torch.all(per_channel_zero.all(-1) | (~per_channel_zero).all(-1))
    kept = int((~per_channel_zero[..., 0]).sum())
    n = N * C
    assert abs(kept - n * (1 - p)) < 5 * math.sqrt(n * p * (1 - p))


def test_dropout2d_rank_one_step_raises():
    with pytest.raises(ValueError, match=r"\[N, C"):
        layer.Dropout2d()(torch.ones(5))


@pytest.mark.parametrize("cls", [layer.Dropout, layer.Dropout2d])
def test_eval_is_identity(cls):
    m = cls(p=0.5).eval()
    x = torch.rand(3, 4, 5, 5)
    assert m(x) is x
    m.step_mode = "m"
    x_seq = torch.rand(2, 3, 4, 5, 5)
    assert torch.equal(m(x_seq), x_seq)
    assert m.mask is None


@pytest.mark.parametrize("cls", [layer.Dropout, layer.Dropout2d])
def test_single_and_multi_step_identical_with_same_seed(cls):
    T = 5
    x = torch.rand(T, 3, 4, 2, 2)
    upstream = torch.rand_like(x)

    torch.manual_seed(123)
    xs = x.clone().requires_grad_(True)
    ms = cls(p=0.4, step_mode="s")
    ys = torch.stack([ms(xs[t]) for t in range(T)])
    (ys * upstream).sum().backward()

    torch.manual_seed(123)
    xm = x.clone().requires_grad_(True)
    mm = cls(p=0.4, step_mode="m")
    ym = mm(xm)
    (ym * upstream).sum().backward()

    assert torch.equal(ys, ym)
    assert torch.equal(xs.grad, xm.grad)
    assert (ys == 0).any()


def test_masks_reproducible_with_manual_seed():
    torch.manual_seed(7)
    a = layer.Dropout(0.5)(torch.ones(50))
    torch.manual_seed(7)
    b = layer.Dropout(0.5)(torch.ones(50))
    assert torch.equal(a, b)


@pytest.mark.parametrize("cls", [layer.Dropout, layer.Dropout2d])
def test_shape_change_without_reset_raises(cls):
    m = cls(p=0.5)
    m(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="reset"):
        m(torch.ones(1, 3, 4))
    m.step_mode = "m"
    with pytest.raises(ValueError, match="reset"):
        m(torch.ones(2, 3, 3, 4))
    m.reset()
    m(torch.ones(2, 3, 3, 4))  # fine after a reset


def test_reset_net_redraws_mask():
    net = nn.Sequential(layer.Dropout(0.5))
    y1 = net(torch.ones(64))
    functional.reset_net(net)
    y2 = net(torch.ones(64))
    assert not torch.equal(y1, y2)


@pytest.mark.parametrize("cls", [layer.Dropout, layer.Dropout2d])
@pytest.mark.parametrize("p,exc", [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError),
                                   ("0.5", TypeError), (True, TypeError), (None, TypeError),
                                   (float("nan"), TypeError)])
def test_bad_p_raises(cls, p, exc):
    with pytest.raises(exc, match="p"):
        cls(p=p)


def test_bad_step_mode_raises():
    with pytest.raises(ValueError, match="step_mode"):
        layer.Dropout(step_mode="x")


# ---------------------------------------------------------------------------------------------
# DropConnectLinear
# ---------------------------------------------------------------------------------------------
def test_dropconnect_parameters_and_state_dict():
    m = layer.DropConnectLinear(5, 3)
    assert m.weight.shape == (3, 5) and m.bias.shape == (3,)
    assert set(m.state_dict()) == {"weight", "bias"}
    bound = 1 / math.sqrt(5)
    assert m.bias.abs().max() <= bound
    assert m.weight.abs().max() <= bound  # kaiming_uniform(a=sqrt(5)) bound is 1/sqrt(fan_in)
    m2 = layer.DropConnectLinear(5, 3, bias=False)
    assert m2.bias is None and set(m2.state_dict()) == {"weight"}
    m2.load_state_dict({"weight": torch.zeros(3, 5)})
    assert torch.all(m2.weight == 0)


def test_dropconnect_default_activation_is_fresh_relu_and_none_means_identity():
    a, b = layer.DropConnectLinear(2, 2), layer.DropConnectLinear(2, 2)
    assert isinstance(a.activation, nn.ReLU) and a.activation is not b.activation
    c = layer.DropConnectLinear(2, 2, activation=None)
    assert c.activation is None
    c.weight.data.fill_(-1.0)
    c.bias.data.fill_(-1.0)
    c.p = 0.0
    y = c(torch.ones(3, 2))
    assert torch.allclose(y, torch.full((3, 2), -3.0))  # no ReLU applied


def test_dropconnect_train_masks_differ_per_sample_and_match_explicit_formula():
    torch.manual_seed(1)
    m = layer.DropConnectLinear(16, 8, p=0.5, activation=None).train()
    x = torch.rand(1, 16).repeat(4, 1)  # identical samples
    y = m(x)
    assert y.shape == (4, 8)
    assert m.dropped_w.shape == (4, 8, 16) and m.dropped_b.shape == (4, 8)
    for n in range(1, 4):
        assert not torch.equal(m.dropped_w[0] == 0, m.dropped_w[n] == 0)
        assert not torch.equal(y[0], y[n])
    # recompute each sample from its own masked weights
    for n in range(4):
        ref = m.dropped_w[n] @ x[n] + m.dropped_b[n]
        assert torch.allclose(y[n], ref, atol=1e-6)
    # the masks are unscaled: kept weights equal the weights
    kept = m.dropped_w != 0
    assert torch.equal(m.dropped_w[kept], m.weight.detach().expand(4, 8, 16)[kept])


def test_dropconnect_masks_redrawn_per_call_unless_invariant():
    x = torch.rand(3, 10)
    m = layer.DropConnectLinear(10, 6, invariant=False)
    m(x)
    w1 = m.dropped_w.clone()
    m(x)
    assert not torch.equal(w1, m.dropped_w)

    mi = layer.DropConnectLinear(10, 6, invariant=True)
    y1 = mi(x)
    mask1 = mi.mask_w.clone()
    y2 = mi(x)
    assert torch.equal(mask1, mi.mask_w) and torch.equal(y1, y2)
    mi.reset()
    assert mi.dropped_w is None and mi.mask_w is None
    mi(x)
    assert not torch.equal(mask1, mi.mask_w)


def test_dropconnect_invariant_follows_weight_updates_and_backward_twice():
    m = layer.DropConnectLinear(6, 4, invariant=True, activation=None)
    x = torch.rand(2, 6)
    m(x).sum().backward()
    g = m.weight.grad.clone()
    # d/dW sum_n (W*M_n) x_n = sum_n M_n * x_n^T
    ref = (m.mask_w.to(x.dtype) * x[:, None, :]).sum(0)
    assert torch.allclose(g, ref)
    with torch.no_grad():
        m.weight.add_(1.0)
    y = m(x)  # a second backward through the kept masks must work
    y.sum().backward()
    assert torch.allclose(m.dropped_w, m.weight.detach() * m.mask_w)


def test_dropconnect_multi_step_shapes():
    m = layer.DropConnectLinear(5, 3, step_mode="m")
    assert m(torch.rand(4, 2, 5)).shape == (4, 2, 3)
    m.eval()
    assert m(torch.rand(4, 2, 5)).shape == (4, 2, 3)


def _normal_cdf(z):
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def test_dropconnect_eval_mean_without_activation_is_mu():
    torch.manual_seed(3)
    p, S = 0.3, 20000
    m = layer.DropConnectLinear(12, 5, p=p, samples_num=S, activation=None).double().eval()
    x = torch.rand(4, 12, dtype=torch.float64)
    y = m(x)
    W, b = m.weight.detach(), m.bias.detach()
    # independent: mean and variance of the explicit Bernoulli-masked sum
    mu = (1 - p) * (x @ W.T + b)
    var = p * (1 - p) * ((x[:, None, :] * W[None]) ** 2).sum(-1) + p * (1 - p) * b**2
    assert torch.all((y - mu).abs() < 5 * (var / S).sqrt() + 1e-12)

    # the same moments from a Monte-Carlo of the train-time masked computation
    m.train()
    K = 4000
    draws = torch.stack([m(x) for _ in range(K)])
    assert torch.all((draws.mean(0) - mu).abs() < 5 * (var / K).sqrt())
    assert torch.allclose(draws.var(0), var, rtol=0.15)


def test_dropconnect_eval_mean_with_relu_matches_closed_form():
    torch.manual_seed(4)
    p, S = 0.5, 40000
    m = layer.DropConnectLinear(20, 6, p=p, samples_num=S).double().eval()
    x = torch.rand(3, 20, dtype=torch.float64) * 2 - 1
    y = m(x)
    W, b = m.weight.detach(), m.bias.detach()
    mu = (1 - p) * (x @ W.T + b)
    sigma = (p * (1 - p) * (x.square() @ W.square().T + b.square())).sqrt()
    # E[relu(Z)], Z ~ N(mu, sigma^2) = mu * Phi(mu/sigma) + sigma * phi(mu/sigma)
    z = mu / sigma
    expected = mu * _normal_cdf(z) + sigma * torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    assert y.shape == (3, 6)
    assert torch.all(y >= 0)
    assert torch.all((y - expected).abs() < 5 * sigma / math.sqrt(S))


def test_dropconnect_eval_zero_variance_is_finite():
    m = layer.DropConnectLinear(3, 2, bias=False, activation=None).eval()
    x = torch.zeros(2, 3, requires_grad=True)
    y = m(x)
    assert torch.allclose(y, torch.zeros(2, 2))
    y.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_dropconnect_reset_resets_activation():
    calls = []

    class Act(nn.Module):
        def forward(self, x):
            return x

        def reset(self):
            calls.append(1)

    m = layer.DropConnectLinear(3, 2, activation=Act())
    m.reset()
    assert calls == [1]


@pytest.mark.parametrize("bad", [torch.rand(2, 4), torch.rand(5), torch.rand(2, 3, 5)])
def test_dropconnect_bad_input_raises(bad):
    m = layer.DropConnectLinear(5, 3)
    with pytest.raises(ValueError, match="in_features"):
        m(bad)
    m.eval()
    with pytest.raises(ValueError, match="in_features"):
        m(bad)


def test_dropconnect_invariant_batch_change_raises():
    m = layer.DropConnectLinear(5, 3, invariant=True)
    m(torch.rand(2, 5))
    with pytest.raises(ValueError, match="reset"):
        m(torch.rand(3, 5))


@pytest.mark.parametrize(
    "kwargs,exc,name",
    [
        (dict(in_features=0, out_features=3), ValueError, "in_features"),
        (dict(in_features=2.0, out_features=3), TypeError, "in_features"),
        (dict(in_features=2, out_features=0), ValueError, "out_features"),
        (dict(in_features=2, out_features=3, p=1.0), ValueError, "p"),
        (dict(in_features=2, out_features=3, p="x"), TypeError, "p"),
        (dict(in_features=2, out_features=3, samples_num=0), ValueError, "samples_num"),
        (dict(in_features=2, out_features=3, samples_num=True), TypeError, "samples_num"),
        (dict(in_features=2, out_features=3, activation=3), TypeError, "activation"),
    ],
)
def test_dropconnect_bad_arguments(kwargs, exc, name):
    with pytest.raises(exc, match=name):
        layer.DropConnectLinear(**kwargs)


def test_set_step_mode_does_not_switch_the_dropconnect_activation():
    from hwsnn import neuron

    dc = layer.DropConnectLinear(4, 3, activation=neuron.IFNode())
    net = torch.nn.Sequential(dc)
    functional.set_step_mode(net, "m")
    assert dc.step_mode == "m" and dc.activation.step_mode == "s"
    y = net(torch.rand(5, 2, 4))
    assert y.shape == (5, 2, 3)
