"""Fused integer sequences (hwsnn.backend.fixed*) against the twins' own step functions, bit for bit.

The reference is always the twin's ``single_step_forward`` looped over time (never a copy of its
constants): spikes, every state after every step, the state dtypes and every saturation count
must be identical, on every shipped target and on target variants that exercise the other
rounding, overflow, compare and multi-spike rules.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import hwsnn.backend.fixed as BF
from hwsnn.fixed import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedSynapseFilter, SynapticEvents
from targets import load as load_target

REPO = Path(__file__).resolve().parents[1]
numba = pytest.importorskip("numba")


def _variant(base: str, name: str, **changes) -> object:
    """A shipped target with some rule fields replaced (``section__field=value``)."""
    tg = load_target(base)
    groups: dict[str, dict] = {}
    for key, value in changes.items():
        sec, fld = key.split("__")
        groups.setdefault(sec, {})[fld] = value
    new = {sec: dataclasses.replace(getattr(tg, sec), **f) for sec, f in groups.items()}
    return dataclasses.replace(tg, name=name, **new)


def targets_under_test() -> dict[str, object]:
    """Shipped targets plus variants covering toward_zero shifts, wrap/fold overflow, '>' and multi-spikes."""
    t = {n: load_target(n) for n in ("generic_int8", "ideal", "loihi", "xylo", "xylo_imu")}
    t["tz_wrap"] = _variant("generic_int8", "tz_wrap", decay__rounding="toward_zero", overflow__current="wrap",
                            overflow__membrane="wrap", neuron__compare=">", neuron__max_spikes_per_step=3,
                            neuron__readout_max_spikes_per_step=2, neuron__threshold_positive=False)
    t["fold_multi"] = _variant("generic_int8", "fold_multi", overflow__current="fold_once", overflow__membrane="fold_once",
                               neuron__max_spikes_per_step=5, neuron__threshold_positive=False,
                               decay__current_order="add_then_decay", neuron__input_shift=2)
    t["xylo_ge_wrap"] = _variant("xylo", "xylo_ge_wrap", overflow__membrane="wrap", neuron__compare=">")
    return t


TARGETS = targets_under_test()


def _twins(tg, rng: random.Random) -> list:
    """Neuron twins of every kind, reset and readout flavour ``tg`` allows, with random parameters."""
    out = []
    mem = tg.widths.membrane
    for kind in ("if", "lif", "lif_di", "cuba"):
        if kind == "if" and tg.decay.rounding == "xylo_min1":
            continue
        if kind == "lif_di" and (tg.neuron.membrane_update != "direct" or tg.neuron.input_shift > 0):
            continue
        for reset in tg.neuron.reset:
            for readout in (False, True):
                th = rng.choice([1, 2, 3, 7, 50, 300, 1000, mem.hi // 5])
                if not tg.neuron.threshold_positive and rng.random() < 0.3:
                    th = rng.choice([0, -3, -40])
                bias_w = tg.widths.bias
                bias = torch.randint(max(bias_w.lo, -600), min(bias_w.hi, 600) + 1, (11,))
                if rng.random() < 0.3:
                    bias = int(bias[0])
                kw = dict(reset=reset, readout=readout, clip=True, bias=bias, name=f"{kind}-{reset}-{readout}")
                if tg.neuron.bias_exponent:
                    kw["bias_exp"] = rng.choice([-3, 0, 2])
                if reset == "zero" and tg.decay.mechanism != "mul12" and tg.neuron.membrane_update == "direct":
                    kw["v_reset"] = rng.choice([0, -5, 12])
                k = lambda: rng.choice([0, 1, 2, 3, 5]) if tg.decay.mechanism == "shift" else rng.choice([0, 1, 7, 512, 4095, 4096])  # noqa: E731
                if kind == "if":
                    out.append(FixedIFNode(tg, th, **kw))
                elif kind in ("lif", "lif_di"):
                    out.append(FixedLIFNode(tg, th, k(), decay_input=kind == "lif_di", **kw))
                else:
                    ks = rng.choice([0, 1, 3, 4]) if tg.decay.mechanism == "shift" else rng.choice([-1, 0, 255, 4095])
                    out.append(FixedCubaLIFNode(tg, th, ks, k(), **kw))
    return out


def _input(tg, T: int, shape: tuple, gen: torch.Generator) -> torch.Tensor:
    """Signed inputs in input units, large enough to saturate the current and membrane now and then."""
    bits = tg.widths.current.bits - tg.neuron.input_shift
    scale = torch.tensor([2.0 ** (bits - 6), 2.0 ** (bits - 2), 2.0 ** (bits + 1)])[torch.randint(0, 3, (T, 1, 1), generator=gen)]
    return (torch.randn((T, *shape), generator=gen, dtype=torch.float64) * scale).round().to(torch.int64)


def _events(tg, T: int, rows: int, n_in: int, n_out: int, gen: torch.Generator) -> SynapticEvents:
    w = tg.widths.current
    weight = torch.randint(w.lo // 8, w.hi // 8, (n_out, n_in), generator=gen)
    counts = torch.randint(0, 16, (T, rows, n_in), generator=gen) * (torch.rand((T, rows, n_in), generator=gen) < 0.4)
    return SynapticEvents(counts, weight)


def _step_reference(tw, x, T: int):
    """The twin's step function over ``t``: spikes and the states after every step."""
    spikes, states = [], {"v": [], "i": []}
    for t in range(T):
        spikes.append(tw.single_step_forward(x[t]))
        states["v"].append(tw.v.to(torch.int64))
        if hasattr(tw, "decay_syn"):
            states["i"].append(tw.i.to(torch.int64))
    return torch.stack(spikes), {k: torch.stack(v) for k, v in states.items() if v}


