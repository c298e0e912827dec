"""Every bad input gets its named error and documented exit status, before any training starts;
no user input ends in a traceback; an internal error never shares its status with "not bit-exact"."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import quant
from hwsnn import cli
from tests.bundle_tools import resign
from tests.test_fixed_network import convert, float_net, spikes

TINY = ["--epochs", "1", "--qat-epochs", "0", "--train-samples", "32", "--test-samples", "8", "--no-progress", "--no-plots"]


def _run(capsys, *argv):
    status = cli.main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def _npz(path, x_train, y_train, x_test, y_test):
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def _config(tmp_path, data: str, network: str = None, target: str = "generic_int8") -> str:
    network = network or (
        "  - {type: Linear, in_features: 4, out_features: 6, bias: false}\n"
        "  - {type: LIFNode, tau: 2.0, decay_input: false, v_reset: null}\n")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"target: {target}\ndata: {data}\nnetwork:\n{network}training: {{epochs: 1, qat_epochs: 0}}\n")
    return str(cfg)


def _good_arrays(gen, t=6, n=10, c=4, classes=6):
    x = (gen.random((t, n, c)) < 0.4).astype(np.float32)
    return x, gen.integers(0, classes, n), x.copy(), gen.integers(0, classes, n)


# -- before training: paths, data, conversion, target ------------------------------------------------
def test_bad_paths_are_refused_before_training(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    status, out, err = _run(capsys, "run", *TINY, "--out", str(tmp_path / "afile" / "sub"))
    assert status == cli.EXIT_BAD_INPUT and "is a file, not a directory" in err and "float training" not in out
    # an export directory that is not a bundle is never replaced
    mine = tmp_path / "o" / "export"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("precious")
    status, out, err = _run(capsys, "run", *TINY, "--out", str(tmp_path / "o"))
    assert status == cli.EXIT_BAD_INPUT and "not an hwsnn export; refusing to replace it" in err
    assert "float training" not in out and (mine / "notes.txt").read_text() == "precious"
    # a report directory holding something else
    (tmp_path / "p" / "report").mkdir(parents=True)
    (tmp_path / "p" / "report" / "x.png").write_bytes(b"1")
    status, out, err = _run(capsys, "run", *TINY, "--out", str(tmp_path / "p"))
    assert status == cli.EXIT_BAD_INPUT and "holds no hwsnn report" in err and "float training" not in out


def test_an_existing_export_without_overwrite_is_refused_before_training(tmp_path, capsys):
    twin = convert(float_net(0), "generic_int8", 0)
    quant.export(twin, tmp_path / "exp")
    status, out, err = _run(capsys, "export", str(tmp_path / "exp"), *TINY[:-1])
    assert status == cli.EXIT_BAD_INPUT and "exists; pass overwrite=True (CLI: --overwrite)" in err
    assert "float training" not in out


@pytest.mark.parametrize("case,match", [
    ("half", "off the grid"),
    ("negative", "off the grid"),
    ("nan", "NaN or infinite"),
    ("labels_range", r"labels must lie in \[0, 6\)"),
    ("labels_length", "10 samples in x_train .* but 9 labels"),
    ("labels_float", "must hold integer class labels"),
])
def test_bad_data_arrays_are_refused_before_training(tmp_path, capsys, case, match):
    gen = np.random.default_rng(0)
    x, y, xt, yt = _good_arrays(gen)
    if case == "half":
        x[2, 3, 1] = 0.5
    elif case == "negative":
        x[0, 0, 0] = -1
    elif case == "nan":
        x[1, 1, 1] = np.nan
    elif case == "labels_range":
        y[4] = 7
    elif case == "labels_length":
        y = y[:9]
    elif case == "labels_float":
        y = y.astype(np.float64)
    _npz(tmp_path / "d.npz", x, y, xt, yt)
    data = f"{{kind: npz, path: {tmp_path / 'd.npz'}, classes: 6}}"
    status, out, err = _run(capsys, "run", "--config", _config(tmp_path, data), "--no-progress", "--no-plots",
                            "--out", str(tmp_path / "o"))
    assert status == cli.EXIT_BAD_INPUT, (out, err)
    assert pytest.importorskip("re").search(match, err), err
    assert "float training" not in out and "Traceback" not in err


def test_a_network_the_chip_cannot_run_is_refused_before_training(tmp_path, capsys):
    gen = np.random.default_rng(1)
    _npz(tmp_path / "d.npz", *_good_arrays(gen))
    data = f"{{kind: npz, path: {tmp_path / 'd.npz'}, classes: 6}}"
    network = ("  - {type: Linear, in_features: 4, out_features: 6, bias: false}\n"
               "  - {type: IFNode, v_reset: null}\n")  # Xylo has no leak-free membrane
    status, out, err = _run(capsys, "run", "--config", _config(tmp_path, data, network, "xylo"), "--no-progress",
                            "--no-plots", "--out", str(tmp_path / "o"))
    assert status == cli.EXIT_BAD_INPUT and "leak-free membrane" in err, err
    assert "float training" not in out


def test_duplicate_keys_in_run_files_and_targets_are_refused(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("seed: 1\ntraining: {epochs: 2}\nseed: 2\n")
    status, out, err = _run(capsys, "run", "--config", str(cfg), "--no-progress")
    assert status == cli.EXIT_BAD_INPUT and "line 3, column 1: duplicate key 'seed' (first on line 1)" in err
    assert str(cfg) in err
    import targets

    text = (targets.target_dir() / "generic_int8.yaml").read_text()
    tgt = tmp_path / "chip.yaml"
    tgt.write_text(text.replace("max_delay: 63", "max_delay: 63\n  max_delay: 7"))
    status, out, err = _run(capsys, "run", *TINY, "--target", str(tgt))
    assert status == cli.EXIT_BAD_INPUT and "duplicate key 'max_delay'" in err and str(tgt) in err
    status, out, err = _run(capsys, "targets", "validate", str(tgt))
    assert status == 1 and "duplicate key 'max_delay'" in err


# -- simulate / report inputs ---------------------------------------------------------------------------
@pytest.fixture
def bundle(tmp_path):
    twin = convert(float_net(0), "generic_int8", 0)
    twin.eval()
    x = spikes(2, T=10, batch=4)
    return quant.export(twin, tmp_path / "exp", examples={"inputs": x, "labels": np.arange(4)}), x


@pytest.mark.parametrize("command", ["simulate", "report"])
def test_bad_inputs_to_simulate_and_report(bundle, tmp_path, capsys, command):
    path, x = bundle
    extra = ["--no-progress"] + (["--no-plots", "--out", str(tmp_path / "r")] if command == "report" else [])
    cases = {
        "nan": (np.where(np.arange(x.numel()).reshape(x.shape) == 5, np.nan, x.numpy()).astype(np.float32),
                "holds 1 NaN or infinite value"),
        "half": (x.numpy().astype(np.float64) * 0.5, r"not integers, the first 0.5 at index"),
        "shape": (x.numpy()[..., :3], r"inputs must have shape \[T, N, 16\]"),
        "range": (x.numpy() * 2, "the export takes 0/1 spikes"),
        "object": (np.array([None, 1], dtype=object), "cannot be read without pickle"),
    }
    for name, (arr, match) in cases.items():
        f = tmp_path / f"{name}.npy"
        np.save(f, arr, allow_pickle=True)
        status, out, err = _run(capsys, command, str(path), "--inputs", str(f), *extra)
        assert status == cli.EXIT_BAD_INPUT, (name, out, err)
        assert pytest.importorskip("re").search(match, err), (name, err)
        assert "Traceback" not in err
    # exact integers in a float array are accepted (never truncated: they are integers)
    np.save(tmp_path / "ok.npy", x.numpy().astype(np.float32))
    assert cli.main([command, str(path), "--inputs", str(tmp_path / "ok.npy"), *extra]) == 0
    capsys.readouterr()
    # labels: length and range
    np.save(tmp_path / "y3.npy", np.arange(3))
    status, _, err = _run(capsys, command, str(path), "--labels", str(tmp_path / "y3.npy"), *extra)
    assert status == cli.EXIT_BAD_INPUT and "one label per sample is needed, shape [4]; got [3]" in err
    np.save(tmp_path / "y10.npy", np.array([0, 1, 2, 10]))
    status, _, err = _run(capsys, command, str(path), "--labels", str(tmp_path / "y10.npy"), *extra)
    assert status == cli.EXIT_BAD_INPUT and r"labels must lie in [0, 9]" in err
    status, _, err = _run(capsys, command, str(path), "--inputs", str(tmp_path / "missing.npy"), *extra)
    assert status == cli.EXIT_BAD_INPUT and "file not found" in err


def test_not_a_bundle_is_bad_input_and_a_tampered_one_status_3(bundle, tmp_path, capsys):
    path, _ = bundle
    for cmd in ("verify", "simulate", "report"):
        status, _, err = _run(capsys, cmd, str(tmp_path / "nope"), *(["--no-progress"] if cmd != "verify" else []))
        assert status == cli.EXIT_BAD_INPUT and "does not exist" in err
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    resign(bad, lambda m: m["layers"][0]["params"].update(weight_shift=99))
    status, _, err = _run(capsys, "verify", str(bad))
    assert status == cli.EXIT_BUNDLE and "layers[0]" in err and "weight_shift" in err


def test_an_internal_error_has_its_own_status(bundle, capsys, monkeypatch):
    path, _ = bundle
    import sim

    def broken(*a, **kw):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(sim, "run", broken)
    status, _, err = _run(capsys, "simulate", str(path), "--no-progress")
    assert status == cli.EXIT_INTERNAL and "internal error (a bug in hwsnn" in err and "simulated bug" in err
    assert cli.EXIT_INTERNAL not in (cli.EXIT_PROOF_FAILED, cli.EXIT_BAD_INPUT, cli.EXIT_BUNDLE)


def test_report_does_not_overwrite_the_report_of_hwsnn_run(bundle, tmp_path, capsys):
    path, x = bundle
    twin = quant.load_twin(path)
    from quant.report import make_report

    run_report = path.parent / "report"
    make_report(twin, path, x, out_dir=run_report, plots=False, producer="hwsnn run")
    before = (run_report / "report.json").read_bytes()
    assert cli.main(["report", str(path), "--no-plots", "--no-progress"]) == 0
    assert "report-check" in capsys.readouterr().out
    assert (run_report / "report.json").read_bytes() == before
    assert json.loads((path.parent / "report-check" / "report.json").read_text())["producer"] == "hwsnn report"
    # a stale run report (another bundle) is replaced by the default, and said to be stale first
    resign(path, lambda m: m.update(dt=0.002))
    assert cli.main(["simulate", str(path), "--no-progress"]) == 0
    assert "is stale" in capsys.readouterr().err
    assert cli.main(["report", str(path), "--no-plots", "--no-progress"]) == 0
    assert json.loads((run_report / "report.json").read_text())["bundle_digest"] == quant.load_export(path).digest


# -- vendor views asked for with --format: tried on the untrained network before training -------------
_CUBA = ("  - {type: Linear, in_features: 4, out_features: 6, bias: false}\n"
         "  - {type: CubaLIFNode, tau_syn: 2.0, tau_mem: 2.0, v_reset: null}\n"
         "  - {type: Linear, in_features: 6, out_features: 6, bias: false}\n"
         "  - {type: CubaLIFNode, tau_syn: 2.0, tau_mem: 2.0, v_reset: null}\n")


@pytest.mark.parametrize("target,network,match", [
    ("generic_int8", None, "for a Xylo target"),
    ("xylo", None, "use CubaLIFNode"),  # refused as a Xylo network before the view is tried
])
def test_a_view_the_network_cannot_have_is_refused_before_training(tmp_path, capsys, target, network, match):
    gen = np.random.default_rng(1)
    _npz(tmp_path / "d.npz", *_good_arrays(gen))
    cfg = _config(tmp_path, f"{{kind: npz, path: {tmp_path / 'd.npz'}}}", network, target)
    status, out, err = _run(capsys, "export", str(tmp_path / "exp"), "--config", cfg, "--format", "rockpool-xylo",
                            "--no-progress")
    assert status == cli.EXIT_BAD_INPUT, err
    assert "checked before training" in err and match in err
    assert ("--format rockpool-xylo" in err) == (target != "xylo") and ("cannot run on one Xylo core" in err) == (target == "xylo")
    assert "float training" not in out and not (tmp_path / "exp").exists()


def test_a_view_the_network_can_have_passes_the_dry_run_and_is_written(tmp_path, capsys):
    gen = np.random.default_rng(2)
    _npz(tmp_path / "d.npz", *_good_arrays(gen))
    cfg = _config(tmp_path, f"{{kind: npz, path: {tmp_path / 'd.npz'}}}", _CUBA, "xylo")
    status, out, err = _run(capsys, "export", str(tmp_path / "exp"), "--config", cfg, "--format", "rockpool-xylo",
                            "--no-progress")
    assert status == cli.EXIT_OK, err
    assert "view rockpool-xylo: rockpool_xylo/spec.json, rockpool_xylo/spec.npz" in out
    assert not list(tmp_path.glob("**/hwsnn-dry-*"))
