"""The output code (op ``output_code``): the op's validation, the default codebook, and the float
layer, the integer twin and the simulator op against a plain NumPy nearest-codeword decoder.

The decoder reference here is written from the definition only: the class is the codeword at the
smallest Euclidean distance from the time-summed readout counts, the first one on ties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import targets
from hwsnn import layer
from hwsnn.fixed import FixedOutputCode, to_fixed
from quant.export import describe_layer
from sim.ops.base import Events, op_from_entry
from targets.bundle import OutputCode, SpecError, default_codebook
from targets.bundle.output_code import codebook_problems

CHUNKS = [1, 7, None]


def nearest_codeword(counts: np.ndarray, codebook: np.ndarray) -> np.ndarray:
    """Index of the codeword nearest to each count vector ``[..., M]`` (squared Euclidean distance, float64;
    the lowest index among equally near ones)."""
    c = codebook.astype(np.float64)
    d = ((counts[..., None, :].astype(np.float64) - c) ** 2).sum(-1)  # [..., K]
    return np.argmin(d, axis=-1)  # argmin takes the first minimum


def random_code(rs: np.random.Generator, classes: int, readouts: int, weight: int) -> np.ndarray:
    """``classes`` distinct random words of ``weight`` ones."""
    words = list(itertools.combinations(range(readouts), weight))
    pick = rs.choice(len(words), classes, replace=False)
    out = np.zeros((classes, readouts), np.uint8)
    for k, i in enumerate(pick):
        out[k, list(words[i])] = 1
    return out


def spec(codebook, name="code", input_shape=None, **over):
    cb = np.asarray(codebook)
    k, m = cb.shape if cb.ndim == 2 else (1, 1)
    kw = dict(name=name, input_shape=input_shape or (m,), input_kind="spikes", output_shape=(k,), output_kind="values",
              output_exponent=0, classes=k, readouts=m, weight=int(cb[0].sum()) if cb.ndim == 2 else 1, codebook=cb)
    kw.update(over)
    return OutputCode(**kw)


# -- the op description ---------------------------------------------------------------------------
def test_a_valid_op_round_trips_and_states_its_storage():
    op = spec(default_codebook(10, 8))
    assert op.table_format("codebook", targets.load("xylo")).dtype == np.uint8
    assert op.signs().shape == (10, 8) and set(np.unique(op.signs()).tolist()) == {-1, 1}
    assert op.passes_exponent(-3) == -3 and op.passes_exponent(None) is None


@pytest.mark.parametrize("edit, field", [
    (lambda c: c.__setitem__((0, 0), 2), "tables.codebook: holds values other than 0 and 1"),
    (lambda c: c.__setitem__((0, 0), 1 - c[0, 0]), "tables.codebook: every codeword must have the same number of ones"),
    (lambda c: c.__setitem__(1, c[0]), "tables.codebook: rows 0 and 1 are the same codeword"),
    (lambda c: c.fill(0), "tables.codebook: codewords of weight 0 carry no information"),
    (lambda c: c.fill(1), "tables.codebook: codewords of weight 8 carry no information"),
])
def test_a_bad_codebook_is_refused_naming_the_field(edit, field):
    cb = default_codebook(10, 8).astype(np.int64)
    edit(cb)
    with pytest.raises(SpecError) as err:
        spec(cb, weight=4)
    assert field in str(err.value) and "layer 'code' (output_code)" in str(err.value)


@pytest.mark.parametrize("over, field", [
    (dict(classes=9), "tables.codebook: shape [10, 8]; expected [classes, readouts] = [9, 8]"),
    (dict(weight=3), "params.weight: 3 but the codewords have 4 ones"),
    (dict(input_shape=(7,)), "input_shape: the last axis of [7] must be readouts = 8"),
    (dict(output_shape=(8,)), "output_shape: [8]; expected [10]"),
    (dict(output_kind="spikes"), "output.kind: class scores are 'values'"),
    (dict(readouts=0), "params.readouts: 0 is outside [1, inf]"),
])
def test_inconsistent_fields_are_refused_by_name(over, field):
    with pytest.raises(SpecError) as err:
        spec(default_codebook(10, 8), **over)
    assert field in str(err.value)


def test_codebook_problems_lists_every_problem_and_a_float_table_is_refused():
    cb = np.array([[1, 1, 0], [1, 0, 0], [1, 1, 0]])
    found = codebook_problems(cb)
    assert any("same number of ones" in p for p in found) and any("rows 0 and 2" in p for p in found)
    assert codebook_problems(np.ones(4)) == ["tables.codebook: expected a 2-D table [classes, readouts]; got shape [4]"]
    with pytest.raises(SpecError, match="tables.codebook: a table must hold integers"):
        spec(default_codebook(4, 4).astype(np.float32))


# -- the default codebook -------------------------------------------------------------------------
def _extended_hamming_words() -> set[tuple[int, ...]]:
    """The 16 words of the extended Hamming code [8, 4, 4], from its generator matrix (Hamming [7, 4]
    in systematic form plus an overall parity bit)."""
    g7 = np.array([[1, 0, 0, 0, 1, 1, 0], [0, 1, 0, 0, 1, 0, 1], [0, 0, 1, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 1]])
    words = set()
    for msg in itertools.product((0, 1), repeat=4):
        w7 = np.array(msg) @ g7 % 2
        words.add((*w7.tolist(), int(w7.sum() % 2)))
    return words


def test_the_default_code_for_ten_digits_on_eight_readouts():
    cb = default_codebook(10, 8)
    assert cb.shape == (10, 8) and cb.dtype == np.uint8
    assert (cb.sum(1) == 4).all() and (cb.sum(0) == 5).all()  # weight 4; each readout on for half the classes
    dist = (cb[:, None] != cb[None]).sum(-1)
    assert dist[~np.eye(10, dtype=bool)].min() == 4  # one wrong readout is still decoded right
    # an equivalent code: a coordinate permutation of the weight-4 words of the extended Hamming code
    ham = _extended_hamming_words()
    assert len([w for w in ham if sum(w) == 4]) == 14
    assert any({tuple(int(b) for b in row[list(p)]) for row in cb} <= ham
               for p in itertools.permutations(range(8)))
    assert np.array_equal(default_codebook(10, 8), cb)  # deterministic


@pytest.mark.parametrize("classes, readouts", [(4, 4), (14, 8), (16, 8), (10, 16), (3, 5), (2, 20)])
def test_default_codebooks_are_valid_codes(classes, readouts):
    cb = default_codebook(classes, readouts)
    assert cb.shape == (classes, readouts) and codebook_problems(cb) == []


def test_default_codebook_errors():
    with pytest.raises(ValueError, match="11 classes need 11 distinct codewords; 5 readouts have 10"):
        default_codebook(11, 5)
    with pytest.raises(ValueError, match="at most 20"):
        default_codebook(10, 21)
    with pytest.raises(ValueError, match="classes must be an int >= 1"):
        default_codebook(0, 8)


# -- float layer, twin, simulator op, NumPy decoder ----------------------------------------------------
def _sim_op(twin, m: int, batch: int, e: int = 0):
    entry, tables = describe_layer(twin, (m,), "values", e)
    return op_from_entry(entry, tables, twin.target, batch)


def _run_op(op, x: np.ndarray, chunk) -> np.ndarray:
    chunk = chunk or x.shape[0]
    ys = []
    for a in range(0, x.shape[0], chunk):
        y, rec = op.run(x[a:a + chunk], a)
        assert rec == {} and not op.counters["synaptic_events"].any() and not op.counters["neuron_updates"].any()
        ys.append(y)
    return np.concatenate(ys)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("target", ["xylo", "generic_int8", "loihi"])
def test_twin_sim_op_and_the_numpy_decoder_agree(seed, target):
    """Random counts (negative values too, and ties), default and random codebooks: the twin's scores equal
    the simulator op's bit for bit, and the argmax of the summed scores is the nearest codeword."""
    rs = np.random.default_rng(seed)
    cb = default_codebook(10, 8) if seed == 0 else random_code(rs, 6 + seed, 8 + seed % 2, 3 + seed % 2)
    k, m = cb.shape
    twin = FixedOutputCode(cb, target, name="code", step_mode="m")
    T, N = 9, 200
    x = rs.integers(-3 if seed % 2 else 0, 4, (T, N, m))
    x[:, :20] = 0                                  # all-zero counts: every codeword equally near -> class 0
    x[:, 20:40, :] = cb[rs.integers(0, k, 20)]     # exact codewords repeated over time
    x[:, 40:60] = np.maximum(cb[0], cb[1])         # halfway between words 0 and 1 when they are at distance 2
    y_twin = twin(torch.from_numpy(x)).numpy()
    for chunk in CHUNKS:
        op = _sim_op(twin, m, N)
        assert np.array_equal(_run_op(op, x, chunk), y_twin)
    n = x.sum(0)
    want = nearest_codeword(n, cb)
    assert np.array_equal(y_twin.sum(0).argmax(-1), want)
    assert (want[:20] == 0).all()
    d = ((n[:, None, :] - cb[None].astype(np.int64)) ** 2).sum(-1)
    ties = (d == d.min(1, keepdims=True)).sum(1) > 1
    assert ties.sum() > 20  # the ties are really there (and decided for the first codeword)
    # and the float layer gives the same scores (real value = integer score, exponent 0)
    fl = layer.OutputCode(k, m, codebook=cb, step_mode="m")
    assert torch.equal(fl(torch.from_numpy(x).double()), torch.from_numpy(y_twin).double())


