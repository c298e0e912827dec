"""numba CPU kernels (hwsnn.backend.cpu_kernels) against the torch fused path and the step-by-step reference."""

from __future__ import annotations

import functools
import itertools
import random

import pytest
import torch

numba = pytest.importorskip("numba")

import hwsnn.backend as B  # noqa: E402
from hwsnn import surrogate as SG  # noqa: E402
from hwsnn.backend import cpu_kernels as ck  # noqa: E402
from hwsnn.backend import fused  # noqa: E402
from hwsnn.functional import neuron as F  # noqa: E402
from hwsnn.layer import SynapseFilter  # noqa: E402
from hwsnn.neuron import IFNode, LIFNode  # noqa: E402

SURROGATES = {"sigmoid": SG.Sigmoid, "atan": SG.ATan, "piecewise_quadratic": SG.PiecewiseQuadratic}
NEURONS = {"IF": (None, True), "LIF-decay": (2.0, True), "LIF-nodecay": (3.3, False)}  # (tau, decay_input)
RESETS = {"hard0": 0.0, "hard-.25": -0.25, "soft": None}


def reference(x, v, *, tau, decay_input, v_threshold, v_reset, sf, detach_reset, store_v_seq):
    """The step-by-step autograd loop of :mod:`hwsnn.functional.neuron`."""
    kw = dict(v_threshold=v_threshold, v_reset=v_reset, surrogate_function=sf, detach_reset=detach_reset)
    if tau is None:
        step = functools.partial(F.if_step, **kw)
    else:
        step = functools.partial(F.lif_step, tau=tau, decay_input=decay_input, **kw)
    return F.neuron_multi_step(x, v, lambda x_, v_: step(x_, v_), store_v_seq)


def config(tau, decay_input, v_reset, detach_reset, store_v_seq, sf) -> fused.NeuronConfig:
    spec = B.surrogate_spec(sf)
    return fused.NeuronConfig(tau, decay_input, v_reset, detach_reset, store_v_seq, spec.name, spec.alpha,
                              spec.spiking, sf)


class Spy:
    """Counts the calls of the numba forward kernel wrapper."""

    def __init__(self, monkeypatch):
        self.calls = 0
        real = ck.neuron_forward_numba

        def spy(*a, **k):
            self.calls += 1
            return real(*a, **k)

        monkeypatch.setattr(ck, "neuron_forward_numba", spy)


# ----------------------------------------------------------------------------------------------
# exactness: numba == torch fused == reference (spikes bit for bit), gradients to tolerance
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("neuron", list(NEURONS))
@pytest.mark.parametrize("reset", list(RESETS))
@pytest.mark.parametrize("surrogate", list(SURROGATES))
def test_numba_equals_torch_and_reference(neuron, reset, surrogate):
    tau, decay_input = NEURONS[neuron]
    v_reset = RESETS[reset]
    rng = random.Random(f"{neuron}-{reset}-{surrogate}")
    g = torch.Generator().manual_seed(rng.randrange(2**31))
    for T, (detach_reset, store_v_seq) in zip((1, 2, 9, 16), itertools.product([False, True], [False, True])):
        sf = SURROGATES[surrogate]()
        N = rng.choice([1, 37, 1001, 2048])
        block = rng.choice([7, 100, ck.BLOCK])
        x = (torch.randn(T, N, generator=g) * 1.5).requires_grad_()
        v0 = (torch.randn(N, generator=g) * 0.5).requires_grad_()
        kw = dict(tau=tau, decay_input=decay_input, v_threshold=0.8, v_reset=v_reset, detach_reset=detach_reset,
                  store_v_seq=store_v_seq)
        s1, v1, q1 = reference(x, v0, sf=sf, **kw)
        s2, v2, q2 = B.neuron_multi_step(x, v0, surrogate_function=sf, backend="torch", **kw)
        cfg = config(tau, decay_input, v_reset, detach_reset, store_v_seq, sf)
        impl = (functools.partial(ck.neuron_forward_numba, block=block),
                functools.partial(ck.neuron_backward_numba, block=block))
        s3, vout = fused.FusedNeuronFunction.apply(x, v0, None, 0.8, cfg, impl)
        v3, q3 = (vout[-1], vout) if store_v_seq else (vout, None)
        assert torch.equal(s3, s1) and torch.equal(s3, s2)
        torch.testing.assert_close(v3, v1, atol=1e-6, rtol=1e-5)
        if store_v_seq:
            torch.testing.assert_close(q3, q1, atol=1e-6, rtol=1e-5)
        gs, gv, gseq = torch.randn(T, N, generator=g), torch.randn(N, generator=g), torch.randn(T, N, generator=g)

        def loss(s, v, q):
            return (s * gs).sum() + (v * gv).sum() + ((q * gseq).sum() if q is not None else 0.0)

        g1 = torch.autograd.grad(loss(s1, v1, q1), (x, v0))
        g3 = torch.autograd.grad(loss(s3, v3, q3), (x, v0))
        for a, b in zip(g3, g1):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("reset", list(RESETS))
