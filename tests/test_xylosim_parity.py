"""Parity with SynSense's own simulator: the ``xylo`` target's export, run by ``sim``, against the
``xylosim`` engine (what Rockpool's ``XyloSim`` wraps, stated bit-exact to the chip). A third,
independent implementation of the Xylo integer rules. Skipped where ``xylosim`` is not installed
(CI installs it: ``pip install xylosim``, which builds a C++ extension from source)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("xylosim.v2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_sim  # noqa: E402
import quant  # noqa: E402
import sim  # noqa: E402


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sim_equals_xylosim_on_a_xylo_sized_network(tmp_path, seed):
    net = bench_sim.xylo_network(seed)
    x = (np.random.default_rng(seed).random((300, 1, 16)) < 0.1).astype(np.int8) * np.random.default_rng(seed + 9).integers(
        1, 16, (300, 1, 16)).astype(np.int8)
    res = sim.run(quant.export(net, tmp_path / "x", input_kind="counts"), x)
    run, why = bench_sim.xylosim_runner(net, x)
    assert run is not None, why
    ref = run()
    assert ref.shape == res.output[:, 0].shape
    assert res.output.sum() > 0
    np.testing.assert_array_equal(res.output[:, 0], ref)
