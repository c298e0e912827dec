"""Integer neuron twins: hand-computed steps per target, plain-Python references of the target
specs (../shared/targets/*.md), twin vs float tracking, step modes, conversion errors."""

import math

import numpy as np
import pytest
import torch

import targets
from hwsnn.fixed import FitError, SynapticEvents, to_fixed
from hwsnn.fixed.neuron import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, fire_and_reset
from hwsnn.neuron import CubaLIFNode, IFNode, LIFNode

XYLO, LOIHI, G8, IDEAL = (targets.load(n) for n in ("xylo", "loihi", "generic_int8", "ideal"))
P23 = 1 << 23


def step_with_state(twin, x, **state):
    """Initialise the twin's state shape with one zero step, overwrite states, run one step of ``x``."""
    x = torch.as_tensor(x, dtype=torch.int64)
    twin(torch.zeros_like(x))
    for name, value in state.items():
        setattr(twin, name, torch.as_tensor(value).to(getattr(twin, name).dtype).reshape(x.shape))
    twin.clear_counts()
    return twin(x)


# ---------------------------------------------------------------------------------- xylo --
@pytest.mark.parametrize("i0,k,expect", [(25, 1, 13), (-25, 1, -12), (1, 1, 0), (-1, 1, 0), (1, 9, 0), (-1, 9, 0),
                                         (25, 0, 0), (-25, 0, 0), (1000, 3, 875), (-1000, 3, -875), (7, 3, 6)])
def test_xylo_current_decay_table(i0, k, expect):
    n = FixedCubaLIFNode(XYLO, 32767, decay_syn=k, decay_mem=1)
    step_with_state(n, [0], i=[i0])
    assert n.i.item() == expect


def test_xylo_delta_saturates_before_it_is_applied():
    # V=-30000, k=1: dv = 15000; dv = sat(15000 + 30000) = 32767; V = -30000 + 32767 (a plain sum gives 15000)
    n = FixedLIFNode(XYLO, 20000, decay_mem=1)
    s = step_with_state(n, [30000], v=[-30000])
    assert (n.v.item(), s.item(), n.saturations["dv"], n.saturations["v"]) == (2767, 0, 1, 0)
    # bias saturates the delta a second time
    n = FixedLIFNode(XYLO, 20000, decay_mem=1, bias=100)
    step_with_state(n, [32767], v=[-30000])
    assert (n.v.item(), n.saturations["dv"]) == (2767, 2)


def test_xylo_membrane_saturates_then_multi_spike_subtractive_reset():
    # V=30000, k=4: D = 1875, dv = 8125, V = sat(38125) = 32767; th=1000 -> 31 spikes (cap), V = 1767
    n = FixedLIFNode(XYLO, 1000, decay_mem=4)
    s = step_with_state(n, [10000], v=[30000])
    assert (s.item(), n.v.item(), n.saturations["v"], s.dtype) == (31, 1767, 1, torch.int8)
    r = FixedLIFNode(XYLO, 1000, decay_mem=4, readout=True)
    s = step_with_state(r, [10000], v=[30000])
    assert (s.item(), r.v.item()) == (1, 31767)
    # below the cap: floor(V / th) spikes, the leftover stays
    n = FixedLIFNode(XYLO, 1000, decay_mem=15)
    s = step_with_state(n, [3500], v=[0])
    assert (s.item(), n.v.item()) == (3, 500)


def test_xylo_wrap16_of_the_decay():
    # V=-32768, k=0: -D = 32768 wraps to -32768, then V = sat(-65536) (the chip's arithmetic, literally)
    n = FixedLIFNode(XYLO, 1000, decay_mem=0)
    step_with_state(n, [0], v=[-32768])
    assert n.v.item() == -32768 and n.saturations["dv"] == 1 and n.saturations["v"] == 1


