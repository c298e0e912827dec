"""Parity with SpikingJelly 2.0 (the control): neurons, filters, delay, voting, helpers, OTTT.

CI installs the peer with ``pip install spikingjelly==2.0.0 --no-deps`` plus ``loguru`` (imported by
SpikingJelly's ``activation_based`` beyond torch and numpy); elsewhere these tests skip. The issue-17
items are in ``test_spikingjelly_conformance.py`` and ``test_spikingjelly_signatures.py``."""

import pytest
import torch

# One importorskip per submodule: the package itself imports without loguru, its submodules do not.
sjf = pytest.importorskip("spikingjelly.activation_based.functional", reason="needs spikingjelly==2.0.0 (and loguru)")
sjl = pytest.importorskip("spikingjelly.activation_based.layer")
sjn = pytest.importorskip("spikingjelly.activation_based.neuron")
sjs = pytest.importorskip("spikingjelly.activation_based.surrogate")

from hwsnn import functional, layer, neuron, surrogate  # noqa: E402

NEURONS = [
    ("IFNode", dict(v_reset=0.0)),
    ("IFNode", dict(v_reset=None, detach_reset=True)),
    ("LIFNode", dict(tau=2.0, decay_input=True)),
    ("LIFNode", dict(tau=3.0, decay_input=False, v_reset=None)),
    ("LIFNode", dict(tau=1.7, decay_input=True, v_reset=-0.2, v_threshold=0.8)),
]
SURROGATES = [("Sigmoid", 4.0), ("ATan", 2.0), ("PiecewiseQuadratic", 1.0)]


@pytest.mark.parametrize("name,kw", NEURONS)
@pytest.mark.parametrize("sg_name,alpha", SURROGATES)
def test_neurons_match_spikingjelly(name, kw, sg_name, alpha):
    x = (torch.randn(10, 3, 7) * 1.5).requires_grad_()
    ours = getattr(neuron, name)(step_mode="m", surrogate_function=getattr(surrogate, sg_name)(alpha=alpha), **kw)
    theirs = getattr(sjn, name)(step_mode="m", surrogate_function=getattr(sjs, sg_name)(alpha=alpha), **kw)
    y1, y2 = ours(x), theirs(x)
    assert torch.equal(y1, y2)
    torch.testing.assert_close(ours.v, theirs.v)
    g = torch.randn_like(y1)
    (g1,) = torch.autograd.grad((y1 * g).sum() + ours.v.sum(), x)
    (g2,) = torch.autograd.grad((y2 * g).sum() + theirs.v.sum(), x)
    torch.testing.assert_close(g1, g2)


def test_synapse_filter_delay_voting_match():
    x = (torch.rand(12, 2, 20) < 0.4).float()
    torch.testing.assert_close(layer.SynapseFilter(tau=5.0, step_mode="m")(x), sjl.SynapseFilter(tau=5.0, step_mode="m")(x))
    torch.testing.assert_close(layer.Delay(3, step_mode="m")(x), sjl.Delay(3, step_mode="m")(x))
    torch.testing.assert_close(layer.VotingLayer(10, step_mode="m")(x), sjl.VotingLayer(10, step_mode="m")(x))


def test_functional_helpers_match():
    labels = torch.randint(0, 5, (9,))
    assert torch.equal(functional.redundant_one_hot(labels, 5, 3), sjf.redundant_one_hot(labels, 5, 3))
    spikes = (torch.rand(4, 16) < 0.3).float()
    assert torch.equal(functional.first_spike_index(spikes), sjf.first_spike_index(spikes))
    x = torch.rand(6, 3)
    assert torch.equal(functional.delay(x, 2), sjf.delay(x, 2))


def test_ottt_node_matches():
    x = torch.rand(5, 3, 4) * 2
    ours, theirs = neuron.OTTTLIFNode(), sjn.OTTTLIFNode()
    for t in range(5):
        (s1, tr1), (s2, tr2) = ours(x[t]), theirs(x[t])
        assert torch.equal(s1, s2)
        torch.testing.assert_close(tr1, tr2)
