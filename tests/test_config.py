"""hwsnn.config: the run file (`hwsnn run --config run.yaml`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import targets
import torch
import yaml

from hwsnn import data as hdata
from hwsnn import layer, neuron, surrogate
from hwsnn.config import (
    LAYER_TYPES,
    ConfigError,
    DataSpec,
    LayerSpec,
    RunConfig,
    TrainingSpec,
    load_run_config,
    run_config_from_dict,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "run.yaml"

NETWORK = [
    {"type": "Linear", "in_features": 16, "out_features": 64, "bias": False},
    {"type": "LIFNode", "tau": 2.0, "v_reset": None, "decay_input": False, "detach_reset": True},
    {"type": "SynapseFilter", "tau": 4.0},
    {"type": "Delay", "delay_steps": 1},
    {"type": "Dropout", "p": 0.1},
    {"type": "Linear", "in_features": 64, "out_features": 40, "bias": False},
    {"type": "LIFNode", "tau": 8.0, "surrogate_function": {"type": "ATan", "alpha": 3.0}},
    {"type": "VotingLayer", "voting_size": 4},
]


def problems_of(d, source=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        run_config_from_dict(d, source=source)
    return info.value.problems


# --------------------------------------------------------------------------- defaults and round trips


def test_example_file_equals_the_builtin_defaults():
    cfg = load_run_config(EXAMPLE)
    assert cfg == run_config_from_dict({}) == run_config_from_dict(None) == RunConfig()
    assert cfg.source == EXAMPLE
    assert (cfg.seed, cfg.target, cfg.out, cfg.network) == (0, "generic_int8", "hwsnn-out", None)
    assert cfg.data == DataSpec("digits", {})
    assert cfg.training == TrainingSpec(epochs=40, lr=0.01, batch_size=32, qat_epochs=None, qat_lr=None,
                                        calibration_batches=4)


@pytest.mark.parametrize("target,want", [("generic_int8", (3, 1e-4)), ("loihi", (3, 1e-4)), ("xylo", (6, 1e-3)),
                                         ("xylo_imu", (6, 1e-3))])
def test_qat_defaults_follow_the_target_and_explicit_values_win(target, want):
    tg = targets.load(target)
    got = TrainingSpec().for_target(tg)
    assert (got.qat_epochs, got.qat_lr) == want and got.epochs == 40
    mine = run_config_from_dict({"training": {"qat_epochs": 2, "qat_lr": 0.5}}).training.for_target(tg)
    assert (mine.qat_epochs, mine.qat_lr) == (2, 0.5)
    nulls = run_config_from_dict({"training": {"qat_epochs": None, "qat_lr": None}})
    assert nulls.training == TrainingSpec() and run_config_from_dict(nulls.to_dict()) == nulls


def test_example_file_network_block_is_the_default_network():
    # the commented-out network of the example, uncommented, builds the default network of
    # generic_int8 with the same initial weights
    text = EXAMPLE.read_text()
    lines = [ln.replace("# network:", "network:", 1).replace("#   - ", "  - ", 1) for ln in text.splitlines() if ln.strip() != "network: null"]
    cfg = run_config_from_dict(yaml.safe_load("\n".join(lines)), source=EXAMPLE)
    assert [s.type for s in cfg.network] == ["Linear", "LIFNode", "Dropout", "Linear", "CubaLIFNode", "SynapseFilter", "Delay", "VotingLayer"]
    net, default = cfg.build_network(), load_run_config(EXAMPLE).build_network()
    assert repr(net) == repr(default)
    a, b = net.state_dict(), default.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _example_digits_comments() -> dict:
    """The ``# key: value`` lines of the example's digits block."""
    text = EXAMPLE.read_text()
    block = text[text.index("  # digits:"):text.index("  # temporal_patterns:")]
    out = {}
    for line in block.splitlines():
        body = line.strip().lstrip("#").strip()
        if body.split(":")[0] in ("row_steps", "tail_steps", "levels", "columns", "position_channels", "test_fraction",
                                    "train_samples", "test_samples"):
            out.update(yaml.safe_load(body.split("  #")[0]))
    return out


