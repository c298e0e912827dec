"""sim.ops.{dropout,delay,voting,pool,flatten} vs the torch integer twins, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import targets
from hwsnn.fixed import FitError
from hwsnn.fixed.delay import FixedDelay
from hwsnn.fixed.dropout import FixedDropout, FixedDropout2d
from hwsnn.fixed.flatten import FixedFlatten
from hwsnn.fixed.pool import FixedAvgPool2d, FixedMaxPool2d
from hwsnn.fixed.voting import FixedVotingLayer
from quant.export import describe_layer
from sim import rng as sim_rng
from sim.ops import delay, dropout, flatten, pool, voting  # noqa: F401  (registers the ops)
from sim.ops.base import op_from_entry, OPS, Events

TARGETS = ["generic_int8", "ideal", "loihi", "xylo"]
CHUNKS = [1, 7, None]  # None: the whole run in one chunk


# -- manifest entries ---------------------------------------------------------------------------
def describe(twin, input_shape):
    return describe_layer(twin, tuple(input_shape))


def make_op(twin, input_shape, batch, layer_edit=None):
    layer, tables = describe(twin, input_shape)
    if layer_edit:
        layer_edit(layer, tables)
    return op_from_entry(layer, tables, twin.target, batch)


def sim_run(op, x: np.ndarray, chunk, reset: bool = True):
    """Run ``x`` [T, N, ...] through ``op`` in chunks; returns (y, counters concatenated over time)."""
    if reset:
        op.reset()
    T = x.shape[0]
    chunk = chunk or T
    ys, cnt = [], {}
    for a in range(0, T, chunk):
        y, rec = op.run(x[a : a + chunk], a, False)
        assert rec == {}
        ys.append(y)
        for k, v in op.counters.items():
            cnt.setdefault(k, []).append(v)
    return np.concatenate(ys), {k: np.concatenate(v) for k, v in cnt.items()}


def twin_run(twin, x: np.ndarray) -> np.ndarray:
    return twin(torch.from_numpy(x)).numpy()


def rand_int(rs, shape, lo, hi, dtype=np.int64):
    return rs.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


def assert_same(y_sim, y_twin, dtype_too=True):
    assert y_sim.shape == y_twin.shape
    np.testing.assert_array_equal(y_sim.astype(np.int64), y_twin.astype(np.int64))
    if dtype_too:
        assert y_sim.dtype == y_twin.dtype


# -- dropout --------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("cls,shape", [(FixedDropout, (5, 6)), (FixedDropout2d, (4, 3, 5))])
@pytest.mark.parametrize("seed", [0, 12345])
def test_dropout_bit_exact_masks_and_chunks(target, cls, shape, seed):
    rs = np.random.default_rng(seed)
    T, N = 23, 3
    twin = cls(0.4, seed, target, name="drop", step_mode="m")
    layer, tables = describe(twin, shape)  # exported before any run: draw 0, no stored mask
    assert layer["params"]["draw"] == 0 and not tables
    x = rand_int(rs, (T, N, *shape), -100, 100, np.int16)
    runs = []  # per run: (output, mask, packed mask) of the twin; run 2 follows a reset (next draw)
    for _ in range(2):
        twin.reset()
        runs.append((twin_run(twin, x), twin.mask().numpy(), twin.mask_packed.numpy()))
        assert 0 < runs[-1][1].mean() < 1
    assert not np.array_equal(runs[0][1], runs[1][1])
    for chunk in CHUNKS:
        op = op_from_entry(layer, tables, twin.target, N)
        for run, (y_t, mask_t, packed_t) in enumerate(runs):
            y_s, cnt = sim_run(op, x, chunk)
            assert_same(y_s, y_t)
            assert op.mask_draw == run
            np.testing.assert_array_equal(op.mask, mask_t)
            np.testing.assert_array_equal(sim_rng.pack_mask(op.mask), packed_t)
            assert all(not v.any() for v in cnt.values())  # routing: no counts


def test_dropout_single_step_twin_and_sim_reset_sequence():
    rs = np.random.default_rng(3)
    T, N, shape = 9, 2, (4, 2, 2)
    twin = FixedDropout2d(0.5, 77, "generic_int8", name="d2", step_mode="s")
    op = make_op(twin, shape, N)
    xs = [rand_int(rs, (T, N, *shape), -5, 5) for _ in range(3)]
    for x in xs:  # the sim counts draws itself across resets, as the twin does
        twin.reset()
        y_t = np.stack([twin(torch.from_numpy(x[t])).numpy() for t in range(T)])
        y_s, _ = sim_run(op, x, 4)
        assert_same(y_s, y_t)
        assert op.mask_draw == twin.mask_draw
    assert op.next_draw == twin.draws == 3


@pytest.mark.parametrize("target", TARGETS)
def test_dropout_inactive_is_identity(target):
    rs = np.random.default_rng(1)
    twin = FixedDropout(0.7, 5, target, step_mode="m").eval()
    op = make_op(twin, (8,), 2)
    assert op.params["active"] is False
    x = rand_int(rs, (6, 2, 8), -3, 3, np.int8)
    y_s, _ = sim_run(op, x, 7)
    assert_same(y_s, twin_run(twin, x))
    np.testing.assert_array_equal(y_s, x)


@pytest.mark.parametrize("cls,shape", [(FixedDropout, (10,)), (FixedDropout2d, (3, 2, 2))])
def test_dropout_mask_table_checked(cls, shape):
    rs = np.random.default_rng(2)
    N = 4
    twin = cls(0.5, 9, "loihi", name="dropA", step_mode="m")
    x = rand_int(rs, (5, N, *shape), -50, 50)
    twin_run(twin, x)
    twin.reset()
    y_t = twin_run(twin, x)  # the twin now holds mask draw 1
    layer, tables = describe(twin, shape)
    assert layer["params"]["draw"] == 1 and "mask" in tables
    op = op_from_entry(layer, tables, twin.target, N)  # consistent table: accepted
    y_s, _ = sim_run(op, x, 2)
    assert_same(y_s, y_t)
    # a tampered table is refused, naming the layer
    bad = {k: v.copy() for k, v in tables.items()}
    bad["mask"][0] ^= 1
    with pytest.raises(ValueError, match="dropA.*mask"):
        op_from_entry(layer, bad, twin.target, N)
    # a wrong draw for the stored mask is refused too
    wrong = dict(layer, params=dict(layer["params"], draw=0))
    with pytest.raises(ValueError, match="dropA"):
        op_from_entry(wrong, tables, twin.target, N)
    # another batch size: the stored mask does not apply, not checked
    op_from_entry(layer, bad, twin.target, N + 1)


def test_dropout_mutation_seed_changes_output():
    rs = np.random.default_rng(4)
    twin = FixedDropout(0.5, 21, "generic_int8", step_mode="m")
    x = rand_int(rs, (4, 3, 16), 1, 9)
    y_t = twin_run(twin, x)
    twin.reset()
    twin.draws = 0
    op = make_op(twin, (16,), 3, lambda layer, t: layer["params"].update(seed=22))
    y_s, _ = sim_run(op, x, None)
    assert not np.array_equal(y_s, y_t)


# -- delay -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "target,d",
    [("generic_int8", 0), ("generic_int8", 1), ("generic_int8", 5), ("generic_int8", 63), ("ideal", 7),
     ("ideal", 120), ("loihi", 3), ("loihi", 62), ("xylo", 0)],
)
def test_delay_bit_exact_and_chunked(target, d):
    rs = np.random.default_rng(d)
    T, N, shape = 100, 2, (3, 2)
    twin = FixedDelay(d, target, name="dly", step_mode="m")
    op = make_op(twin, shape, N)
    op.set_blocks([(0, 2), (2, 6)])
    for run in range(2):
        x = rand_int(rs, (T, N, *shape), -(2**40), 2**40)
        twin.reset()
        y_t = np.concatenate([twin_run(twin, x[:30]), twin_run(twin, x[30:])])  # the twin streams too
        for chunk in CHUNKS:
            y_s, cnt = sim_run(op, x, chunk)
            assert_same(y_s, y_t)
            upd = 0 if d == 0 else N
            np.testing.assert_array_equal(cnt["neuron_updates"], np.tile([2 * upd, 4 * upd], (T, 1)))
            np.testing.assert_array_equal(cnt["words_read"], cnt["neuron_updates"])
            assert not cnt["synaptic_events"].any() and not cnt["saturations"].any()
    if 0 < d < T:
        np.testing.assert_array_equal(y_s[:d], 0)
        np.testing.assert_array_equal(y_s[d:], x[:-d])


def test_delay_spikes_keep_dtype_and_reset_zeroes():
    rs = np.random.default_rng(8)
    twin = FixedDelay(4, "loihi", step_mode="m")
    op = make_op(twin, (5,), 3)
    x = rand_int(rs, (10, 3, 5), 0, 1, np.int8)
    y_s, _ = sim_run(op, x, 3)
    assert y_s.dtype == np.int8
    assert_same(y_s, twin_run(twin, x))
    op.reset()
    y2, _ = op.run(x[:4], 0)
    assert not y2.any()


def test_delay_above_target_limit_refused():
    with pytest.raises(FitError):
        FixedDelay(1, "xylo")
    with pytest.raises(FitError):
        FixedDelay(63, "loihi")
    layer = {"name": "dl", "op": "delay", "input_shape": [2], "input_kind": "spikes", "output_shape": [2],
             "output": {"kind": "spikes", "exponent": 0}, "params": {"delay_steps": 1}, "tables": {}}
    with pytest.raises(ValueError, match=r"(?s)'dl' \(delay\).*delay_steps: 1 exceeds the target's max_delay 0"):
        op_from_entry(layer, {}, targets.load("xylo"), 1)
    layer["params"]["delay_steps"] = 63
    with pytest.raises(ValueError, match=r"(?s)'dl'.*delay_steps: 63 exceeds the target's max_delay 62"):
        op_from_entry(layer, {}, targets.load("loihi"), 1)


def test_delay_mutation():
    rs = np.random.default_rng(9)
    twin = FixedDelay(3, "generic_int8", step_mode="m")
    x = rand_int(rs, (12, 2, 4), -9, 9)
    y_t = twin_run(twin, x)
    op = make_op(twin, (4,), 2, lambda layer, t: layer["params"].update(delay_steps=2))
    assert not np.array_equal(sim_run(op, x, 5)[0], y_t)


# -- voting ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("v,shift", [(1, False), (4, False), (4, True), (3, False), (8, True)])
def test_voting_bit_exact(target, v, shift):
    rs = np.random.default_rng(v + 10 * shift)
    T, N, C = 20, 3, 5
    twin = FixedVotingLayer(v, target, shift=shift, name="vote", step_mode="m")
    op = make_op(twin, (C * v,), N)
    acc = twin.target.widths.accumulator
    big = min(1 << (acc.bits - 1), 1 << 60) // max(v - 1, 1)  # near and beyond the accumulator range
    x = rand_int(rs, (T, N, C * v), -big, big)
    x[0] = big  # saturate / wrap for sure (v > 1)
    x[1] = -big
    y_t = twin_run(twin, x)
    for chunk in CHUNKS:
        op.saturations.clear()
        y_s, cnt = sim_run(op, x, chunk)
        assert_same(y_s, y_t, dtype_too=False)
        assert op.saturations.get("accumulator", 0) == twin.saturations.get("accumulator", 0)
        assert int(cnt["saturations"].sum()) == op.saturations.get("accumulator", 0)
        assert not cnt["neuron_updates"].any() and not cnt["synaptic_events"].any()
    if v > 1 and acc.bits < 62:
        assert twin.saturations["accumulator"] > 0
        assert cnt["saturations"][0] > 0 and cnt["saturations"][1] > 0


def test_voting_mutation_and_errors():
    rs = np.random.default_rng(5)
    twin = FixedVotingLayer(4, "generic_int8", shift=True, step_mode="m")
    x = rand_int(rs, (6, 2, 8), -20, 20)
    y_t = twin_run(twin, x)
    op = make_op(twin, (8,), 2, lambda layer, t: layer["params"].update(shift=False))
    assert not np.array_equal(sim_run(op, x, None)[0], y_t)
    with pytest.raises(ValueError, match="power-of-two"):
        make_op(FixedVotingLayer(3, "generic_int8"), (6,), 1, lambda layer, t: layer["params"].update(shift=True))
    with pytest.raises(ValueError, match="multiple of voting_size"):
        make_op(twin, (8,), 2, lambda layer, t: layer.update(input_shape=[7]))
    op = make_op(twin, (8,), 2)
    with pytest.raises(ValueError, match="VotingLayer|voting.*integer"):
        op.run(x.astype(np.float32), 0)
    with pytest.raises(ValueError, match=r"\[Tc, 2, 8\]"):
        op.run(x[:, :1], 0)
    with pytest.raises(ValueError, match="Events"):
        op.run(Events(np.zeros((1, 2, 3), np.int64), np.zeros((8, 3), np.int64)), 0)


# -- pooling ---------------------------------------------------------------------------------------
AVG_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=2, shift=True),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 0), shift=False),
    dict(kernel_size=3, stride=1, padding=1, divisor_override=4, shift=True),
    dict(kernel_size=3),  # area 9: the sum is kept
]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", range(len(AVG_CASES)))
def test_avgpool_bit_exact(target, case):
    kw = dict(AVG_CASES[case])
    rs = np.random.default_rng(case)
    T, N, shape = 8, 2, (3, 7, 6)
    k, s, p = kw.pop("kernel_size"), kw.pop("stride", None), kw.pop("padding", 0)
    twin = FixedAvgPool2d(k, target, s, p, name="avg", step_mode="m", **kw)
    op = make_op(twin, shape, N)
    acc = twin.target.widths.accumulator
    big = min(1 << (acc.bits - 2), 1 << 58) // 2
    x = rand_int(rs, (T, N, *shape), -big, big)
    x[0] = big  # windows of `big` overflow every accumulator narrower than 62 bits
    y_t = twin_run(twin, x)
    for chunk in CHUNKS:
        op.saturations.clear()
        y_s, cnt = sim_run(op, x, chunk)
        assert_same(y_s, y_t, dtype_too=False)
        assert int(cnt["saturations"].sum()) == op.saturations.get("accumulator", 0)
    assert op.saturations.get("accumulator", 0) == twin.saturations.get("accumulator", 0)
    if acc.bits < 62:
        assert cnt["saturations"][0] > 0


MAX_CASES = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, stride=2, ceil_mode=True),  # odd sizes: a partial last window
    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 1), dilation=(2, 1)),
    dict(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True),
]


@pytest.mark.parametrize("target", ["generic_int8", "xylo"])
@pytest.mark.parametrize("case", range(len(MAX_CASES)))
@pytest.mark.parametrize("dtype", [np.int8, np.int64])
def test_maxpool_bit_exact(target, case, dtype):
    kw = dict(MAX_CASES[case])
    rs = np.random.default_rng(case)
    T, N, shape = 8, 2, (2, 7, 9)
    twin = FixedMaxPool2d(kw.pop("kernel_size"), target, name="mp", step_mode="m", **kw)
    op = make_op(twin, shape, N)
    info = np.iinfo(dtype)
    x = rand_int(rs, (T, N, *shape), info.min, info.max, dtype)
    x[1] = info.min  # all negative: padding must not win
    y_t = twin_run(twin, x)
    for chunk in CHUNKS:
        y_s, cnt = sim_run(op, x, chunk)
        assert_same(y_s, y_t)
        assert all(not v.any() for v in cnt.values())
    np.testing.assert_array_equal(y_s[1], info.min)


def test_pool_mutation_and_shape_errors():
    rs = np.random.default_rng(6)
    twin = FixedMaxPool2d(3, "generic_int8", 2, 1, step_mode="m")
    x = rand_int(rs, (3, 1, 1, 8, 8), -50, 50)
    y_t = twin_run(twin, x)
    op = make_op(twin, (1, 8, 8), 1, lambda layer, t: layer["params"].update(padding=[0, 1],
                                                                          stride=[2, 2], kernel_size=[2, 3]))
    # same output shape, other windows
    assert op.output_shape == (1, 4, 4)
    assert not np.array_equal(sim_run(op, x, None)[0], y_t)
    with pytest.raises(ValueError, match="output_shape"):
        make_op(twin, (1, 8, 8), 1, lambda layer, t: layer.update(output_shape=[1, 3, 3]))
    avg = FixedAvgPool2d(2, "generic_int8", step_mode="m")
    with pytest.raises(ValueError, match="divisor_log2"):
        make_op(avg, (1, 4, 4), 1, lambda layer, t: layer["params"].update(divisor_log2=1))
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        make_op(avg, (1, 4, 4), 1, lambda layer, t: layer.update(input_shape=[4, 4]))
    # torch refuses padding above half the kernel; so does the simulator (with a clear error)
    with pytest.raises(ValueError, match="half the kernel"):
        make_op(avg, (1, 4, 4), 1, lambda layer, t: layer["params"].update(padding=[2, 0]))
    with pytest.raises(ValueError, match="half the kernel"):
        make_op(twin, (1, 8, 8), 1, lambda layer, t: layer["params"].update(padding=[2, 1]))


# -- flatten ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("start,end", [(1, -1), (2, 3), (-2, -1), (1, 1), (1, 2), (-3, -2), (0, 0)])
@pytest.mark.parametrize("target", TARGETS)
def test_flatten_bit_exact(start, end, target):
    rs = np.random.default_rng(7)
    T, N, shape = 5, 2, (3, 2, 4)
    twin = FixedFlatten(start, end, target, step_mode="m")
    op = make_op(twin, shape, N)
    x = rand_int(rs, (T, N, *shape), -128, 127, np.int8)
    y_t = twin_run(twin, x)
    for chunk in CHUNKS:
        y_s, cnt = sim_run(op, x, chunk)
        assert_same(y_s, y_t)
        assert all(not v.any() for v in cnt.values())


def test_flatten_errors_and_mutation():
    twin = FixedFlatten(1, -1, "generic_int8", step_mode="m")
    with pytest.raises(ValueError, match="batch axis"):
        make_op(twin, (3, 2), 2, lambda layer, t: layer["params"].update(start_dim=0))
    with pytest.raises(ValueError, match="out of range"):
        make_op(twin, (3, 2), 2, lambda layer, t: layer["params"].update(end_dim=3))
    with pytest.raises(ValueError, match="output_shape"):  # a perturbed end_dim disagrees with the shape
        make_op(twin, (3, 2, 2), 2, lambda layer, t: layer["params"].update(end_dim=2))
