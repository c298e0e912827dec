"""Integer twins of Delay, VotingLayer, pooling and Flatten against the float layers and plain-Python
reference loops."""

import pytest
import torch
import torch.nn as nn

from hwsnn import layer
from hwsnn.fixed import FitError, to_fixed
from hwsnn.fixed.delay import FixedDelay
from hwsnn.fixed.flatten import FixedFlatten
from hwsnn.fixed.pool import FixedAvgPool2d, FixedMaxPool2d, window_max, window_sum
from hwsnn.fixed.voting import FixedVotingLayer
from targets import load


# -- Delay ---------------------------------------------------------------------------------------
def _ref_delay(x, d):
    """y[t] = x[t-d], zeros for t < d (plain Python over t)."""
    y = torch.zeros_like(x)
    for t in range(x.shape[0]):
        if t >= d:
            y[t] = x[t - d]
    return y


def test_delay_every_depth_equals_float_and_reference_in_both_modes():
    max_delay = load("generic_int8").synapse.max_delay
    assert max_delay == 63
    g = torch.Generator().manual_seed(5)
    samples = [torch.randint(-300, 300, (T, 2, 3), generator=g, dtype=torch.int16) for T in (100, 37)]
    for d in range(max_delay + 1):
        tw_s = FixedDelay(d, "generic_int8")
        tw_m = FixedDelay(d, "generic_int8", step_mode="m")
        fl = layer.Delay(d)
        for x in samples:  # two samples separated by reset()
            T = x.shape[0]
            ref = _ref_delay(x, d)
            ys = torch.stack([tw_s(x[t]) for t in range(T)])
            ym = torch.cat([tw_m(x[:11]), tw_m(x[11:12]), tw_m(x[12:])])  # chunks carry the FIFO
            yf = torch.stack([fl(x[t].double()) for t in range(T)])
            assert torch.equal(ys, ref), d
            assert torch.equal(ym, ref), d
            assert torch.equal(yf, ref.double()), d
            for m in (tw_s, tw_m, fl):
                m.reset()
            assert tw_s.fifo is None and tw_s.head == 0


def test_delay_modes_mix_and_ring_state():
    x = torch.randint(-5, 5, (20, 4), dtype=torch.int32)
    tw = FixedDelay(6, "generic_int8")
    out = [tw(x[t]) for t in range(7)]
    tw.step_mode = "m"
    out.append(tw(x[7:15]))
    tw.step_mode = "s"
    out += [tw(x[t]).unsqueeze(0) for t in range(15, 20)]
    y = torch.cat([o.unsqueeze(0) if o.dim() == 1 else o for o in out])
    assert torch.equal(y, _ref_delay(x, 6))
    assert tw.fifo.shape == (6, 4)


def test_delay_target_limit():
    assert FixedDelay(0, "xylo")(torch.tensor([1, 2], dtype=torch.int8)).tolist() == [1, 2]
    with pytest.raises(FitError) as err:
        FixedDelay(1, "xylo", name="d1")
    msg = str(err.value)
    assert "d1" in msg and "delay_steps = 1" in msg and "[0, 0]" in msg
    assert err.value.value == 1 and err.value.target == "xylo"
    with pytest.raises(FitError):
        FixedDelay(64, "generic_int8")
    clipped = FixedDelay(64, "generic_int8", clip=True)
    assert clipped.delay_steps == 63 and clipped.clipped == {"delay_steps": 1}


def test_delay_errors_and_converter():
    tw = FixedDelay(2, "generic_int8")
    with pytest.raises(TypeError, match="integer"):
        tw(torch.zeros(3))
    tw(torch.zeros(3, dtype=torch.int8))
    with pytest.raises(ValueError, match="reset"):
        tw(torch.zeros(4, dtype=torch.int8))
    f = layer.Delay(5, step_mode="m")
    twin = to_fixed(f, "loihi", name="dl")
    assert isinstance(twin, FixedDelay) and twin.delay_steps == 5 and twin.step_mode == "m"
    assert twin.fixed_report()["max_delay"] == 62
    with pytest.raises(FitError, match="62"):
        to_fixed(layer.Delay(63), "loihi")


