import math

import pytest
import torch

from hwsnn import layer


def reference(x_seq, tau):
    """Independent loop of I[t] = I[t-1] - (1 - S[t]) I[t-1] / tau + S[t], I[-1] = 0."""
    i = torch.zeros_like(x_seq[0])
    out = []
    for x in x_seq:
        i = i * (1 - (1 - x) / tau) + x
        out.append(i)
    return torch.stack(out)


@pytest.mark.parametrize("learnable", [False, True])
@pytest.mark.parametrize("tau", [1.5, 4.0, 100.0])
def test_matches_reference(tau, learnable):
    x = (torch.rand(30, 3, 4, dtype=torch.float64) < 0.3).double()
    sf = layer.SynapseFilter(tau=tau, learnable=learnable, step_mode="m").double()
    y = sf(x)
    # a learnable tau lives in a float32 parameter w = -ln(tau - 1): compare at float32 precision
    tol = 1e-5 if learnable else 1e-10
    torch.testing.assert_close(y, reference(x, tau), rtol=tol, atol=tol)
    assert sf.tau_value == pytest.approx(tau, rel=1e-6)


def test_graded_inputs_follow_the_same_equation():
    x = torch.rand(10, 5, dtype=torch.float64)
    sf = layer.SynapseFilter(tau=3.0, step_mode="m")
    torch.testing.assert_close(sf(x), reference(x, 3.0))


@pytest.mark.parametrize("learnable", [False, True])
def test_single_and_multi_step_agree_and_reset_restores(learnable):
    x = (torch.rand(12, 2, 5) < 0.4).float().requires_grad_()
    s = layer.SynapseFilter(tau=5.0, learnable=learnable)
    m = layer.SynapseFilter(tau=5.0, learnable=learnable, step_mode="m")
    ys = torch.stack([s(x[t]) for t in range(12)])
    ym = m(x)
    torch.testing.assert_close(ys, ym)
    params_s = [x] + list(s.parameters())
    params_m = [x] + list(m.parameters())
    for gs, gm in zip(torch.autograd.grad(ys.square().sum(), params_s), torch.autograd.grad(ym.square().sum(), params_m)):
        torch.testing.assert_close(gs, gm)
    m.reset()
    assert m.out_i == 0.0
    torch.testing.assert_close(m(x), ym)


@pytest.mark.parametrize("learnable", [False, True])
def test_gradcheck(learnable):
    sf = layer.SynapseFilter(tau=3.0, learnable=learnable, step_mode="m").double()
    x = torch.rand(6, 2, 3, dtype=torch.float64, requires_grad=True)
    inputs = (x,) + tuple(sf.parameters())

    def f(x, *params):
        sf.reset()
        return sf(x)

    assert torch.autograd.gradcheck(f, inputs)


def test_learnable_tau_receives_a_gradient_and_stays_above_one():
    sf = layer.SynapseFilter(tau=2.0, learnable=True, step_mode="m")
    assert sf.w.item() == pytest.approx(-math.log(1.0))
    opt = torch.optim.SGD(sf.parameters(), lr=10.0)
    x = (torch.rand(20, 8) < 0.5).float()
    for _ in range(5):
        loss = -sf(x).sum()  # a longer memory raises the current: tau must grow
        opt.zero_grad()
        loss.backward()
        opt.step()
        sf.reset()
    assert sf.tau_value > 2.0


@pytest.mark.parametrize("tau,exc", [(1.0, ValueError), (0.5, ValueError), ("4", TypeError), (math.nan, TypeError)])
def test_bad_tau(tau, exc):
    with pytest.raises(exc, match="tau"):
        layer.SynapseFilter(tau=tau)