def test_xylo_cuba_trace_with_per_event_saturation():
    # one neuron, 3 sources; step 0: events 20000, 20000 (sat 32767), -5000 -> 27767; I -= D(I,1) -> 13884
    ev = SynapticEvents(torch.tensor([[[1, 1, 1]], [[0, 0, 0]], [[0, 0, 0]]]), torch.tensor([[20000, 20000, -5000]]))
    n = FixedCubaLIFNode(XYLO, 5000, decay_syn=1, decay_mem=1, step_mode="m")
    s = n(ev)
    # V: 13884 -> 2 spikes, 3884; I 6942, dv = -1942 + 6942 -> V 8884 -> 1 spike, 3884; I 3471, V 5413 -> 1, 413
    assert s.flatten().tolist() == [2, 1, 1]
    assert (n.i.item(), n.v.item(), n.saturations["i"]) == (3471, 413, 1)


def xylo_reference(counts, w, k_syn, k_mem, th, bias, cap):
    """Literal scalar loop of ../shared/targets/xylo.md (one synapse), plain Python ints."""
    def d(x, k):
        r = x >> k
        return 1 if r == 0 and x > 0 else r

    def sat(x):
        return max(-32768, min(32767, x))

    def wrap16(x):
        return (x + 32768) % 65536 - 32768

    t_len, n_out = len(counts), len(w)
    i, v = [0] * n_out, [0] * n_out
    out = []
    for t in range(t_len):
        row = []
        for j in range(n_out):
            for src, c in enumerate(counts[t]):
                for _ in range(c):
                    i[j] = sat(i[j] + w[j][src])
            i[j] -= d(i[j], k_syn)
            dv = sat(sat(wrap16(-d(v[j], k_mem)) + i[j]) + bias)
            v[j] = sat(v[j] + dv)
            n = 0
            while v[j] >= th and n < cap:
                n += 1
                v[j] -= th
            row.append(n)
        out.append(row)
    return out, i, v


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xylo_cuba_matches_literal_reference(seed):
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 4, (30, 6), generator=g)
    w = torch.randint(-9000, 12000, (5, 6), generator=g)
    n = FixedCubaLIFNode(XYLO, 3000, decay_syn=2, decay_mem=3, bias=-7, step_mode="m")
    s = n(SynapticEvents(counts, w))
    ref, i, v = xylo_reference(counts.tolist(), w.tolist(), 2, 3, 3000, -7, 31)
    assert s.tolist() == ref and n.i.tolist() == i and n.v.tolist() == v
    assert n.saturations["i"] > 0 and s.max() > 1  # the case exercises saturation and multi-spikes


def test_xylo_threshold_must_be_positive():
    with pytest.raises(FitError, match=r"threshold = 0 .*> 0"):
        FixedLIFNode(XYLO, 0, decay_mem=1)
    assert FixedLIFNode(XYLO, -5, decay_mem=1, clip=True).threshold == 1


# --------------------------------------------------------------------------------- loihi --
def loihi(vth=100, du=-1, dv=0, **kw):
    return FixedCubaLIFNode(LOIHI, vth, decay_syn=du, decay_mem=dv, **kw)


@pytest.mark.parametrize("du,u0,expect", [(0, 4096, 4095), (-1, 4096, 4096), (-1, -77, -77), (0, -1, 0),
                                          (0, -5000, -4998), (0, 5000, 4998), (4095, 12345, 0), (2047, -3, -1)])
def test_loihi_current_decay_toward_zero(du, u0, expect):
    n = loihi(vth=(1 << 17) - 1, du=du)
    step_with_state(n, [0], i=[u0])
    assert n.i.item() == expect


@pytest.mark.parametrize("u0,a,expect", [(P23 - 64, 1, P23), (P23 + 1 - 64, 1, -P23 + 1), (-P23 + 64, -1, P23),
                                         (-P23 + 65, -1, -P23 + 1)])
def test_loihi_current_folds_once(u0, a, expect):
    n = loihi(vth=(1 << 17) - 1)
    step_with_state(n, [a], i=[u0])
    assert n.i.item() == expect
    assert n.saturations["i"] == int(expect != u0 + (a << 6))


