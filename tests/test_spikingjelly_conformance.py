"""Issue 17: SpikingJelly 2.0 code ported to hwsnn gives SpikingJelly's results.

Each test runs the same call on hwsnn and on the installed SpikingJelly (the control) and compares
outputs and gradients on random inputs with edge cases (values at the threshold, zeros, negative
states). Skipped where SpikingJelly 2.0 is not importable; CI installs it with
``pip install spikingjelly==2.0.0 --no-deps`` plus ``loguru`` (the one import SpikingJelly's
``activation_based`` needs beyond torch and numpy).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

sjf = pytest.importorskip("spikingjelly.activation_based.functional", reason="needs spikingjelly==2.0.0 (and loguru)")
sjl = pytest.importorskip("spikingjelly.activation_based.layer")
sjn = pytest.importorskip("spikingjelly.activation_based.neuron")
sjb = pytest.importorskip("spikingjelly.activation_based.base")
sjs = pytest.importorskip("spikingjelly.activation_based.surrogate")

from hwsnn import base, functional, layer, neuron, surrogate  # noqa: E402


def _edge_inputs(*shape: int, seed: int = 0) -> torch.Tensor:
    """Random values with exact zeros, exact ones (threshold hits) and negatives mixed in."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * 1.5
    flat = x.view(-1)
    flat[::7] = 0.0
    flat[3::11] = 1.0
    flat[5::13] = -1.0
    return x


def _grads(out: torch.Tensor, inputs: tuple[torch.Tensor, ...], seed: int = 1) -> tuple[torch.Tensor, ...]:
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad((out * g).sum(), inputs, allow_unused=True, retain_graph=True)


def _assert_grads_close(a: tuple, b: tuple) -> None:
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        if ga is None or gb is None:
            assert ga is None and gb is None
        else:
            torch.testing.assert_close(ga, gb)


# -- 1 and 8: charge and step functions: argument order and keyword names -----------------------
def test_lif_charge_issue_example():
    args = (torch.tensor([1.0]), torch.tensor([0.0]), 2.0, False, 0.0)
    assert functional.lif_charge(*args).item() == sjf.lif_charge(*args).item() == 1.0


@pytest.mark.parametrize("tau", [1.7, 2.0, 3.0])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("v_reset", [0.0, -0.2, None])
def test_lif_charge_matches(tau, decay_input, v_reset):
    x = _edge_inputs(5, 7, seed=2).requires_grad_()
    v = _edge_inputs(5, 7, seed=3).requires_grad_()
    kw = dict(x=x, v=v, tau=tau, decay_input=decay_input, v_reset=v_reset)  # by keyword: names must match
    h1, h2 = functional.lif_charge(**kw), sjf.lif_charge(**kw)
    torch.testing.assert_close(h1, h2)
    positional = (x, v, tau, decay_input, v_reset)  # and by position: the order must match
    torch.testing.assert_close(functional.lif_charge(*positional), sjf.lif_charge(*positional))
    _assert_grads_close(_grads(h1, (x, v)), _grads(h2, (x, v)))


SURROGATES = [("Sigmoid", 4.0), ("ATan", 2.0), ("PiecewiseQuadratic", 1.0)]


@pytest.mark.parametrize("sg,alpha", SURROGATES)
@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("detach_reset", [False, True])
def test_if_and_lif_step_match_by_keyword(sg, alpha, v_reset, detach_reset):
    x = _edge_inputs(4, 6, seed=4).requires_grad_()
    v = (_edge_inputs(4, 6, seed=5) * 0.5).requires_grad_()
    common = dict(x=x, v=v, v_threshold=1.0, v_reset=v_reset, detach_reset=detach_reset)
    ours = dict(common, surrogate_function=getattr(surrogate, sg)(alpha=alpha))
    theirs = dict(common, surrogate_function=getattr(sjs, sg)(alpha=alpha))
    for fn, extra in (("if_step", {}), ("lif_step", dict(tau=2.5, decay_input=False))):
        s1, v1 = getattr(functional, fn)(**ours, **extra)
        s2, v2 = getattr(sjf, fn)(**theirs, **extra)
        assert torch.equal(s1, s2), fn
        torch.testing.assert_close(v1, v2)
        out1, out2 = torch.cat([s1, v1]), torch.cat([s2, v2])
        _assert_grads_close(_grads(out1, (x, v)), _grads(out2, (x, v)))


