"""Target YAML files: the shipped ones load and say what the chip specs say; broken ones are refused
with messages that name the file, the key path and what is allowed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

import targets
from hwsnn.cli import main

SHIPPED = targets.available()


def _load_dict(name: str) -> dict:
    return yaml.safe_load((targets.target_dir() / f"{name}.yaml").read_text())


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_required_targets_ship_and_load():
    assert {"loihi", "xylo", "generic_int8", "ideal"} <= set(SHIPPED)
    for name in SHIPPED:
        t = targets.load(name)
        assert t.name == name
        assert targets.load(targets.target_dir() / f"{name}.yaml") == t


@pytest.mark.parametrize("name", SHIPPED)
def test_round_trip_through_plain_data(name):
    t = targets.load(name)
    assert targets.from_dict(targets.to_dict(t)) == t


def test_target_is_frozen():
    t = targets.load("generic_int8")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.widths.weight.bits = 4  # type: ignore[misc]


@pytest.mark.parametrize("name", SHIPPED)
def test_every_cost_figure_has_a_source(name):
    t = targets.load(name)
    figures = {k: v for k, v in vars(t.costs).items() if isinstance(v, targets.Figure)}
    assert set(vars(t.costs)) - set(figures) == {"cycle_model"}  # the one non-figure field
    for key, fig in figures.items():
        assert fig.source.strip(), f"{name}: costs.{key} has no source"
        assert fig.value >= 0


def test_loihi_matches_the_lava_spec():
    t = targets.load("loihi")
    assert (t.decay.mechanism, t.decay.rounding) == ("mul12", "toward_zero")
    assert t.overflow.current == "fold_once" and t.overflow.membrane == "saturate"
    assert t.widths.current.bits == 24 and t.widths.membrane.bits == 24
    assert (t.widths.membrane.lo, t.widths.membrane.hi) == (-(2**23 - 1), 2**23 - 1)
    assert t.neuron.compare == ">" and t.neuron.reset == ("zero",)
    assert t.neuron.threshold_shift == 6 and t.neuron.input_shift == 6
    assert (t.widths.threshold.bits, t.widths.threshold.signed) == (17, False)
    assert (t.widths.bias.bits, t.neuron.bias_exponent) == (13, True)
    # MIXED weights: even values in [-256, 254]
    assert (t.widths.weight.lo, t.widths.weight.hi, t.synapse.weight_step) == (-256, 255, 2)
    assert t.synapse.latency == 1 and t.synapse.first_latency == 1
    assert t.synapse.per_synapse_delay and t.synapse.max_delay == 62
    assert (t.neuron.mul12_min, t.neuron.mul12_max) == (-1, 4096)


def test_xylo_matches_the_xylosim_spec():
    t = targets.load("xylo")
    assert (t.decay.mechanism, t.decay.rounding, t.decay.max_shift) == ("shift", "xylo_min1", 15)
    assert t.decay.current_order == "add_then_decay"
    for w in (t.widths.current, t.widths.membrane, t.widths.threshold):
        assert (w.lo, w.hi) == (-32768, 32767)
    assert (t.widths.weight.lo, t.widths.weight.hi) == (-128, 127)
    assert t.neuron.compare == ">=" and t.neuron.reset == ("subtract",)
    assert t.neuron.max_spikes_per_step == 31 and t.neuron.readout_max_spikes_per_step == 1
    assert t.neuron.membrane_update == "saturated_delta" and t.neuron.threshold_positive
    assert t.synapse.accumulation == "per_event_saturate" and t.synapse.weight_shift == "per_synapse"
    assert t.synapse.max_input_events == 15
    assert (t.synapse.first_latency, t.synapse.latency) == (0, 1)
    assert (t.limits.input_channels, t.limits.hidden_neurons, t.limits.readout_neurons) == (16, 1000, 8)
    assert t.limits.max_fan_out == 64


def test_xylo_variants_differ_only_in_chip_sizes():
    base = targets.to_dict(targets.load("xylo"))
    sizes = {"xylo_audio3": (992, 32, 1024), "xylo_imu": (496, 16, 512)}
    for name, (hidden, readout, fan_out) in sizes.items():
        t = targets.load(name)
        assert (t.limits.hidden_neurons, t.limits.readout_neurons, t.limits.max_fan_out) == (hidden, readout, fan_out)
        other = targets.to_dict(t)
        for section in ("widths", "decay", "overflow", "neuron", "synapse", "spikes"):
            assert other[section] == base[section], (name, section)


def test_generic_int8_is_the_textbook_target():
    t = targets.load("generic_int8")
    assert (t.widths.weight.bits, t.widths.membrane.bits, t.widths.current.bits) == (8, 16, 16)
    assert (t.decay.mechanism, t.decay.rounding) == ("shift", "floor")
    assert set(vars(t.overflow).values()) == {"saturate"}
    assert t.neuron.compare == ">=" and t.neuron.reset[0] == "subtract"


def test_ideal_is_wide():
    t, g = targets.load("ideal"), targets.load("generic_int8")
    assert t.widths.membrane.bits >= 32 and t.widths.weight.bits > g.widths.weight.bits


# -- broken files: each gives its specific message -------------------------------------------------
def _broken(mutate) -> dict:
    data = _load_dict("generic_int8")
    mutate(data)
    return data


BROKEN = [
    ("unknown key", lambda d: d["neuron"].update(threshhold=3), "neuron.threshhold: unknown key"),
    ("unknown top-level key", lambda d: d.update(colour="red"), "colour: unknown key"),
    ("wrong type", lambda d: d["widths"]["weight"].update(bits="eight"), "widths.weight.bits: expected an integer, got 'eight'"),
    ("bool is not an int", lambda d: d["synapse"].update(latency=True), "synapse.latency: expected an integer, got True"),
    ("negative width", lambda d: d["widths"]["membrane"].update(bits=-16), "widths.membrane.bits: -16 is out of range; allowed [1, 64]"),
    ("missing field", lambda d: d["decay"].pop("rounding"), "decay.rounding: missing"),
    ("missing section", lambda d: d.pop("costs"), "costs: missing"),
    ("bad choice", lambda d: d["decay"].update(rounding="nearest"), "decay.rounding: 'nearest' is not allowed; allowed: floor, toward_zero, xylo_min1"),
    ("bad list entry", lambda d: d["neuron"].update(reset=["subtract", "none"]), "neuron.reset[1]: 'none' is not allowed; allowed: zero, subtract"),
    ("not a mapping", lambda d: d.update(widths=[8, 16]), "widths: expected a mapping"),
    ("negative energy", lambda d: d["costs"]["energy_per_neuron_update"].update(value=-1.0), "costs.energy_per_neuron_update.value: -1.0 is out of range"),
    ("empty source", lambda d: d["costs"]["clock_hz"].update(source=""), "costs.clock_hz.source: expected a non-empty string"),
    ("unsigned membrane", lambda d: d["widths"]["membrane"].update(signed=False), "widths.membrane.signed: must be true"),
    ("binary spikes with bits", lambda d: d["spikes"].update(bits=4), "spikes.bits: binary spikes carry 1 bit"),
    ("readout cap above hidden cap", lambda d: d["neuron"].update(readout_max_spikes_per_step=2), "neuron.readout_max_spikes_per_step: larger than"),
    ("xylo rounding on mul12", lambda d: d["decay"].update(mechanism="mul12", rounding="xylo_min1"), "decay.rounding: xylo_min1 is a rule of shift decay"),
]


@pytest.mark.parametrize("case,mutate,message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_file_gives_its_specific_message(tmp_path, case, mutate, message):
    path = _write(tmp_path, _broken(mutate))
    with pytest.raises(targets.TargetError) as info:
        targets.load(path)
    text = str(info.value)
    assert str(path) in text, "the message names the file"
    assert message in text
    assert info.value.source == str(path)


def test_all_problems_are_collected_not_just_the_first(tmp_path):
    def mutate(d):
        d["neuron"]["threshhold"] = 3
        d["widths"]["weight"]["bits"] = 0
        d["decay"].pop("max_shift")
        d["overflow"]["membrane"] = "clip"

    with pytest.raises(targets.TargetError) as info:
        targets.load(_write(tmp_path, _broken(mutate)))
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert any(p.startswith("neuron.threshhold") for p in problems)
    assert any(p.startswith("widths.weight.bits") for p in problems)
    assert any(p.startswith("decay.max_shift") for p in problems)
    assert any(p.startswith("overflow.membrane") for p in problems)


def test_unknown_name_lists_the_available_targets():
    with pytest.raises(targets.TargetError, match="available: generic_int8, ideal, loihi"):
        targets.load("truenorth")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(targets.TargetError, match="file not found"):
        targets.load(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(targets.TargetError, match="not valid YAML"):
        targets.load(bad)


def test_yaml_is_loaded_safely(tmp_path):
    evil = tmp_path / "evil.yaml"
    evil.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(targets.TargetError, match="not valid YAML"):
        targets.load(evil)


def test_width_ranges():
    w = targets.Width(bits=8)
    assert (w.lo, w.hi) == (-128, 127)
    assert (targets.Width(bits=8, signed=False).lo, targets.Width(bits=8, signed=False).hi) == (0, 255)
    assert (targets.Width(bits=8, symmetric=True).lo) == -127


# -- CLI ----------------------------------------------------------------------------------------
def test_cli_targets_list(capsys):
    assert main(["targets", "list"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out


def test_cli_targets_show(capsys):
    assert main(["targets", "show", "loihi"]) == 0
    out = capsys.readouterr().out
    shown = yaml.safe_load(out)
    assert targets.from_dict(shown) == targets.load("loihi")
    assert "unverified figures" in out


def test_cli_targets_validate(tmp_path, capsys):
    good = targets.target_dir() / "xylo.yaml"
    assert main(["targets", "validate", str(good)]) == 0
    assert "OK" in capsys.readouterr().out
    bad = _write(tmp_path, _broken(lambda d: d["decay"].update(rounding="nearest")))
    assert main(["targets", "validate", str(good), str(bad)]) == 1
    err = capsys.readouterr().err
    assert "decay.rounding" in err and str(bad) in err