def test_backward_close_to_float64(surrogate, reset):
    """The float32 backward kernel against the float64 torch backward on the same saved charges."""
    g = torch.Generator().manual_seed(11)
    T, N = 13, 999
    for detach_reset, tau in itertools.product([False, True], [None, 2.0]):
        sf = SURROGATES[surrogate](alpha=2.5)
        cfg = config(tau, True, RESETS[reset], detach_reset, False, sf)
        H = torch.randn(T, N, generator=g) + 0.8
        gs, gv = torch.randn(T, N, generator=g), torch.randn(N, generator=g)
        gx, gv0 = ck.neuron_backward_numba(H, gs, gv, 0.8, cfg)
        gx64, gv064 = fused.neuron_backward_torch(H.double(), gs.double(), gv.double(), 0.8, cfg)
        torch.testing.assert_close(gx.double(), gx64, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(gv0.double(), gv064, atol=1e-6, rtol=1e-5)


def test_partial_gradients_no_grad_and_blocks():
    """Only the spikes / only the membrane receive a gradient; inference saves nothing; block tails."""
    torch.manual_seed(3)
    sf = SG.ATan()
    x = (torch.randn(5, 3, 67) * 2).requires_grad_()
    v0 = torch.randn(3, 67, requires_grad=True)
    kw = dict(tau=2.0, v_reset=None)
    s1, v1, _ = B.neuron_multi_step(x, v0, surrogate_function=sf, backend="torch", **kw)
    s2, v2, _ = B.neuron_multi_step(x, v0, surrogate_function=sf, backend="numba", **kw)
    assert torch.equal(s1, s2)
    for out1, out2 in [(s1.sum(), s2.sum()), (v1.sum(), v2.sum())]:
        g2 = torch.autograd.grad(out2, (x, v0), retain_graph=True)
        g1 = torch.autograd.grad(out1, (x, v0), retain_graph=True)
        for a, b in zip(g2, g1):
            torch.testing.assert_close(a, b)
    with torch.no_grad():
        s3, v3, _ = B.neuron_multi_step(x, v0, surrogate_function=sf, backend="numba", **kw)
    assert torch.equal(s3, s1) and s3.grad_fn is None
    cfg = config(2.0, True, 0.0, False, False, SG.Sigmoid())
    xs = torch.randn(3, 1000) * 2
    ref = ck.neuron_forward_numba(xs, torch.zeros(1000), 1.0, cfg, True)
    for block in (1, 16, 333, 1000):
        out = ck.neuron_forward_numba(xs, torch.zeros(1000), 1.0, cfg, True, block=block)
        assert all(torch.equal(a, b) for a, b in zip(out, ref))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs(dtype):
    """float16 / bfloat16 inputs are converted in the kernel: same spikes (input dtype) and gradients as torch."""
    torch.manual_seed(5)
    x = (torch.randn(6, 3, 50) * 2).to(dtype).requires_grad_()
    outs = []
    for backend in ("torch", "numba"):
        node = LIFNode(tau=2.0, step_mode="m", backend=backend)
        s = node(x)
        w = torch.linspace(-1, 1, s.numel()).reshape(s.shape)
        (gx,) = torch.autograd.grad((s.float() * w).sum() + node.v.sum(), x)
        outs.append((s, node.v, gx))
    (s1, v1, g1), (s2, v2, g2) = outs
    assert s2.dtype == dtype and g2.dtype == dtype and v2.dtype == torch.float32
    assert torch.equal(s1, s2)
    torch.testing.assert_close(v2, v1)
    torch.testing.assert_close(g2, g1, atol=1e-2, rtol=1e-2)


def test_chunked_module_equals_one_call():
    torch.manual_seed(6)
    x = (torch.randn(10, 4, 8) * 2).requires_grad_()
    a, b = LIFNode(step_mode="m", v_reset=None), LIFNode(step_mode="m", v_reset=None)
    y1, y2 = a(x), torch.cat([b(x[:4]), b(x[4:])])
    assert torch.equal(y1, y2)
    w = torch.randn(y1.shape)
    (g1,) = torch.autograd.grad((y1 * w).sum() + a.v.sum(), x)
    (g2,) = torch.autograd.grad((y2 * w).sum() + b.v.sum(), x)
    torch.testing.assert_close(g2, g1, atol=1e-5, rtol=1e-4)


# ----------------------------------------------------------------------------------------------
# selection rules and fall-backs
# ----------------------------------------------------------------------------------------------
def test_selection(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv("HWSNN_NUMBA", raising=False)
    assert B.numba_available() and B.check_backend("numba") == "numba"
    assert B.resolve_backend("auto", cpu) == "numba"
    assert B.resolve_backend("torch", cpu) == "torch"
    assert B.resolve_backend("numba", cpu) == "numba"
    with pytest.raises(RuntimeError, match="CPU tensors"):
        B.resolve_backend("numba", cuda)
    monkeypatch.setenv("HWSNN_NUMBA", "0")
    assert B.resolve_backend("auto", cpu) == "torch"
    assert B.resolve_backend("numba", cpu) == "numba"  # an explicit request is honoured
    monkeypatch.delenv("HWSNN_NUMBA")
    monkeypatch.setattr(B, "numba_available", lambda: False)
    assert B.resolve_backend("auto", cpu) == "torch"
    with pytest.raises(ImportError, match=r"pip install hwsnn\[fast\]"):
        LIFNode(backend="numba")


def test_auto_uses_numba_and_fallbacks(monkeypatch):
    monkeypatch.delenv("HWSNN_NUMBA", raising=False)
    spy = Spy(monkeypatch)
    x = torch.randn(4, 2, 9)
    LIFNode(step_mode="m")(x)  # auto on CPU
    IFNode(step_mode="m", v_reset=None, detach_reset=True, surrogate_function=SG.PiecewiseQuadratic())(x)
    assert spy.calls == 2
    # 'torch' forces torch; unsupported configurations run on the torch kernels
    LIFNode(step_mode="m", backend="torch")(x)
    LIFNode(step_mode="m", v_threshold=torch.full((9,), 0.7))(x)  # tensor threshold
    LIFNode(step_mode="m", surrogate_function=SG.Sigmoid(spiking=False))(x)  # smooth primitive
    LIFNode(step_mode="m")(x.double())  # float64
    SynapseFilter(tau=3.0, step_mode="m", backend="numba")(x)  # synapse filter: torch kernels
    assert spy.calls == 2
    monkeypatch.setenv("HWSNN_NUMBA", "0")
    LIFNode(step_mode="m")(x)
    assert spy.calls == 2


def test_threads_follow_torch():
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        B.neuron_multi_step(torch.randn(2, 5), torch.zeros(5), surrogate_function=SG.Sigmoid(), backend="numba")
        assert numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(old)