def test_synapse_filter_step_matches_by_keyword():
    x = (torch.rand(10, 3, 5) < 0.4).float()
    w = torch.tensor(-1.3, requires_grad=True)
    for reciprocal_tau in (0.2, None):
        i1 = i2 = torch.zeros(3, 5)
        outs1, outs2 = [], []
        for t in range(10):
            rt = w.sigmoid() if reciprocal_tau is None else reciprocal_tau
            i1 = functional.synapse_filter_step(x=x[t], out_i=i1, reciprocal_tau=rt)
            i2 = sjf.synapse_filter_step(x=x[t], out_i=i2, reciprocal_tau=rt)
            outs1.append(i1)
            outs2.append(i2)
        y1, y2 = torch.stack(outs1), torch.stack(outs2)
        torch.testing.assert_close(y1, y2)
        if reciprocal_tau is None:
            _assert_grads_close(_grads(y1, (w,)), _grads(y2, (w,)))


# -- 2: delay_step(x, queue, delay_steps) --------------------------------------------------------
@pytest.mark.parametrize("d", [0, 1, 2, 5])
def test_delay_step_matches(d):
    x = _edge_inputs(8, 2, 3, seed=6).requires_grad_()
    q1: tuple = ()
    q2: tuple = ()
    y1, y2 = [], []
    for t in range(8):
        a, q1 = functional.delay_step(x[t], q1, d)
        b, q2 = sjf.delay_step(x=x[t], queue=q2, delay_steps=d)
        y1.append(a)
        y2.append(b)
        assert isinstance(q1, tuple) and len(q1) == len(q2) == min(d, t + 1)
        for e1, e2 in zip(q1, q2):
            assert torch.equal(e1, e2)
    s1, s2 = torch.stack(y1), torch.stack(y2)
    assert torch.equal(s1, s2)
    _assert_grads_close(_grads(s1, (x,)), _grads(s2, (x,)))


@pytest.mark.parametrize("d,start", [(1, 0), (3, 0), (3, 1), (3, 3), (4, 2)])
@pytest.mark.parametrize("T", [1, 2, 6])
def test_delay_multi_step_equals_looping_spikingjelly(d, start, T):
    x = _edge_inputs(T, 4, seed=7).requires_grad_()
    q0 = tuple(_edge_inputs(4, seed=20 + k).requires_grad_() for k in range(start))
    y1, q1 = functional.delay_multi_step(x, q0, d)
    q2, ys = q0, []
    for t in range(T):
        y, q2 = sjf.delay_step(x[t], q2, d)
        ys.append(y)
    y2 = torch.stack(ys)
    assert torch.equal(y1, y2)
    assert len(q1) == len(q2) and all(torch.equal(a, b) for a, b in zip(q1, q2))
    out1 = torch.cat([y1.flatten()] + [q.flatten() for q in q1])
    out2 = torch.cat([y2.flatten()] + [q.flatten() for q in q2])
    _assert_grads_close(_grads(out1, (x, *q0)), _grads(out2, (x, *q0)))


def test_delay_step_rejects_bad_delay():
    for bad in (-1, 1.0):
        with pytest.raises((TypeError, ValueError), match="delay_steps"):
            functional.delay_step(torch.zeros(2), (), bad)
        with pytest.raises(ValueError):
            sjf.delay_step(torch.zeros(2), (), bad)


