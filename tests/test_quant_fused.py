"""The fused QAT forward (quant.qat_fused) against the step-by-step path (HWSNN_QAT_FUSED=0).

Same values bit for bit (output, integer output, twin states and saturation counts, final float
states), same gradients to float tolerance (weights, biases, input, learnable filter tau, final
states), on every target and layer kind of ``test_quant_prepare``; and the fused path really runs.
"""

from __future__ import annotations

import copy
import importlib

import pytest
import torch
import torch.nn as nn

import hwsnn.layer as L
import hwsnn.neuron as N
import quant
import quant.qat_fused as QF
from hwsnn import surrogate as SG
from hwsnn.functional import set_step_mode
from test_quant_prepare import KINDS, TARGETS, _skip_unsupported, make_input, make_net

pytest.importorskip("numba")

_STATES = ("v", "i", "out_i")


def _run(net: nn.Module, target: str, x: torch.Tensor, fused: bool, monkeypatch, **prep) -> dict:
    """One QAT forward + backward of a fixed random loss; everything to compare."""
    monkeypatch.setenv("HWSNN_QAT_FUSED", "1" if fused else "0")
    qat = quant.prepare(copy.deepcopy(net), target, seed=5, **prep)
    xin = x.clone().requires_grad_()
    y = qat(xin)
    g = torch.Generator().manual_seed(11)
    loss = (y * torch.randn(y.shape, generator=g)).sum()
    states = {}
    for idx, m in enumerate(qat):
        for s in _STATES:
            v = getattr(m, s, None)
            if isinstance(v, torch.Tensor) and v.is_floating_point():
                states[f"{idx}.{s}"] = v
                if v.requires_grad:
                    loss = loss + (v * torch.randn(v.shape, generator=g)).sum()
    params = {n: p for n, p in qat.named_parameters() if p.requires_grad}
    leaves = [xin, *params.values()]
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)
    twin = qat._twin
    return dict(y=y.detach(), y_int=qat.last_integer_output, grads=dict(zip(["x", *params], grads)),
                states={k: v.detach() for k, v in states.items()},
                sat=[dict(getattr(m, "saturations", {})) for m in twin],
                twin_states=[{s: getattr(m, s).clone() for s in _STATES if isinstance(getattr(m, s, None), torch.Tensor)}
                             for m in twin])


def _compare(a: dict, b: dict, what: str) -> None:
    assert torch.equal(a["y"], b["y"]), f"{what}: outputs differ"
    assert torch.equal(a["y_int"], b["y_int"]), f"{what}: integer outputs differ"
    assert a["sat"] == b["sat"], f"{what}: saturation counts differ"
    for sa, sb in zip(a["twin_states"], b["twin_states"]):
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) and sa[k].dtype == sb[k].dtype for k in sa), what
    assert a["states"].keys() == b["states"].keys(), what
    for k in a["states"]:
        assert torch.equal(a["states"][k], b["states"][k]), f"{what}: final float state {k} differs"
    assert a["grads"].keys() == b["grads"].keys()
    for k, ga in a["grads"].items():
        gb = b["grads"][k]
        assert (ga is None) == (gb is None), f"{what}: gradient of {k} present in one path only"
        if ga is not None:
            torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4, msg=lambda m: f"{what}: grad {k}: {m}")


class _Counter:
    def __init__(self, monkeypatch):
        self.fused = 0
        real = QF.fused_stateful

        def spy(*a, **k):
            out = real(*a, **k)
            self.fused += out is not None
            return out

        monkeypatch.setattr(importlib.import_module("quant.prepare"), "fused_stateful", spy)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("kind", KINDS)
def test_fused_qat_equals_the_step_by_step_path(kind, target, monkeypatch):
    _skip_unsupported(kind, target)
    net = make_net(kind, target)
    x = make_input(kind, T=12, n=5)
    for mode in ("train", "eval"):
        getattr(net, mode)()
        counter = _Counter(monkeypatch)
        fused = _run(net, target, x, True, monkeypatch)
        n_stateful = sum(isinstance(m, (N.BaseNode, L.SynapseFilter)) for m in net)
        assert counter.fused == n_stateful, f"{kind}/{target}: the fused path ran for {counter.fused}/{n_stateful} layers"
        slow = _run(net, target, x, False, monkeypatch)
        assert counter.fused == n_stateful  # HWSNN_QAT_FUSED=0: none
        _compare(fused, slow, f"{kind}/{target}/{mode}")
        assert any(g is not None and float(g.abs().sum()) > 0 for k, g in fused["grads"].items() if k != "x")


