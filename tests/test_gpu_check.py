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