# -- 3 and 4: seq_to_ann_forward with tuples; MaxPool2d(return_indices=True) ----------------------
def test_seq_to_ann_forward_tuple_input_issue_example():
    a = _edge_inputs(3, 2, 4, seed=8).requires_grad_()
    b = _edge_inputs(3, 2, 4, seed=9).requires_grad_()
    y1 = functional.seq_to_ann_forward((a, b), lambda u, v: u * 2 + v)
    y2 = sjf.seq_to_ann_forward((a, b), lambda u, v: u * 2 + v)
    assert y1.shape == (3, 2, 4)
    torch.testing.assert_close(y1, y2)
    _assert_grads_close(_grads(y1, (a, b)), _grads(y2, (a, b)))


def test_seq_to_ann_forward_tuple_output_and_unpool_round_trip():
    x = _edge_inputs(4, 2, 3, 6, 6, seed=10).requires_grad_()
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    (v1, i1), (v2, i2) = functional.seq_to_ann_forward(x, pool), sjf.seq_to_ann_forward(x, pool)
    assert v1.shape == i1.shape == (4, 2, 3, 3, 3)
    assert torch.equal(v1, v2) and torch.equal(i1, i2)
    u1 = functional.seq_to_ann_forward((v1, i1), [unpool, nn.ReLU()])
    u2 = sjf.seq_to_ann_forward((v2, i2), [unpool, nn.ReLU()])
    assert torch.equal(u1, u2)
    _assert_grads_close(_grads(u1, (x,)), _grads(u2, (x,)))


def test_seq_to_ann_forward_tuple_with_different_leading_dims_is_refused():
    a, b = torch.zeros(3, 2, 4), torch.zeros(3, 1, 4)
    with pytest.raises(ValueError, match="leading"):
        functional.seq_to_ann_forward((a, b), lambda u, v: u)
    with pytest.raises(ValueError):
        sjf.seq_to_ann_forward((a, b), lambda u, v: u)


def test_maxpool2d_return_indices_multi_step():
    x = _edge_inputs(3, 2, 1, 4, 4, seed=11).requires_grad_()
    (v1, i1) = layer.MaxPool2d(2, return_indices=True, step_mode="m")(x)
    (v2, i2) = sjl.MaxPool2d(2, return_indices=True, step_mode="m")(x)
    assert torch.equal(v1, v2) and torch.equal(i1, i2)
    _assert_grads_close(_grads(v1, (x,)), _grads(v2, (x,)))


@pytest.mark.parametrize(
    "name,args",
    [
        ("Linear", (3, 2, True, "m")),
        ("Conv2d", (1, 2, 3, 1, 1, 1, 1, True, "zeros", "m")),
        ("MaxPool2d", (2, None, 0, 1, False, False, "m")),
        ("AvgPool2d", (2, None, 0, False, True, None, "m")),
        ("AdaptiveAvgPool2d", ((2, 2), "m")),
        ("Flatten", (1, -1, "m")),
        ("BatchNorm2d", (1, 1e-5, 0.1, True, True, "m")),
    ],
)
def test_stateless_wrappers_take_spikingjelly_positional_arguments(name, args):
    ours, theirs = getattr(layer, name)(*args), getattr(sjl, name)(*args)
    assert ours.step_mode == theirs.step_mode == "m"
    theirs.load_state_dict(ours.state_dict())
    x = _edge_inputs(2, 3, 1, 4, 4, seed=12) if name != "Linear" else _edge_inputs(2, 3, 3, seed=12)
    x.requires_grad_()
    y1, y2 = ours(x), theirs(x)
    torch.testing.assert_close(y1, y2)
    _assert_grads_close(_grads(y1, (x,)), _grads(y2, (x,)))


