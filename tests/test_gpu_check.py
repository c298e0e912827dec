"""benchmarks/gpu_check.py on a machine without CUDA: it says so, runs the CPU part (the Triton
kernels under TRITON_INTERPRET=1 against the torch path, the CPU timing rows) and exits 0; and its
checks do fail when a kernel is wrong (a sabotaged float and integer kernel, in a subprocess so that
TRITON_INTERPRET=1 is set before triton is imported)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU, also where the CI machine has one
    env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    return env


def test_gpu_check_without_cuda_runs_the_cpu_part_and_exits_0():
    pytest.importorskip("triton")
    proc = subprocess.run([sys.executable, str(SCRIPT), "--reps", "1"], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=900)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    assert "no CUDA device is available" in out
    assert "GPU: none (CPU tensors, TRITON_INTERPRET=1)" in out
    assert "FAIL" not in out and "ALL CHECKS PASSED" in out
    # the Triton kernels did run (interpreted), both the float and the integer ones
    for name in ("neuron_forward_triton", "synapse_backward_triton", "neuron_sequence_triton"):
        assert f"'{name}': 0" not in out and f"'{name}'" in out, name
    # the timing table: CPU rows timed, CUDA rows marked
    assert "| default network, float step (cpu) | " in out
    cpu_row = next(line for line in out.splitlines() if line.startswith("| default network, QAT step (cpu)"))
    assert float(cpu_row.split("|")[2]) > 0
    assert "| default network, float step (cuda) | - | no CUDA device |" in out


SABOTAGE = textwrap.dedent(
    r"""
    import sys, torch
    sys.path.insert(0, "benchmarks")
    import gpu_check as G
    from hwsnn.backend import triton_kernels as tk, fixed_triton as ft

    real_syn = tk.synapse_forward_triton
    tk.synapse_forward_triton = lambda *a, **k: real_syn(*a, **k) + 1e-3
    G.check_synapse_kernels(torch.device("cpu"), [7, 300])
    assert G.FAILURES == ["synapse filter forward/backward, fixed and learnable tau (triton = torch)"], G.FAILURES
    tk.synapse_forward_triton = real_syn

    G.FAILURES.clear()
    real_seq = ft.neuron_sequence_triton

    def flipped(*a, **k):
        spikes, v, i, counts = real_seq(*a, **k)
        spikes = spikes.clone()
        spikes.view(-1)[0] ^= 1
        return spikes, v, i, counts

    ft.neuron_sequence_triton = flipped
    G.check_integer_kernels(torch.device("cpu"), 3, 2)
    assert G.FAILURES and all(f.startswith("integer twins on ") for f in G.FAILURES), G.FAILURES
    print("SABOTAGE-CAUGHT", len(G.FAILURES))
    """
)


def test_gpu_check_fails_on_a_wrong_kernel():
    pytest.importorskip("triton")
    env = {**_env(), "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", SABOTAGE], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "SABOTAGE-CAUGHT" in proc.stdout


GPU_PATHS = textwrap.dedent(
    r"""
    import sys, torch
    sys.path.insert(0, "benchmarks")
    import gpu_check as G

    cpu = torch.device("cpu")
    G.check_cuda_vs_cpu(cpu)        # the GPU-only comparisons, CPU against CPU: the code runs and agrees
    G.check_main_job("cpu")         # hwsnn run, then --resume --device cpu: same bundle bytes
    rows = G.lif_rows(4, 64, 1, cpu)
    assert [r[0] for r in rows][:3] == ["hwsnn triton (cpu)", "hwsnn torch kernels (cpu)",
                                       "hwsnn step-by-step autograd (cpu)"], rows
    assert all(ms is not None and ms > 0 for _, ms, _ in rows[:3]), rows
    assert G.FAILURES == [], G.FAILURES
    print("GPU-PATHS-OK")
    """
)


def test_gpu_only_code_paths_run_on_the_cpu():
    """The parts that run only with a GPU, pointed at the CPU, so that a mistake in them shows here
    and not on a lent GPU (the comparisons are then CPU against CPU)."""
    pytest.importorskip("triton")
    env = {**_env(), "TRITON_INTERPRET": "1"}
    proc = subprocess.run([sys.executable, "-c", GPU_PATHS], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "GPU-PATHS-OK" in proc.stdout