def _assert_same_twin_state(a, b, what: str) -> None:
    for s in ("v", "i"):
        if hasattr(b, s) and isinstance(getattr(b, s), torch.Tensor):
            assert getattr(a, s).dtype == getattr(b, s).dtype, (what, s)
            assert torch.equal(getattr(a, s), getattr(b, s)), (what, s)
    assert a.saturations == b.saturations, (what, a.saturations, b.saturations)


def _check_neuron(tw, x, T: int, backend: str = "numba") -> dict:
    """Fused (one call, and chunked) == the step function; returns the saturation counts seen."""
    ref = copy.deepcopy(tw)
    s_ref, st_ref = _step_reference(ref, x, T)
    fused = copy.deepcopy(tw)
    fused.fused_backend = backend
    got = fused.fused_sequence(x, store_states=True)
    assert got is not None, f"{tw.layer_name}: no kernel ran"
    s, st = got
    assert s.dtype == s_ref.dtype and torch.equal(s, s_ref), f"{tw.layer_name}: spikes differ"
    for k in st_ref:
        assert torch.equal(st[k], st_ref[k]), f"{tw.layer_name}: state {k} differs"
    _assert_same_twin_state(fused, ref, tw.layer_name)
    if T > 2:  # chunked calls carry the states (and counts) across calls
        chunked = copy.deepcopy(tw)
        chunked.fused_backend = backend
        cut = T // 3
        parts = [chunked.multi_step_forward(x[:cut]), chunked.multi_step_forward(x[cut:])]
        assert torch.equal(torch.cat(parts), s_ref), f"{tw.layer_name}: chunked spikes differ"
        _assert_same_twin_state(chunked, ref, tw.layer_name + " chunked")
    return dict(ref.saturations)


@pytest.mark.parametrize("name", list(TARGETS))
def test_neuron_kernels_equal_the_twin_step_function(name):
    tg = TARGETS[name]
    rng = random.Random(hash(name) % 1000)
    gen = torch.Generator().manual_seed(7)
    seen = {"i": 0, "v": 0, "dv": 0, "multi": 0, "neg": 0}
    per_event = tg.synapse.accumulation == "per_event_saturate"
    for tw in _twins(tg, rng):
        for T in (1, 17):
            x = _input(tg, T, (3, 11), gen)
            if per_event:  # a tensor input is legal on Xylo too (one saturating add)
                pass
            sat = _check_neuron(tw, x, T)
            for k in ("i", "v", "dv"):
                seen[k] += sat.get(k, 0)
            ref = copy.deepcopy(tw)
            s, st = _step_reference(ref, x, T)
            seen["multi"] += int((s > 1).sum())
            seen["neg"] += int((st["v"] < 0).sum())
            if per_event and T > 1:
                ev = _events(tg, T, 3, 9, 11, gen)
                sat = _check_neuron(tw, ev, T)
                seen["i"] += sat.get("i", 0)
    # the test must exercise what it claims: saturations, negative membranes, multi-spikes where allowed
    assert seen["i"] > 0 and seen["v"] > 0 and seen["neg"] > 0, seen
    if tg.neuron.membrane_update == "saturated_delta":
        assert seen["dv"] > 0, seen
    if max(tg.neuron.max_spikes_per_step, tg.neuron.readout_max_spikes_per_step) > 1 and "subtract" in tg.neuron.reset:
        assert seen["multi"] > 0, seen


