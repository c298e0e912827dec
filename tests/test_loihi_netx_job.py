"""A trained network reaches netx: the run file examples/loihi_netx.yaml on the target loihi_netx
(loihi with the weight shift fixed at 0) is trained, exported with its netx view, read back with
``quant.from_netx`` and run: the imported twins give the exported network's outputs bit for bit on
the exported test vectors (and so does the simulator on the export)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

from hwsnn import cli  # noqa: E402
import quant  # noqa: E402
import sim  # noqa: E402
import targets  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "loihi_netx.yaml"


def test_loihi_netx_is_loihi_with_shift_zero():
    a, b = targets.load("loihi"), targets.load("loihi_netx")
    assert (b.synapse.weight_shift_min, b.synapse.weight_shift_max) == (0, 0)
    da, db = dataclasses.asdict(a), dataclasses.asdict(b)
    for d in (da, db):
        d.pop("name"), d.pop("description")
        d["synapse"].pop("weight_shift_min"), d["synapse"].pop("weight_shift_max")
    assert da == db  # the same chip semantics otherwise


def test_trained_network_goes_to_netx_and_back_bit_exact(tmp_path, capsys):
    out = tmp_path / "export"
    status = cli.main(["export", str(out), "--config", str(EXAMPLE), "--epochs", "1", "--qat-epochs", "1",
                       "--train-samples", "128", "--test-samples", "16", "--no-progress", "--format", "netx"])
    text = capsys.readouterr().out
    assert status == cli.EXIT_OK, text
    bundle = quant.load_export(out)
    assert all(op.weight_shift == 0 for op in bundle.ops if op.kind == "dense")
    assert "netx.h5" in bundle.manifest["views"]["netx"]["files"]
    imported = quant.from_netx(out / "netx.h5")
    x = bundle.examples()["inputs"]
    with torch.no_grad():
        got = imported.twin(torch.from_numpy(np.asarray(x))).numpy()
    ref = sim.run(out, np.asarray(x)).output
    assert got.shape == ref.shape and np.array_equal(got, ref)
    assert int(np.abs(ref).sum()) > 0  # the readout spiked somewhere: the comparison saw spikes