@pytest.mark.parametrize("target", ["generic_int8", "loihi", "xylo"])
def test_fused_qat_gradients_with_other_surrogates_resets_and_learnable_tau(target, monkeypatch):
    reset = None if target != "loihi" else 0.0
    bias = target != "xylo"  # Xylo has no dense bias
    torch.manual_seed(3)
    layers = [L.Linear(16, 20, bias=bias), N.LIFNode(tau=2.0, decay_input=False, v_reset=reset, surrogate_function=SG.ATan()),
              L.Linear(20, 12, bias=bias), N.CubaLIFNode(tau_syn=2.0, tau_mem=4.0, v_reset=reset, detach_reset=False,
                                                         surrogate_function=SG.PiecewiseQuadratic())]
    if target != "xylo":  # Xylo's hidden multi-spikes cannot feed a filter
        layers += [L.SynapseFilter(tau=4.0, learnable=True)]
    net = nn.Sequential(*layers, L.Linear(12, 4, bias=False),
                        N.LIFNode(tau=4.0, decay_input=target == "generic_int8", v_reset=reset))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(3.0)
    set_step_mode(net, "m")
    x = make_input("lif", T=10, n=7)
    _compare(_run(net, target, x, True, monkeypatch), _run(net, target, x, False, monkeypatch), target)


def test_custom_surrogates_and_recurrent_layers_run_step_by_step(monkeypatch):
    class Mine(SG.Sigmoid):
        def derivative(self, x):  # a changed derivative: not a built-in any more
            return super().derivative(x) * 2

    torch.manual_seed(0)
    net = nn.Sequential(L.Linear(16, 8, bias=False), N.LIFNode(tau=2.0, decay_input=False, v_reset=None,
                                                                surrogate_function=Mine()),
                        L.Linear(8, 6, bias=False), N.LIFNode(tau=2.0, decay_input=False, v_reset=None))
    set_step_mode(net, "m")
    counter = _Counter(monkeypatch)
    x = make_input("lif", T=6, n=3)
    _compare(_run(net, "generic_int8", x, True, monkeypatch), _run(net, "generic_int8", x, False, monkeypatch), "mixed")
    assert counter.fused == 1  # only the second neuron


@pytest.mark.parametrize("target,kind", [("generic_int8", "filter_delay"), ("generic_int8", "dropout"),
                                         ("loihi", "filter_delay"), ("xylo", "cuba")])
def test_reused_twins_equal_a_fresh_conversion_after_optimizer_steps(target, kind):
    """QAT rebuilds its twin after every optimizer step, reusing the twins of unchanged layers: every
    forward must equal a fresh conversion's, and a changed setting must be picked up."""
    from hwsnn.functional import reset_net

    net = make_net(kind, target).train()
    qat = quant.prepare(net, target, seed=2)
    opt = torch.optim.Adam([p for p in qat.parameters() if p.requires_grad], lr=2e-2)
    x = make_input(kind, T=10, n=4)

    def forward_equals_fresh() -> None:
        twin, fresh = qat._twin, qat.to_twin()
        for a, b in zip(twin, fresh):
            if hasattr(a, "draws"):
                b.draws = a.draws - 1  # the mask the forward drew
        assert quant.conversion_table(twin) == quant.conversion_table(fresh)
        reset_net(fresh)
        assert torch.equal(qat.last_integer_output, fresh(x.to(torch.int8)))
        assert [getattr(m, "saturations", None) for m in twin] == [getattr(m, "saturations", None) for m in fresh]

    reused = 0
    for _ in range(3):
        before = list(qat._twin) if qat._twin is not None else []
        loss = qat(x).square().mean()
        forward_equals_fresh()
        reused += sum(any(a is b for b in before) for a in qat._twin)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert reused > 0  # the reuse really happened
    neuron = next(i for i, m in enumerate(qat) if isinstance(m, N.BaseNode))
    old = qat._twin[neuron]
    qat[neuron].v_threshold = 0.5  # a setting change: a new twin at the next rebuild
    qat(x)
    forward_equals_fresh()
    new = qat._twin[neuron]
    assert new is not old and new.threshold_int * 2.0 ** new.state_exponent == 0.5


def test_primed_brevitas_weight_is_used_once_and_never_copied(monkeypatch):
    """The quantized weight of a twin rebuild feeds the next forward (one quantizer call instead of two)."""
    from hwsnn.functional import reset_net

    P = importlib.import_module("quant.prepare")
    net = make_net("lif", "generic_int8").train()
    qat = quant.prepare(net, "generic_int8")
    calls = []
    real = P.qnn.QuantLinear.quant_weight
    monkeypatch.setattr(P.qnn.QuantLinear, "quant_weight", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    x = make_input("lif", T=6, n=3)
    qat(x).sum().backward()  # first forward: rebuild (one call per layer), the forward takes the primed weight
    assert len(calls) == 2
    reset_net(qat)  # (the float states of the last forward carry its graph)
    copy.deepcopy(qat)  # nothing primed is left on the module to copy
    qat(x).sum().backward()  # no rebuild (weights unchanged): the forward quantizes again
    assert len(calls) == 4
    qat._current_twin()  # primes nothing (no rebuild)
    with torch.no_grad():
        qat[0].weight.add_(0.01)
    qat._current_twin()  # rebuild: primed weights left for a forward that never comes
    reset_net(qat)
    copy.deepcopy(qat)
