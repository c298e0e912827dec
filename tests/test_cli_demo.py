import json
import re
import subprocess
import sys

import pytest

import quant
import torch

from hwsnn import cli, functional
from hwsnn.data import temporal_patterns
from hwsnn.demo import default_network


def test_temporal_patterns_shapes_determinism_and_split():
    x, y = temporal_patterns(50, T=12, channels=5, classes=3, seed=4)
    assert x.shape == (12, 50, 5) and y.shape == (50,)
    assert set(x.unique().tolist()) <= {0.0, 1.0} and y.min() >= 0 and y.max() < 3
    x2, y2 = temporal_patterns(50, T=12, channels=5, classes=3, seed=4)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = temporal_patterns(50, T=12, channels=5, classes=3, seed=4, sample_seed=99)
    assert not torch.equal(x, x3)


def test_temporal_patterns_without_noise_reproduces_the_templates():
    x, y = temporal_patterns(40, T=10, channels=6, classes=2, jitter=0, drop=0.0, noise=0.0, seed=1)
    for c in (0, 1):
        members = x[:, y == c]
        assert torch.equal(members, members[:, :1].expand_as(members))  # all samples equal their template


def test_temporal_patterns_classes_differ_only_in_timing():
    x, y = temporal_patterns(200, T=20, channels=8, classes=3, jitter=0, drop=0.0, noise=0.0, seed=2)
    counts = x.sum(0)  # spikes per channel per sample
    assert torch.all(counts == counts[0, 0])  # the same rate everywhere
    assert not torch.equal(x[:, y == 0][:, 0], x[:, y == 1][:, 0])  # but other timing


@pytest.mark.parametrize("kw", [dict(n_samples=0), dict(classes=1), dict(drop=1.5), dict(T=2.0)])
def test_temporal_patterns_bad_arguments(kw):
    args = dict(n_samples=10)
    args.update(kw)
    with pytest.raises(ValueError):
        temporal_patterns(**args)


def test_default_network_output_shape_and_layers():
    net = default_network()
    kinds = {type(m).__name__ for m in net}
    assert {"LIFNode", "SynapseFilter", "Delay", "Dropout", "VotingLayer"} <= kinds
    y = net(torch.rand(5, 3, 16).bernoulli())
    assert y.shape == (5, 3, 10)
    functional.reset_net(net)


TINY = ["--epochs", "1", "--qat-epochs", "1", "--train-samples", "128", "--test-samples", "24", "--no-progress"]


