"""The whole Xylo core (op ``xylo_core``): three independent implementations agree bit for bit on
every state at every step — the torch twin (hwsnn.fixed.FixedXyloCore), the NumPy simulator
(sim.ops.xylo_core) and SynSense's own engine (``xylosim``, through Rockpool's XyloSim built from
the specification that :func:`quant.to_rockpool_xylo` exports) — on random networks of every
variant: synapse 2, aliases (chains, self-aliases), per-neuron parameters, biases, 31-spike
bursts, saturating currents, input counts above 15, maximal decays and weight shifts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sim
from quant.record import record_twin
from quant.xylo import from_rockpool_xylo, to_rockpool_xylo
from xylo_nets import VARIANT_TARGET, as_tensor, random_inputs, random_spec

VARIANTS = tuple(VARIANT_TARGET)
#: xylosim names of the twin's / simulator's states
XYLOSIM_STATE = {"i": "Isyn", "i2": "Isyn2", "v": "Vmem", "spikes": "Spikes", "i_out": "Isyn_out", "v_out": "Vmem_out"}

CASES = [  # (name, random_spec keywords, input keywords)
    ("plain", {}, {}),
    ("bursts", {"low_threshold": True, "density": 0.6}, {"p": 0.7}),
    ("saturating", {"density": 0.9, "n": 24, "shifts": (7, 7, 7)}, {"p": 0.9, "top": 40}),  # fan-out <= 64
    ("max_decay", {"dash": 15, "shifts": (15, 15, 15)}, {}),
    ("no_bias_many_aliases", {"bias": False, "aliases": 30}, {}),
]


def _spec(seed: int, variant: str, kw: dict) -> dict:
    kw = dict(kw)
    shifts = kw.pop("shifts", None)
    dash = kw.pop("dash", None)
    spec = random_spec(seed, variant, **kw)
    if shifts is not None:
        spec.update(weight_shift_in=shifts[0], weight_shift_rec=shifts[1], weight_shift_out=shifts[2])
    if dash is not None:
        for k in ("dash_mem", "dash_syn", "dash_syn_2", "dash_mem_out", "dash_syn_out"):
            if k in spec:
                spec[k] = np.full_like(spec[k], dash)
    return spec


def _xylosim(kw: dict, variant: str, x: np.ndarray) -> tuple[np.ndarray, dict]:
    from xylo_nets import xylosim_run

    return xylosim_run(kw, variant, np.minimum(x, 15))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_twin_sim_and_xylosim_agree_on_every_state(tmp_path, variant, case):
    _, skw, xkw = next(c for c in CASES if c[0] == case)
    seed = VARIANTS.index(variant) * 10 + [c[0] for c in CASES].index(case)
    spec = _spec(seed, variant, skw)
    imp = from_rockpool_xylo(spec, variant, out_dir=tmp_path / "core")
    x = random_inputs(seed, 40, batch=2, **xkw)
    rec = record_twin(torch.nn.Sequential(imp.twin), as_tensor(x))
    (layer, twin_rec), = rec.items()
    res = sim.run(imp.export, x, record="states", chunk=7)
    assert set(res.traces[layer]) == set(twin_rec)
    for name, want in twin_rec.items():
        got = res.traces[layer][name]
        bad = np.argwhere(got.astype(np.int64) != want.astype(np.int64))
        assert bad.size == 0, f"{case}/{variant} {name}: first mismatch at {tuple(bad[0])}: sim {got[tuple(bad[0])]} twin {want[tuple(bad[0])]}"
    kw = to_rockpool_xylo(imp.export)
    for b in range(x.shape[1]):  # XyloSim runs one sample
        out, ref = _xylosim(kw, variant, x[:, b])
        np.testing.assert_array_equal(res.output[:, b], out, err_msg=f"{case}/{variant}: readout spikes, sample {b}")
        for ours, theirs in XYLOSIM_STATE.items():
            got = res.traces[layer][ours][:, b]
            bad = np.argwhere(got != ref[theirs].astype(np.int64))
            assert bad.size == 0, (f"{case}/{variant} {ours} vs xylosim {theirs}, sample {b}: first mismatch at "
                                   f"{tuple(bad[0])}: ours {got[tuple(bad[0])]} xylosim {ref[theirs][tuple(bad[0])]}")
    # the case exercises what it names (else the test could not fail where it should)
    assert res.output.sum() > 0 or case == "max_decay"
    if case == "bursts":
        assert res.traces[layer]["spikes"].max() == 31
    if case == "saturating":  # currents hit int16 during the event replay (the recorded states are after decay)
        assert res.counters[layer].saturations_by_state.get("i", 0) > 0
    if variant == "syns63300":
        assert not res.traces[layer]["i2"].any()


def test_round_trip_through_the_specification_keeps_every_integer(tmp_path):
    for variant in VARIANTS:
        spec = random_spec(3, variant)
        imp = from_rockpool_xylo(spec, variant, out_dir=tmp_path / variant)
        kw = to_rockpool_xylo(imp.export)
        again = to_rockpool_xylo(from_rockpool_xylo(kw, variant, out_dir=tmp_path / f"{variant}2").export)
        assert set(kw) == set(again)
        for k in kw:
            if isinstance(kw[k], np.ndarray):
                np.testing.assert_array_equal(kw[k], again[k], err_msg=f"{variant}: {k}")
            else:
                assert kw[k] == again[k], (variant, k)
        for k in ("weights_in", "weights_rec", "threshold", "bias", "dash_syn"):
            want = np.asarray(spec[k])
            got = np.asarray(kw[k])
            np.testing.assert_array_equal(got[..., :want.shape[-1]] if got.ndim == 3 else got, want, err_msg=k)


def test_twin_multi_step_equals_single_step(tmp_path):
    spec = random_spec(5, "syns61201", low_threshold=True)
    twin = from_rockpool_xylo(spec, "syns61201").twin
    x = as_tensor(random_inputs(5, 25, batch=3))
    y_m = twin(x)
    twin.reset()
    twin.step_mode = "s"
    y_s = torch.stack([twin(x[t]) for t in range(x.shape[0])])
    assert torch.equal(y_m, y_s) and int(y_m.sum()) > 0