@pytest.mark.parametrize("name", ["generic_int8", "ideal", "loihi", "xylo", "tz_wrap", "fold_multi"])
def test_synapse_filter_kernel_equals_the_twin_step_function(name):
    tg = TARGETS[name]
    gen = torch.Generator().manual_seed(3)
    sat = 0
    for k in (0, 1, 3, min(9, tg.decay.max_shift)):
        for e in (None, -(tg.widths.current.bits - 2)):  # the second: one spike is ~ the top of the range
            tw = FixedSynapseFilter(k, tg, e)
            for T, shape in ((1, (4,)), (23, (5, 7))):
                p = torch.rand((T, 1, 1), generator=gen) * 0.9
                s = (torch.rand((T, *shape), generator=gen) < p).to(torch.int8)
                ref = copy.deepcopy(tw)
                out_ref = torch.stack([ref.single_step_forward(s[t]) for t in range(T)])
                fused = copy.deepcopy(tw)
                out = fused.fused_sequence(s)
                assert out is not None and out.dtype == out_ref.dtype and torch.equal(out, out_ref), (name, k, e, T)
                assert torch.equal(fused.out_i, ref.out_i) and fused.out_i.dtype == ref.out_i.dtype
                assert fused.saturations == ref.saturations
                sat += ref.saturations["out_i"]
                if T > 2:  # chunked
                    ch = copy.deepcopy(tw)
                    got = torch.cat([ch.multi_step_forward(s[:5]), ch.multi_step_forward(s[5:].bool())])
                    assert torch.equal(got, out_ref) and ch.saturations == ref.saturations
    assert sat > 0


def test_parallel_kernels_equal_the_serial_ones(monkeypatch):
    """Large sequences run the blocks in parallel threads; force that path on small ones."""
    from hwsnn.backend import fixed_kernels as fk

    monkeypatch.setattr(fk, "PARALLEL_MIN_WORK", 0)
    monkeypatch.setattr(fk, "BLOCK", 16)  # several blocks, a partial last one
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        gen = torch.Generator().manual_seed(5)
        for name in ("generic_int8", "loihi", "xylo"):
            tg = TARGETS[name]
            for tw in _twins(tg, random.Random(2))[:6]:
                _check_neuron(tw, _input(tg, 9, (7, 11), gen), 9)
                if tg.synapse.accumulation == "per_event_saturate":
                    _check_neuron(tw, _events(tg, 9, 7, 9, 11, gen), 9)
            f = FixedSynapseFilter(1, tg, -(tg.widths.current.bits - 2))
            s = (torch.rand(15, 7, 11, generator=gen) < 0.7).long()
            ref = copy.deepcopy(f)
            out_ref = torch.stack([ref.single_step_forward(s[t]) for t in range(15)])
            assert torch.equal(f.fused_sequence(s), out_ref) and f.saturations == ref.saturations
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("scale", [1, 1 << 12, 1 << 40])  # float32, float64 and int64 matmuls
def test_event_sums_are_exact(scale):
    gen = torch.Generator().manual_seed(1)
    counts = torch.randint(0, 32, (5, 3, 40), generator=gen)
    weight = torch.randint(-1000, 1000, (7, 40), generator=gen) * scale + 1
    pos, neg = BF.EventInput(counts, weight).sums()
    c = counts.reshape(15, 40)
    assert torch.equal(pos, (c @ weight.clamp(min=0).T).reshape(5, 21))
    assert torch.equal(neg, (c @ weight.clamp(max=0).T).reshape(5, 21))


def test_multi_step_forward_uses_the_kernel_and_falls_back(monkeypatch):
    tw = FixedLIFNode("generic_int8", 100, 1)
    x = torch.randint(-300, 300, (6, 2, 5))
    calls = []
    real = BF.neuron_sequence
    monkeypatch.setattr("hwsnn.fixed.fused.neuron_sequence", lambda *a, **k: calls.append(1) or real(*a, **k))
    y = copy.deepcopy(tw).multi_step_forward(x)
    assert calls == [1]
    monkeypatch.setenv("HWSNN_NUMBA", "0")  # no kernel: the step loop, same numbers
    assert torch.equal(copy.deepcopy(tw).multi_step_forward(x), y) and calls == [1]
    monkeypatch.delenv("HWSNN_NUMBA")
    slow = copy.deepcopy(tw)
    slow.fused_backend = "torch"
    assert torch.equal(slow.multi_step_forward(x), y) and calls == [1]


