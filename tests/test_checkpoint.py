"""Checkpoints beside the export (quant.checkpoint), ``hwsnn run --resume``, and ``--device``."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
import torch

from hwsnn import cli
from hwsnn.config import RunConfig, run_config_from_dict
from hwsnn.device import DeviceError, resolve_device
from quant.checkpoint import (CheckpointError, differences, float_fingerprint, load_checkpoint, qat_fingerprint,
                              save_checkpoint, state_digest)

TINY = ["--epochs", "1", "--qat-epochs", "1", "--train-samples", "64", "--test-samples", "16", "--no-progress",
        "--no-plots", "--device", "cpu"]


def _config(**changes) -> RunConfig:
    d = RunConfig().to_dict()
    for key, value in changes.items():
        section, _, name = key.rpartition(".")
        (d[section] if section else d)[name] = value
    return run_config_from_dict(d)


def _fp(config: RunConfig) -> dict:
    return float_fingerprint(config, config.build_network(config.target), config.target)


# ------------------------------------------------------------------------------------ files
def test_save_and_load_round_trip_weights_only(tmp_path):
    cfg = _config()
    net = cfg.build_network()
    fp = _fp(cfg)
    path = save_checkpoint(tmp_path / "ck" / "float.pt", "float", net, fp, info={"world_size": 2})
    assert [p.name for p in path.parent.iterdir()] == ["float.pt"]  # the temporary file is gone
    raw = torch.load(path, weights_only=True)  # plain data only
    assert raw["stage"] == "float" and raw["info"] == {"world_size": 2}
    data = load_checkpoint(path, "float", fp)
    for k, v in net.state_dict().items():
        assert torch.equal(data["state_dict"][k], v)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    net = _config().build_network()
    path = save_checkpoint(tmp_path / "float.pt", "float", net, {"a": 1})
    before = path.read_bytes()

    def broken(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, "float", net, {"a": 2})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["float.pt"]


class Evil:
    def __reduce__(self):
        return (print, ("unpickled arbitrary code",))


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint at all", "cannot be read"),
    (pickle.dumps(Evil(), protocol=2), "cannot be read"),  # weights_only refuses arbitrary objects
])
def test_unreadable_files_are_refused_with_their_path(tmp_path, content, message):
    path = tmp_path / "qat.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value)


def test_foreign_or_wrong_stage_files_are_refused(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="not an hwsnn checkpoint"):
        load_checkpoint(tmp_path / "a.pt")
    path = save_checkpoint(tmp_path / "b.pt", "float", _config().build_network(), {})
    with pytest.raises(CheckpointError, match="holds the 'float' stage, expected 'qat'"):
        load_checkpoint(path, "qat")
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(tmp_path / "missing.pt")


# ------------------------------------------------------------------------------------ fingerprints
@pytest.mark.parametrize("changes, fields", [
    ({"training.epochs": 2}, ["training.epochs"]),
    ({"training.lr": 0.5, "seed": 3}, ["training.lr", "seed"]),
    ({"data.train_samples": 10}, ["data.train_samples"]),
    ({"target": "loihi"}, ["target", "network.modules[1]"]),  # the reset the target allows changes the neurons
])
def test_fingerprint_differences_name_every_changed_field(changes, fields):
    base = _fp(_config())
    diff = differences(base, _fp(_config(**changes)))
    named = sorted({line.split(":")[0] for line in diff})
    for f in fields:
        assert any(n == f for n in named), (f, diff)
    assert differences(base, _fp(_config())) == []
    assert differences(base, _fp(_config(out="elsewhere"))) == []  # where the outputs go is not a difference


def test_network_changes_are_named_by_layer():
    d = RunConfig().to_dict()
    d["data"] = {"kind": "temporal_patterns", "T": 6, "channels": 4, "classes": 2, "train_samples": 8, "test_samples": 4}
    d["network"] = [{"type": "Linear", "in_features": 4, "out_features": 8, "bias": False},
                    {"type": "LIFNode", "tau": 2.0, "decay_input": False}, {"type": "Linear", "in_features": 8,
                                                                            "out_features": 2, "bias": False},
                    {"type": "IFNode"}]
    a = run_config_from_dict(d)
    d["network"][0]["out_features"] = d["network"][2]["in_features"] = 16
    b = run_config_from_dict(d)
    diff = "\n".join(differences(_fp(a), _fp(b)))
    assert "network.run file[0].out_features: checkpoint 8, this run 16" in diff
    assert "network.parameters.0.weight: checkpoint [8, 4], this run [16, 4]" in diff


def test_qat_fingerprint_holds_the_float_weights_and_qat_settings():
    cfg = _config()
    net = cfg.build_network()
    fp = qat_fingerprint(_fp(cfg), cfg, state_digest(net))
    with torch.no_grad():
        net[0].weight[0, 0] += 1e-6
    other = qat_fingerprint(_fp(cfg), _config(**{"training.qat_lr": 0.1}), state_digest(net))
    named = {line.split(":")[0] for line in differences(fp, other)}
    assert named == {"float weights", "training.qat_lr"}


# ------------------------------------------------------------------------------------ resume
def _bundle(path):
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_resume_skips_training_and_gives_the_same_bundle(tmp_path, capsys, monkeypatch):
    out = tmp_path / "o"
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    first = _bundle(out / "export")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["float.pt", "qat.pt"]
    capsys.readouterr()

    import hwsnn.demo

    def no_training(*args, **kwargs):
        raise AssertionError("trained although the checkpoints match")

    with monkeypatch.context() as m:
        m.setattr(hwsnn.demo, "train", no_training)
        assert cli.main(["run", *TINY, "--out", str(out), "--resume"]) == 0
    text = capsys.readouterr().out
    assert text.count("resumed from") == 2 and "trained on cpu, world_size 1" in text
    assert _bundle(out / "export") == first

    # without the QAT checkpoint: QAT runs again from the float checkpoint, to the same bundle
    (out / "checkpoints" / "qat.pt").unlink()
    assert cli.main(["run", *TINY, "--out", str(out), "--resume"]) == 0
    assert capsys.readouterr().out.count("resumed from") == 1
    assert _bundle(out / "export") == first


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path, capsys):
    out = tmp_path / "o"
    assert cli.main(["run", *TINY, "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["run", *TINY, "--out", str(out), "--resume", "--epochs", "2", "--seed", "1"]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "float.pt was made for another run" in err
    assert "training.epochs: checkpoint 1, this run 2" in err and "seed: checkpoint 0, this run 1" in err
    (out / "checkpoints" / "qat.pt").write_bytes(b"damaged")
    assert cli.main(["run", *TINY, "--out", str(out), "--resume"]) == cli.EXIT_BAD_INPUT
    assert f"checkpoint {out / 'checkpoints' / 'qat.pt'}: cannot be read" in capsys.readouterr().err


def test_export_with_a_checkpoint_directory_resumes_too(tmp_path, capsys):
    ck = tmp_path / "ck"
    flags = [f for f in TINY if f != "--no-plots"]
    assert cli.main(["export", str(tmp_path / "a"), *flags, "--checkpoints", str(ck)]) == 0
    assert cli.main(["export", str(tmp_path / "b"), *flags, "--checkpoints", str(ck), "--resume"]) == 0
    assert capsys.readouterr().out.count("resumed from") == 2
    assert _bundle(tmp_path / "a") == _bundle(tmp_path / "b")
    assert cli.main(["export", str(tmp_path / "c"), *flags, "--resume"]) == cli.EXIT_BAD_INPUT
    assert "--resume needs a checkpoint directory" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_bundle_of_a_cuda_trained_network_equals_the_bundle_of_its_weights_on_cpu(tmp_path):
    out = tmp_path / "o"
    assert cli.main(["run", *TINY[:-2], "--device", "cuda", "--out", str(out)]) in (0, 4)
    first = _bundle(out / "export")
    assert cli.main(["run", *TINY, "--out", str(out), "--resume"]) in (0, 4)  # the same weights, on CPU
    assert _bundle(out / "export") == first


# ------------------------------------------------------------------------------------ devices
def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(DeviceError, match="--device cuda: no CUDA device is available"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto", local_rank=0) == torch.device("cuda", 0)
    with pytest.raises(DeviceError, match="local rank 1, but the node has 1 GPU"):
        resolve_device("cuda", local_rank=1)
    with pytest.raises(DeviceError, match="expected one of"):
        resolve_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cli_device_cuda_without_a_gpu_is_bad_input(capsys, tmp_path):
    assert cli.main(["run", *TINY[:-2], "--device", "cuda", "--out", str(tmp_path / "o")]) == cli.EXIT_BAD_INPUT
    assert "--device cuda: no CUDA device is available" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_fingerprint_ignores_where_the_outputs_go():
    a, b = _config(), dataclasses.replace(_config(), out="x")
    assert differences(_fp(a), _fp(b)) == []
