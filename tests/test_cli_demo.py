import json
import re
import subprocess
import sys

import pytest
import torch

from hwsnn import cli, functional
from hwsnn.data import temporal_patterns
from hwsnn.demo import DemoConfig, default_network, run_float_demo


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
    assert {"LIFNode", "SynapseFilter", "Dropout", "VotingLayer"} <= kinds
    y = net(torch.rand(5, 3, 16).bernoulli())
    assert y.shape == (5, 3, 10)
    functional.reset_net(net)


def test_float_demo_learns_beyond_chance():
    r = run_float_demo(DemoConfig(epochs=4, train_samples=2000, test_samples=300), progress=False)
    assert r.test_accuracy > 0.5  # 10 classes: chance is 0.1


def test_cli_run_prints_the_summary(capsys, tmp_path):
    """The main job at a tiny size, end to end: training, conversion, export, simulation, report."""
    out_dir = tmp_path / "out"
    argv = ["run", "--epochs", "1", "--train-samples", "128", "--test-samples", "16", "--no-progress", "--no-plots",
            "--out", str(out_dir)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "float accuracy (held-out)" in out and "%" in out
    assert re.search(r"bit-exact \(sim vs twin\)\s+yes", out), out
    assert re.search(r"integer accuracy \(sim, generic_int8\)\s+\d+\.\d %", out), out
    assert (out_dir / "export" / "manifest.json").is_file() and (out_dir / "export" / "examples.npz").is_file()
    report = json.loads((out_dir / "report" / "report.json").read_text())
    assert report["bit_exact"] is True
    assert (out_dir / "report" / "report.md").read_text().count("BIT-EXACT: yes") == 1


def test_cli_rejects_bad_flags():
    proc = subprocess.run([sys.executable, "-m", "hwsnn", "run", "--epochs", "0"], capture_output=True, text=True)
    assert proc.returncode == 2 and "--epochs" in proc.stderr
