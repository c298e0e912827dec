"""The QAT dense fast path (quant.qat_dense, hwsnn.fixed.dense_float) against the twin and the previous path.

* ``dense_sum_float`` equals the dense twin's int64 path (values, dequantized values, saturation
  counts, output) on random integer inputs, shifts of both signs, biases, float32 and float64
  bounds, and refuses (``None``) exactly where an overflow is possible, where the twin then
  saturates or wraps;
* the QAT forward with the fast path equals the previous path (``HWSNN_QAT_FUSED=neurons``: the
  fused neurons, the dense twin and the Brevitas float layer) bit for bit, values *and* gradients,
  on generic_int8, ideal and loihi (latency 1), with and without bias, including a narrow
  accumulator that saturates; and the fast path really runs;
* the twin built from Brevitas' integers (``quantized_integers``) equals the one built through the
  float64 copy (``quantized_weight``), Loihi's even weights and sign modes included.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import warnings

import pytest
import torch
import torch.nn as nn

import hwsnn.layer as L
import hwsnn.neuron as N
import quant
from hwsnn.fixed import FixedLinear
from hwsnn.fixed.dense import linear_to_fixed
from hwsnn.fixed.dense_float import dense_sum_float, float_sum_bound
from hwsnn.functional import set_step_mode
from quant.convert import brevitas_clipped, quantized_integers, quantized_weight
from targets import Width
from targets import load as load_target

pytest.importorskip("numba")


def _variant(base: str, name: str, **sections) -> object:
    tg = load_target(base)
    new = {sec: dataclasses.replace(getattr(tg, sec), **fields) for sec, fields in sections.items()}
    return dataclasses.replace(tg, name=name, **new)


def _twin_reference(tw: FixedLinear, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
    ref = copy.deepcopy(tw)
    ref.clear_counts()
    y = ref(x)
    return y, (y.to(torch.float64) * 2.0 ** ref.output_exponent), dict(ref.saturations)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("target", ["generic_int8", "ideal", "loihi"])
def test_dense_sum_float_equals_the_twin_on_random_layers(seed, target):
    g = torch.Generator().manual_seed(seed)
    tg = load_target(target)
    k, m = int(torch.randint(1, 300, (1,), generator=g)), int(torch.randint(1, 40, (1,), generator=g))
    hi = tg.widths.weight.hi
    step = tg.synapse.weight_step
    w = torch.randint(-hi, hi + 1, (m, k), generator=g) // step * step
    if seed % 3 == 0:
        w = w.abs()  # one sign (Loihi: excitatory mode)
    bias = torch.randint(-300, 301, (m,), generator=g) if seed % 2 else None
    shift = int(torch.randint(max(tg.synapse.weight_shift_min, -9), min(tg.synapse.weight_shift_max, 6) + 1, (1,),
                              generator=g))
    tw = FixedLinear(w, tg, bias, shift, latency=0, input_exponent=0, weight_exponent=-3, clip=True)
    x_hi = [1, 7, 3000, 2**20][seed % 4]  # spikes, counts, and values whose sums need float64
    x = torch.randint(-x_hi if seed % 2 else 0, x_hi + 1, (5, 3, k), generator=g)
    for dtype in (torch.float32, torch.float64):
        got = dense_sum_float(tw, x, dtype, tw.output_exponent)
        y, value, sat = _twin_reference(tw, x)
        r, q = float_sum_bound(int(x.abs().max()), int(w.abs().max()), k, shift,
                               0 if bias is None else int(bias.abs().max()))
        acc = tg.widths.accumulator
        may_overflow = q > acc.hi or -q < acc.lo or (tg.synapse.sum_overflow == "raw_and_shifted" and r > acc.hi)
        if may_overflow or q >= 2**53:
            assert got is None
            continue
        assert got is not None, f"{target}/{seed}: refused although nothing can overflow"
        gy, gv = got
        assert gy.dtype == torch.int64 and torch.equal(gy, y)
        assert gv.dtype == dtype and torch.equal(gv, value.to(dtype))
        assert not torch.signbit(gv[gv == 0]).any()  # no -0.0 (the previous path never makes one)
        assert tw.saturations == sat and torch.equal(tw.output, y)


def test_dense_sum_float_refuses_where_the_accumulator_can_overflow_and_the_twin_saturates():
    narrow = _variant("generic_int8", "narrow_acc", widths=dict(accumulator=Width(12, True)))
    w = torch.full((4, 64), 100)
    tw = FixedLinear(w, narrow, None, 0, latency=0)
    x = torch.ones(3, 2, 64, dtype=torch.int64)
    assert dense_sum_float(tw, x, torch.float32, 0) is None  # 64 * 100 > 2047: possible overflow
    y, _, sat = _twin_reference(tw, x)
    assert sat["accumulator"] > 0 and int(y.max()) == 2047
    x_small = torch.zeros_like(x)
    x_small[..., :20] = 1  # 20 * 100 = 2000 <= 2047: the bound still says 6400 (it is not data-dependent per row)
    assert dense_sum_float(tw, x_small, torch.float32, 0) is None
    tw2 = FixedLinear(torch.full((4, 20), 100), narrow, None, 0, latency=0)
    got = dense_sum_float(tw2, x_small[..., :20], torch.float32, 0)
    assert got is not None and int(got[0].max()) == 2000 and tw2.saturations["accumulator"] == 0


def test_dense_sum_float_never_hands_on_negative_zero(monkeypatch):
    """A BLAS may return -0.0 for a sum of zeros (0 * -w); the previous path's 0 * 2^e is +0.0."""
    real = torch.mm
    monkeypatch.setattr(torch, "mm", lambda a, b: torch.where(real(a, b) == 0, torch.tensor(-0.0, dtype=a.dtype), real(a, b)))
    tw = FixedLinear(-torch.ones(3, 5, dtype=torch.int64), "generic_int8", None, 0, latency=0)
    x = torch.zeros(2, 4, 5, dtype=torch.int64)
    x[0, 0] = 1
    y, value = dense_sum_float(tw, x, torch.float32, -3)
    assert int((value == 0).sum()) == 21 and not torch.signbit(value[value == 0]).any()
    assert torch.equal(y, _twin_reference(tw, x)[0])


