"""Xylo's cycles per step and clock for real time (sim.xylo_cycles, used by sim.run's costs on a
Xylo core) equal SynSense's own model: Rockpool's ``power_cycles_model.cycles_model`` and
``est_clock_freq`` on the same network and rasters. Rockpool's module imports ``samna`` only for
type hints and reads a chip configuration (which ``config_from_specification`` builds with the real
samna): the test loads the module with a stand-in ``samna`` and hands it the configuration's fields
as ``config_from_specification`` fills them (Rockpool 3.1.0, syns61201 / syns63300 xylo_samna.py)."""

from __future__ import annotations

import importlib.util
import sys
import types
from types import SimpleNamespace as NS

import numpy as np
import pytest

import sim
from quant.xylo import from_rockpool_xylo, to_rockpool_xylo
from xylo_nets import random_inputs, random_spec

rockpool = pytest.importorskip("rockpool")


def _rockpool_model(variant: str):
    path = importlib.util.find_spec("rockpool").submodule_search_locations[0]
    mod = {"syns61201": "syns61201", "syns65302": "syns63300", "syns63300": "syns63300"}[variant]
    stub = types.ModuleType("samna")
    cfg = NS(configuration=NS(XyloConfiguration=object))
    stub.xyloCore2 = stub.xyloImu = stub.xyloAudio3 = cfg
    spec = importlib.util.spec_from_file_location(f"_rp_cycles_{mod}", f"{path}/devices/xylo/{mod}/power_cycles_model.py")
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("samna")
    sys.modules["samna"] = stub
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            sys.modules.pop("samna", None)
        else:
            sys.modules["samna"] = saved
    return module


def _config(kw: dict, variant: str) -> NS:
    """The fields the cycle model reads, as Rockpool's config_from_specification sets them."""
    neurons = [NS(alias_target=a[0] if a else None) for a in kw["aliases"]]
    w_in, w_rec = np.asarray(kw["weights_in"]), np.asarray(kw["weights_rec"])
    if variant == "syns61201":
        return NS(input=NS(weights=w_in[:, :, 0]), reservoir=NS(weights=w_rec[:, :, 0], neurons=neurons),
                  readout=NS(weights=np.asarray(kw["weights_out"])), synapse2_enable=w_in.shape[2] == 2)
    return NS(input=NS(weights=w_in[:, :128, 0]), hidden=NS(weights=w_rec[:, :, 0], neurons=neurons),
              readout=NS(weights=np.asarray(kw["weights_out"])[-128:]))


@pytest.mark.parametrize("variant", ["syns61201", "syns65302", "syns63300"])
@pytest.mark.parametrize("seed", [0, 1])
def test_cycles_and_clock_equal_rockpools_model(tmp_path, variant, seed):
    spec = random_spec(seed, variant, n=60, low_threshold=bool(seed), aliases=8 * seed)
    imp = from_rockpool_xylo(spec, variant, out_dir=tmp_path / "core", dt=1e-3)
    x = random_inputs(seed, 60, batch=1, p=0.3)
    res = sim.run(imp.export, x, record="states")
    kw = to_rockpool_xylo(imp.export)
    model = _rockpool_model(variant)
    cfg = _config(kw, variant)
    (layer,) = res.traces
    hidden = res.traces[layer]["spikes"][:, 0]
    want = model.cycles_model(cfg, x[:, 0], hidden, res.output[:, 0])
    want = want[0] if isinstance(want, tuple) else want
    assert 0 < hidden.mean() and res.output.sum() > 0
    assert res.costs["cycles_model"] == {"syns61201": "syns61201"}.get(variant, "syns63300")
    assert res.costs["cycles_per_step_mean"] == pytest.approx(want, rel=1e-12)
    assert res.costs["clock_for_real_time_hz"] == pytest.approx(model.est_clock_freq(cfg, 1e-3), rel=1e-12)
    # the worst case (every channel and neuron active) bounds every step
    assert res.costs["cycles_per_step_max"] <= model.est_clock_freq(cfg, 1.0, margin=0.0) + 1e-9
