"""``quant.to_rockpool_xylo(which="config")`` feeds Rockpool's own ``config_from_specification``.

That function builds a chip configuration with the real ``samna`` (whose public package is an empty
stub, see docs/xylo.md), then validates it with samna. The test runs Rockpool's installed function
unchanged -- its source is read from the installed package and compiled here -- with stand-in samna
classes that just hold the fields it sets, and a validator that accepts. Every field is then compared
with the bundle's ``xylo_core`` op read on its own: weights (with the 128-neuron windows of
XyloAudio 3 and IMU), the three shifts, per-neuron decays, thresholds, biases, alias targets and
synapse 2. A renamed or missing argument, a wrong array layout or a dropped field fails it."""

from __future__ import annotations

import ast
import importlib.util
import typing
import warnings
from types import SimpleNamespace as NS

import numpy as np
import pytest

from quant.xylo import from_rockpool_xylo, to_rockpool_xylo
from targets.bundle import load_bundle
from xylo_nets import random_spec

rockpool = pytest.importorskip("rockpool")


class _Fields:
    """A configuration node: attributes are created on first read (as samna's defaults)."""

    def __init__(self) -> None:
        self.bias_enable = False
        self.synapse2_enable = False

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        node = _Fields()
        setattr(self, name, node)
        return node


class _Neuron:
    alias_target = None


def _samna_stub() -> NS:
    conf = NS(XyloConfiguration=_Fields, HiddenNeuron=_Neuron, OutputNeuron=_Neuron, ReservoirNeuron=_Neuron)
    chip = NS(configuration=conf, validate_configuration=lambda config: (True, ""))
    return NS(xyloCore2=chip, xyloImu=chip, xyloAudio3=chip)


def _config_from_specification(variant: str):
    """Rockpool's ``config_from_specification`` of ``variant``, compiled from the installed source."""
    path = importlib.util.find_spec("rockpool").submodule_search_locations[0]
    src = open(f"{path}/devices/xylo/{variant}/xylo_samna.py").read()
    fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "config_from_specification")
    module = ast.Module(body=[fn], type_ignores=[])
    samna = _samna_stub()
    ns = {"np": np, "warn": warnings.warn, "samna": samna, "XyloConfiguration": _Fields, "ReservoirNeuron": _Neuron,
          "OutputNeuron": _Neuron, "HiddenNeuron": _Neuron, "validate_configuration": lambda c: (True, ""),
          **{k: getattr(typing, k) for k in ("Optional", "List", "Tuple", "Union", "Any")}}
    exec(compile(module, f"{path}/devices/xylo/{variant}/xylo_samna.py", "exec"), ns)
    return ns["config_from_specification"]


@pytest.mark.parametrize("variant", ["syns61201", "syns65302", "syns63300"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_config_kwargs_build_rockpools_configuration_field_by_field(tmp_path, variant, seed):
    n = 140 if seed == 2 and variant != "syns61201" else 40  # beyond 128: the input/readout windows
    spec = random_spec(seed, variant, n=n, aliases=4 + seed, bias=seed != 1)
    imp = from_rockpool_xylo(spec, variant, out_dir=tmp_path / "core")
    core = load_bundle(imp.export).ops[0]
    kw = to_rockpool_xylo(imp.export, which="config")
    config, ok, msg = _config_from_specification(variant)(**kw)
    assert ok and msg == ""
    hidden = config.reservoir if variant == "syns61201" else config.hidden
    w_in, w_rec, w_out = (np.asarray(core.w_in), np.asarray(core.w_rec), np.asarray(core.w_out))
    win = w_in.shape[1] if variant == "syns61201" else min(128, w_in.shape[1])
    np.testing.assert_array_equal(config.input.weights, w_in[:, :win, 0])
    np.testing.assert_array_equal(hidden.weights, w_rec[:, :, 0])
    ro = np.asarray(config.readout.weights)
    if variant == "syns61201":  # all hidden neurons are readout sources: zero rows in front
        assert ro.shape == (core.hidden, core.readout)
        np.testing.assert_array_equal(ro[core.hidden - core.output_expansion:], w_out)
        assert not ro[:core.hidden - core.output_expansion].any()
    else:
        np.testing.assert_array_equal(ro, w_out[-128:])
    assert (int(config.input.weight_bit_shift), int(hidden.weight_bit_shift), int(config.readout.weight_bit_shift)) == (
        core.weight_shift_in, core.weight_shift_rec, core.weight_shift_out)
    two = core.synapses == 2 and variant != "syns63300"
    assert bool(config.synapse2_enable) == two
    if two:
        np.testing.assert_array_equal(config.input.syn2_weights, w_in[:, :, 1])
        np.testing.assert_array_equal(hidden.syn2_weights, w_rec[:, :, 1])
    assert config.bias_enable is True  # both bias vectors are always passed (zeros where there is none)
    assert len(hidden.neurons) == core.hidden and len(config.readout.neurons) == core.readout
    for i, nr in enumerate(hidden.neurons):
        assert (int(nr.i_syn_decay), int(nr.v_mem_decay), int(nr.threshold)) == (
            core.dash_syn[i], core.dash_mem[i], core.threshold[i]), i
        assert int(getattr(nr, "v_mem_bias", 0) or 0) == core.bias[i]
        assert (nr.alias_target if nr.alias_target is not None else -1) == core.alias[i]
        if two:
            assert int(nr.i_syn2_decay) == core.dash_syn2[i]
    for j, nr in enumerate(config.readout.neurons):
        assert (int(nr.i_syn_decay), int(nr.v_mem_decay), int(nr.threshold), int(getattr(nr, "v_mem_bias", 0) or 0)) == (
            core.dash_syn_out[j], core.dash_mem_out[j], core.threshold_out[j], core.bias_out[j]), j
    assert np.any(core.alias >= 0) and np.any(core.w_rec)


def test_config_and_sim_kwargs_differ_only_where_rockpool_names_differ(tmp_path):
    imp = from_rockpool_xylo(random_spec(3, "syns61201"), "syns61201", out_dir=tmp_path / "core")
    sim_kw, cfg_kw = to_rockpool_xylo(imp.export), to_rockpool_xylo(imp.export, which="config")
    assert set(sim_kw) - set(cfg_kw) == {"dt", "bias"} and set(cfg_kw) - set(sim_kw) == {"bias_hidden"}
    np.testing.assert_array_equal(sim_kw["bias"], cfg_kw["bias_hidden"])
    with pytest.raises(ValueError, match="which must be 'sim' or 'config'"):
        to_rockpool_xylo(imp.export, which="chip")
