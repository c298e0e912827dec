"""`hwsnn export / simulate / report` on the command line."""

from __future__ import annotations

import json
import re

import numpy as np
import torch

import quant
from hwsnn import cli
from tests.test_fixed_network import convert, float_net, spikes


def exported(tmp_path):
    twin = convert(float_net(0), "generic_int8", 0)
    twin.eval()
    x = spikes(2, T=15, batch=6)
    y = torch.arange(6) % 10
    return quant.export(twin, tmp_path / "exp", examples={"inputs": x, "labels": y}), x, y


def test_simulate_prints_costs_and_saves_arrays(tmp_path, capsys):
    path, x, y = exported(tmp_path)
    out = tmp_path / "res.npz"
    assert cli.main(["simulate", str(path), "--no-progress", "--record", "layers", "--save", str(out)]) == 0
    text = capsys.readouterr().out
    for field in ("cycles per step", "energy per inference", "real-time factor", "fits the target", "accuracy"):
        assert field in text
    with np.load(out, allow_pickle=False) as z:
        assert z["output"].shape == (15, 6, 10) and "fc1/output" in z.files
    np.save(tmp_path / "x.npy", x.numpy()[:, :2])
    assert cli.main(["simulate", str(path), "--inputs", str(tmp_path / "x.npy"), "--no-progress"]) == 0
    assert "15 x 2" in capsys.readouterr().out


def test_report_rebuilds_the_twin_and_says_bit_exact(tmp_path, capsys):
    path, _, _ = exported(tmp_path)
    rep_dir = tmp_path / "rep"
    assert cli.main(["report", str(path), "--out", str(rep_dir), "--no-plots", "--no-progress"]) == 0
    assert re.search(r"BIT-EXACT: yes", capsys.readouterr().out)
    assert json.loads((rep_dir / "report.json").read_text())["bit_exact"] is True


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert cli.main(["simulate", str(tmp_path / "nope"), "--no-progress"]) == 2
    assert "nope: does not exist" in capsys.readouterr().err
    path, _, _ = exported(tmp_path)
    np.save(tmp_path / "bad.npy", np.zeros((3, 2, 5), np.int8))
    assert cli.main(["simulate", str(path), "--inputs", str(tmp_path / "bad.npy"), "--no-progress"]) == 2
    assert "inputs must have shape [T, N, 16]" in capsys.readouterr().err
    assert cli.main(["run", "--target", "no_such_chip", "--no-progress"]) == 2
    assert "no_such_chip" in capsys.readouterr().err