def test_dense_sum_float_floors_negative_sums_like_the_arithmetic_shift():
    tg = load_target("generic_int8")
    w = torch.tensor([[-3, 1], [5, -7], [1, 1]])
    tw = FixedLinear(w, tg, torch.tensor([0, -1, 2]), -2, latency=0)
    x = torch.tensor([[[1, 0], [0, 1], [1, 1], [3, 2]]])
    y, value = dense_sum_float(tw, x, torch.float32, -4)
    raw = x.to(torch.int64) @ w.T
    expect = (raw >> 2) + torch.tensor([0, -1, 2])  # floor shift, independent of the twin
    assert torch.equal(y, expect) and torch.equal(value, expect.to(torch.float32) * 2.0**-4)


def test_dense_sum_float_leaves_other_layers_to_the_twin():
    tg = load_target("loihi")
    w = torch.zeros(3, 4, dtype=torch.int64)
    x = torch.ones(2, 1, 4, dtype=torch.int64)
    assert dense_sum_float(FixedLinear(w, tg, None, 0), x, torch.float32, 0) is None  # latency 1
    assert dense_sum_float(FixedLinear(w, "xylo", None, 0), x, torch.float32, 0) is None  # per-event
    tw = FixedLinear(w, "generic_int8", None, 0)
    assert dense_sum_float(tw, x.float(), torch.float32, 0) is None  # float input: the twin's TypeError
    assert dense_sum_float(tw, x[..., :3], torch.float32, 0) is None  # wrong width: the twin's message
    assert dense_sum_float(tw, x, torch.float16, 0) is None