# -- 5: StepModeContainer(stateful, step_mode, *modules) ------------------------------------------
def test_step_mode_container_issue_example():
    torch.manual_seed(0)
    ours = layer.StepModeContainer(False, "s", nn.Linear(3, 2))
    theirs = sjl.StepModeContainer(False, "s", nn.Linear(3, 2))
    theirs.load_state_dict(ours.state_dict())
    x = _edge_inputs(4, 3, seed=13).requires_grad_()
    y1, y2 = ours(x), theirs(x)
    torch.testing.assert_close(y1, y2)
    _assert_grads_close(_grads(y1, (x,)), _grads(y2, (x,)))


@pytest.mark.parametrize("stateful", [False, True])
def test_step_mode_container_multi_step_matches(stateful):
    torch.manual_seed(1)
    lin = nn.Linear(3, 4)
    ours = layer.StepModeContainer(stateful, "m", lin, neuron.IFNode())
    theirs = sjl.StepModeContainer(stateful, "m", lin, sjn.IFNode())
    x = _edge_inputs(5, 2, 3, seed=14).requires_grad_()
    y1, y2 = ours(x), theirs(x)
    assert ours.step_mode == theirs.step_mode == "m"
    assert torch.equal(y1, y2)
    _assert_grads_close(_grads(y1, (x,)), _grads(y2, (x,)))


def test_step_mode_container_earlier_form_still_works():
    c = layer.StepModeContainer(True, nn.Identity(), neuron.IFNode())
    assert c.step_mode == "s" and len(c) == 2
    with pytest.raises(ValueError, match="step_mode"):
        layer.StepModeContainer(True, "x", nn.Identity())


# -- 6: Delay.queue --------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [0, 1, 3])
def test_delay_queue_matches_in_both_step_modes(d):
    x = _edge_inputs(7, 2, 3, seed=15).requires_grad_()
    ours, theirs = layer.Delay(d), sjl.Delay(d)
    assert ours.queue == theirs.queue == []
    ys1, ys2 = [], []
    for t in range(3):  # single steps, then chunks in multi-step mode
        ys1.append(ours(x[t]).unsqueeze(0))
        ys2.append(theirs(x[t]).unsqueeze(0))
    ours.step_mode = theirs.step_mode = "m"
    for chunk in (x[3:4], x[4:7]):
        ys1.append(ours(chunk))
        ys2.append(theirs(chunk))
    y1, y2 = torch.cat(ys1), torch.cat(ys2)
    assert torch.equal(y1, y2)
    assert isinstance(ours.queue, list) and len(ours.queue) == len(theirs.queue) == min(d, 7)
    assert all(torch.equal(a, b) for a, b in zip(ours.queue, theirs.queue))
    _assert_grads_close(_grads(y1, (x,)), _grads(y2, (x,)))
    ours.reset()
    theirs.reset()
    assert ours.queue == theirs.queue == []


def test_delay_fifo_alias_is_the_padded_queue():
    m = layer.Delay(3)
    assert m.fifo is None
    a = torch.tensor([1.0, 2.0])
    m(a)
    assert torch.equal(m.fifo, torch.stack([torch.zeros(2), torch.zeros(2), a]))


# -- 7: supported_step_mode, SingleStepModule, MultiStepModule --------------------------------------
def _custom_module(base_module, mode: str):
    class OnlyOneMode(nn.Module, base_module.StepModule):
        def __init__(self):
            super().__init__()
            self.step_mode = mode

        def supported_step_mode(self):  # SpikingJelly's name
            return (mode,)

    return OnlyOneMode()


