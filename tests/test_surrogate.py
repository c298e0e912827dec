import math

import pytest
import torch

from hwsnn import neuron, surrogate

SURROGATES = [surrogate.Sigmoid, surrogate.ATan, surrogate.PiecewiseQuadratic]


@pytest.mark.parametrize("cls", SURROGATES)
def test_forward_is_inclusive_heaviside(cls):
    x = torch.tensor([-1.0, -1e-6, 0.0, 1e-6, 2.0])
    assert torch.equal(cls()(x), torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))


@pytest.mark.parametrize("cls", SURROGATES)
@pytest.mark.parametrize("alpha", [0.5, 1.0, 4.0])
def test_backward_is_the_derivative_of_the_primitive(cls, alpha):
    sg = cls(alpha=alpha)
    x = torch.linspace(-3, 3, 601, dtype=torch.float64, requires_grad=True)
    g = torch.rand_like(x)
    (grad_custom,) = torch.autograd.grad(sg(x), x, g)
    sg.set_spiking_mode(False)
    (grad_primitive,) = torch.autograd.grad(sg(x), x, g)
    torch.testing.assert_close(grad_custom, grad_primitive)


def test_documented_gradients_at_zero():
    x = torch.zeros(1, requires_grad=True)
    for sg, expected in [
        (surrogate.Sigmoid(alpha=4.0), 4.0 * 0.25),
        (surrogate.ATan(alpha=2.0), 2.0 / 2),
        (surrogate.PiecewiseQuadratic(alpha=1.0), 1.0),
    ]:
        (g,) = torch.autograd.grad(sg(x).sum(), x)
        assert g.item() == pytest.approx(expected)
    # piecewise quadratic vanishes outside |x| <= 1/alpha
    x = torch.tensor([1.5, -1.5], requires_grad=True)
    (g,) = torch.autograd.grad(surrogate.PiecewiseQuadratic()(x).sum(), x)
    assert torch.equal(g, torch.zeros(2))


def test_primitive_limits():
    x = torch.tensor([-50.0, 50.0])
    for cls in SURROGATES:
        y = cls(spiking=False)(x)
        assert y[0].item() == pytest.approx(0.0, abs=0.02) and y[1].item() == pytest.approx(1.0, abs=0.02)
    assert surrogate.ATan(spiking=False)(torch.zeros(1)).item() == pytest.approx(0.5)
    assert surrogate.PiecewiseQuadratic(spiking=False)(torch.zeros(1)).item() == pytest.approx(0.5)


def test_each_neuron_gets_its_own_surrogate():
    a, b = neuron.LIFNode(), neuron.LIFNode()
    assert a.surrogate_function is not b.surrogate_function
    a.surrogate_function.set_spiking_mode(False)
    assert b.surrogate_function.spiking


@pytest.mark.parametrize("alpha", [0, -1.0, math.inf, "2", True])
def test_bad_alpha(alpha):
    with pytest.raises(ValueError, match="alpha"):
        surrogate.Sigmoid(alpha=alpha)