def test_loihi_membrane_saturates_symmetric():
    n = loihi(vth=(1 << 17) - 1)
    s = step_with_state(n, [0], i=[-1000], v=[-(P23 - 10)])
    assert (n.v.item(), s.item(), n.saturations["v"]) == (-(P23 - 1), 0, 1)
    s = step_with_state(n, [0], i=[1000], v=[P23 - 10])
    assert (s.item(), n.v.item(), n.i.item(), n.saturations["v"]) == (1, 0, 1000, 1)


def test_loihi_strict_threshold_zero_reset_current_kept():
    n = loihi(vth=100)  # TH = 6400
    assert n(torch.tensor([100])).item() == 0 and n.v.item() == 6400  # v == TH: no spike
    assert n(torch.tensor([0])).item() == 1  # v = 12800 > TH
    assert n.v.item() == 0 and n.i.item() == 6400  # v zeroed, u not reset


@pytest.mark.parametrize("mant,exp,expect", [(3, 2, 12), (-3, -1, -2), (5, -1, 2), (-4095, 7, -4095 * 128)])
def test_loihi_bias_mantissa_exponent(mant, exp, expect):
    n = loihi(vth=(1 << 17) - 1, dv=4096, bias=mant, bias_exp=exp)  # dv = 4096 empties v: v = u + B
    step_with_state(n, [0], i=[0], v=[12345])
    assert n.v.item() == max(expect, -(P23 - 1))


def test_loihi_membrane_decay_toward_zero_and_bias_exponent_limit():
    n = loihi(vth=(1 << 17) - 1, dv=1)
    step_with_state(n, [0], i=[0], v=[-5000])
    assert n.v.item() == -4998  # floor would give -4999
    with pytest.raises(FitError, match="bias_exp"):
        loihi(bias=1, bias_exp=8)
    with pytest.raises(FitError, match=r"du = 4096"):
        loihi(du=4096)


def loihi_reference(a_seq, du, dv, vth, bias):
    """Literal scalar loop of ../shared/targets/loihi.md, plain Python ints."""
    def tz(p):
        return -((-p) >> 12) if p < 0 else p >> 12

    u = [0] * len(a_seq[0])
    v = list(u)
    out = []
    for a in a_seq:
        row = []
        for j, aj in enumerate(a):
            u[j] = tz(u[j] * (4096 - (du + 1))) + (aj << 6)
            u[j] = u[j] - 2 * P23 if u[j] > P23 else u[j] + 2 * P23 if u[j] <= -P23 else u[j]
            v[j] = max(-(P23 - 1), min(P23 - 1, tz(v[j] * (4096 - dv)) + u[j] + bias))
            s = v[j] > vth << 6
            v[j] = 0 if s else v[j]
            row.append(int(s))
        out.append(row)
    return out, u, v


@pytest.mark.parametrize("seed,du,dv", [(0, 0, 100), (1, 1023, 4096), (2, -1, 0), (3, 4095, 7)])
def test_loihi_matches_literal_reference(seed, du, dv):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(-(1 << 17), 1 << 17, (30, 8), generator=g)
    n = loihi(vth=40000, du=du, dv=dv, bias=-333, step_mode="m")
    s = n(a)
    ref, u, v = loihi_reference(a.tolist(), du, dv, 40000, -333)
    assert s.tolist() == ref and n.i.tolist() == u and n.v.tolist() == v
    assert n.i.dtype == torch.int32 and (n.saturations["i"] > 0 or du == 4095)  # folds happen (u not emptied)


# -------------------------------------------------------------------------- generic_int8 --
def test_generic_floor_rounding_of_negative_values():
    n = FixedLIFNode(G8, 1000, decay_mem=2)
    step_with_state(n, [0, 0, 0], v=[-5, 5, -1])
    assert n.v.tolist() == [-3, 4, 0]  # -5 - (-5 >> 2) = -3 (toward zero would give -4)
    c = FixedCubaLIFNode(G8, 1000, decay_syn=1, decay_mem=15)
    step_with_state(c, [0], i=[-3])
    assert c.i.item() == -1  # -3 - (-3 >> 1) = -3 + 2