def test_the_accumulator_overflow_is_the_same_in_twin_and_simulator():
    tg = targets.load("generic_int8")
    acc = tg.widths.accumulator
    cb = default_codebook(10, 8)
    twin = FixedOutputCode(cb, tg, name="code", step_mode="m")
    big = acc.hi // 3
    x = np.zeros((3, 2, 8), np.int64)
    x[0] = big                                     # +4 big - 4 big: fine
    x[1, :, :4] = big                              # codeword 0 scores 4 big: beyond the accumulator
    x[2, :, :4] = -big
    y = twin(torch.from_numpy(x)).numpy()
    op = _sim_op(twin, 8, 2)
    assert np.array_equal(_run_op(op, x, None), y)
    assert twin.saturations["accumulator"] == op.saturations["accumulator"] > 0
    if tg.overflow.accumulator == "saturate":
        assert y[1, 0, 0] == acc.hi and y[2, 0, 0] == acc.lo


def test_float_layer_twin_conversion_and_gradient():
    fl = layer.OutputCode(10, 8, step_mode="m")
    assert torch.equal(fl.codebook, torch.from_numpy(default_codebook(10, 8)))
    twin = to_fixed(fl, targets.load("xylo"), name="code", input_exponent=-2)
    assert isinstance(twin, FixedOutputCode) and torch.equal(twin.codebook, fl.codebook)
    assert twin.output_exponent() == -2
    x = torch.randint(0, 2, (5, 3, 8))
    y = twin(x)
    assert torch.equal(twin.dequantize_output(y), fl(x.double() * 0.25).double() / 0.25 * 0.25)
    xf = x.double().requires_grad_(True)
    fl(xf)[..., 3].sum().backward()  # d s_3 / d x_j = 2 C[3, j] - 1 at every step
    assert torch.equal(xf.grad, (2.0 * fl.codebook[3].double() - 1).expand(5, 3, 8))
    rep = twin.fixed_report()
    assert rep["min_distance"] == 4 and rep["weight"] == 4 and "off chip" in rep["runs"]