def test_example_comments_state_the_data_defaults():
    import inspect

    from hwsnn.config.options import DATA_OPTIONS

    text = EXAMPLE.read_text()
    line = text[text.index("#   {kind: temporal_patterns"):text.index("}", text.index("#   {kind: temporal_patterns")) + 1]
    stated = yaml.safe_load(" ".join(part.strip().lstrip("#") for part in line.splitlines()))
    assert stated == {"kind": "temporal_patterns", **{k: d for k, (_, d) in DATA_OPTIONS["temporal_patterns"].items()}}
    sig = inspect.signature(hdata.temporal_patterns).parameters
    for k in ("template_rate", "jitter", "drop", "noise"):
        assert stated[k] == sig[k].default
    if not hasattr(hdata, "digits_spikes"):
        pytest.skip("hwsnn.data.digits_spikes not available yet")
    stated = _example_digits_comments()
    sig = inspect.signature(hdata.digits_spikes).parameters
    assert stated == {"row_steps": sig["row_steps"].default, "tail_steps": sig["tail_steps"].default,
                      "levels": list(sig["levels"].default), "columns": list(sig["columns"].default),
                      "position_channels": sig["position_channels"].default, "test_fraction": sig["test_fraction"].default,
                      "train_samples": None, "test_samples": None}
    # and stated explicitly they load the same data as the defaults
    explicit = run_config_from_dict({"data": {"kind": "digits", **stated, "train_samples": 30, "test_samples": 10}}).load_data()
    default = run_config_from_dict({"data": {"train_samples": 30, "test_samples": 10}}).load_data()
    assert all(torch.equal(a, b) for a, b in zip(explicit, default))


def test_to_dict_round_trip(tmp_path):
    d = {"seed": 3, "target": "xylo", "out": "o", "network": NETWORK, "data": {"kind": "temporal_patterns", "T": 12, "classes": 10},
         "training": {"epochs": 2, "lr": 1}}
    cfg = run_config_from_dict(d)
    again = run_config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again == cfg
    assert cfg.training.lr == 1.0 and isinstance(cfg.training.lr, float)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(d))
    assert load_run_config(path) == cfg


# --------------------------------------------------------------------------- errors