def test_generic_saturation_counted_and_inclusive_compare_subtract_reset():
    n = FixedIFNode(G8, 32767)
    s = step_with_state(n, [1000], v=[32000])
    assert (s.item(), n.v.item(), n.saturations["v"]) == (1, 0, 1)  # sat to 32767 == th fires ('>=')
    n = FixedIFNode(G8, 100)
    assert n(torch.tensor([99, 100, 250])).tolist() == [0, 1, 1]
    assert n.v.tolist() == [99, 0, 150]  # subtract, one spike per step
    z = FixedIFNode(G8, 100, reset="zero", v_reset=-10)
    assert z(torch.tensor([140])).item() == 1 and z.v.item() == -10


def test_generic_hard_reset_lif_decays_toward_v_reset():
    n = FixedLIFNode(G8, 1000, decay_mem=1, reset="zero", v_reset=-100)
    assert n.v == -100
    n(torch.tensor([0]))
    assert n.v.item() == -100  # the rest state is a fixed point
    step_with_state(n, [0], v=[101])
    assert n.v.item() == 101 - ((101 + 100) >> 1)


# ------------------------------------------------------------------ twin vs float on ideal --
def run_pair(layer, target, x, **opts):
    """Run float layer and its twin step by step on the same (twin-representable) input."""
    twin = to_fixed(layer, target, **opts)
    e_in = twin.input_exponent
    q = torch.round(x * 2.0 ** -e_in).to(torch.int64)
    xf = q.to(torch.float64) * 2.0 ** e_in
    s_f, s_q, err = [], [], 0.0
    for t in range(x.shape[0]):
        s_f.append(layer(xf[t]))
        s_q.append(twin(q[t]))
        err = max(err, float((twin.dequantize("v") - layer.v).abs().max()))
    return torch.stack(s_f), torch.stack(s_q).to(torch.float64), err, twin


FLOATS = [
    lambda: IFNode(v_threshold=1.0, v_reset=None),
    lambda: IFNode(v_threshold=0.7, v_reset=-0.25),
    lambda: LIFNode(tau=4.0, decay_input=False, v_reset=None),
    lambda: LIFNode(tau=2.0, decay_input=True, v_reset=0.0, v_threshold=0.4),
    lambda: LIFNode(tau=8.0, decay_input=True, v_reset=None, v_threshold=0.5),
    lambda: CubaLIFNode(tau_syn=2.0, tau_mem=4.0, v_reset=None),
    lambda: CubaLIFNode(tau_syn=8.0, tau_mem=2.0, v_reset=0.0, v_threshold=1.5),
]