# -- VotingLayer ---------------------------------------------------------------------------------
def _ref_group_sums(x, v):
    rows = x.reshape(-1, x.shape[-1]).tolist()
    out = [[sum(r[c * v:(c + 1) * v]) for c in range(len(r) // v)] for r in rows]
    return torch.tensor(out, dtype=torch.int64).reshape(*x.shape[:-1], x.shape[-1] // v)


@pytest.mark.parametrize("v", [1, 2, 4, 8])
@pytest.mark.parametrize("mode", ["s", "m"])
def test_voting_power_of_two_exact(v, mode):
    e = -3
    shape = (5, 3, 4 * v) if mode == "m" else (3, 4 * v)
    xq = torch.randint(-200, 200, shape, dtype=torch.int16)
    twin = FixedVotingLayer(v, "generic_int8", input_exponent=e, step_mode=mode)
    y = twin(xq)
    assert twin.divides
    assert twin.output_exponent() == e - (v.bit_length() - 1)
    assert torch.equal(y.to(torch.int64), _ref_group_sums(xq, v))
    fl = layer.VotingLayer(v, step_mode=mode)
    assert torch.equal(twin.dequantize_output(y), fl(xq.double() * 2.0**e))


def test_voting_shift_floors():
    xq = torch.tensor([[-3, -2, 0, 0, 5, 2, 1, 1]], dtype=torch.int16)
    twin = FixedVotingLayer(4, "generic_int8", shift=True)
    # sums -5 and 9 -> floor(-5/4) = -2, floor(9/4) = 2
    assert twin(xq).tolist() == [[-2, 2]]
    assert twin.output_exponent(-1) == -1
    assert twin.dequantize_output(twin(xq), -1).tolist() == [[-1.0, 1.0]]
    with pytest.raises(ValueError, match="power-of-two"):
        FixedVotingLayer(3, "generic_int8", shift=True)


def test_voting_not_power_of_two_keeps_sum():
    xq = torch.randint(-100, 100, (4, 30), dtype=torch.int32)
    twin = FixedVotingLayer(3, "generic_int8", input_exponent=-2)
    y = twin(xq)
    assert not twin.divides and twin.output_exponent() is None
    assert torch.equal(y.to(torch.int64), _ref_group_sums(xq, 3))
    assert twin.fixed_report()["rule"] == "sum kept (voting_size not a power of two)"
    ref = layer.VotingLayer(3)(xq.double() * 0.25)
    assert torch.allclose(twin.dequantize_output(y), ref, rtol=0, atol=1e-12)


def test_voting_saturation_and_errors():
    twin = FixedVotingLayer(2, "xylo")
    y = twin(torch.tensor([[30000, 30000, -30000, -30000, 1, 2]], dtype=torch.int16))
    assert y.tolist() == [[32767, -32768, 3]] and y.dtype == torch.int16
    assert twin.saturations["accumulator"] == 2
    with pytest.raises(ValueError, match="multiple"):
        twin(torch.zeros(1, 5, dtype=torch.int16))
    with pytest.raises(TypeError):
        twin(torch.zeros(1, 4))
    m = FixedVotingLayer(2, "xylo", step_mode="m")
    with pytest.raises(ValueError):
        m(torch.zeros(4, dtype=torch.int16))


def test_voting_converter():
    twin = to_fixed(layer.VotingLayer(10, step_mode="m"), "generic_int8", input_exponent=-4, name="vote")
    assert isinstance(twin, FixedVotingLayer)
    assert (twin.voting_size, twin.input_exponent, twin.step_mode, twin.layer_name) == (10, -4, "m", "vote")


# -- pooling -------------------------------------------------------------------------------------
def _ref_window_sums(x, k, s, p):
    """Plain-Python window sums over [N, C, H, W] lists with zero padding."""
    N, C, H, W = x.shape
    xl = x.tolist()
    oh, ow = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    out = []
    for n in range(N):
        out.append([])
        for c in range(C):
            out[n].append([])
            for i in range(oh):
                row = []
                for j in range(ow):
                    acc = 0
                    for a in range(k):
                        for b in range(k):
                            r, q = i * s + a - p, j * s + b - p
                            if 0 <= r < H and 0 <= q < W:
                                acc += xl[n][c][r][q]
                    row.append(acc)
                out[n][c].append(row)
    return out


@pytest.mark.parametrize("mode", ["s", "m"])
def test_avgpool_power_of_two_area_exact(mode):
    e = -5
    shape = (2, 2, 3, 8, 6) if mode == "m" else (2, 3, 8, 6)
    xq = torch.randint(-1000, 1000, shape, dtype=torch.int16)
    twin = FixedAvgPool2d(2, "generic_int8", input_exponent=e, step_mode=mode)
    y = twin(xq)
    assert twin.divides and twin.output_exponent() == e - 2
    fl = layer.AvgPool2d(2, step_mode=mode)
    assert torch.equal(twin.dequantize_output(y), fl(xq.double() * 2.0**e))
    flat = xq.reshape(-1, *xq.shape[-3:])
    assert y.reshape(-1, *y.shape[-3:]).tolist() == _ref_window_sums(flat, 2, 2, 0)


def test_avgpool_area_nine_keeps_sum_with_padding():
    xq = torch.randint(-50, 50, (2, 2, 7, 9), dtype=torch.int32)
    twin = FixedAvgPool2d(3, "generic_int8", stride=2, padding=1, input_exponent=-1)
    y = twin(xq)
    assert not twin.divides
    assert twin.fixed_report()["rule"] == "sum kept (window area not a power of two)"
    assert y.tolist() == _ref_window_sums(xq, 3, 2, 1)
    ref = nn.AvgPool2d(3, 2, 1)(xq.double() * 0.5)
    assert torch.allclose(twin.dequantize_output(y), ref, rtol=0, atol=1e-12)


def test_avgpool_shift_and_saturation():
    x = torch.tensor([[[[-3, 0], [0, 0]], [[5, 2], [1, 1]]]], dtype=torch.int32)  # [1, 2, 2, 2]
    twin = FixedAvgPool2d(2, "generic_int8", shift=True)
    assert twin(x).reshape(-1).tolist() == [-1, 2]  # floor(-3/4), floor(9/4)
    big = torch.full((1, 1, 2, 2), 1 << 30, dtype=torch.int64)
    sat = FixedAvgPool2d(2, "generic_int8")
    assert sat(big).item() == (1 << 31) - 1 and sat(-big).item() == -(1 << 31)
    assert sat.saturations["accumulator"] == 2


def test_window_sum_int64_path_for_large_values():
    g = torch.Generator().manual_seed(2)
    x = torch.randint(-(1 << 40), 1 << 40, (1, 2, 5, 5), generator=g)
    ref = _ref_window_sums(x, 3, 1, 1)
    assert window_sum(x, (3, 3), (1, 1), (1, 1)).tolist() == ref
    assert window_sum(x, (3, 3), (1, 1), (1, 1), force_int64=True).tolist() == ref
    huge = x * (1 << 14)  # |x| * 9 > 2^53: the float64 kernels would not be exact
    twin = FixedAvgPool2d(3, "ideal", stride=1, padding=1)
    assert twin(huge).tolist() == _ref_window_sums(huge, 3, 1, 1)


@pytest.mark.parametrize(
    "k,s,p,d,ceil",
    [(2, 2, 0, 1, False), (3, 2, 1, 1, False), (3, 2, 1, 2, True), ((2, 3), (1, 2), (1, 0), (1, 2), True), (3, 3, 0, 1, True)],
)
def test_maxpool_equals_float_both_paths(k, s, p, d, ceil):
    xq = torch.randint(-1000, 1000, (2, 3, 9, 10), dtype=torch.int16)
    fl = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
    twin = to_fixed(fl, "generic_int8")
    y = twin(xq)
    assert y.dtype == torch.int16
    assert torch.equal(y.double(), fl(xq.double()))
    kk = twin.kernel_size
    forced = window_max(xq, kk, twin.stride, twin.padding, twin.dilation, ceil, force_int64=True)
    assert torch.equal(forced, y)


def test_maxpool_large_values_negative_and_modes():
    x = torch.tensor([[[[-(1 << 60), -(1 << 60) + 1], [-(1 << 61), -5]]]])
    assert FixedMaxPool2d(2, "ideal")(x).item() == -5
    x2 = torch.tensor([[[[-(1 << 60), -(1 << 60) - 1], [-(1 << 61), -(1 << 59) - 1]]]])
    assert FixedMaxPool2d(2, "ideal")(x2).item() == -(1 << 59) - 1
    seq = torch.randint(-9, 9, (4, 2, 3, 6, 6), dtype=torch.int8)
    m = FixedMaxPool2d(2, "generic_int8", step_mode="m")
    s = FixedMaxPool2d(2, "generic_int8")
    assert torch.equal(m(seq), torch.stack([s(seq[t]) for t in range(4)]))
    spikes = torch.rand(2, 1, 4, 4) < 0.3
    assert torch.equal(s(spikes), nn.MaxPool2d(2)(spikes.double()).bool())
    with pytest.raises(ValueError):
        m(seq[0])
    with pytest.raises(TypeError):
        s(seq[0].double())


@pytest.mark.parametrize("mode", ["s", "m"])
def test_flatten(mode):
    shape = (3, 2, 4, 5, 5) if mode == "m" else (2, 4, 5, 5)
    x = torch.randint(-9, 9, shape, dtype=torch.int8)
    fl = layer.Flatten(step_mode=mode)
    twin = to_fixed(fl, "generic_int8")
    assert isinstance(twin, FixedFlatten) and twin.step_mode == mode
    assert torch.equal(twin(x), fl(x))
    assert torch.equal(FixedFlatten(0, 1, "xylo")(x), x.flatten(0, 1))


def test_pool_converters():
    a = to_fixed(layer.AvgPool2d(2, step_mode="m"), "generic_int8", input_exponent=-3)
    assert isinstance(a, FixedAvgPool2d) and a.step_mode == "m" and a.output_exponent() == -5
    b = to_fixed(nn.AvgPool2d((2, 4), divisor_override=2), "generic_int8")
    assert b.divisor == 2 and b.output_exponent() == -1
    x = torch.randint(-20, 20, (1, 2, 4, 8))
    assert torch.equal(b.dequantize_output(b(x)), nn.AvgPool2d((2, 4), divisor_override=2)(x.double()))
    with pytest.raises(ValueError, match="ceil_mode"):
        to_fixed(nn.AvgPool2d(2, ceil_mode=True), "generic_int8")
    with pytest.raises(ValueError, match="count_include_pad"):
        to_fixed(nn.AvgPool2d(3, 1, 1, count_include_pad=False), "generic_int8")
    ad = layer.AdaptiveAvgPool2d((2, None))
    twin = to_fixed(ad, "generic_int8", input_size=(8, 6))
    assert twin.kernel_size == (4, 1)
    x = torch.randint(-20, 20, (2, 3, 8, 6))
    assert torch.equal(twin.dequantize_output(twin(x)), ad(x.double()))
    with pytest.raises(TypeError, match="input_size"):
        to_fixed(ad, "generic_int8")
    with pytest.raises(ValueError, match="multiple"):
        to_fixed(nn.AdaptiveAvgPool2d(3), "generic_int8", input_size=(8, 8))
    mp = to_fixed(layer.MaxPool2d(3, 2, 1), "generic_int8")
    assert isinstance(mp, FixedMaxPool2d) and mp.padding == (1, 1)
    with pytest.raises(ValueError, match="return_indices"):
        to_fixed(nn.MaxPool2d(2, return_indices=True), "generic_int8")
