"""The shared integer arithmetic of the twins against plain-Python definitions of each rule."""

from __future__ import annotations

import random

import pytest
import torch

from hwsnn.fixed import SynapticEvents, accumulate_events
from hwsnn.fixed.arith import (
    FitError,
    decay_amount,
    fit,
    mul12_decay,
    overflow,
    power_of_two_exponent,
    quantize,
    shift,
    shift_decay,
    storage_dtype,
    wrap,
)
from targets import Width


def py_decay(x: int, k: int, rounding: str) -> int:
    """D(x, k) written from the target specs, one integer at a time."""
    if rounding == "floor":
        return x // (2**k)
    if rounding == "toward_zero":
        return int(abs(x) // (2**k)) * (1 if x >= 0 else -1)
    d = x // (2**k)
    return 1 if (d == 0 and x > 0) else d


@pytest.mark.parametrize("rounding", ["floor", "toward_zero", "xylo_min1"])
def test_decay_rules_match_their_definitions(rounding):
    rng = random.Random(0)
    xs = [rng.randint(-40000, 40000) for _ in range(400)] + [0, 1, -1, 2, -2, 32767, -32768]
    for k in range(0, 16):
        got = decay_amount(torch.tensor(xs), k, rounding).tolist()
        assert got == [py_decay(x, k, rounding) for x in xs], (rounding, k)


def test_xylo_decay_table_from_the_spec():
    x = torch.tensor([25, -25, 1, -1, 0])
    assert shift_decay(x, 1, "xylo_min1").tolist() == [13, -12, 0, 0, 0]
    for k in range(16):
        assert shift_decay(torch.tensor([1, -1]), k, "xylo_min1").tolist() == [0, 0]
    assert shift_decay(torch.tensor([123, -123]), 0, "xylo_min1").tolist() == [0, 0]  # k = 0 empties


def test_floor_and_toward_zero_differ_on_negatives():
    x = torch.tensor([-25])
    assert shift_decay(x, 1, "floor").item() == -12  # -25 - (-13)
    assert shift_decay(x, 1, "toward_zero").item() == -13  # -25 - (-12)


def test_mul12_decay_rounds_toward_zero():
    for u, d in [(4096, 1), (-4096, 1), (-5000, 123), (5000, 123), (8388607, 0), (-3, 4095), (7, -1)]:
        p = u * (4096 - d)
        expect = (abs(p) >> 12) * (1 if p >= 0 else -1)
        assert mul12_decay(torch.tensor([u]), d).item() == expect
    assert mul12_decay(torch.tensor([4096]), 1).item() == 4095  # d = du + 1 = 1: leak 1/4096


@pytest.mark.parametrize("bits", [4, 8, 12, 16, 24])
def test_wrap_is_twos_complement(bits):
    w = Width(bits=bits)
    rng = random.Random(bits)
    xs = [rng.randint(-(2 ** (bits + 3)), 2 ** (bits + 3)) for _ in range(300)]
    expect = [((x + 2 ** (bits - 1)) % 2**bits) - 2 ** (bits - 1) for x in xs]
    assert wrap(torch.tensor(xs), w).tolist() == expect


def test_overflow_saturate_counts():
    w = Width(bits=8)
    y, n = overflow(torch.tensor([-200, -128, 0, 127, 128, 1000]), w, "saturate")
    assert y.tolist() == [-128, -128, 0, 127, 127, 127] and n == 3


def test_overflow_symmetric_saturation():
    w = Width(bits=24, symmetric=True)
    y, n = overflow(torch.tensor([-(2**23), 2**23, 5]), w, "saturate")
    assert y.tolist() == [-(2**23 - 1), 2**23 - 1, 5] and n == 2


def test_overflow_fold_once_is_one_conditional_fold():
    w = Width(bits=24)
    h = 2**23
    y, n = overflow(torch.tensor([h, h + 1, -h, -h + 1, 0, 3 * h]), w, "fold_once")
    # kept range (-2^23, 2^23]; one fold only, so 3*2^23 becomes 2^23 (not reduced further)
    assert y.tolist() == [h, -h + 1, h, -h + 1, 0, h] and n == 3


def test_overflow_wrap_counts():
    y, n = overflow(torch.tensor([127, 128, -129]), Width(bits=8), "wrap")
    assert y.tolist() == [127, -128, 127] and n == 2


def test_shift_left_and_floor_right():
    assert shift(torch.tensor([-5, 5]), 2).tolist() == [-20, 20]
    assert shift(torch.tensor([-5, 5]), -1).tolist() == [-3, 2]
    assert shift(torch.tensor([-5, 5]), -1, "toward_zero").tolist() == [-2, 2]


def test_fit_names_layer_parameter_value_limit():
    with pytest.raises(FitError) as info:
        fit(torch.tensor([1, 300]), Width(bits=8), layer="fc1", parameter="weight", target="generic_int8")
    msg = str(info.value)
    for part in ("fc1", "weight", "300", "[-128, 127]", "generic_int8", "clip=True"):
        assert part in msg
    v, n = fit(torch.tensor([1, 300, -400]), Width(bits=8), layer="fc1", parameter="weight", clip=True)
    assert v.tolist() == [1, 127, -128] and n == 2


def test_fit_grid_like_loihi_mixed_weights():
    w = Width(bits=9)
    with pytest.raises(FitError, match="multiples of 2"):
        fit(torch.tensor([3]), w, layer="dense", parameter="weight", step=2)
    v, n = fit(torch.tensor([3, -3, 255, -256, 4]), w, layer="dense", parameter="weight", step=2, clip=True)
    assert v.tolist() == [2, -4, 254, -256, 4] and n == 3  # (w >> 1) << 1, floor


def test_quantize_rounds_and_refuses_non_finite():
    q, n = quantize(torch.tensor([0.5, -0.26, 1.0]), -2, Width(bits=8), layer="l", parameter="w")
    assert q.tolist() == [2, -1, 4] and n == 0
    with pytest.raises(FitError, match="non-finite"):
        quantize(torch.tensor([float("nan")]), 0, Width(bits=8), layer="l", parameter="w")


def test_power_of_two_exponent_is_smallest_that_fits():
    rng = random.Random(1)
    w = Width(bits=8)
    for _ in range(200):
        m = rng.uniform(1e-4, 1e4)
        e = power_of_two_exponent(m, w)
        assert round(m * 2.0**-e) <= 127
        assert round(m * 2.0 ** -(e - 1)) > 127


def test_storage_dtypes():
    assert storage_dtype(Width(bits=8)) == torch.int8
    assert storage_dtype(Width(bits=8, signed=False)) == torch.int16
    assert storage_dtype(Width(bits=16)) == torch.int16
    assert storage_dtype(Width(bits=24)) == torch.int32
    assert storage_dtype(Width(bits=48)) == torch.int64


def test_float_input_is_refused():
    with pytest.raises(TypeError, match="integer tensor"):
        shift_decay(torch.tensor([1.0]), 1, "floor")


def _per_event_reference(i0, counts, weight, lo, hi):
    """One event at a time, saturating after each, sources in order (the Xylo rule)."""
    out = []
    for b in range(len(counts)):
        row = []
        for j in range(len(weight)):
            v = i0[b][j]
            for src in range(len(counts[b])):
                for _ in range(counts[b][src]):
                    v = min(max(v + weight[j][src], lo), hi)
            row.append(v)
        out.append(row)
    return out


def test_accumulate_events_equals_one_event_at_a_time():
    rng = random.Random(3)
    w16 = Width(bits=16)
    differs = 0
    for trial in range(30):
        n_in, n_out, batch = rng.randint(1, 6), rng.randint(1, 5), rng.randint(1, 3)
        weight = [[rng.choice([-1, 1]) * rng.randint(0, 12000) for _ in range(n_in)] for _ in range(n_out)]
        counts = [[rng.randint(0, 3) for _ in range(n_in)] for _ in range(batch)]
        i0 = [[rng.randint(-32768, 32767) for _ in range(n_out)] for _ in range(batch)]
        got, _ = accumulate_events(torch.tensor(i0), SynapticEvents(torch.tensor(counts), torch.tensor(weight)), w16)
        expect = _per_event_reference(i0, counts, weight, -32768, 32767)
        assert got.tolist() == expect, trial
        plain = (torch.tensor(i0) + torch.tensor(counts) @ torch.tensor(weight).T).clamp(-32768, 32767)
        differs += int((plain != got).any())
    assert differs > 0, "the cases must include ones where matmul-then-clip is wrong"