def _summary(out: str) -> dict[str, str]:
    rows = {}
    for line in out.splitlines():
        m = re.match(r"  (\S.*?)\s{2,}(\S.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


@pytest.mark.parametrize("target", ["generic_int8", "xylo", "xylo_audio3", "xylo_imu", "loihi"])
def test_cli_run_prints_the_summary(capsys, tmp_path, target):
    """The main job at a tiny size, end to end: float training, calibration + QAT, conversion,
    export, simulation, report; the QAT accuracy is the simulator's (the QAT forward is the twin's).
    On every Xylo variant the default network fits (exit 0): CUBA neurons, the output code over 8
    readouts, decoded off the chip."""
    out_dir = tmp_path / "out"
    status = cli.main(["run", *TINY, "--no-plots", "--target", target, "--out", str(out_dir)])
    out = capsys.readouterr().out
    assert status == cli.EXIT_OK, out
    rows = _summary(out)
    assert rows["fits the target"] == "yes", out
    assert rows["bit-exact (digest, twin, reference)"] == "yes", out
    assert re.fullmatch(r"\d+\.\d %", rows["float accuracy (held-out)"]), out
    qat, sim_acc = rows[f"QAT accuracy ({target})"], rows[f"integer accuracy (sim, {target})"]
    assert re.fullmatch(r"\d+\.\d %", qat) and qat == sim_acc, out
    assert "calibration:" in out and "tau used" in out  # the per-layer conversion table
    assert (out_dir / "export" / "manifest.json").is_file() and (out_dir / "export" / "examples.npz").is_file()
    report = json.loads((out_dir / "report" / "report.json").read_text())
    assert report["bit_exact"] is True and report["fit"]["fits"] is True
    if target.startswith("xylo"):  # the decoder: in the summary, the report and the fit (off the chip)
        assert "nearest codeword" in rows["decoder"] and "off the chip" in rows["decoder"], out
        layers = json.loads((out_dir / "export" / "manifest.json").read_text())["layers"]
        code = layers[-1]["name"]
        assert layers[-1]["op"] == "output_code" and {e["op"] for e in layers[:-1]} <= {"dense", "cuba", "dropout"}
        assert report["fit"]["off_chip"] == [{"layer": code, "op": "output_code"}]
        assert report["decoder"]["classes"] == 10 and report["decoder"]["readouts"] == 8
        assert f"| decoder | output code {code}: 10 classes on 8 readouts" in (out_dir / "report" / "report.md").read_text()
    else:
        assert "decoder" not in rows and report["decoder"] is None
    assert report["bundle_digest"] == rows["bundle digest"] == quant.load_export(out_dir / "export").digest
    assert (out_dir / "report" / "report.md").read_text().count("BIT-EXACT: yes") == 1


def test_cli_export_twice_with_one_seed_gives_byte_identical_tables(tmp_path):
    for name in ("a", "b"):
        assert cli.main(["export", str(tmp_path / name), *TINY, "--seed", "3"]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert "tables.npz" in {p.name for p in files}
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_cli_run_with_a_config_file(capsys, tmp_path):
    """A user's own network and data (spike patterns) from a run file; flags override its keys."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        "seed: 2\ntarget: generic_int8\n"
        "data: {kind: temporal_patterns, T: 12, channels: 8, classes: 4, train_samples: 64, test_samples: 16}\n"
        "network:\n"
        "  - {type: Linear, in_features: 8, out_features: 16, bias: false}\n"
        "  - {type: CubaLIFNode, tau_syn: 4.0, tau_mem: 4.0}\n"
        "  - {type: Linear, in_features: 16, out_features: 8, bias: false}\n"
        "  - {type: LIFNode, tau: 2.0, decay_input: false}\n"
        "  - {type: VotingLayer, voting_size: 2}\n"
        "training: {epochs: 3, qat_epochs: 1}\n"
    )
    out_dir = tmp_path / "o"
    assert cli.main(["run", "--config", str(cfg), "--epochs", "1", "--no-progress", "--no-plots", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "float training: 1 epochs" in out and "cubalifnode1" in out
    assert _summary(out)["bit-exact (digest, twin, reference)"] == "yes"
    manifest = json.loads((out_dir / "export" / "manifest.json").read_text())
    assert [e["op"] for e in manifest["layers"]][:2] == ["dense", "cuba"]


def test_cli_reports_config_and_target_problems(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training: {epochs: 0}\nnetwork:\n  - {type: LIFnode}\n")
    assert cli.main(["run", "--config", str(bad), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "training.epochs" in err and "network[0].type" in err
    assert cli.main(["run", "--target", "nonexistent_chip", "--no-progress"]) == 2
    assert "nonexistent_chip" in capsys.readouterr().err


def test_cli_rejects_bad_flags():
    for flags in (["--epochs", "0"], ["--qat-epochs", "-1"]):
        proc = subprocess.run([sys.executable, "-m", "hwsnn", "run", *flags], capture_output=True, text=True)
        assert proc.returncode == 2 and flags[0] in proc.stderr


@pytest.mark.parametrize("target", ["generic_int8", "xylo"])
def test_cli_run_with_a_recurrent_population(capsys, tmp_path, target):
    """A run file with a RecurrentContainer: trained, QAT, converted, exported as op 'recurrent',
    simulated bit-exactly (on Xylo through the per-event recurrent path)."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"seed: 1\ntarget: {target}\n"
        "data: {kind: temporal_patterns, T: 12, channels: 8, classes: 4, train_samples: 64, test_samples: 16}\n"
        "network:\n"
        "  - {type: Linear, in_features: 8, out_features: 24, bias: false}\n"
        "  - {type: RecurrentContainer, features: 24, sub_module: {type: LIFNode, tau: 4.0, decay_input: false, v_reset: null}}\n"
        "  - {type: Linear, in_features: 24, out_features: 8, bias: false}\n"
        "  - {type: LIFNode, tau: 2.0, decay_input: false, v_reset: null}\n"
        "  - {type: VotingLayer, voting_size: 2}\n"
        "training: {epochs: 1, qat_epochs: 1}\n"
    )
    out_dir = tmp_path / "o"
    status = cli.main(["run", "--config", str(cfg), "--no-progress", "--no-plots", "--out", str(out_dir)])
    out, err = capsys.readouterr()
    if target == "xylo":  # LIF neurons do not exist on Xylo: refused before training, naming the layer
        assert status == cli.EXIT_BAD_INPUT and "float training" not in out, out
        assert "cannot run on one Xylo core" in err and "use CubaLIFNode" in err
        return
    assert status == cli.EXIT_OK, out
    summary = _summary(out)
    assert summary["bit-exact (digest, twin, reference)"] == "yes"
    assert summary[f"QAT accuracy ({target})"] == summary[f"integer accuracy (sim, {target})"]
    manifest = json.loads((out_dir / "export" / "manifest.json").read_text())
    assert [e["op"] for e in manifest["layers"]][:2] == ["dense", "recurrent"]


@pytest.mark.parametrize("target,epochs", [("xylo_imu", 6), ("generic_int8", 3)])
def test_cli_run_uses_the_targets_qat_defaults(capsys, tmp_path, target, epochs):
    """Without --qat-epochs the QAT stage runs the target's default (6 epochs on Xylo, 3 elsewhere)."""
    status = cli.main(["run", "--epochs", "1", "--train-samples", "32", "--test-samples", "8", "--no-progress",
                       "--no-plots", "--target", target, "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert status == cli.EXIT_OK, out
    assert f"QAT on {target}: {epochs} epochs, final loss" in out