@pytest.mark.parametrize("make", FLOATS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_twins_track_float_on_ideal(make, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(50, 64, generator=g, dtype=torch.float64) * 1.2 - 0.3
    s_f, s_q, err, twin = run_pair(make().double(), IDEAL, x)
    # one floor of 2^e per decay per step: |dv| <= 2 * T * 2^e (e = -24 here: 24 fraction bits)
    assert twin.state_exponent <= -22 and err <= 2 * x.shape[0] * 2.0**twin.state_exponent
    assert 0 < s_f.sum() < s_f.numel()
    assert (s_f == s_q).double().mean() >= 0.99


@pytest.mark.parametrize("make", FLOATS[2:])
def test_generic_int8_error_is_measured_and_reported(make, record_property):
    g = torch.Generator().manual_seed(7)
    x = torch.rand(50, 64, generator=g, dtype=torch.float64) * 1.2 - 0.3
    s_f, s_q, err, twin = run_pair(make().double(), G8, x)
    agree = float((s_f == s_q).double().mean())
    record_property("v_max_abs_error", err)
    record_property("spike_agreement", agree)
    rep = twin.fixed_report()
    print(f"{type(twin).__name__} on generic_int8: max |v error| {err:.3g}, spike agreement {agree:.4f}")
    assert math.isfinite(err) and 0.9 < agree <= 1.0
    for key in ("tau_requested", "tau_used", "threshold_int", "input_exponent", "state_exponent", "saturations", "clipped"):
        assert key in rep
    assert rep["threshold_int"] == round(make().v_threshold * 2.0 ** -rep["state_exponent"])
    assert 2**12 < rep["threshold_int"] <= 2**13  # 16-bit membrane: threshold near 2^(16-3)


def test_float_cuba_matches_numpy_reference_and_has_gradients():
    x = torch.randn(20, 4, dtype=torch.float64, requires_grad=True)
    n = CubaLIFNode(tau_syn=3.0, tau_mem=5.0, v_threshold=0.8, v_reset=None, step_mode="m", store_v_seq=True)
    s = n(x)
    i = v = np.zeros(4)
    for t, xt in enumerate(x.detach().numpy()):
        i = i - i / 3.0 + xt
        h = v - v / 5.0 + i
        sp = (h >= 0.8).astype(float)
        v = h - sp * 0.8
        np.testing.assert_array_equal(s[t].detach().numpy(), sp)
        np.testing.assert_allclose(n.v_seq[t].detach().numpy(), v, atol=1e-12)
    s.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="tau_syn"):
        CubaLIFNode(tau_syn=0.5)


# ----------------------------------------------------------------- step modes, reset, dtypes --
def twins():
    g = torch.Generator().manual_seed(3)
    w = torch.randint(-9000, 12000, (5, 6), generator=g)
    yield FixedIFNode(G8, 300), torch.randint(-100, 200, (12, 3, 5), generator=g), torch.int16
    yield FixedLIFNode(IDEAL, 300, 1, decay_input=True), torch.randint(-100, 400, (12, 3, 5), generator=g), torch.int64
    yield loihi(vth=200, du=300, dv=50), torch.randint(-500, 900, (12, 3, 5), generator=g), torch.int32
    yield FixedLIFNode(XYLO, 2000, 2), torch.randint(-500, 3000, (12, 3, 5), generator=g), torch.int16
    yield FixedCubaLIFNode(XYLO, 3000, 1, 2), SynapticEvents(torch.randint(0, 3, (12, 3, 6), generator=g), w), torch.int16


@pytest.mark.parametrize("idx", range(5))
def test_single_step_loop_equals_multi_step_and_reset(idx):
    twin, x, dtype = list(twins())[idx]
    s_single = torch.stack([twin(x[t]) for t in range(len(x))])
    state = {k: getattr(twin, k).clone() for k in twin._states}
    assert all(getattr(twin, k).dtype == dtype for k in twin._states) and s_single.dtype == torch.int8
    twin.reset()
    assert all(torch.as_tensor(getattr(twin, k)).eq(0).all() for k in twin._states)
    twin.step_mode = "m"
    s_multi = twin(x)
    assert torch.equal(s_single, s_multi) and s_multi.sum() > 0
    assert all(torch.equal(state[k], getattr(twin, k)) for k in state)


def test_float_input_rejected():
    with pytest.raises(TypeError, match="integer tensor in input units"):
        FixedIFNode(G8, 100)(torch.ones(3))


# -------------------------------------------------------------------------- conversion --
def test_tau_to_shift_and_mul12_report_tau_used():
    t = to_fixed(LIFNode(tau=3.0, decay_input=False, v_reset=None), XYLO)
    assert t.decay_mem == 2 and t.tau_used == {"tau": 4.0} and t.fixed_report()["tau_requested"] == {"tau": 3.0}
    t = to_fixed(LIFNode(tau=3.0, decay_input=False), LOIHI)
    assert t.decay_mem == 1365 and t.tau_used["tau"] == pytest.approx(4096 / 1365)
    c = to_fixed(CubaLIFNode(tau_syn=4.0, tau_mem=1e9), LOIHI)
    rep = c.fixed_report()
    assert (rep["du"], rep["dv"], rep["tau_used"]["tau_syn"], rep["tau_used"]["tau_mem"]) == (1023, 0, 4.0, math.inf)
    assert rep["threshold_int"] == rep["threshold"] << 6 and rep["input_exponent"] == rep["state_exponent"] + 6
    x = to_fixed(CubaLIFNode(tau_syn=2.0, tau_mem=4.0, v_reset=None), XYLO)
    assert x.fixed_report()["current_gain"] == 0.5


def test_tau_not_representable():
    lif = LIFNode(tau=2.0**20, decay_input=False, v_reset=None)
    with pytest.raises(FitError, match=r"hidden1: tau = 1048576.0 .*'xylo'.*k_mem = 20, allowed \[0, 15\]"):
        to_fixed(lif, XYLO, name="hidden1")
    t = to_fixed(lif, XYLO, clip=True)
    assert t.decay_mem == 15 and t.clipped == {"tau": 1}


def test_threshold_not_fitting():
    layer = IFNode(v_threshold=100.0, v_reset=None)
    with pytest.raises(FitError, match=r"out: v_threshold = 819200 .*\[-32768, 32767\]"):
        to_fixed(layer, G8, name="out", state_exponent=-13)
    t = to_fixed(layer, G8, state_exponent=-13, clip=True)
    assert t.threshold == 32767 and t.clipped == {"v_threshold": 1}


def test_default_state_exponent_leaves_headroom():
    for tg in (G8, XYLO, LOIHI, IDEAL):
        t = to_fixed(LIFNode(tau=2.0, decay_input=False, v_threshold=1.0), tg) if tg is not XYLO else \
            to_fixed(LIFNode(tau=2.0, decay_input=False, v_reset=None), tg)
        assert t.threshold_int == 1 << min(tg.widths.membrane.bits - 3, 24)
    t = to_fixed(IFNode(v_threshold=100.0, v_reset=None), G8)
    assert 2**12 < t.threshold_int <= 2**13 and t.dequantize("v") == 0


def test_xylo_rejections():
    with pytest.raises(FitError, match=r"L: v_threshold = -1.0 .*'xylo'.*> 0"):
        to_fixed(LIFNode(v_threshold=-1.0, v_reset=None, decay_input=False), XYLO, name="L")
    with pytest.raises(ValueError, match=r"L: hard reset \(v_reset=0.0\).*'xylo'.*subtract"):
        to_fixed(LIFNode(decay_input=False), XYLO, name="L")
    for tg in (XYLO, LOIHI):
        with pytest.raises(ValueError, match="decay_input=False"):
            to_fixed(LIFNode(decay_input=True, v_reset=None if tg is XYLO else 0.0), tg)
    with pytest.raises(ValueError, match="leak-free"):
        to_fixed(IFNode(v_reset=None), XYLO)
    with pytest.raises(ValueError, match="reset 'subtract'.*'loihi'"):
        to_fixed(IFNode(v_reset=None), LOIHI)


def test_tensor_threshold_and_unknown_option_rejected():
    with pytest.raises(ValueError, match="lif: per-neuron v_threshold .*one threshold per layer"):
        to_fixed(LIFNode(v_threshold=torch.tensor([1.0, 0.5, 1.0])), G8, name="lif")
    # one value throughout is one threshold (per-neuron values: tests/test_xylo_per_neuron.py)
    assert to_fixed(LIFNode(v_threshold=torch.ones(3)), G8).threshold == to_fixed(LIFNode(v_threshold=1.0), G8).threshold
    with pytest.raises(TypeError, match="unknown conversion option"):
        to_fixed(LIFNode(), G8, weight_exponent=3)
    t = to_fixed(CubaLIFNode(), LOIHI, input_exponent=-10)
    assert t.state_exponent == -16 and t.exponents == {"i": -16, "v": -16}


@pytest.mark.parametrize("compare", [">", ">="])
@pytest.mark.parametrize("th,cap", [(7, 31), (7, 1), (1, 5), (0, 3), (-4, 2)])
def test_fire_and_reset_closed_form_equals_the_loop(compare, th, cap):
    v = torch.arange(-40, 300, dtype=torch.int64)
    n, v_after = fire_and_reset(v, th, compare, "subtract", 0, cap)
    for vi, ni, vo in zip(v.tolist(), n.tolist(), v_after.tolist()):
        k = 0
        while (vi > th if compare == ">" else vi >= th) and k < cap:
            k += 1
            vi -= th
        assert (ni, vo) == (k, vi)