# ------------------------------------------------------------------------------------------------
# the QAT forward: fast path vs the previous path
# ------------------------------------------------------------------------------------------------
def _net(target: str, bias: bool, scale: float, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    reset = None if "subtract" in load_target(target).neuron.reset else 0.0
    net = nn.Sequential(L.Linear(40, 32, bias=bias), N.LIFNode(tau=2.0, decay_input=False, v_reset=reset),
                        L.Linear(32, 24, bias=bias), N.CubaLIFNode(tau_syn=2.0, tau_mem=4.0, v_reset=reset),
                        L.Dropout(0.2), L.Linear(24, 6, bias=bias), N.LIFNode(tau=2.0, decay_input=False, v_reset=reset))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.mul_(scale)
                if m.bias is not None:
                    m.bias.uniform_(-0.5, 0.5)
    set_step_mode(net, "m")
    return net


def _run(net, target, x, mode: str, monkeypatch, steps: int = 2) -> list[dict]:
    """``steps`` training steps (forward, random loss, backward, SGD): everything to compare, per step."""
    monkeypatch.setenv("HWSNN_QAT_FUSED", mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qat = quant.prepare(copy.deepcopy(net).train(), target, seed=3)
    opt = torch.optim.SGD([p for p in qat.parameters() if p.requires_grad], lr=0.05)
    out = []
    for step in range(steps):
        xin = x.clone().requires_grad_()
        y = qat(xin)
        loss = (y * torch.randn(y.shape, generator=torch.Generator().manual_seed(step))).sum()
        params = [p for p in qat.parameters() if p.requires_grad]
        grads = torch.autograd.grad(loss, [xin, *params])
        out.append(dict(y=y.detach(), y_int=qat.last_integer_output, grads=grads,
                        sat=[dict(getattr(m, "saturations", {})) for m in qat._twin]))
        for p, gp in zip(params, grads[1:]):
            p.grad = gp
        opt.step()
        from hwsnn.functional import reset_net
        reset_net(qat)
    return out


class _Spy:
    def __init__(self, monkeypatch):
        self.ran = 0
        P = importlib.import_module("quant.prepare")
        real = P.straight_through_dense

        def spy(*a, **k):
            res = real(*a, **k)
            self.ran += res is not None
            return res

        monkeypatch.setattr(P, "straight_through_dense", spy)


@pytest.mark.parametrize("target,bias,scale", [("generic_int8", False, 3.0), ("generic_int8", True, 3.0),
                                               ("ideal", True, 2.0), ("loihi", True, 3.0), ("loihi", False, 1.0),
                                               ("narrow_acc", True, 6.0)])
def test_fast_qat_dense_equals_the_previous_path_values_and_gradients(target, bias, scale, monkeypatch):
    tg = _variant("generic_int8", "narrow_acc", widths=dict(accumulator=Width(10, True))) if target == "narrow_acc" \
        else target
    net = _net(target if target != "narrow_acc" else "generic_int8", bias, scale)
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(9, 5, 40, generator=g) < 0.4).float()
    spy = _Spy(monkeypatch)
    fast = _run(net, tg, x, "1", monkeypatch)
    assert spy.ran == 3 * len(fast), f"the fast dense path ran {spy.ran} times"
    slow = _run(net, tg, x, "neurons", monkeypatch)
    assert spy.ran == 3 * len(fast)  # not in the previous path
    for step, (a, b) in enumerate(zip(fast, slow)):
        what = f"{target}/bias={bias}/step {step}"
        assert torch.equal(a["y"], b["y"]) and torch.equal(a["y_int"], b["y_int"]), what
        assert a["sat"] == b["sat"], what
        for ga, gb in zip(a["grads"], b["grads"]):
            assert torch.equal(ga, gb), f"{what}: gradients differ by {float((ga - gb).abs().max())}"
    if target == "narrow_acc":
        assert sum(s.get("accumulator", 0) for s in fast[0]["sat"]) > 0  # the accumulator did saturate
    # and against the step-by-step path of issue 18 (everything unfused), to its gradient tolerance
    ref = _run(net, tg, x, "0", monkeypatch, steps=1)[0]
    assert torch.equal(fast[0]["y"], ref["y"])
    for ga, gb in zip(fast[0]["grads"], ref["grads"]):
        torch.testing.assert_close(ga, gb, atol=1e-5, rtol=1e-4)


def test_fast_qat_dense_keeps_the_float_layer_where_it_must(monkeypatch):
    """Xylo's dense layers hand on the float product (per-event twins), and a hooked layer runs as it is."""
    spy = _Spy(monkeypatch)
    net = _net("xylo", False, 2.0)
    qat = quant.prepare(net, "xylo")
    qat((torch.rand(6, 2, 40) < 0.3).float())
    assert spy.ran == 0
    net = _net("generic_int8", False, 2.0)
    qat = quant.prepare(net, "generic_int8")
    seen = []
    qat[0].register_forward_hook(lambda mod, inp, out: seen.append(out.shape))
    qat((torch.rand(6, 2, 40) < 0.3).float())
    assert seen == [torch.Size([6, 2, 32])] and spy.ran == 2


def test_no_float_matmul_in_the_fast_forward(monkeypatch):
    """The point of the fast path: the Brevitas layers' forward does not run (their gradient still arrives)."""
    net = _net("generic_int8", True, 3.0)
    qat = quant.prepare(net, "generic_int8")
    calls = []
    P = importlib.import_module("quant.prepare")
    real = P.QuantLinear.forward
    monkeypatch.setattr(P.QuantLinear, "forward", lambda self, x: calls.append(1) or real(self, x))
    qat((torch.rand(6, 2, 40) < 0.3).float()).sum().backward()
    assert calls == [] and all(m.weight.grad is not None and m.bias.grad is not None
                               for m in qat if isinstance(m, nn.Linear))


# ------------------------------------------------------------------------------------------------
# the twin rebuild from Brevitas' integers
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["generic_int8", "loihi", "ideal"])
@pytest.mark.parametrize("sign", ["mixed", "positive", "negative"])
def test_twin_from_brevitas_integers_equals_the_float64_route(target, sign):
    tg = load_target(target)
    torch.manual_seed(1)
    lin = L.Linear(50, 30, bias=True)
    with torch.no_grad():
        lin.weight.mul_(4.0)
        if sign != "mixed":
            lin.weight.abs_().mul_(1 if sign == "positive" else -1)
        lin.bias.uniform_(-1, 1)
    net = nn.Sequential(lin, N.LIFNode(tau=2.0, decay_input=False, v_reset=None if target != "loihi" else 0.0))
    set_step_mode(net, "m")
    qat = quant.prepare(net, tg)
    m = qat[0]
    qw = m.quant_weight()
    ints, e = quantized_integers(m, tg, qw)
    value, e2 = quantized_weight(m, tg, qw)
    assert e == e2 and torch.equal(ints, torch.round(value * 2.0**-e).to(torch.int64))
    plain = nn.Linear(50, 30, dtype=torch.float64)
    with torch.no_grad():
        plain.weight.copy_(value)
        plain.bias.copy_(m.bias.detach())
    for clip in (False, True):
        kw = dict(clip=clip, name="fc", input_exponent=0, output_exponent=e - 1, first_layer=True, weight_exponent=e)
        a, b = linear_to_fixed(m, tg, weight_int=ints, **kw), linear_to_fixed(plain, tg, **kw)
        assert torch.equal(a.weight, b.weight) and a.weight.dtype == b.weight.dtype
        assert torch.equal(a.bias, b.bias) and a.clipped == b.clipped and a.sign_mode == b.sign_mode
        assert (a.weight_shift, a.exponents) == (b.weight_shift, b.exponents)
    with pytest.raises(ValueError, match="weight_exponent"):
        linear_to_fixed(m, tg, weight_int=ints)