def test_float_layer_and_twin_errors():
    with pytest.raises(ValueError, match="OutputCode: codebook has shape \\[10, 8\\]; expected"):
        layer.OutputCode(9, 8, codebook=default_codebook(10, 8))
    bad = default_codebook(10, 8).copy()
    bad[2] = bad[3]
    with pytest.raises(SpecError, match="(?s)OutputCode: not a valid output code.*rows 2 and 3"):
        layer.OutputCode(10, 8, codebook=bad)
    with pytest.raises(SpecError, match="mycode: not a valid output code"):
        FixedOutputCode(bad, "xylo", name="mycode")
    with pytest.raises(ValueError, match="readouts must be an int >= 1"):
        layer.OutputCode(10, 0)
    with pytest.raises(ValueError, match="the last dim must be readouts = 8"):
        layer.OutputCode(10, 8)(torch.zeros(2, 7))
    twin = FixedOutputCode(default_codebook(10, 8), "xylo", name="code")
    with pytest.raises(TypeError, match="integer twin"):
        twin(torch.zeros(2, 8))
    op = _sim_op(twin, 8, 2)
    with pytest.raises(ValueError, match=r"code \(output_code\).*integer chunks"):
        op.run(np.zeros((1, 2, 8), np.float32), 0)
    with pytest.raises(ValueError, match="Events"):
        op.run(Events(np.zeros((1, 2, 3), np.int64), np.zeros((8, 3), np.int64)), 0)
