"""`hwsnn formats`, `hwsnn export --model FILE.nir --format nir` and the CLI's refusals of NIR models
(needs nir; skipped without it)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

import hwsnn.nir as hn  # noqa: E402
import quant  # noqa: E402
from hwsnn import cli, functional, layer, neuron  # noqa: E402
from targets.bundle import load_bundle  # noqa: E402

SMALL = ["--qat-epochs", "1", "--train-samples", "48", "--test-samples", "16", "--no-progress"]


def _model(tmp_path, n_in: int = 16, n_out: int = 10):
    torch.manual_seed(1)
    net = torch.nn.Sequential(layer.Linear(n_in, 20, bias=False), neuron.LIFNode(tau=4.0, decay_input=False, v_reset=0.0),
                              layer.Linear(20, n_out, bias=False), neuron.LIFNode(tau=2.0, decay_input=False, v_reset=0.0))
    functional.set_step_mode(net, "m")
    path = tmp_path / "model.nir"
    hn.export_to_nir(net, dt=1e-3, path=path)
    return path


def test_formats_lists_nir(capsys):
    assert cli.main(["formats"]) == cli.EXIT_OK
    assert any(line.startswith("nir ") for line in capsys.readouterr().out.splitlines())


def test_export_with_the_nir_view(tmp_path, capsys):
    out = tmp_path / "export"
    status = cli.main(["export", str(out), "--model", str(_model(tmp_path)), "--target", "generic_int8", "--format", "nir",
                       *SMALL])
    text = capsys.readouterr().out
    assert status == cli.EXIT_OK, text
    assert "view nir: model.nir" in text
    bundle = load_bundle(out, deep=True)  # model.nir is covered by the digest
    assert bundle.manifest["views"]["nir"]["files"] == ["model.nir"] and bundle.digest in text
    assert bundle.network.dt == pytest.approx(1e-3)  # the model's dt, from its metadata
    twin = quant.load_twin(out)
    back = hn.twin_from_nir(out / "model.nir")
    x = (torch.rand(30, 4, 16, generator=torch.Generator().manual_seed(2)) < 0.3).to(torch.int8)
    functional.reset_net(twin)
    assert torch.equal(back(x), twin(x))
    graph_meta = json.loads(nir.read(out / "model.nir").metadata["hwsnn"])
    assert graph_meta["target_name"] == "generic_int8" and graph_meta["dt"] == pytest.approx(1e-3)


def test_nir_model_refusals(tmp_path, capsys):
    model = _model(tmp_path)
    assert cli.main(["run", "--dt", "1e-3", "--no-progress"]) == cli.EXIT_BAD_INPUT
    assert "--dt and --reset describe a NIR model" in capsys.readouterr().err
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"junk")
    assert cli.main(["run", "--model", str(bad), "--no-progress", "--out", str(tmp_path / "o1")]) == cli.EXIT_BAD_INPUT
    assert "bad.nir: cannot be read as a NIR graph" in capsys.readouterr().err
    g = nir.read(model)
    g.nodes["1"] = nir.I(r=np.ones(20))
    odd = tmp_path / "odd.nir"
    nir.write(odd, g)
    assert cli.main(["run", "--model", str(odd), "--no-progress", "--out", str(tmp_path / "o2")]) == cli.EXIT_BAD_INPUT
    assert "node '1': NIR node type I has no hwsnn import" in capsys.readouterr().err
    (tmp_path / "w").mkdir()
    wide = _model(tmp_path / "w", n_in=12)  # the digits data have 16 inputs
    status = cli.main(["run", "--model", str(wide), "--no-progress", "--out", str(tmp_path / "o3")])
    assert status == cli.EXIT_BAD_INPUT
    assert "model: it does not take the data's input of shape [16]" in capsys.readouterr().err
    assert not (tmp_path / "o3").exists()
    assert cli.main(["export", str(tmp_path / "e"), "--format", "nope", "--no-progress"]) == cli.EXIT_BAD_INPUT
    assert "--format nope: unknown export format 'nope'; known: " in capsys.readouterr().err