def test_bad_inputs_keep_the_step_functions_messages():
    tw = FixedLIFNode("generic_int8", 100, 1, name="lif")
    with pytest.raises(TypeError, match="lif: the integer twin takes an integer tensor"):
        tw.multi_step_forward(torch.zeros(3, 4))
    f = FixedSynapseFilter(2, "generic_int8", name="syn")
    with pytest.raises(ValueError, match="syn: the synapse filter takes binary spikes"):
        f.multi_step_forward(torch.tensor([[0, 1], [2, 0]]))
    f.reset()
    f.multi_step_forward(torch.zeros(2, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="input shape changed"):
        f.multi_step_forward(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="time axis"):
        tw.multi_step_forward(torch.zeros(0, 4, dtype=torch.int64))


def test_rules_outside_the_kernels_fall_back():
    wide = _variant("ideal", "wide", widths__membrane=dataclasses.replace(load_target("ideal").widths.membrane, bits=64))
    tw = FixedLIFNode(wide, 100, 1)
    assert tw.kernel_rules() is None and tw.fused_sequence(torch.zeros(2, 3, dtype=torch.int64)) is None
    assert tw.multi_step_forward(torch.full((2, 3), 70)).tolist() == [[0, 0, 0], [1, 1, 1]]


# ----------------------------------------------------------------------------------------------
# Triton kernels under the interpreter (CPU tensors), in a subprocess (TRITON_INTERPRET=1 must be
# set before triton is imported)
# ----------------------------------------------------------------------------------------------
TRITON_SCRIPT = textwrap.dedent(
    r"""
    import random, torch, sys
    sys.path.insert(0, "tests")
    import test_fixed_fused as M
    n = 0
    for name, tg in M.TARGETS.items():
        rng = random.Random(1)
        gen = torch.Generator().manual_seed(2)
        twins = M._twins(tg, rng)
        rng.shuffle(twins)
        for tw in twins[:4]:
            M._check_neuron(tw, M._input(tg, 9, (30, 11), gen), 9, backend="triton")
            if tg.synapse.accumulation == "per_event_saturate":
                M._check_neuron(tw, M._events(tg, 9, 30, 9, 11, gen), 9, backend="triton")
            n += 1
        for k in (0, 2):
            tw = M.FixedSynapseFilter(k, tg, -(tg.widths.current.bits - 2))
            tw.fused_backend = "triton"
            s = (torch.rand(12, 3, 70, generator=gen) < 0.6).long()
            ref = M.copy.deepcopy(tw)
            out_ref = torch.stack([ref.single_step_forward(s[t]) for t in range(12)])
            out = tw.fused_sequence(s)
            assert out is not None and torch.equal(out, out_ref) and tw.saturations == ref.saturations, name
    # the QAT forward with the twins on the Triton kernels equals the step-by-step path
    import os
    from hwsnn.fixed.fused import FusedNeuronSequence, FusedSynapseSequence
    import test_quant_fused as Q

    class MP:  # a minimal monkeypatch for Q._run
        def setenv(self, k, v):
            os.environ[k] = v

    import hwsnn.backend.fixed_triton as FT
    calls = []
    real = FT.neuron_sequence_triton
    FT.neuron_sequence_triton = lambda *a, **k: calls.append(1) or real(*a, **k)
    FusedNeuronSequence.fused_backend = FusedSynapseSequence.fused_backend = "triton"
    for target, kind in (("xylo", "cuba"), ("loihi", "filter_delay"), ("generic_int8", "lif")):
        net = Q.make_net(kind, target).train()
        x = Q.make_input(kind, T=8, n=3)
        Q._compare(Q._run(net, target, x, True, MP()), Q._run(net, target, x, False, MP()), target)
    assert len(calls) >= 6, calls  # the neurons of every network ran on the Triton kernels
    print("TRITON-FIXED-OK", n)
    """
)


def test_triton_fixed_kernels_under_the_interpreter():
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1", "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", TRITON_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "TRITON-FIXED-OK" in proc.stdout


AOT_SCRIPT = textwrap.dedent(
    r"""
    import inspect, sys
    import triton
    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
        assert "constexprs" in inspect.signature(ASTSource).parameters
    except Exception as exc:  # another Triton API generation: nothing to check here
        print("AOT-SKIP", type(exc).__name__, exc)
        sys.exit(0)
    sys.path.insert(0, "tests")
    import test_fixed_fused as M
    from hwsnn.backend import fixed_triton as ft

    def build(fn, consts, sig):
        sig = dict(sig, **{k: "constexpr" for k in consts})
        triton.compile(ASTSource(fn=fn, signature=sig, constexprs=consts, attrs={}), target=GPUTarget("cuda", 80, 32))

    P = "*i64"
    sig = {k: P for k in ("x_ptr", "pos_ptr", "neg_ptr", "cnt_ptr", "w_ptr", "i0_ptr", "v0_ptr", "b_ptr", "v_ptr",
                          "i_ptr", "counts_ptr")}
    sig.update(s_ptr="*i8", T="i32", N="i32", NIN="i32", NOUT="i32", vr="i64", th="i64")
    n = 0
    for name in ("generic_int8", "ideal", "loihi", "xylo", "tz_wrap", "fold_multi"):
        tg = M.TARGETS[name]
        for tw in M._twins(tg, M.random.Random(0))[:3]:
            r = M.dataclasses.replace(tw.kernel_rules(), v_storage_bits=16, i_storage_bits=32)
            c = dict(SHIFT=r.input_shift, **ft._width_args("C", r.current), **ft._width_args("M", r.membrane),
                     **ft._decay_args("SYN", r.syn_decay), ADD_FIRST=r.add_then_decay, **ft._decay_args("MEM", r.mem_decay),
                     **ft._decay_args("IN", r.input_decay), SAT_DELTA=r.saturated_delta, GE=r.compare_ge,
                     ZERO=r.reset_zero, CAP=r.cap, V_BITS=r.v_storage_bits, I_BITS=r.i_storage_bits,
                     EVENTS=tg.synapse.accumulation == "per_event_saturate", STORE=n % 2 == 0, BLOCK=ft.BLOCK,
                     WRAP=r.input_wrap_bits)
            build(ft._neuron_kernel, c, sig)
            n += 1
        f = M.FixedSynapseFilter(2, tg)
        r = f.kernel_rules()
        m, k, rnd = r.decay.params()
        build(ft._synapse_kernel, dict(ONE=r.one, MECH=m, K=k, R=rnd, **ft._width_args("C", r.current), BITS=32,
                                       BLOCK=ft.BLOCK),
              {"s_ptr": "*i8", "i0_ptr": P, "o_ptr": P, "counts_ptr": P, "T": "i32", "N": "i32"})
    print("AOT-OK", n)
    """
)


def test_triton_fixed_kernels_compile_for_cuda():
    """Ahead-of-time compile for sm_80 (no GPU needed): typing of the int64 arithmetic and constants
    that the interpreter does not check."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", AOT_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0 and ("ptxas" in proc.stderr.lower() or "nvidia" in proc.stderr.lower() and "backend" in proc.stderr.lower()):
        pytest.skip("Triton's CUDA compiler backend is unavailable here: " + proc.stderr.strip().splitlines()[-1][:200])
    if "AOT-SKIP" in proc.stdout:
        pytest.skip("this Triton version has another ahead-of-time compile API: " + proc.stdout.strip()[:200])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "AOT-OK" in proc.stdout


def test_stored_states_of_if_lif_keep_the_constant_current_and_cuba_its_steps():
    """The numba kernel stores no current rows for IF/LIF (they have none to change): the returned
    ``i`` rows are the entering current, equal to what the kernel returns without storing; CUBA's
    stored currents equal the step function's (and the last row the no-store result)."""
    g = torch.Generator().manual_seed(4)
    for make in (lambda: FixedLIFNode("generic_int8", 900, 2), lambda: FixedCubaLIFNode("generic_int8", 900, 2, 3)):
        tw = make()
        n = 3000
        x = torch.randint(-50, 400, (7, n), generator=g)
        rules = tw.kernel_rules()
        i0 = torch.randint(-20, 20, (n,), generator=g)
        v0 = torch.randint(-300, 300, (n,), generator=g)
        bias = torch.zeros(n, dtype=torch.int64)
        s1, v1, i1, c1 = BF.neuron_sequence(x, None, i0, v0, bias, rules, store=True, kind="numba")
        s2, v2, i2, c2 = BF.neuron_sequence(x, None, i0, v0, bias, rules, store=False, kind="numba")
        assert i1.shape == (7, n) and torch.equal(s1, s2) and torch.equal(v1[-1], v2[0]) and c1 == c2
        assert torch.equal(i1[-1], i2[0])
        if isinstance(tw, FixedCubaLIFNode):  # (a FixedLIFNode subclass)
            assert not torch.equal(i1[0], i1[-1])  # the current moves
        else:
            assert torch.equal(i1, i0.expand(7, n))