@pytest.mark.parametrize("mode", ["s", "m"])
def test_override_of_supported_step_mode_is_honoured(mode):
    other = "m" if mode == "s" else "s"
    ours, theirs = _custom_module(base, mode), _custom_module(sjb, mode)
    assert ours.supported_step_mode() == theirs.supported_step_mode() == (mode,)
    assert ours.supported_step_modes() == (mode,)  # hwsnn's earlier name answers the same
    for m in (ours, theirs):
        with pytest.raises(ValueError):
            m.step_mode = other
    functional.set_step_mode(nn.Sequential(ours), mode)
    sjf.set_step_mode(nn.Sequential(theirs), mode)
    assert ours.step_mode == theirs.step_mode == mode
    # Deliberate difference (README): hwsnn's set_step_mode skips a module that does not support
    # the requested mode (so sequence containers stay 'm'); SpikingJelly raises.
    functional.set_step_mode(nn.Sequential(ours), other)
    assert ours.step_mode == mode
    with pytest.raises(ValueError):
        sjf.set_step_mode(nn.Sequential(theirs), other)


def test_earlier_name_override_still_honoured():
    class Old(nn.Module, base.StepModule):
        def supported_step_modes(self):
            return ("m",)

    m = Old()
    assert m.supported_step_mode() == ("m",)
    with pytest.raises(ValueError):
        m.step_mode = "s"


def test_single_and_multi_step_module_classes():
    for name, modes in (("SingleStepModule", ("s",)), ("MultiStepModule", ("m",))):
        ours, theirs = getattr(base, name)(), getattr(sjb, name)()
        assert tuple(ours.supported_step_mode()) == tuple(theirs.supported_step_mode()) == modes
        assert isinstance(ours, base.StepModule)
    assert isinstance(layer.MultiStepContainer(), base.MultiStepModule)
    assert isinstance(layer.SeqToANNContainer(), base.MultiStepModule)


# -- 9: set_step_mode reaches OTTTLIFNode ---------------------------------------------------------
def test_set_step_mode_switches_otttlifnode_and_matches_single_steps():
    torch.manual_seed(2)
    lin = nn.Linear(3, 4)
    ours = nn.Sequential(lin, neuron.OTTTLIFNode())
    theirs = nn.Sequential(lin, sjn.OTTTLIFNode())
    functional.set_step_mode(ours, "m")
    sjf.set_step_mode(theirs, "m")
    assert ours[1].step_mode == theirs[1].step_mode == "m"
    # SpikingJelly's OTTTLIFNode raises inside its multi-step forward; hwsnn runs its single step
    # over dim 0, which must equal SpikingJelly's single steps.
    x = (_edge_inputs(5, 2, 3, seed=16) * 2).requires_grad_()
    spikes, traces = ours(x)
    theirs[1].step_mode = "s"
    ref = [theirs(x[t]) for t in range(5)]
    assert torch.equal(spikes, torch.stack([s for s, _ in ref]))
    torch.testing.assert_close(traces, torch.stack([a for _, a in ref]))
    _assert_grads_close(_grads(spikes, (x,)), _grads(torch.stack([s for s, _ in ref]), (x,)))
    ours.eval()
    theirs.eval()
    functional.reset_net(ours)
    sjf.reset_net(theirs)
    y = ours(x)
    assert torch.equal(y, torch.stack([theirs(x[t]) for t in range(5)]))


def test_otttlifnode_construction_still_single_step():
    with pytest.raises(ValueError, match="step_mode"):
        neuron.OTTTLIFNode(step_mode="m")
    with pytest.raises(AssertionError):
        sjn.OTTTLIFNode(step_mode="m")


def test_set_step_mode_same_modes_on_a_mixed_network():
    def build(lib_layer, lib_neuron):
        return nn.Sequential(
            lib_layer.Linear(3, 3), lib_neuron.LIFNode(), lib_layer.Delay(1), lib_layer.SynapseFilter(2.0),
            lib_layer.StepModeContainer(True, "s", nn.Linear(3, 3), lib_neuron.IFNode()), lib_layer.VotingLayer(3),
        )

    ours, theirs = build(layer, neuron), build(sjl, sjn)
    for mode in ("m", "s", "m"):
        functional.set_step_mode(ours, mode)
        sjf.set_step_mode(theirs, mode)
        got = [getattr(m, "step_mode", None) for m in ours.modules()]
        want = [getattr(m, "step_mode", None) for m in theirs.modules()]
        assert got == want


