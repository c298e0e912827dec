"""Counter-based RNG, packed masks and the dropout / drop-connect integer twins."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from hwsnn import layer
from hwsnn.fixed import FitError, rng, to_fixed
from hwsnn.fixed.dropout import (
    FixedDropConnectLinear,
    FixedDropout,
    FixedDropout2d,
    fold_rescale,
    rescale_exponent,
)


# -- an independent plain-Python reading of the documented generator ------------------------------
def ref_hash(x: int) -> int:
    x %= 1 << 32
    x ^= x // (1 << 16)
    x = (x * 0x7FEB352D) % (1 << 32)
    x ^= x // (1 << 15)
    x = (x * 0x846CA68B) % (1 << 32)
    x ^= x // (1 << 16)
    return x


def ref_bits(seed: int, draw: int, index: int) -> int:
    m = (1 << 32) - 1
    return ref_hash(ref_hash(ref_hash(seed & m) ^ (draw & m)) ^ (index & m))


def ref_mask(seed: int, draw: int, n: int, p: float) -> list:
    thr = round((1 - p) * 2**24)
    return [(ref_bits(seed, draw, i) >> 8) < thr for i in range(n)]


# -- rng -----------------------------------------------------------------------------------------
def test_hash32_vectorized_equals_plain_python():
    values = [0, 1, 2, 255, 65535, 65536, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 123456789]
    values += [int(v) for v in torch.randint(0, 1 << 32, (200,), dtype=torch.int64)]
    got = rng.hash32(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [ref_hash(v) for v in values]
    assert [rng.hash32_int(v) for v in values] == [ref_hash(v) for v in values]
    # only the low 32 bits of the input matter
    big = torch.tensor([(1 << 40) + 5, -1], dtype=torch.int64)
    assert rng.hash32(big).tolist() == [ref_hash(5), ref_hash(0xFFFFFFFF)]
    assert all(0 <= g < (1 << 32) for g in got)
    assert len(set(got)) == len(set(values))  # a bijection on 32 bits


def test_hash32_rejects_float():
    with pytest.raises(TypeError):
        rng.hash32(torch.zeros(3))


@pytest.mark.parametrize("seed,draw", [(0, 0), (1, 0), (0, 1), (-1, 7), (2**40 + 3, 2)])
def test_random_bits_and_mask_follow_the_documented_formula(seed, draw):
    n = 37
    assert rng.random_bits(seed, draw, n).tolist() == [ref_bits(seed, draw, i) for i in range(n)]
    for p in (0.0, 0.3, 0.5, 0.9):
        got = rng.keep_mask(seed, draw, (n,), p).tolist()
        assert got == ref_mask(seed, draw, n, p)


def test_keep_mask_is_c_order():
    m = rng.keep_mask(5, 2, (3, 4, 5), 0.5)
    assert m.reshape(-1).tolist() == ref_mask(5, 2, 60, 0.5)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_rate_within_binomial_tolerance(p):
    n = 200_000
    rate = rng.keep_mask(3, 0, (n,), p).double().mean().item()
    sigma = math.sqrt(p * (1 - p) / n)
    assert abs(rate - (1 - p)) < 5 * sigma


def test_p_zero_keeps_everything_and_threshold():
    assert rng.keep_threshold(0.0) == 1 << 24
    assert rng.keep_threshold(0.5) == 1 << 23
    assert rng.keep_mask(9, 4, (1000,), 0.0).all()
    with pytest.raises(ValueError):
        rng.keep_threshold(1.0)


def test_seeds_and_draws_give_different_masks():
    shape = (64, 64)
    masks = [rng.keep_mask(s, d, shape, 0.5) for s in (0, 1) for d in (0, 1)]
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            agree = (masks[i] == masks[j]).double().mean().item()
            assert 0.45 < agree < 0.55  # independent masks agree on about half the bits
    assert torch.equal(rng.keep_mask(0, 1, shape, 0.5), masks[1])  # deterministic


@pytest.mark.parametrize("shape", [(1,), (7,), (8,), (9,), (3, 5, 7), (2, 8)])
def test_pack_equals_numpy_packbits_little(shape):
    mask = torch.rand(shape) < 0.5
    packed = rng.pack_mask(mask)
    ref = np.packbits(mask.numpy().ravel(), bitorder="little")
    assert packed.dtype == torch.uint8
    assert packed.tolist() == ref.tolist()
    assert torch.equal(rng.unpack_mask(packed, shape), mask)
    back = np.unpackbits(ref, bitorder="little")[: mask.numel()].reshape(shape).astype(bool)
    assert torch.equal(rng.unpack_mask(torch.from_numpy(ref), shape), torch.from_numpy(back))


def test_pack_hand_example_and_unpack_errors():
    # elements 0, 2 and 8 set: byte 0 = 1 + 4, byte 1 = 1 (little bit order)
    mask = torch.zeros(10, dtype=torch.bool)
    mask[[0, 2, 8]] = True
    assert rng.pack_mask(mask).tolist() == [5, 1]
    with pytest.raises(ValueError):
        rng.unpack_mask(torch.zeros(3, dtype=torch.uint8), (10,))
    with pytest.raises(TypeError):
        rng.unpack_mask(torch.zeros(2, dtype=torch.int32), (10,))


# -- FixedDropout --------------------------------------------------------------------------------
def _int_seq(T, shape, lo=-100, hi=100):
    return torch.randint(lo, hi, (T, *shape), dtype=torch.int16)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.75])
@pytest.mark.parametrize("mode", ["s", "m"])
def test_dropout_twin_equals_float_with_the_same_mask(p, mode):
    T, shape, e = 5, (4, 6, 3), -4
    xq = _int_seq(T, shape)
    twin = FixedDropout(p, 11, "generic_int8", step_mode=mode)
    f = layer.Dropout(p, step_mode=mode)
    yq = twin(xq) if mode == "m" else torch.stack([twin(xq[t]) for t in range(T)])
    assert yq.dtype == xq.dtype
    mask = twin.mask()
    assert mask.shape == shape
    f.mask = mask.to(torch.float64) * (1.0 / (1.0 - p))
    x = xq.to(torch.float64) * 2.0**e
    y = f(x) if mode == "m" else torch.stack([f(x[t]) for t in range(T)])
    assert torch.equal(yq.to(torch.float64) * 2.0**e * twin.rescale, y)
    # and by hand: zero where dropped, unchanged where kept
    assert torch.equal(yq, torch.where(mask, xq, torch.zeros_like(xq)))


def test_dropout_mask_fixed_over_time_redrawn_at_reset():
    twin = FixedDropout(0.5, 5, "generic_int8")
    x = torch.ones(3, 40, dtype=torch.int8)
    y0 = twin(x)
    packed0 = twin.mask_packed.clone()
    assert twin.mask_draw == 0 and twin.draws == 1
    for _ in range(4):
        assert torch.equal(twin(x), y0)
    assert twin.draws == 1
    assert y0.reshape(-1).bool().tolist() == ref_mask(5, 0, 120, 0.5)
    twin.reset()
    assert twin.mask_packed is None
    y1 = twin(x)
    assert twin.mask_draw == 1 and twin.draws == 2
    assert not torch.equal(twin.mask_packed, packed0)
    assert y1.reshape(-1).bool().tolist() == ref_mask(5, 1, 120, 0.5)


def test_dropout_same_seed_same_packed_masks_in_both_step_modes():
    x = _int_seq(6, (3, 17))
    a = FixedDropout(0.4, 123, "generic_int8", step_mode="s")
    b = FixedDropout(0.4, 123, "generic_int8", step_mode="m")
    for _ in range(3):  # three samples, separated by reset()
        ya = torch.stack([a(x[t]) for t in range(x.shape[0])])
        yb = b(x)
        assert torch.equal(a.mask_packed, b.mask_packed)
        assert torch.equal(ya, yb)
        assert torch.equal(a.mask_tables()["mask"], a.mask_packed)
        a.reset()
        b.reset()
    assert a.draws == b.draws == 3


def test_dropout_errors_eval_and_counters():
    twin = FixedDropout(0.5, 0, "generic_int8")
    with pytest.raises(TypeError, match="integer"):
        twin(torch.zeros(2, 3))
    twin(torch.zeros(2, 3, dtype=torch.int32))
    with pytest.raises(ValueError, match="reset"):
        twin(torch.zeros(2, 4, dtype=torch.int32))
    twin.reset()
    twin.eval()
    x = torch.arange(-5, 5, dtype=torch.int16).reshape(2, 5)
    assert torch.equal(twin(x), x)
    assert twin.draws == 1 and twin.mask_packed is None  # eval draws nothing
    assert twin.mask_tables() == {}
    with pytest.raises(ValueError):
        FixedDropout(1.0, 0, "generic_int8")
    with pytest.raises(TypeError):
        FixedDropout(0.5, 1.5, "generic_int8")


def test_dropout_bool_spikes_keep_dtype():
    twin = FixedDropout(0.5, 2, "xylo")
    s = torch.rand(4, 30) < 0.5
    y = twin(s)
    assert y.dtype == torch.bool
    assert torch.equal(y, s & twin.mask())


@pytest.mark.parametrize("mode", ["s", "m"])
def test_dropout2d_twin_channel_mask_equals_float(mode):
    p, T, e = 0.5, 3, -2
    xq = _int_seq(T, (3, 8, 4, 4))
    twin = FixedDropout2d(p, 4, "generic_int8", step_mode=mode)
    yq = twin(xq) if mode == "m" else torch.stack([twin(xq[t]) for t in range(T)])
    mask = twin.mask()
    assert mask.shape == (3, 8, 1, 1)
    assert mask.reshape(-1).tolist() == ref_mask(4, 0, 24, p)
    f = layer.Dropout2d(p, step_mode=mode)
    f.mask = mask.to(torch.float64) * 2.0
    x = xq.to(torch.float64) * 2.0**e
    y = f(x) if mode == "m" else torch.stack([f(x[t]) for t in range(T)])
    assert torch.equal(yq.to(torch.float64) * 2.0 ** (e + twin.rescale_exponent), y)
    with pytest.raises(ValueError):
        FixedDropout2d(p, 0, "generic_int8")(torch.zeros(5, dtype=torch.int8))


def test_rescale_helpers():
    assert rescale_exponent(0.5) == 1
    assert rescale_exponent(0.75) == 2
    assert rescale_exponent(0.0) == 0
    assert rescale_exponent(0.3) is None
    assert FixedDropout(0.875, 0, "generic_int8").rescale_exponent == 3
    w = torch.tensor([1.0, -2.0, 0.5])
    assert torch.equal(fold_rescale(w, 0.5), w * 2)
    assert torch.allclose(fold_rescale(w, 0.3), w / 0.7)


def test_dropout_converters():
    f = layer.Dropout(0.25)
    twin = to_fixed(f, "generic_int8", seed=9, name="drop1")
    assert isinstance(twin, FixedDropout) and not isinstance(twin, FixedDropout2d)
    assert (twin.p, twin.seed, twin.layer_name, twin.training) == (0.25, 9, "drop1", True)
    f2 = layer.Dropout2d(0.5, step_mode="m")
    f2.eval()
    twin2 = f2.to_fixed("generic_int8")
    assert isinstance(twin2, FixedDropout2d) and twin2.seed == 0
    assert twin2.step_mode == "m" and not twin2.training
    rep = twin2.fixed_report()
    assert rep["keep_threshold"] == 1 << 23 and rep["rescale_exponent"] == 1
    with pytest.raises(TypeError, match="unexpected"):
        to_fixed(f, "generic_int8", weight_exponent=3)


# -- FixedDropConnectLinear ------------------------------------------------------------------------
def _dropconnect(in_f, out_f, bias, activation, invariant, e_w=-6, e_x=-3, p=0.5):
    torch.manual_seed(1)
    f = layer.DropConnectLinear(in_f, out_f, bias=bias, p=p, invariant=invariant, activation=activation)
    f.double()
    with torch.no_grad():  # weights exactly on the grid, so quantization is exact
        f.weight.copy_(torch.randint(-127, 128, (out_f, in_f)).double() * 2.0**e_w)
        if bias:
            f.bias.copy_(torch.randint(-3000, 3000, (out_f,)).double() * 2.0 ** (e_w + e_x))
    return f


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_dropconnect_invariant_equals_float_with_the_same_masks(activation, bias):
    in_f, out_f, N, T, e_x, e_w = 7, 5, 3, 4, -3, -6
    act = nn.ReLU() if activation else None
    f = _dropconnect(in_f, out_f, bias, act, True, e_w, e_x)
    twin = to_fixed(f, "generic_int8", seed=3, input_exponent=e_x, name="dc")
    assert isinstance(twin, FixedDropConnectLinear)
    assert twin.weight_exponent == e_w and twin.relu == (activation is not None)
    assert torch.equal(twin.weight.double() * 2.0**e_w, f.weight)
    xq = torch.randint(-20, 20, (T, N, in_f))
    for sample in range(2):
        outs = [twin(xq[t]) for t in range(T)]
        mw, mb = twin.masks()
        assert twin.draws == sample + 1  # invariant: one draw per sample
        f.mask_w, f.mask_b = mw, mb
        for t in range(T):
            y = f(xq[t].double() * 2.0**e_x)
            assert torch.equal(outs[t].double() * 2.0 ** twin.exponents["output"], y)
        twin.reset()
        f.reset()


def test_dropconnect_mask_layout_and_tables():
    in_f, out_f, N = 3, 2, 2
    f = _dropconnect(in_f, out_f, True, None, False)
    twin = to_fixed(f, "generic_int8", seed=21)
    twin(torch.ones(N, in_f, dtype=torch.int8))
    twin(torch.ones(N, in_f, dtype=torch.int8))  # not invariant: a new draw every step
    assert twin.draws == 2 and twin.mask_draw == 1
    S = out_f * in_f + out_f
    ref = ref_mask(21, 1, N * S, 0.5)
    mw, mb = twin.masks()
    for n in range(N):
        for o in range(out_f):
            for i in range(in_f):
                assert mw[n, o, i].item() == ref[n * S + o * in_f + i]
            assert mb[n, o].item() == ref[n * S + out_f * in_f + o]
    tables = twin.mask_tables()
    assert set(tables) == {"mask_w", "mask_b"}
    assert tables["mask_w"].tolist() == np.packbits(mw.numpy().ravel(), bitorder="little").tolist()
    assert tables["mask_b"].tolist() == np.packbits(mb.numpy().ravel(), bitorder="little").tolist()


def test_dropconnect_saturation_eval_and_errors():
    w = torch.full((2, 4), 127, dtype=torch.int32)
    w[1] = -128
    twin = FixedDropConnectLinear(w, None, 0.0, 0, "xylo", relu=False)  # p=0: every weight kept
    x = torch.full((1, 4), 100, dtype=torch.int16)
    y = twin(x)
    # by hand: 4*127*100 = 50800 -> 32767; 4*-128*100 = -51200 -> -32768 (int16 accumulator)
    assert y.tolist() == [[32767, -32768]]
    assert twin.saturations["accumulator"] == 2
    twin.eval()
    xs = torch.tensor([[1, -2, 3, 0]])
    assert twin(xs).tolist() == [[127 * 2, -128 * 2]]
    relu = FixedDropConnectLinear(w, torch.tensor([5, 7]), 0.9, 0, "generic_int8", relu=True)
    relu.eval()
    assert relu(xs).tolist() == [[127 * 2 + 5, 0]]
    with pytest.raises(FitError, match="weight"):
        FixedDropConnectLinear(w * 2, None, 0.5, 0, "generic_int8")
    clipped = FixedDropConnectLinear(w * 2, None, 0.5, 0, "generic_int8", clip=True)
    assert clipped.clipped["weight"] == 8
    inv = FixedDropConnectLinear(w, None, 0.5, 0, "generic_int8", invariant=True)
    inv(torch.zeros(3, 4, dtype=torch.int8))
    with pytest.raises(ValueError, match="reset"):
        inv(torch.zeros(2, 4, dtype=torch.int8))
    with pytest.raises(TypeError):
        inv(torch.zeros(3, 4))
    with pytest.raises(ValueError):
        inv(torch.zeros(3, 5, dtype=torch.int8))


def test_dropconnect_converter_default_exponent_and_activation_check():
    f = layer.DropConnectLinear(6, 4, p=0.5)
    twin = to_fixed(f, "generic_int8")
    w = f.weight.detach().double()
    e = twin.weight_exponent
    assert twin.weight.abs().max().item() <= 127
    assert twin.weight.abs().max().item() > 63  # the finest grid that fits
    assert torch.equal(twin.weight.double(), torch.round(w * 2.0**-e))
    f2 = layer.DropConnectLinear(6, 4, activation=nn.Sigmoid())
    with pytest.raises(TypeError, match="ReLU"):
        to_fixed(f2, "generic_int8")


def test_dropconnect_multistep_equals_single_step():
    w = torch.randint(-50, 50, (3, 5))
    b = torch.randint(-50, 50, (3,))
    x = torch.randint(-3, 4, (4, 2, 5))
    a = FixedDropConnectLinear(w, b, 0.3, 8, "generic_int8", step_mode="s")
    m = FixedDropConnectLinear(w, b, 0.3, 8, "generic_int8", step_mode="m")
    ya = torch.stack([a(x[t]) for t in range(4)])
    assert torch.equal(m(x), ya)
    assert a.draws == m.draws == 4


def test_dropconnect_weight_shift_floor_and_bias_at_output_exponent():
    w = torch.tensor([[3, -5, 7], [-1, 2, 0]])
    b = torch.tensor([4, -3])
    x = torch.tensor([[1, 2, 3], [-4, 0, 5]])
    twin = FixedDropConnectLinear(w, b, 0.0, 0, "generic_int8", relu=False, weight_shift=-2)
    assert twin.output_exponent == 2 and twin.exponents["bias"] == 2
    y = twin(x).tolist()
    for n in range(2):
        for o in range(2):
            a = sum(w[o, i].item() * x[n, i].item() for i in range(3))
            assert y[n][o] == a // 4 + b[o].item()  # floor right shift, then the bias
    with pytest.raises(FitError, match="weight_shift"):
        FixedDropConnectLinear(w, b, 0.5, 0, "generic_int8", weight_shift=17)
    f = layer.DropConnectLinear(3, 2, p=0.5, activation=None)
    conv = to_fixed(f, "generic_int8", input_exponent=0, weight_exponent=-7, output_exponent=-5)
    assert conv.weight_shift == -2 and conv.output_exponent == -5
    assert torch.equal(conv.bias.long(), torch.round(f.bias.detach().double() * 2.0**5).long())
