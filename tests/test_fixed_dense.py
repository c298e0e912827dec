"""Integer twins of Linear and Conv2d (hwsnn.fixed.dense / conv) against plain-Python references."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import targets
from hwsnn.fixed import FitError, SynapticEvents, accumulate_events, to_fixed
from hwsnn.fixed.conv import FixedConv2d, int_conv2d
from hwsnn.fixed.dense import FixedLinear
from hwsnn.layer import Conv2d, Linear

# --------------------------------------------------------------------------------------------
# independent references (plain Python integers)


def py_overflow(v: int, bits: int, mode: str) -> tuple[int, int]:
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if lo <= v <= hi:
        return v, 0
    if mode == "saturate":
        return (hi if v > hi else lo), 1
    if mode == "wrap":
        return ((v - lo) % (1 << bits)) + lo, 1
    raise AssertionError(mode)


def py_shift(v: int, s: int) -> int:
    return v * 2**s if s >= 0 else v // 2 ** (-s)  # Python // floors


def ref_dense(W, X, s=0, bias=None, bits=32, mode="saturate", latency=0, delays=None, lava=False):
    """Y[t][n][o] for X[t][n][i] (lists); delays[o][i]: arrival at t + latency + d. ``lava``: Loihi's rules
    (the exact sum shifted, one overflow; with delays each source step's per-delay sum shifted before it
    accumulates, the buffer wrapping at ``bits``, one count per wrapping add)."""
    T, N = len(X), len(X[0])
    O, I = len(W), len(W[0])
    sat = 0
    out = []
    for t in range(T):
        rows = []
        for n in range(N):
            row = []
            for o in range(O):
                if t < latency:  # FIFO zeros: nothing computed yet for this step
                    row.append(0)
                    continue
                if lava and delays is not None:  # slot of step t: adds in source-step order
                    y = 0
                    for tau in range(T):
                        d = t - latency - tau
                        part = sum(W[o][i] * X[tau][n][i] for i in range(I) if delays[o][i] == d)
                        if any(delays[o][i] == d for i in range(I)):
                            y, c = py_overflow(y + py_shift(part, s), bits, mode)
                            sat += c
                    y += 0 if bias is None else bias[o]
                    y, c2 = py_overflow(y, bits, mode)
                    sat += c2
                    row.append(y)
                    continue
                acc = 0
                for tau in range(T):
                    for i in range(I):
                        d = 0 if delays is None else delays[o][i]
                        if tau + latency + d == t:
                            acc += W[o][i] * X[tau][n][i]
                a, c1 = (acc, 0) if lava else py_overflow(acc, bits, mode)
                y = py_shift(a, s) + (0 if bias is None else bias[o])
                y, c2 = py_overflow(y, bits, mode)
                sat += c1 + c2
                row.append(y)
            rows.append(row)
        out.append(rows)
    return out, sat


def rand_weights(target, shape, gen):
    w = targets.load(target).widths.weight
    step = targets.load(target).synapse.weight_step
    hi = w.hi - w.hi % step
    return torch.randint(w.lo // step, hi // step + 1, shape, generator=gen) * step


# --------------------------------------------------------------------------------------------
# sum targets


@pytest.mark.parametrize("target", ["generic_int8", "ideal", "loihi"])
@pytest.mark.parametrize("kind", ["spikes", "negative_ints"])
@pytest.mark.parametrize("shift", [0, -3, 2])
def test_linear_matches_python_reference(target, kind, shift):
    gen = torch.Generator().manual_seed(1)
    tg = targets.load(target)
    W = rand_weights(target, (5, 7), gen)
    if kind == "spikes":
        X = (torch.rand(6, 3, 7, generator=gen) < 0.4).to(torch.int8)
    else:
        X = torch.randint(-300, 40, (6, 3, 7), generator=gen, dtype=torch.int32)
    b = torch.randint(-50, 50, (5,), generator=gen)
    twin = FixedLinear(W, tg, b, weight_shift=shift)
    twin.step_mode = "m"
    y = twin(X)
    ref, sat = ref_dense(W.tolist(), X.tolist(), shift, b.tolist(), tg.widths.accumulator.bits,
                         tg.overflow.accumulator, latency=tg.synapse.latency, lava=target == "loihi")
    assert y.dtype == torch.int64
    assert y.tolist() == ref
    assert twin.saturations.get("accumulator", 0) == sat
    assert twin.output_exponent == twin.weight_exponent + twin.input_exponent - shift


@pytest.mark.parametrize("shift", [0, -4])
@pytest.mark.parametrize("target,mode", [("generic_int8", "saturate"), ("loihi", "wrap")])
def test_accumulator_overflow_counted(target, mode, shift):
    gen = torch.Generator().manual_seed(2)
    W = torch.full((3, 8), 126)
    W[1] = -126
    W[2, :4] = -126
    X = torch.randint(1 << 26, 1 << 28, (2, 8), generator=gen)  # sums ~ 2^31.7: overflow int32
    twin = FixedLinear(W, target, latency=0, weight_shift=shift)
    y = twin(X)
    # generic_int8: the raw sum overflows first (then the shift), a shift of -4 does not bring it back;
    # loihi (Lava): the exact sum is shifted, then wraps into int32
    ref, sat = ref_dense(W.tolist(), [X.tolist()], s=shift, bits=32, mode=mode, lava=target == "loihi")
    assert sat >= 4  # rows 0 and 1 overflow in both samples
    assert y.tolist() == ref[0]
    assert twin.saturations["accumulator"] == sat
    if mode == "saturate":
        assert y[:, 0].tolist() == [(2**31 - 1) >> -shift] * 2 and y[:, 1].tolist() == [-(2**31) >> -shift] * 2
    twin.clear_counts()
    assert twin.saturations["accumulator"] == 0


def test_weight_shift_floors_negative_sums():
    # sums -3, -5, 5, -1 with shift -1 / -2: floor (toward -inf), not toward zero
    W = torch.tensor([[-3], [-5], [5], [-1]])
    x = torch.tensor([[1]])
    assert FixedLinear(W, "generic_int8", weight_shift=-1)(x).tolist() == [[-2, -3, 2, -1]]
    assert FixedLinear(W, "generic_int8", weight_shift=-2)(x).tolist() == [[-1, -2, 1, -1]]
    assert FixedLinear(W, "generic_int8", weight_shift=3)(x).tolist() == [[-24, -40, 40, -8]]
    with pytest.raises(FitError, match="weight_shift"):
        FixedLinear(W, "generic_int8", weight_shift=17)


def test_int64_path_is_exact():
    # |X| max * |W| max * fan-in >= 2^53: float64 would round, the int64 path must not
    gen = torch.Generator().manual_seed(3)
    W = torch.randint(-(2**23), 2**23, (4, 16), generator=gen)
    X = torch.randint(-(2**35), 2**35, (3, 16), generator=gen) * 2 + 1
    twin = FixedLinear(W, "ideal")
    y = twin(X)
    ref = [[sum(int(W[o, i]) * int(X[n, i]) for i in range(16)) for o in range(4)] for n in range(3)]
    assert y.tolist() == ref
    f64 = (X.double() @ W.double().T).to(torch.int64)
    assert not torch.equal(f64, y)  # the float64 path would have been wrong here
    with pytest.raises(OverflowError):
        twin(torch.full((1, 16), 2**45))


def test_float_input_rejected():
    twin = FixedLinear(torch.ones(2, 3, dtype=torch.int64), "generic_int8")
    with pytest.raises(TypeError, match="integer"):
        twin(torch.ones(1, 3))


# --------------------------------------------------------------------------------------------
# parameter checks


def test_loihi_mixed_weight_grid():
    W = torch.tensor([[3, -3, 255, -257, 4, -256]])
    with pytest.raises(FitError, match="multiples of 2") as err:
        FixedLinear(W, "loihi")
    assert err.value.parameter == "weight" and err.value.layer == "FixedLinear"
    twin = FixedLinear(W, "loihi", clip=True, name="fc1")
    assert twin.weight.tolist() == [[2, -4, 254, -256, 4, -256]]  # floored onto the even grid
    assert twin.clipped == {"weight": 4}
    # float conversion rounds onto the grid: even integers, none clipped
    lin = nn.Linear(10, 4)
    fx = to_fixed(lin, "loihi")
    assert bool((fx.weight % 2 == 0).all()) and fx.clipped == {}
    assert int(fx.weight.abs().max()) <= 256
    assert (fx.dequantize_weight() - lin.weight.double()).abs().max() <= 2.0 ** fx.weight_exponent


def test_bias_width_and_fan_limits():
    W = torch.full((2, 3), 2)
    with pytest.raises(FitError, match="bias"):
        FixedLinear(W, "loihi", bias_int=torch.tensor([5000, 0]))  # 13-bit bias
    tw = FixedLinear(W, "loihi", bias_int=torch.tensor([5000, -5000]), clip=True)
    assert tw.bias.tolist() == [4095, -4096] and tw.clipped["bias"] == 2
    # xylo: max fan-out 64 for hidden -> hidden projections (the fan-out memory); the input
    # projection is a dense table on the chip and may reach all hidden neurons
    FixedLinear(torch.ones(64, 2, dtype=torch.int64), "xylo")
    with pytest.raises(FitError, match="fan-out") as err:
        FixedLinear(torch.ones(65, 2, dtype=torch.int64), "xylo", name="hid")
    assert err.value.value == 65 and err.value.layer == "hid"
    FixedLinear(torch.ones(200, 2, dtype=torch.int64), "xylo", first_layer=True)
    with pytest.raises(FitError, match="fan-out"):
        FixedLinear(torch.ones(65, 2, dtype=torch.int64), "xylo", first_layer=False)


def test_converter_exponents_and_shift_range():
    lin = Linear(6, 3)
    fx = to_fixed(lin, "generic_int8", output_exponent=-4)
    assert fx.weight_shift == fx.weight_exponent - (-4)
    assert fx.exponents["output"] == fx.output_exponent == -4
    assert fx.weight.abs().max() >= 64  # the smallest exponent: the grid is used
    with pytest.raises(FitError, match="weight shift"):
        to_fixed(lin, "generic_int8", output_exponent=fx.weight_exponent - 17)


# --------------------------------------------------------------------------------------------
# latency and delays


def test_loihi_latency_both_step_modes_and_reset():
    gen = torch.Generator().manual_seed(4)
    W = rand_weights("loihi", (4, 5), gen)
    X = (torch.rand(7, 2, 5, generator=gen) < 0.5).to(torch.int8)
    expected = [torch.zeros(2, 4, dtype=torch.int64)] + [X[t - 1].long() @ W.T for t in range(1, 7)]
    expected = torch.stack(expected)
    tw = FixedLinear(W, "loihi")
    assert tw.latency == 1
    ys = torch.stack([tw(X[t]) for t in range(7)])
    assert torch.equal(ys, expected)
    tw.reset()
    tw.step_mode = "m"
    assert torch.equal(torch.cat([tw(X[:3]), tw(X[3:])]), expected)  # the FIFO carries across calls
    tw.reset()
    assert torch.equal(tw(X), expected)  # reset empties the FIFO: first step 0 again
    tw.reset()
    tw.step_mode = "s"
    assert torch.equal(tw(X[0]), torch.zeros(2, 4, dtype=torch.int64))


def test_per_synapse_delays_vs_naive_reference():
    gen = torch.Generator().manual_seed(5)
    W = rand_weights("loihi", (3, 4), gen)
    D = torch.randint(0, 63, (3, 4), generator=gen)
    D[0, 0], D[1, 1] = 62, 0
    T = 70
    X = (torch.rand(T, 2, 4, generator=gen) < 0.3).to(torch.int8)
    ref, _ = ref_dense(W.tolist(), X.tolist(), bits=32, mode="wrap", latency=1, delays=D.tolist(), lava=True)
    tw = FixedLinear(W, "loihi", delays=D, weight_shift=-1)
    ref_s, _ = ref_dense(W.tolist(), X.tolist(), s=-1, bits=32, mode="wrap", latency=1, delays=D.tolist(), lava=True)
    tw.step_mode = "m"
    assert tw(X[:20]).tolist() + tw(X[20:]).tolist() == ref_s
    tw.reset()
    tw.step_mode = "s"
    assert [tw(X[t]).tolist() for t in range(T)] == ref_s
    tw0 = FixedLinear(W, "loihi", delays=D)
    tw0.step_mode = "m"
    assert tw0(X).tolist() == ref
    assert any(v != 0 for v in torch.tensor(ref)[63:].flatten().tolist())  # delay-62 spikes arrived
    with pytest.raises(FitError, match="delays"):
        FixedLinear(W, "loihi", delays=torch.full((3, 4), 63))
    with pytest.raises(FitError, match="per-synapse"):
        FixedLinear(W // 4, "generic_int8", delays=D)


# --------------------------------------------------------------------------------------------
# Xylo: per-event saturation


def py_events(I0, counts, weff):
    """One event at a time, saturating each time, in source order (Xylo)."""
    out = []
    for n, row in enumerate(counts):
        r = []
        for o, w_row in enumerate(weff):
            cur = I0[n][o]
            for i, c in enumerate(row):
                for _ in range(c):
                    cur = max(-32768, min(32767, cur + w_row[i]))
            r.append(cur)
        out.append(r)
    return out


def test_xylo_events_saturate_per_event():
    W = torch.tensor([[127, -128, 100, -3], [-128, 127, -100, 5], [60, 60, -128, -128]])
    tw = FixedLinear(W, "xylo", weight_shift=4, first_layer=True)
    assert tw.latency == 0
    counts = torch.tensor([[15, 15, 3, 0], [2, 15, 15, 15], [0, 0, 0, 0]])
    ev = tw(counts)
    assert isinstance(ev, SynapticEvents)
    weff = ev.weight.long()
    assert weff.tolist() == [[2032, -2048, 1600, -48], [-2048, 2032, -1600, 80], [960, 960, -2048, -2048]]
    I0 = torch.tensor([[32000, -32000, 100], [32700, -32700, -30000], [5, 6, 7]])
    got, n_sat = accumulate_events(I0, ev, targets.load("xylo").widths.current)
    ref = py_events(I0.tolist(), counts.tolist(), weff.tolist())
    assert got.tolist() == ref
    assert n_sat > 0
    clip_after_sum = (I0 + counts @ weff.T).clamp(-32768, 32767)
    assert not torch.equal(clip_after_sum, got)  # matmul-then-clip is wrong here: the test bites
    # both directions saturated: one result pinned high then dragged down, one the reverse
    assert ref[0][0] < 32767 and ref[0][1] > -32768


def test_xylo_wrap16_of_shifted_weights():
    W = torch.tensor([[100, -128, 127, 1, -1]])
    for s, exp in [(9, [-14336, 0, -512, 512, -512]), (15, [0, 0, -32768, -32768, -32768]), (8, [25600, -32768, 32512, 256, -256])]:
        ev = FixedLinear(W, "xylo", weight_shift=s, first_layer=True)(torch.zeros(1, 5, dtype=torch.int64))
        assert ev.weight.tolist() == [exp]


def test_xylo_event_caps_and_latency():
    W = torch.ones(2, 3, dtype=torch.int64)
    tw = FixedLinear(W, "xylo", first_layer=True)
    assert tw(torch.tensor([[15, 0, 3]])).counts.tolist() == [[15, 0, 3]]
    with pytest.raises(FitError, match="15"):
        tw(torch.tensor([[16, 0, 3]]))
    twc = FixedLinear(W, "xylo", first_layer=True, clip=True)
    assert twc(torch.tensor([[16, 40, 3]])).counts.tolist() == [[15, 15, 3]]
    assert twc.clipped["input_events"] == 2
    hid = FixedLinear(W, "xylo")  # recurrent/readout: cap 31, one step late
    assert hid.latency == 1
    hid.step_mode = "m"
    seq = torch.tensor([[[31, 1, 2]], [[4, 5, 6]], [[7, 8, 9]]])
    ev = hid(seq)
    assert ev.counts.tolist() == [[[0, 0, 0]], [[31, 1, 2]], [[4, 5, 6]]]
    with pytest.raises(FitError):
        hid(torch.tensor([[[32, 0, 0]]]))
    hid.reset()
    hid.step_mode = "s"
    assert hid(seq[0]).counts.tolist() == [[0, 0, 0]] and hid(seq[1]).counts.tolist() == [[31, 1, 2]]


def test_xylo_bias_rejected():
    with pytest.raises(FitError, match="fold"):
        to_fixed(nn.Linear(3, 2), "xylo")
    with pytest.raises(FitError, match="fold"):
        FixedLinear(torch.ones(2, 3, dtype=torch.int64), "xylo", bias_int=torch.tensor([1, 0]))
    assert to_fixed(nn.Linear(3, 2, bias=False), "xylo").bias is None


# --------------------------------------------------------------------------------------------
# twin vs float on the ideal target


def test_linear_twin_tracks_float_on_ideal():
    torch.manual_seed(6)
    lin = Linear(20, 7, step_mode="m")
    fx = to_fixed(lin, "ideal")
    assert fx.step_mode == "m"
    X = (torch.rand(5, 4, 20) < 0.5).to(torch.int8)
    y_int = fx(X)
    y = y_int.double() * 2.0 ** fx.output_exponent
    assert torch.equal(fx.dequantize("output"), y)
    ref = lin.double()(X.double()).detach()
    # |W 2^e_w - w| <= 2^(e_w - 1) per weight, |B 2^e_out - b| <= 2^(e_out - 1)
    bound = 2.0 ** (fx.weight_exponent - 1) * X.double().sum(-1, keepdim=True) + 2.0 ** (fx.output_exponent - 1)
    err = (y - ref).abs()
    assert bool((err <= bound + 1e-12).all())
    assert float(err.max()) > 0  # quantization is visible (the comparison is not vacuous)
    assert float(bound.max()) < 1e-4


def test_conv_twin_tracks_float_on_ideal():
    torch.manual_seed(7)
    conv = Conv2d(3, 4, 3, padding=1, stride=2, step_mode="m")
    fx = to_fixed(conv, "ideal")
    X = (torch.rand(2, 2, 3, 9, 9) < 0.5).to(torch.int8)
    y = fx(X).double() * 2.0 ** fx.output_exponent
    ref = conv.double()(X.double()).detach()
    bound = 2.0 ** (fx.weight_exponent - 1) * 27 + 2.0 ** (fx.output_exponent - 1)
    assert float((y - ref).abs().max()) <= bound


# --------------------------------------------------------------------------------------------
# conv


def py_conv(x, w, stride, pad, dil, groups):
    """Naive cross-correlation with zero padding (Python integers)."""
    B, H, Wd = len(x), len(x[0][0]), len(x[0][0][0])
    O, Cg, KH, KW = len(w), len(w[0]), len(w[0][0]), len(w[0][0][0])
    Ho = (H + 2 * pad[0] - dil[0] * (KH - 1) - 1) // stride[0] + 1
    Wo = (Wd + 2 * pad[1] - dil[1] * (KW - 1) - 1) // stride[1] + 1
    og = O // groups
    out = [[[[0] * Wo for _ in range(Ho)] for _ in range(O)] for _ in range(B)]
    for b in range(B):
        for o in range(O):
            g = o // og
            for i in range(Ho):
                for j in range(Wo):
                    acc = 0
                    for c in range(Cg):
                        for p in range(KH):
                            for q in range(KW):
                                r = i * stride[0] - pad[0] + p * dil[0]
                                s = j * stride[1] - pad[1] + q * dil[1]
                                if 0 <= r < H and 0 <= s < Wd:
                                    acc += w[o][c][p][q] * x[b][g * Cg + c][r][s]
                    out[b][o][i][j] = acc
    return out


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("cfg", [((1, 1), (1, 1), (1, 1), 1), ((2, 1), (1, 2), (2, 1), 2)])
def test_int_conv2d_vs_naive(cfg, force):
    stride, pad, dil, groups = cfg
    gen = torch.Generator().manual_seed(8)
    x = torch.randint(-20, 20, (2, 4, 7, 6), generator=gen)
    w = torch.randint(-128, 128, (4, 4 // groups, 3, 2), generator=gen)
    got = int_conv2d(x, w, stride, pad, dil, groups, force_int64=force)
    assert got.tolist() == py_conv(x.tolist(), w.tolist(), stride, pad, dil, groups)


def test_conv_int64_path_with_huge_values():
    gen = torch.Generator().manual_seed(9)
    x = torch.randint(-(2**44), 2**44, (1, 2, 5, 5), generator=gen) * 2 + 1
    w = torch.randint(-100, 100, (3, 2, 3, 3), generator=gen)
    tw = FixedConv2d(w, "ideal", padding=1)
    got = tw(x)
    ref = py_conv(x.tolist(), w.tolist(), (1, 1), (1, 1), (1, 1), 1)
    assert got.tolist() == ref
    f64 = torch.nn.functional.conv2d(x.double(), w.double(), padding=1).to(torch.int64)
    assert not torch.equal(f64, got)  # float64 would round: the exact int64 path was taken


def test_conv_sum_rules_latency_and_modes():
    gen = torch.Generator().manual_seed(10)
    w = rand_weights("loihi", (2, 1, 3, 3), gen)
    b = torch.tensor([7, -9])
    X = (torch.rand(4, 2, 1, 5, 5, generator=gen) < 0.5).to(torch.int8)
    tw = FixedConv2d(w, "loihi", bias_int=b, weight_shift=-2, padding=1)
    assert tw.latency == 1
    tw.step_mode = "m"
    y = tw(X)
    for t in range(4):
        if t == 0:
            assert bool((y[0] == 0).all())
            continue
        raw = py_conv(X[t - 1].tolist(), w.tolist(), (1, 1), (1, 1), (1, 1), 1)
        ref = [[[[v // 4 + b[o].item() for v in row] for row in ch] for o, ch in enumerate(img)] for img in raw]
        assert y[t].tolist() == ref
    tw.reset()
    tw.step_mode = "s"
    assert torch.equal(torch.stack([tw(X[t]) for t in range(4)]), y)


def test_conv_saturation_counted():
    w = torch.full((1, 1, 2, 2), 127)
    tw = FixedConv2d(w, "generic_int8")
    x = torch.full((1, 1, 3, 3), 2**29)
    y = tw(x)
    assert y.flatten().tolist() == [2**31 - 1] * 4 and tw.saturations["accumulator"] == 4


def test_conv_converters_and_xylo_error():
    torch.manual_seed(11)
    for layer in (nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)):
        fx = to_fixed(layer, "generic_int8", name="c1")
        assert (fx.stride, fx.padding, fx.dilation, fx.groups) == ((2, 2), (2, 2), (2, 2), 2)
        x = torch.randint(0, 2, (1, 4, 9, 9))
        ref = py_conv(x.tolist(), fx.weight.tolist(), (2, 2), (2, 2), (2, 2), 2)
        ref = [[[[min(max(v + fx.bias[o].item(), -(2**31)), 2**31 - 1) for v in r] for r in ch] for o, ch in enumerate(im)] for im in ref]
        assert fx(x).tolist() == ref
    with pytest.raises(ValueError, match="no convolution"):
        to_fixed(nn.Conv2d(1, 1, 3, bias=False), "xylo")
    with pytest.raises(ValueError, match="no convolution"):
        FixedConv2d(torch.ones(1, 1, 3, 3, dtype=torch.int64), "xylo")


def test_fan_in_beyond_the_limit_is_refused_naming_layer_and_limit():
    import dataclasses

    import targets as _targets

    base = _targets.load("generic_int8")
    chip = dataclasses.replace(base, limits=dataclasses.replace(base.limits, max_fan_in=3))
    w = torch.zeros(2, 6, dtype=torch.int64)
    w[0, :3] = 1  # 3 synapses into neuron 0: fits
    FixedLinear(w, chip, name="fc")
    w[1, :4] = -2  # 4 synapses into neuron 1: beyond the limit
    with pytest.raises(FitError) as info:
        FixedLinear(w, chip, name="fc")
    msg = str(info.value)
    assert "fc" in msg and "fan" in msg and "3" in msg and "4" in msg