# -- 10: SimpleBaseNode -------------------------------------------------------------------------------
def _square_if(base_node):
    class SquareIFNode(base_node):
        def neuronal_charge(self, x):
            self.v = self.v + x * x

    return SquareIFNode


@pytest.mark.parametrize("v_reset", [0.0, -0.5, None])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_custom_simple_base_node_matches(v_reset, detach_reset, step_mode):
    kw = dict(v_threshold=1.0, v_reset=v_reset, detach_reset=detach_reset, step_mode=step_mode)
    ours = _square_if(neuron.SimpleBaseNode)(surrogate_function=surrogate.ATan(), **kw)
    theirs = _square_if(sjn.SimpleBaseNode)(surrogate_function=sjs.ATan(), **kw)
    x = (_edge_inputs(6, 3, 4, seed=17) * 0.7).requires_grad_()
    if step_mode == "m":
        y1, y2 = ours(x), theirs(x)
    else:
        y1 = torch.stack([ours(x[t]) for t in range(6)])
        y2 = torch.stack([theirs(x[t]) for t in range(6)])
    assert torch.equal(y1, y2)
    torch.testing.assert_close(ours.v, theirs.v)
    out1, out2 = torch.cat([y1.flatten(), ours.v.flatten()]), torch.cat([y2.flatten(), theirs.v.flatten()])
    _assert_grads_close(_grads(out1, (x,)), _grads(out2, (x,)))
    ours.reset()
    theirs.reset()
    assert ours.v == theirs.v == 0.0


@pytest.mark.parametrize(
    "name,kw",
    [
        ("SimpleIFNode", dict()),
        ("SimpleIFNode", dict(v_reset=None, v_threshold=0.5)),
        ("SimpleLIFNode", dict(tau=2.0, decay_input=True)),
        ("SimpleLIFNode", dict(tau=3.0, decay_input=False, v_reset=-0.2)),
    ],
)
def test_builtin_simple_nodes_match(name, kw):
    ours = getattr(neuron, name)(step_mode="m", surrogate_function=surrogate.Sigmoid(), **kw)
    theirs = getattr(sjn, name)(step_mode="m", surrogate_function=sjs.Sigmoid(), **kw)
    x = (_edge_inputs(8, 2, 5, seed=18) * 1.2).requires_grad_()
    y1, y2 = ours(x), theirs(x)
    assert torch.equal(y1, y2)
    torch.testing.assert_close(ours.v, theirs.v)
    _assert_grads_close(_grads(y1, (x,)), _grads(y2, (x,)))


def test_simple_base_node_without_charge_is_a_clear_error():
    with pytest.raises(NotImplementedError, match="neuronal_charge"):
        neuron.SimpleBaseNode()(torch.zeros(2))


# -- 11: invalidate_reset_cache ------------------------------------------------------------------------
def test_invalidate_reset_cache_then_reset_after_a_swap():
    ours = nn.Sequential(nn.Linear(2, 2), neuron.IFNode())
    theirs = nn.Sequential(nn.Linear(2, 2), sjn.IFNode())
    for net, lib_f, lib_n in ((ours, functional, neuron), (theirs, sjf, sjn)):
        lib_f.reset_net(net)  # SpikingJelly caches the visited modules here
        net[1] = lib_n.LIFNode()
        assert lib_f.invalidate_reset_cache(net) is None
        net[1](torch.full((1, 2), 0.7))
        assert torch.is_tensor(net[1].v)
        lib_f.reset_net(net)
    assert ours[1].v == theirs[1].v == 0.0
    assert [type(m).__name__ for m in functional.collect_reset_modules(ours)] == [
        type(m).__name__ for m in sjf.collect_reset_modules(theirs)
    ]
    with pytest.raises(TypeError, match="net"):
        functional.invalidate_reset_cache("not a module")
