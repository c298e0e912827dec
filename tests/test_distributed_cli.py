"""``torchrun --standalone --nproc-per-node 2 -m hwsnn run``: two CPU processes with gloo on
127.0.0.1 (GLOO_SOCKET_IFNAME=lo), end to end; every launch has a timeout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--epochs", "1", "--qat-epochs", "1", "--train-samples", "48", "--test-samples", "16", "--no-progress",
        "--no-plots", "--device", "cpu"]


def torchrun(*args: str, timeout_env: str = "90") -> subprocess.Popen:
    """Start ``torchrun --standalone --nproc-per-node 2 ARGS`` (collect it with :func:`finish`)."""
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", PYTHONPATH=str(ROOT), HWSNN_DIST_TIMEOUT=timeout_env,
               OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float) -> tuple[int, str, str, float]:
    """Wait at most ``timeout`` s: (exit status, stdout, stderr, seconds since the fixture started)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish within {timeout} s:\n{out}\n{err}")
    return proc.returncode, out, err, time.monotonic()


def bundle_files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


FAILURES = [("train", 1), ("export", 0)]


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    """Four torchrun jobs at once (the 2-core CI machine idles through most of a launch): two runs
    with one seed, and two with a failure injected on one rank (tests/dist_fail_run.py), whose
    collectives would wait 300 s, longer than the test allows, if a rank hung."""
    base = tmp_path_factory.mktemp("torchrun")
    start = time.monotonic()
    procs = {name: torchrun("-m", "hwsnn", "run", *TINY, "--seed", "2", "--out", str(base / name))
             for name in ("a", "b")}
    for where, rank in FAILURES:
        procs[where] = torchrun("tests/dist_fail_run.py", where, str(rank), "--", "run", *TINY, "--out",
                                str(base / where), timeout_env="300")
    done = {name: finish(p, timeout=280) for name, p in procs.items()}
    return base, {name: (rc, out, err, end - start) for name, (rc, out, err, end) in done.items()}


@pytest.fixture(scope="module")
def two_runs(launches):
    base, done = launches
    return base, [done["a"], done["b"]]


def test_two_processes_run_end_to_end_and_log_once(two_runs):
    base, runs = two_runs
    for rc, out, err, _ in runs:
        assert rc == 0, out + err
        assert out.count("main job on") == 1 and out.count("float training:") == 1, out  # rank 0 only
        assert "training on cpu, 2 processes (gloo)" in out
        assert "world_size 2 (gloo)" in out  # the summary row
    report = json.loads((base / "a" / "report" / "report.json").read_text())
    assert report["bit_exact"] is True
    assert report["training"]["world_size"] == 2 and report["training"]["backend"] == "gloo"
    assert report["training"]["device"] == "cpu"


def test_two_runs_with_one_seed_and_world_size_give_byte_identical_bundles(two_runs):
    base, _ = two_runs
    a, b = bundle_files(base / "a" / "export"), bundle_files(base / "b" / "export")
    assert "manifest.json" in a and a.keys() == b.keys()
    for name in a:
        assert a[name] == b[name], name


def test_checkpoints_beside_the_export_load_weights_only(two_runs):
    base, _ = two_runs
    ck = base / "a" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["float.pt", "qat.pt"]  # no temporary files left
    for stage in ("float", "qat"):
        data = torch.load(ck / f"{stage}.pt", weights_only=True)
        assert data["stage"] == stage and data["info"]["world_size"] == 2
        assert set(data["state_dict"]) == {"0.weight", "3.weight"}
    assert not any("checkpoint" in n for n in bundle_files(base / "a" / "export"))


@pytest.mark.parametrize("where, rank", FAILURES)
def test_a_failing_rank_stops_all_ranks(launches, where, rank):
    """One rank raises (rank 1 in training, or rank 0 in its export while rank 1 waits for it): the
    job ends with that rank's error long before a collective's timeout; no rank hangs."""
    base, done = launches
    rc, out, err, elapsed = done[where]
    text = out + err
    assert rc != 0, text
    assert f"hwsnn: error: injected failure in {where} on rank {rank}" in text, text
    assert elapsed < 200, f"took {elapsed:.0f} s"
    assert not (base / where / "report").exists()