def test_every_problem_is_collected_in_one_error(tmp_path):
    bad = {
        "seed": -1,
        "taget": "loihi",
        "target": "nochip",
        "out": "",
        "data": {"kind": "mnist"},
        "network": [
            {"type": "Linear", "in_features": 16, "out_feature": 40},
            {"type": "LIFnode", "tau": 2.0},
            {"type": "LIFNode", "tau": 0.5, "surrogate_function": "Atan"},
            {"type": "Dropout", "p": "high"},
            {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": [3, "a"]},
            "LIFNode",
            {"tau": 2.0},
            {"type": "Delay", "delay_steps": 1, "step_mode": "s"},
            {"type": "Delay"},
        ],
        "training": {"epochs": 0, "lr": -1.0, "batch_size": 2.5, "qat_epochs": -1, "epoch": 3},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as info:
        load_run_config(path)
    err = info.value
    msg = str(err)
    assert str(path) in msg and isinstance(err, ValueError)
    expected = [
        "seed: must be an int >= 0; got -1",
        "taget: unknown key (did you mean 'target'?); allowed keys here: seed, target, out, data, network, training",
        "target: no shipped target named 'nochip'",
        "out: must be a non-empty string",
        "data.kind: unknown 'mnist'; allowed digits, nmnist, npz, shd, temporal_patterns",
        "network[0].out_feature: unknown option of Linear (did you mean 'out_features'?); allowed: in_features, out_features, bias",
        "network[0].out_features: missing (required by Linear)",
        "network[1].type: unknown layer 'LIFnode' (did you mean 'LIFNode'?); known: AvgPool2d, Conv2d, CubaLIFNode, Delay,",
        "network[2].surrogate_function: unknown surrogate 'Atan'; known: ATan, PiecewiseQuadratic, Sigmoid",
        "network[2] (LIFNode): LIFNode: tau must be > 1",  # the constructor's own check, run on meta
        "network[3].p: expected a number; got 'high'",
        "network[4].kernel_size: expected an int or a list of 2",
        "network[5]: expected a mapping",
        "network[6].type: missing; known: AvgPool2d",
        "network[7].step_mode: unknown option of Delay (set by hwsnn: the network runs multi-step)",
        "network[8].delay_steps: missing (required by Delay)",
        "training.epochs: must be an int >= 1; got 0",
        "training.lr: must be a number > 0; got -1.0",
        "training.batch_size: must be an int >= 1; got 2.5",
        "training.qat_epochs: must be an int >= 0; got -1",
        "training.epoch: unknown key (did you mean 'epochs'?); allowed keys here: epochs, lr, batch_size, qat_epochs, qat_lr, calibration_batches",
    ]
    for want in expected:
        assert any(p.startswith(want) for p in err.problems), (want, err.problems)
        assert want in msg
    assert len(err.problems) == len(expected), err.problems


def test_layer_option_types_and_ranges():
    probs = problems_of({"network": [
        {"type": "Linear", "in_features": 16.0, "out_features": 4, "bias": "no"},
        {"type": "LIFNode", "tau": 2, "v_reset": "zero", "detach_reset": 1},
        {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding_mode": "zero"},
        {"type": "Dropout", "p": 1.5},
        {"type": "VotingLayer", "voting_size": 0},
        {"type": "CubaLIFNode", "tau_syn": 2.0, "surrogate_function": {"type": "Sigmoid", "alfa": 2}},
        {"type": "IFNode", "surrogate_function": {"alpha": 2}},
    ]})
    joined = "\n".join(probs)
    assert "network[0].in_features: expected an int; got 16.0" in joined
    assert "network[0].bias: expected true/false; got 'no'" in joined
    assert "network[1].v_reset: expected a number or null; got 'zero'" in joined
    assert "network[1].detach_reset: expected true/false; got 1" in joined
    assert "network[1].tau" not in joined  # an int is a number
    assert "network[2].padding_mode: expected one of 'zeros', 'reflect', 'replicate', 'circular'; got 'zero'" in joined
    assert "network[3] (Dropout): Dropout: p (the drop probability) must lie in [0, 1)" in joined
    assert "network[4] (VotingLayer): VotingLayer: voting_size must be an int >= 1" in joined
    assert "network[5].surrogate_function.alfa: unknown key (did you mean 'alpha'?)" in joined
    assert "network[6].surrogate_function.type: missing; known: ATan, PiecewiseQuadratic, Sigmoid" in joined
    assert len(probs) == 9, probs


def test_layer_chain_widths_are_checked():
    probs = problems_of({"network": [
        {"type": "Linear", "in_features": 16, "out_features": 30},
        {"type": "LIFNode"},
        {"type": "Linear", "in_features": 20, "out_features": 30},
        {"type": "VotingLayer", "voting_size": 4},
    ]})
    assert probs == [
        "network[2].in_features: 20 does not match the 30 features out of network[0]",
        "network[3].voting_size: 4 does not divide the 30 features out of network[2]",
    ]


def test_structural_errors():
    assert problems_of([1, 2])[0].startswith("(top level): expected a mapping")
    assert problems_of({"network": []})[0].startswith("network: expected a non-empty list")
    assert problems_of({"network": {"type": "Linear"}})[0].startswith("network: expected a non-empty list")
    assert problems_of({"training": [1]})[0].startswith("training: expected a mapping with keys epochs, lr")
    assert problems_of({"data": "digits"})[0].startswith("data: expected a mapping")
    probs = problems_of({"data": {"kind": "temporal_patterns", "T": 0, "drop": 2, "row_steps": 3}})
    assert probs == [
        "data.T: must be an int >= 1; got 0",
        "data.drop: must be a number in [0, 1]; got 2",
        "data.row_steps: unknown key; allowed keys here: kind, T, channels, classes, train_samples, test_samples, "
        "template_rate, jitter, drop, noise (for kind temporal_patterns)",
    ]
    probs = problems_of({"data": {"kind": "digits", "test_fraction": 1.0, "train_samples": 0, "levels": True}})
    assert probs == [
        "data.test_fraction: must be a number in (0, 1); got 1.0",
        "data.train_samples: must be an int >= 1 or null; got 0",
        "data.levels: must be a non-empty, strictly increasing list of ints in [0, 15]; got True",
    ]
    assert problems_of({"data": {"levels": [10, 4]}}) == [
        "data.levels: must be a non-empty, strictly increasing list of ints in [0, 15]; got [10, 4]"
    ]
    assert problems_of({"data": {"levels": [4, 16]}})[0].startswith("data.levels: must be")
    assert problems_of({"data": {"kind": "npz"}}) == [
        "data.path: missing (required for kind npz: a .npz file with x_train, y_train, x_test, y_test)"
    ]


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_run_config(tmp_path / "nope.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("training: {epochs: 3\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(p)
    p.write_text("")
    assert load_run_config(p) == RunConfig()  # an empty file is the default job


def test_unsafe_yaml_tags_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.yaml"
    p.write_text(f"seed: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(p)
    p.write_text("network:\n  - !!python/name:builtins.eval\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_run_config(p)
    assert not marker.exists()


def test_layer_types_are_a_fixed_whitelist():
    assert set(LAYER_TYPES) == {"Linear", "Conv2d", "AvgPool2d", "MaxPool2d", "Flatten", "SynapseFilter", "Delay", "Dropout",
                                "Dropout2d", "VotingLayer", "OutputCode", "IFNode", "LIFNode", "CubaLIFNode",
                                "RecurrentContainer"}
    for name in ("OTTTLIFNode", "PrintShapeModule", "os.system", "__import__", "torch.nn.Linear"):
        assert any(p.startswith(f"network[0].type: unknown layer {name!r}") for p in problems_of({"network": [{"type": name}]}))


# --------------------------------------------------------------------------- paths


def test_relative_paths_resolve_against_the_file(tmp_path, monkeypatch):
    sub = tmp_path / "cfg"
    sub.mkdir()
    shipped = Path(__import__("targets").target_dir()) / "xylo.yaml"
    (sub / "chip.yaml").write_text(shipped.read_text())
    _write_npz(sub / "d.npz")
    (sub / "run.yaml").write_text("target: chip.yaml\ndata: {kind: npz, path: d.npz}\n")
    monkeypatch.chdir(tmp_path)  # not the file's folder
    cfg = load_run_config("cfg/run.yaml")
    assert cfg.target == str((sub / "chip.yaml").resolve())
    assert cfg.data.options["path"] == str((sub / "d.npz").resolve())
    assert cfg.out == "hwsnn-out"  # the output directory stays relative to the working directory
    x_train, *_ = cfg.load_data()
    assert x_train.shape == (5, 6, 16)
    # the same relative names from a file elsewhere do not exist
    (tmp_path / "run.yaml").write_text("target: chip.yaml\ndata: {kind: npz, path: d.npz}\n")
    with pytest.raises(ConfigError) as info:
        load_run_config(tmp_path / "run.yaml")
    assert len(info.value.problems) == 2
    assert f"target: {(tmp_path / 'chip.yaml').resolve()}: file not found" in info.value.problems
    assert f"data.path: file not found: {(tmp_path / 'd.npz').resolve()}" in info.value.problems


# --------------------------------------------------------------------------- networks


def test_build_network_layers_options_and_step_mode():
    cfg = run_config_from_dict({"network": NETWORK})
    net = cfg.build_network()
    kinds = [layer.Linear, neuron.LIFNode, layer.SynapseFilter, layer.Delay, layer.Dropout, layer.Linear, neuron.LIFNode, layer.VotingLayer]
    assert [type(m) for m in net] == kinds
    assert (net[0].in_features, net[0].out_features, net[0].bias) == (16, 64, None)
    assert (net[1].tau, net[1].v_reset, net[1].decay_input, net[1].detach_reset) == (2.0, None, False, True)
    assert float(net[2].tau) == 4.0 and net[3].delay_steps == 1 and net[4].p == 0.1
    assert isinstance(net[6].surrogate_function, surrogate.ATan) and net[6].surrogate_function.alpha == 3.0
    assert net[7].voting_size == 4
    assert all(m.step_mode == "m" for m in net)
    out = net(torch.ones(5, 3, 16))
    assert out.shape == (5, 3, 10)


def test_build_network_is_deterministic_per_seed():
    def weights(seed):
        net = run_config_from_dict({"seed": seed, "network": NETWORK}).build_network()
        return net[0].weight.detach().clone(), net[5].weight.detach().clone()

    torch.manual_seed(123)
    a = weights(1)
    torch.rand(100)  # the global stream moved on: no effect
    b = weights(1)
    c = weights(2)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])


def test_build_network_conv_lists_become_tuples():
    cfg = run_config_from_dict({"network": [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 2, "kernel_size": [3, 3], "padding": 1, "bias": False},
        {"type": "IFNode"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Flatten"},
        {"type": "Linear", "in_features": 2 * 4 * 4, "out_features": 3},
        {"type": "CubaLIFNode", "tau_syn": 2.0, "tau_mem": 4.0, "surrogate_function": "Sigmoid"},
    ]})
    net = cfg.build_network()
    assert net[0].kernel_size == (3, 3)
    assert net(torch.ones(2, 4, 1, 8, 8)).shape == (2, 4, 3)


def test_build_network_reports_constructor_errors_by_index():
    # a spec that passed validation but fails to build (built by hand, bypassing validation)
    cfg = RunConfig(network=(LayerSpec("Linear", {"in_features": 4, "out_features": 2}), LayerSpec("Delay", {"delay_steps": -2}),
                             LayerSpec("Dropout", {"p": 3.0})))
    with pytest.raises(ConfigError) as info:
        cfg.build_network()
    assert [p.split(":")[0] for p in info.value.problems] == ["network[1] (Delay)", "network[2] (Dropout)"]


def test_default_network_comes_from_demo(monkeypatch):
    import hwsnn.demo

    seen = {}

    def fake_default_network(target):
        seen["target"] = target
        seen["rand"] = torch.rand(1)
        return torch.nn.Sequential(layer.Linear(16, 4), neuron.LIFNode())

    monkeypatch.setattr(hwsnn.demo, "default_network", fake_default_network, raising=False)
    cfg = run_config_from_dict({"seed": 5, "target": "loihi"})
    net = cfg.build_network()
    assert seen["target"] == "loihi" and all(m.step_mode == "m" for m in net)
    torch.manual_seed(5)
    assert torch.equal(seen["rand"], torch.rand(1))  # seeded before building
    cfg.build_network("xylo")
    assert seen["target"] == "xylo"


# --------------------------------------------------------------------------- data


def test_temporal_patterns_data():
    cfg = run_config_from_dict({"seed": 2, "data": {"kind": "temporal_patterns", "T": 12, "channels": 8, "classes": 3,
                                                    "train_samples": 30, "test_samples": 10}})
    x_train, y_train, x_test, y_test = cfg.load_data()
    assert x_train.shape == (12, 30, 8) and x_test.shape == (12, 10, 8)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64 and y_test.dtype == torch.int64
    assert y_train.shape == (30,) and int(y_train.max()) < 3
    ref_x, ref_y = hdata.temporal_patterns(10, 12, 8, 3, seed=2, sample_seed=2 + 10_000)
    assert torch.equal(x_test, ref_x) and torch.equal(y_test, ref_y)
    # the defaults: T 20, 16 channels, 2000 / 500 samples
    x, y, xt, yt = run_config_from_dict({"data": {"kind": "temporal_patterns"}}).load_data()
    assert x.shape == (20, 2000, 16) and xt.shape == (20, 500, 16) and int(y.max()) == 9


def test_data_is_checked_against_an_explicit_network():
    net = [{"type": "Linear", "in_features": 16, "out_features": 8}, {"type": "LIFNode"}, {"type": "VotingLayer", "voting_size": 4}]
    cfg = run_config_from_dict({"network": net, "data": {"kind": "temporal_patterns", "channels": 12, "classes": 3, "train_samples": 40,
                                                          "test_samples": 10}})
    with pytest.raises(ConfigError) as info:
        cfg.load_data()
    assert info.value.problems == [
        "network[0].in_features: 16, but the data (data.kind temporal_patterns) has 12 input channels (x_train shape [T, N, ...] = [20, 40, 12])",
        "network: 2 outputs (classes), but the data (data.kind temporal_patterns) has label 2",
    ]
    ok = run_config_from_dict({"network": net, "data": {"kind": "temporal_patterns", "classes": 2, "train_samples": 8, "test_samples": 4}})
    assert ok.load_data()[0].shape == (20, 8, 16)


def test_digits_data():
    if not hasattr(hdata, "digits_spikes"):
        pytest.skip("hwsnn.data.digits_spikes not available yet")
    cfg = run_config_from_dict({"seed": 1, "data": {"kind": "digits", "train_samples": 50, "test_samples": 20}})
    x_train, y_train, x_test, y_test = cfg.load_data()
    assert x_train.dim() == 3 and x_train.shape[1:] == (50, 16) and x_test.shape[1:] == (20, 16)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    ref_x, ref_y = hdata.digits_spikes("test", split_seed=1, limit=20)
    assert torch.equal(x_test, ref_x.float()) and torch.equal(y_test, ref_y.long())
    assert int(y_train.max()) <= 9 and int(y_train.min()) >= 0
    # options pass through (a YAML list of levels included); the example network fits the default data
    cfg = run_config_from_dict({"network": NETWORK, "data": {"row_steps": 1, "tail_steps": 2, "levels": [8], "test_samples": 5}})
    with pytest.raises(ConfigError, match=r"network\[0\].in_features: 16, but the data \(data.kind digits\) has 10 input channels"):
        cfg.load_data()
    x_train, _, x_test, _ = run_config_from_dict({"data": {"row_steps": 1, "tail_steps": 2, "levels": [8], "test_samples": 5}}).load_data()
    assert x_train.shape[0] == 8 + 2 and x_train.shape[2] == 6 * 1 + 4 and x_test.shape[1] == 5
    assert run_config_from_dict({"network": NETWORK, "data": {"train_samples": 20, "test_samples": 5}}).load_data()[0].shape[1:] == (20, 16)


def test_digits_without_the_data_function(monkeypatch):
    monkeypatch.delattr(hdata, "digits_spikes", raising=False)
    with pytest.raises(ConfigError, match="digits_spikes"):
        RunConfig().load_data()


def _write_npz(path, **override):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": (rng.random((5, 6, 16)) < 0.3).astype(np.float32),
        "y_train": rng.integers(0, 3, 6),
        "x_test": (rng.random((5, 4, 16)) < 0.3).astype(np.uint8),
        "y_test": rng.integers(0, 3, 4).astype(np.int32),
    }
    arrays.update(override)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_npz_good_file(tmp_path):
    arrays = _write_npz(tmp_path / "d.npz")
    cfg = run_config_from_dict({"data": {"kind": "npz", "path": str(tmp_path / "d.npz"), "classes": 3}})
    x_train, y_train, x_test, y_test = cfg.load_data()
    assert x_train.dtype == x_test.dtype == torch.float32 and y_train.dtype == y_test.dtype == torch.int64
    assert np.array_equal(x_test.numpy(), arrays["x_test"]) and np.array_equal(y_train.numpy(), arrays["y_train"])
    assert x_test.shape == (5, 4, 16)


@pytest.mark.parametrize(
    "override, wants",
    [
        ({"y_test": None, "extra": np.zeros(2)}, ["missing array(s) y_test", "unexpected array(s) extra"]),
        ({"x_train": np.array([["a"]] * 3)}, ["x_train: must be numeric"]),
        ({"y_train": np.zeros(6, dtype=np.float32)}, ["y_train: must hold integer class labels; got dtype float32"]),
        ({"x_train": np.zeros((6, 16), np.float32)}, ["x_train: must be [T, N, ...] (3 or more dims); got shape [6, 16]"]),
        ({"y_train": np.zeros(7, dtype=np.int64)}, ["x_train/y_train: 6 samples in x_train (axis 1 of [T, N, ...]) but 7 labels"]),
        ({"x_test": np.zeros((4, 4, 16), np.float32)}, ["x_train/x_test: different numbers of time steps T (5 vs 4)"]),
        ({"x_test": np.zeros((5, 4, 15), np.float32)}, ["x_train/x_test: different sample shapes ([16] vs [15])"]),
        ({"x_test": np.full((5, 4, 16), np.nan, np.float32)}, ["x_test: holds NaN or infinite values"]),
        ({"y_test": np.array([0, 1, 2, 3])}, ["y_test: labels must lie in [0, 3) (data.classes); found 3"]),
        ({"y_test": np.array([0, -1, 2, 1])}, ["y_test: labels must be >= 0; found -1"]),
        ({"y_test": np.array([0, 1, 2, 3]), "x_train": np.zeros((6, 16), np.float32), "y_train": np.zeros(6, np.float64)},
         ["y_test: labels must lie in", "x_train: must be [T, N, ...]", "y_train: must hold integer"]),
    ],
)
def test_npz_bad_files(tmp_path, override, wants):
    path = tmp_path / "bad.npz"
    _write_npz(path, **override)
    cfg = run_config_from_dict({"data": {"kind": "npz", "path": "bad.npz", "classes": 3}}, source=tmp_path / "run.yaml")
    with pytest.raises(ConfigError) as info:
        cfg.load_data()
    assert info.value.source == str(path.resolve())
    assert len(info.value.problems) == len(wants), info.value.problems
    for want in wants:
        assert any(p.startswith(want) for p in info.value.problems), (want, info.value.problems)


def test_npz_unreadable_and_pickled(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file")
    cfg = run_config_from_dict({"data": {"kind": "npz", "path": str(path)}})
    with pytest.raises(ConfigError, match="not a readable .npz file"):
        cfg.load_data()
    obj = np.empty(6, dtype=object)
    obj[:] = [0, 1, 2, 0, 1, 2]
    _write_npz(path, y_train=obj)  # an object array is only saved pickled: refused on load
    with pytest.raises(ConfigError) as info:
        cfg.load_data()
    assert any(p.startswith("y_train: cannot be read without pickle") for p in info.value.problems)


def test_npz_labels_checked_against_the_network_outputs(tmp_path):
    _write_npz(tmp_path / "d.npz", y_test=np.array([0, 1, 2, 5]))
    net = [{"type": "Linear", "in_features": 16, "out_features": 4}, {"type": "IFNode"}]
    cfg = run_config_from_dict({"network": net, "data": {"kind": "npz", "path": "d.npz"}}, source=tmp_path / "run.yaml")
    with pytest.raises(ConfigError, match=r"network: 4 outputs \(classes\), but the data \(data.kind npz\) has label 5"):
        cfg.load_data()


# --------------------------------------------------------------------------- recurrent populations
RECURRENT = [
    {"type": "Linear", "in_features": 16, "out_features": 32, "bias": False},
    {"type": "RecurrentContainer", "features": 32,
     "sub_module": {"type": "LIFNode", "tau": 4.0, "decay_input": False, "v_reset": None}},
    {"type": "Linear", "in_features": 32, "out_features": 10, "bias": False},
    {"type": "LIFNode", "tau": 2.0, "decay_input": False, "v_reset": None},
]


def test_recurrent_population_builds_and_round_trips():
    cfg = run_config_from_dict({"network": RECURRENT})
    net = cfg.build_network()
    rc = net[1]
    assert isinstance(rc, layer.RecurrentContainer) and rc.features == 32 and rc.rc.bias is None
    assert isinstance(rc.sub_module, neuron.LIFNode) and rc.sub_module.tau == 4.0 and rc.sub_module.v_reset is None
    assert rc.step_mode == "m" and rc.sub_module.step_mode == "s"
    assert net(torch.ones(5, 3, 16)).shape == (5, 3, 10)
    assert run_config_from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["network"][1]["sub_module"] == RECURRENT[1]["sub_module"]


@pytest.mark.parametrize("sub,wants", [
    ({"type": "Linear", "in_features": 4, "out_features": 4}, "network[1].sub_module.type: a recurrent population wraps a neuron"),
    ({"type": "LIFNode", "taux": 2.0}, "network[1].sub_module.taux: unknown option of LIFNode (did you mean 'tau'?)"),
    ({"tau": 2.0}, "network[1].sub_module.type: missing"),
    ("LIFNode", "network[1].sub_module: expected a mapping"),
])
def test_recurrent_population_errors_name_the_nested_key(sub, wants):
    net = [dict(e) for e in RECURRENT]
    net[1]["sub_module"] = sub
    assert any(p.startswith(wants) for p in problems_of({"network": net})), problems_of({"network": net})


def test_recurrent_population_needs_features_and_sub_module():
    net = [dict(e) for e in RECURRENT]
    del net[1]["features"], net[1]["sub_module"]
    problems = problems_of({"network": net})
    assert any(p.startswith("network[1].features: missing") for p in problems)
    assert any(p.startswith("network[1].sub_module: missing") for p in problems)
