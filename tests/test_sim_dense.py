"""The simulator's synaptic ops (sim/ops/dense.py) and mask generator (sim/rng.py) against the
torch integer twins (hwsnn.fixed): bit-exact outputs, saturation counts, masks, chunking."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import targets
from hwsnn.fixed import rng as trng
from hwsnn.fixed.conv import FixedConv2d
from hwsnn.fixed.dense import FixedLinear
from hwsnn.fixed.dropout import FixedDropConnectLinear
from sim import rng as srng
from sim.ops.base import op_from_entry, OPS, Events
from sim.ops.conv import Conv2dOp, int_conv2d
from sim.ops.dense import DenseOp, exact_matmul
from sim.ops.dropout import DropConnectOp

from quant.export import describe_layer


# -- manifest entries of twins (quant.export.describe_layer, docs/EXPORT_FORMAT.md) --------------
def describe(twin, input_shape, input_kind="spikes"):
    """(layer entry, tables as NumPy arrays) of a twin, as the exporter writes them."""
    entry, tables = describe_layer(twin, tuple(input_shape), input_kind)
    return entry, {k: np.asarray(v) for k, v in tables.items()}


def make_op(twin, input_shape, batch, input_kind="spikes", output=None, **override):
    entry, tables = describe(twin, input_shape, input_kind)
    entry = {**entry, "params": {**entry["params"], **override}, **({"output": output} if output else {})}
    return op_from_entry(entry, tables, twin.target, batch)


def run_chunks(op, x: np.ndarray, chunk: int):
    """Run ``x`` [T, N, ...] through ``op`` in chunks; concatenated outputs and counters."""
    ys, ctr = [], []
    for t0 in range(0, x.shape[0], chunk):
        y, rec = op.run(x[t0:t0 + chunk], t0)
        assert rec == {}
        ys.append(y)
        ctr.append({k: v.copy() for k, v in op.counters.items()})
    cat = {k: np.concatenate([c[k] for c in ctr]) for k in ctr[0]}
    if isinstance(ys[0], Events):
        return Events(np.concatenate([e.counts for e in ys]), ys[0].weight), cat
    return np.concatenate(ys), cat


def twin_multi(twin, x: np.ndarray):
    twin.step_mode = "m"
    return twin(torch.from_numpy(x))


def rand_w(gen, shape, width, step=1):
    w = gen.integers(width.lo, width.hi + 1, size=shape)
    return torch.from_numpy((w // step) * step)


# -- sim/rng.py vs hwsnn.fixed.rng ---------------------------------------------------------------
def test_rng_matches_the_twin_generator():
    gen = np.random.default_rng(0)
    seeds = [0, 1, -1, 2**31, 2**32 + 5, -(2**40)] + [int(s) for s in gen.integers(-2**62, 2**62, 6)]
    for seed in seeds:
        for draw in [0, 1, 5, 2**32 - 1, int(gen.integers(0, 2**40))]:
            n = int(gen.integers(1, 300))
            a = srng.random_bits(seed, draw, n)
            assert a.dtype == np.uint64
            assert np.array_equal(a.astype(np.int64), trng.random_bits(seed, draw, n).numpy())
            p = float(gen.uniform(0, 0.95))
            shape = (int(gen.integers(1, 4)), int(gen.integers(1, 9)), 5)
            m = srng.keep_mask(seed, draw, shape, srng.keep_threshold(p))
            mt = trng.keep_mask(seed, draw, shape, p).numpy()
            assert np.array_equal(m, mt)
            packed = srng.pack_mask(m)
            assert np.array_equal(packed, trng.pack_mask(torch.from_numpy(m)).numpy())
            assert np.array_equal(packed, np.packbits(m.ravel(), bitorder="little"))
            assert np.array_equal(srng.unpack_mask(packed, shape), m)
            assert np.array_equal(trng.unpack_mask(torch.from_numpy(packed), shape).numpy(), m)
    x = gen.integers(-2**63, 2**63 - 1, 1000, dtype=np.int64)
    assert np.array_equal(srng.hash32(x).astype(np.int64), trng.hash32(torch.from_numpy(x)).numpy())
    assert srng.keep_threshold(0.5) == trng.keep_threshold(0.5) == 1 << 23
    assert srng.keep_mask(3, 0, (40,), 1 << 24).all()  # p = 0 keeps everything
    with pytest.raises(ValueError):
        srng.unpack_mask(packed[:-1], shape)


# -- dense (sum) ---------------------------------------------------------------------------------
SUM_CASES = [  # target, weight shift, input kind
    ("generic_int8", 0, "spikes"),
    ("generic_int8", -3, "values"),
    ("generic_int8", 5, "values"),
    ("ideal", -7, "values"),
    ("loihi", 7, "values"),
    ("loihi", -2, "spikes"),
]


def _inputs(gen, kind, shape, big=1 << 26):
    if kind == "spikes":
        return gen.integers(0, 2, shape).astype(np.int8)
    return gen.integers(-big, big, shape).astype(np.int64)


@pytest.mark.parametrize("tname,shift,kind", SUM_CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_dense_sum_bit_exact(tname, shift, kind, seed):
    tg = targets.load(tname)
    gen = np.random.default_rng(seed)
    in_f, out_f, n, t = 24, 9, 3, 30
    w = rand_w(gen, (out_f, in_f), tg.widths.weight, tg.synapse.weight_step)
    b = torch.from_numpy(gen.integers(max(-5000, tg.widths.bias.lo), min(5000, tg.widths.bias.hi) + 1, out_f))
    twin = FixedLinear(w, tg, b, shift, name="fc")
    x = _inputs(gen, kind, (t, n, in_f))
    y_twin = twin_multi(twin, x).numpy()
    op = make_op(twin, (in_f,), n, kind)
    y, ctr = run_chunks(op, x, 7)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, y_twin)
    assert op.saturations.get("accumulator", 0) == twin.saturations.get("accumulator", 0)
    assert int(ctr["saturations"].sum()) == twin.saturations.get("accumulator", 0)
    if kind == "values" and tname != "ideal":
        assert twin.saturations["accumulator"] > 0  # the overflow rule is exercised
    assert op.latency == tg.synapse.latency


@pytest.mark.parametrize("tname", ["loihi", "ideal"])
def test_dense_delays_and_latency_bit_exact_and_chunk_invariant(tname):
    tg = targets.load(tname)
    gen = np.random.default_rng(3)
    in_f, out_f, n, t = 10, 6, 2, 100
    w = rand_w(gen, (out_f, in_f), tg.widths.weight, tg.synapse.weight_step)
    d = torch.from_numpy(gen.integers(0, 63, (out_f, in_f)))
    d[0, 0], d[1, 1] = 62, 0  # the deepest delay lean on a 100-step run
    b = torch.from_numpy(gen.integers(-300, 300, out_f))
    latency = 1 if tname == "loihi" else 2
    twin = FixedLinear(w, tg, b, -1, latency=latency, delays=d, name="dd")
    x = gen.integers(0, 2, (t, n, in_f)).astype(np.int8)
    x[0] = 1  # spikes at step 0 through delay 62 arrive at 62 + latency
    y_twin = twin_multi(twin, x).numpy()
    outs = []
    for chunk in (1, 7, t):
        op = make_op(twin, (in_f,), n)
        y, ctr = run_chunks(op, x, chunk)
        np.testing.assert_array_equal(y, y_twin)
        outs.append(ctr)
        assert np.all(y[:latency] == 0)  # FIFO zeros: the bias too
    for c in outs[1:]:
        for k in c:
            np.testing.assert_array_equal(c[k], outs[0][k])
    # the reset clears the ring buffer and the FIFO: a second run equals the first
    op.reset()
    np.testing.assert_array_equal(run_chunks(op, x, 13)[0], y_twin)
    # mutation: one delay off by one changes the result
    entry, tables = describe(twin, (in_f,))
    tables = dict(tables)
    tables["delays"] = tables["delays"].copy()
    tables["delays"][0, 0] = 61
    bad = op_from_entry(entry, tables, tg, n)
    assert not np.array_equal(run_chunks(bad, x, t)[0], y_twin)


def test_dense_int64_path_and_huge_values_on_ideal():
    tg = targets.load("ideal")
    gen = np.random.default_rng(5)
    in_f, out_f, n, t = 16, 5, 2, 6
    w = rand_w(gen, (out_f, in_f), tg.widths.weight)  # |w| up to 2^23
    x = gen.integers(-(1 << 36), 1 << 36, (t, n, in_f))  # bound 2^23 * 2^36 * 16 >= 2^53: int64 path
    assert int(np.abs(x).max()) * int(w.abs().max()) * in_f >= 1 << 53
    twin = FixedLinear(w, tg, None, -9, name="big")
    y_twin = twin_multi(twin, x).numpy()
    op = make_op(twin, (in_f,), n, "values")
    y, _ = run_chunks(op, x, 4)
    np.testing.assert_array_equal(y, y_twin)
    assert twin.saturations.get("accumulator", 0) == op.saturations.get("accumulator", 0)
    # exact against Python integers, and the float and int64 paths agree where both are exact
    xs = x[0]
    ref = np.array([[sum(int(a) * int(b) for a, b in zip(row, wr)) for wr in w.tolist()] for row in xs.tolist()])
    np.testing.assert_array_equal(exact_matmul(xs, w.numpy().T), ref)
    small = gen.integers(-100, 100, (4, in_f))
    np.testing.assert_array_equal(exact_matmul(small, w.numpy().T), exact_matmul(small, w.numpy().T, force_int64=True))
    with pytest.raises(OverflowError, match="big"):
        exact_matmul(np.full((1, 4), 1 << 40), np.full((4, 1), 1 << 22), "big")


# -- dense (per event, Xylo) ---------------------------------------------------------------------
@pytest.mark.parametrize("first_layer", [True, False])
def test_dense_xylo_events_bit_exact(first_layer):
    tg = targets.load("xylo")
    gen = np.random.default_rng(7)
    in_f, out_f, n, t = 12, 8, 3, 20
    w = rand_w(gen, (out_f, in_f), tg.widths.weight)
    w[0, :] = 0  # an output without synapses
    twin = FixedLinear(w, tg, None, 9, first_layer=first_layer, name="xin" if first_layer else "xrec")
    cap = tg.synapse.max_input_events if first_layer else tg.neuron.max_spikes_per_step
    x = gen.integers(0, cap + 1, (t, n, in_f)).astype(np.int16)
    ev = twin_multi(twin, x)
    op = make_op(twin, (in_f,), n)
    assert op.event_cap == cap and op.latency == (0 if first_layer else 1)
    out, ctr = run_chunks(op, x, 7)
    assert isinstance(out, Events) and out.shape == (t, n, out_f)
    np.testing.assert_array_equal(out.counts, ev.counts.numpy())
    assert out.weight.dtype == np.int64
    np.testing.assert_array_equal(out.weight, ev.weight.numpy())
    # wrap16(w << 9) really wraps for some weights
    assert np.any(out.weight != w.numpy() * 512)
    # events are counted at delivery: counts after the FIFO times the nonzero effective weights
    nz = (out.weight != 0).sum(axis=0)
    np.testing.assert_array_equal(ctr["synaptic_events"][:, 0], (out.counts.sum(axis=1) * nz).sum(axis=1))


def test_dense_xylo_caps_errors_and_clip():
    tg = targets.load("xylo")
    gen = np.random.default_rng(8)
    w = rand_w(gen, (4, 5), tg.widths.weight)
    twin = FixedLinear(w, tg, None, 0, first_layer=True, name="inp")
    op = make_op(twin, (5,), 2)
    x = gen.integers(0, 16, (6, 2, 5))
    x[3, 1, 2] = 16
    with pytest.raises(ValueError, match=r"inp .*\[0, 15\]"):
        op.run(x, 0)
    xn = x.copy()
    xn[3, 1, 2] = -1
    with pytest.raises(ValueError, match="inp"):
        op.run(xn, 0)
    clip_twin = FixedLinear(w, tg, None, 0, first_layer=True, name="inp", clip=True)
    ev = twin_multi(clip_twin, x)
    op = make_op(clip_twin, (5,), 2)
    assert op.clip_events
    out, ctr = run_chunks(op, x, 4)
    np.testing.assert_array_equal(out.counts, ev.counts.numpy())
    assert op.clipped["input_events"] == clip_twin.clipped["input_events"] == 1
    assert ctr["saturations"].tolist() == [0, 0, 0, 1, 0, 0]
    # a bias on a per-event layer is refused
    entry, tables = describe(twin, (5,))
    with pytest.raises(ValueError, match="bias"):
        op_from_entry({**entry, "tables": {**entry["tables"], "bias": "bias"}}, {**tables, "bias": np.ones(4, np.int8)}, tg, 2)


# -- conv2d --------------------------------------------------------------------------------------
CONV_CASES = [  # target, C, O, kernel, stride, padding, dilation, groups, shift
    ("generic_int8", 3, 4, (3, 3), 1, 1, 1, 1, 0),
    ("generic_int8", 4, 6, (3, 2), (2, 1), (0, 2), (1, 2), 2, -2),
    ("loihi", 2, 4, (4, 4), 1, "same", 1, 2, 3),  # asymmetric padding (left 1, right 2)
    ("ideal", 6, 3, (2, 3), (1, 2), (2, 1), (2, 1), 3, -5),
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_bit_exact(case):
    tname, c, o, k, stride, padding, dilation, groups, shift = case
    tg = targets.load(tname)
    gen = np.random.default_rng(11)
    n, t, h, wd = 2, 5, 9, 8
    w = rand_w(gen, (o, c // groups, *k), tg.widths.weight, tg.synapse.weight_step)
    b = torch.from_numpy(gen.integers(-2000, 2000, o))
    twin = FixedConv2d(w, tg, b, shift, stride, padding, dilation, groups, name="cv")
    x = gen.integers(-(1 << 22), 1 << 22, (t, n, c, h, wd))
    x[:, 0] = gen.integers(0, 2, (t, c, h, wd))  # one sample of spikes
    y_twin = twin_multi(twin, x).numpy()
    for chunk in (1, 3, t):
        op = make_op(twin, (c, h, wd), n, "values")
        y, ctr = run_chunks(op, x, chunk)
        np.testing.assert_array_equal(y, y_twin)
        assert op.saturations.get("accumulator", 0) == twin.saturations.get("accumulator", 0)
    assert y.shape == y_twin.shape
    if tname != "ideal":
        assert twin.saturations["accumulator"] > 0  # the overflow rule is exercised
    op = make_op(twin, (c, h, wd), n, "values")
    op.force_int64 = True
    np.testing.assert_array_equal(run_chunks(op, x, t)[0], y_twin)


def test_conv2d_saturation_counts_and_int64_path():
    tg = targets.load("ideal")
    gen = np.random.default_rng(12)
    sign = torch.tensor([1, -1, 1, -1]).view(4, 1, 1, 1)
    w = sign * torch.from_numpy(gen.integers(tg.widths.weight.hi // 2, tg.widths.weight.hi + 1, (4, 2, 3, 3)))
    # |x| up to 2^35: bound 2^35 * 2^23 * 18 < 2^63 (int64 path); full 18-term sums pass 2^61 (saturate)
    x = gen.integers(1 << 34, 1 << 35, (3, 2, 2, 6, 6)) * gen.choice([-1, 1], (3, 2, 1, 1, 1))
    twin = FixedConv2d(w, tg, None, 2, 1, 1, 1, 1, name="wide", force_int64=False)
    y_twin = twin_multi(twin, x).numpy()
    op = make_op(twin, (2, 6, 6), 2, "values")
    y, ctr = run_chunks(op, x, 2)
    np.testing.assert_array_equal(y, y_twin)
    assert op.saturations["accumulator"] == twin.saturations["accumulator"] > 0
    assert int(ctr["saturations"].sum()) == twin.saturations["accumulator"]


def test_int_conv2d_against_torch():
    gen = np.random.default_rng(13)
    x = gen.integers(-50, 50, (2, 4, 7, 9))
    w = gen.integers(-50, 50, (6, 2, 3, 2))
    ref = torch.nn.functional.conv2d(
        torch.nn.functional.pad(torch.from_numpy(x).double(), (1, 0, 2, 3)), torch.from_numpy(w).double(),
        stride=(2, 1), dilation=(1, 3), groups=2,
    ).long().numpy()
    for f64 in (False, True):
        y = int_conv2d(x, w, (2, 1), (1, 0, 2, 3), (1, 3), 2, force_int64=f64)
        np.testing.assert_array_equal(y, ref)


def test_conv2d_refused_on_xylo_and_shape_checks():
    tg = targets.load("generic_int8")
    twin = FixedConv2d(torch.ones(2, 1, 3, 3, dtype=torch.int8), tg, None, 0, name="c")
    entry, tables = describe(twin, (1, 5, 5))
    with pytest.raises(ValueError, match=r"(?s)'c' \(conv2d\).*sums its inputs"):
        op_from_entry(entry, tables, targets.load("xylo"), 1)
    with pytest.raises(ValueError, match="output_shape"):
        op_from_entry({**entry, "output_shape": [2, 4, 4]}, tables, tg, 1)
    op = op_from_entry(entry, tables, tg, 1)
    with pytest.raises(ValueError, match=r"c \(conv2d\).*\[Tc, 1, 1, 5, 5\]"):
        op.run(np.zeros((2, 1, 1, 5, 4), np.int8), 0)


# -- dropconnect ---------------------------------------------------------------------------------
@pytest.mark.parametrize("invariant", [False, True])
@pytest.mark.parametrize("bias,relu,shift", [(True, True, 0), (False, False, 0), (True, False, -2), (False, True, 3)])
def test_dropconnect_bit_exact_with_masks(invariant, bias, relu, shift):
    tg = targets.load("generic_int8")
    gen = np.random.default_rng(17)
    in_f, out_f, n, t = 9, 5, 3, 12
    w = rand_w(gen, (out_f, in_f), tg.widths.weight)
    b = torch.from_numpy(gen.integers(-4000, 4000, out_f)) if bias else None
    twin = FixedDropConnectLinear(w, b, 0.4, 1234, tg, invariant=invariant, relu=relu, weight_shift=shift, name="dc")
    # an earlier run, exported mid-run: invariant masks are held for the sample and exported with
    # their draw (checked against them); per-step masks are transient: the next draw, no table
    for _ in range(3):
        twin(torch.from_numpy(gen.integers(0, 2, (n, in_f))))
    entry, tables = describe(twin, (in_f,))
    if invariant:
        assert entry["params"]["draw"] == twin.mask_draw == 0
        assert "mask_w" in tables and ("mask_b" in tables) == bias
        op_from_entry(entry, tables, tg, n)  # the stored masks are the generator's
    else:
        assert entry["params"]["draw"] == twin.draws == 3 and "mask_w" not in tables
    # the run to compare: after reset (no stored masks), the next draw is `draws`
    twin.reset()
    entry, tables = describe(twin, (in_f,), "values")
    assert entry["params"]["draw"] == twin.draws == (1 if invariant else 3) and "mask_w" not in tables
    op = op_from_entry(entry, tables, tg, n)
    x = gen.integers(-(1 << 22), 1 << 22, (t, n, in_f))
    y_twin = np.stack([twin(torch.from_numpy(x[k])).numpy() for k in range(t)])
    y, ctr = run_chunks(op, x, 5)
    np.testing.assert_array_equal(y, y_twin)
    assert op.saturations.get("accumulator", 0) == twin.saturations.get("accumulator", 0)
    np.testing.assert_array_equal(op.mask_w_packed, twin.mask_w_packed.numpy())
    if bias:
        np.testing.assert_array_equal(op.mask_b_packed, twin.mask_b_packed.numpy())
    # chunk invariance and reset (a new run restarts at params.draw)
    op.reset()
    np.testing.assert_array_equal(run_chunks(op, x, 1)[0], y)
    # mutation: another draw gives other masks
    bad = op_from_entry({**entry, "params": {**entry["params"], "draw": entry["params"]["draw"] + 1}}, tables, tg, n)
    assert not np.array_equal(run_chunks(bad, x, t)[0], y)


def test_dropconnect_eval_tampered_masks_and_counters():
    tg = targets.load("loihi")
    gen = np.random.default_rng(19)
    w = rand_w(gen, (4, 6), tg.widths.weight, 2)
    twin = FixedDropConnectLinear(w, torch.tensor([3, -7, 100, 0]), 0.5, 5, tg, invariant=True, relu=True, weight_shift=-1,
                                  name="dce")
    twin(torch.ones(2, 6, dtype=torch.int8))
    entry, tables = describe(twin, (6,), "values")
    twin.eval()
    x = gen.integers(-1000, 1000, (4, 2, 6))
    y_twin = np.stack([twin(torch.from_numpy(x[k])).numpy() for k in range(4)])
    op = op_from_entry({**entry, "params": {**entry["params"], "active": False}}, tables, tg, 2)
    np.testing.assert_array_equal(run_chunks(op, x, 3)[0], y_twin)
    tampered = dict(tables)
    tampered["mask_w"] = tables["mask_w"] ^ np.uint8(1)
    with pytest.raises(ValueError, match="dce .*mask_w"):
        op_from_entry(entry, tampered, tg, 2)
    # counters: active masks, spikes -> events = sum over kept nonzero synapses reached
    op = op_from_entry(entry, tables, tg, 2)
    xs = gen.integers(0, 2, (3, 2, 6))
    op.input_kind = "spikes"
    _, ctr = run_chunks(op, xs, 3)
    wm = np.where(srng.unpack_mask(op.mask_w_packed, (2, 4, 6)), w.numpy()[None], 0)
    assert ctr["synaptic_events"][-1, 0] == int((xs[-1][:, None, :] * (wm != 0)).sum())


# -- counters, errors, structure -----------------------------------------------------------------
def test_hand_computed_counters_on_a_tiny_dense_layer():
    tg = targets.load("generic_int8")
    w = np.array([[1, 0, 2], [0, 0, -3], [4, 5, 0], [0, 0, 0]])
    entry = dict(name="tiny", op="dense", input_shape=[3], input_kind="spikes", output_shape=[4],
                 output={"kind": "values", "exponent": 0},
                 params=dict(in_features=3, out_features=4, weight_shift=0, latency=0, first_layer=False,
                             accumulation="sum", event_cap=None, clip_events=False, input_exponent=0, weight_exponent=0),
                 tables={"weight": "w"})
    op = op_from_entry(entry, {"w": w.astype(np.int8)}, tg, 2)
    op.set_blocks([(0, 2), (2, 4)])
    op.input_kind = "spikes"
    x = np.array([[[1, 0, 1], [0, 1, 0]], [[0, 0, 0], [1, 1, 1]]], np.int8)  # [T=2, N=2, 3]
    y, _ = op.run(x, 0)
    assert y.tolist() == [[[3, -3, 4, 0], [0, 0, 5, 0]], [[0, 0, 0, 0], [3, -3, 9, 0]]]
    # block 0 = outputs 0,1: nonzero per input (1, 0, 2); block 1 = outputs 2,3: (1, 1, 0)
    # t=0: inputs fired: n0 {0, 2}, n1 {1} -> block0 1+2+0 = 3, block1 1+0+1 = 2
    # t=1: n1 {0,1,2} -> block0 3, block1 2
    assert op.counters["synaptic_events"].tolist() == [[3, 2], [3, 2]]
    assert op.counters["words_read"].tolist() == [[3, 2], [3, 2]]
    assert op.counters["neuron_updates"].tolist() == [[0, 0], [0, 0]]
    # values inputs: one event per nonzero value whatever its magnitude
    op.input_kind = "values"
    op.run(np.array([[[5, 0, -2], [0, 0, 0]]]), 2)
    assert op.counters["synaptic_events"].tolist() == [[3, 1]]
    # conv counters: an integer conv of the counts with [W != 0]
    cw = np.array([[[[1, 0], [0, 2]]]], np.int8)  # [1, 1, 2, 2]
    centry = dict(name="tc", op="conv2d", input_shape=[1, 2, 3], input_kind="counts", output_shape=[1, 1, 2],
                  output={"kind": "values", "exponent": 0},
                  params=dict(in_channels=1, out_channels=1, kernel_size=[2, 2], stride=[1, 1],
                              padding=[0, 0, 0, 0], dilation=[1, 1], groups=1, weight_shift=0, latency=0,
                              first_layer=False, input_exponent=0, weight_exponent=0),
                  tables={"weight": "w"})
    cop = op_from_entry(centry, {"w": cw}, tg, 1)
    cop.set_blocks([(0, 1), (1, 2)])
    cop.input_kind = "counts"
    cy, _ = cop.run(np.array([[[[[1, 1, 0], [0, 2, 3]]]]]), 0)
    assert cy.tolist() == [[[[[5, 7]]]]]  # 1*1 + 2*2, 1*1 + 3*2
    assert cop.counters["synaptic_events"].tolist() == [[1 + 2, 1 + 3]]


def test_dense_errors_name_the_layer():
    tg = targets.load("generic_int8")
    twin = FixedLinear(torch.ones(3, 4, dtype=torch.int8), tg, None, 0, name="fcx")
    op = make_op(twin, (4,), 2)
    with pytest.raises(TypeError, match="fcx"):
        op.run(np.zeros((1, 2, 4), np.float32), 0)
    with pytest.raises(ValueError, match=r"fcx \(dense\).*\[Tc, 2, 4\]"):
        op.run(np.zeros((1, 3, 4), np.int8), 0)
    entry, tables = describe(twin, (4,))
    with pytest.raises(ValueError, match=r"(?s)'fcx' \(dense\).*delays: the target has no per-synapse delays"):
        op_from_entry({**entry, "tables": {**entry["tables"], "delays": "d"}}, {**tables, "d": np.ones((3, 4), np.int8)}, tg, 2)
    with pytest.raises(ValueError, match=r"(?s)'fcx' \(dense\).*weight_shift: 40 is outside"):
        make_op(twin, (4,), 2, weight_shift=40, weight_exponent=40)
    with pytest.raises(ValueError, match=r"(?s)'fcx' \(dense\).*tables.weight: values \[300, 300\] do not fit 8"):
        op_from_entry(entry, {**tables, "weight": np.full((3, 4), 300, np.int16)}, tg, 2)
    with pytest.raises(ValueError, match=r"(?s)'fcx' \(dense\).*accumulation: 'per_event_saturate' but the target"):
        make_op(twin, (4,), 2, accumulation="per_event_saturate", event_cap=31,
                output={"kind": "counts", "exponent": None})
    # the input kind of the manifest is checked (counters depend on it)
    with pytest.raises(ValueError, match=r"fcx .*'spikes'.*\[2, 2\]"):
        op.run(np.full((1, 2, 4), 2, np.int8), 0)
    counts = make_op(twin, (4,), 2, "counts")
    counts.run(np.full((1, 2, 4), 2, np.int8), 0)
    assert counts.counters["synaptic_events"].tolist() == [[2 * 4 * 3 * 2]]
    with pytest.raises(ValueError, match="fcx .*'counts'"):
        counts.run(np.full((1, 2, 4), -1, np.int8), 0)


def test_mutation_of_shift_or_latency_breaks_bit_exactness():
    tg = targets.load("loihi")
    gen = np.random.default_rng(23)
    w = rand_w(gen, (5, 8), tg.widths.weight, 2)
    twin = FixedLinear(w, tg, torch.arange(5), -1, name="m")
    x = gen.integers(0, 2, (10, 2, 8)).astype(np.int8)
    y_twin = twin_multi(twin, x).numpy()
    assert np.array_equal(run_chunks(make_op(twin, (8,), 2), x, 10)[0], y_twin)
    # a consistent edit (the output exponent unchanged) still changes the integers
    e_w = twin.weight_exponent
    assert not np.array_equal(run_chunks(make_op(twin, (8,), 2, weight_shift=-2, weight_exponent=e_w - 1), x, 10)[0], y_twin)
    assert not np.array_equal(run_chunks(make_op(twin, (8,), 2, latency=2), x, 10)[0], y_twin)


def test_ops_registered_and_sim_free_of_torch():
    assert OPS["dense"] is DenseOp and OPS["conv2d"] is Conv2dOp and OPS["dropconnect"] is DropConnectOp
    code = (
        "import sys, numpy as np, targets, sim.rng, sim.ops.dense as d\n"
        "from sim.ops.base import op_from_entry\n"
        "p = dict(in_features=2, out_features=1, weight_shift=0, latency=0, first_layer=False, accumulation='sum',\n"
        "         event_cap=None, clip_events=False, input_exponent=0, weight_exponent=0)\n"
        "e = dict(name='a', op='dense', input_shape=[2], input_kind='spikes', output_shape=[1],\n"
        "         output={'kind': 'values', 'exponent': 0}, params=p, tables={'weight': 'w'})\n"
        "op = op_from_entry(e, {'w': np.ones((1, 2), np.int8)}, targets.load('generic_int8'), 1)\n"
        "op.run(np.ones((3, 1, 2), np.int8), 0)\n"
        "assert not any(m == 'torch' or m.startswith(('torch.', 'hwsnn', 'quant')) for m in sys.modules), 'torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]))