def test_brevitas_clipped_shortcut_counts_as_the_full_comparison():
    class QW:  # what brevitas_clipped reads of a quant weight
        def __init__(self, scale: float, bits: int):
            self.scale, self.bit_width = torch.tensor(scale), torch.tensor(float(bits))

    g = torch.Generator().manual_seed(0)
    for trial in range(20):
        lin = nn.Linear(30, 20)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(20, 30, generator=g) * (0.5 + trial / 4))
        qw = QW(2.0 ** -5, 8)
        full = int((lin.weight.detach().abs() / qw.scale > 127.5).sum())
        assert brevitas_clipped(lin, qw) == full
    with torch.no_grad():
        lin.weight.fill_(127.5 / 32)  # exactly at the edge: not clipped
    assert brevitas_clipped(lin, QW(2.0 ** -5, 8)) == 0
    with torch.no_grad():
        lin.weight[3, 4] = -4.0  # beyond it
    assert brevitas_clipped(lin, QW(2.0 ** -5, 8)) == 1


def test_input_check_refuses_off_grid_values_and_takes_large_counts(monkeypatch):
    """The one-pass input check (frac) refuses what the float64 check refused; counts beyond int8/int16
    keep their values (the dense sums then need float64: the fast path's second type)."""
    net = _net("ideal", False, 3.0)
    qat = quant.prepare(net, "ideal")
    for bad in (0.5, -2.25, float("nan"), float("inf"), float("-inf")):
        x = torch.zeros(3, 2, 40)
        x[1, 0, 7] = bad
        with pytest.raises(ValueError, match="input grid"):
            qat(x)
    g = torch.Generator().manual_seed(2)
    for hi in (200, 40000, 2**23):  # int16, int32 inputs; sums beyond 2^24
        x = torch.randint(-hi, hi, (4, 3, 40), generator=g).float()
        outs = []
        for mode in ("1", "neurons"):
            monkeypatch.setenv("HWSNN_QAT_FUSED", mode)
            q = quant.prepare(net, "ideal")
            outs.append((q(x), q.last_integer_output))
        assert torch.equal(outs[0][0], outs[1][0]) and torch.equal(outs[0][1], outs[1][1]), hi
