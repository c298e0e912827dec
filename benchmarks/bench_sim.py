"""Benchmark 4: throughput of the cycle-level NumPy simulator (bit-exact), against its peers.

Two workloads, each timed alternating with its peer in the same run (median of ``--reps``):

1. **Xylo-sized network** on the ``xylo`` target: 16 input channels -> 1000 recurrent hidden CUBA
   neurons (recurrent fan-out 32) -> 8 readout neurons, T = 1000 steps, 10 % input events, batch 1,
   per-event saturation. Peer: Rockpool's ``XyloSim`` (the ``xylosim`` engine) when installed, else
   reported as missing. hwsnn runs with its compiled per-event path (``sim.fast``, numba) when
   numba is installed, and with NumPy only (``jit=False``).
2. **Dense feed-forward network** on ``generic_int8``: 784 -> 512 -> 512 -> 10 with LIF neurons,
   T = 16, batch 64. Peer: the *BLAS floor*, float32 matmuls of the same shapes over the whole
   sequence (``[T*N, in] @ [in, out]``), the least any dense simulator must spend.

Before timing, the simulator's outputs are checked against the torch twin (bit-exact) once.

    python benchmarks/bench_sim.py --reps 11
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quant  # noqa: E402
import sim  # noqa: E402
import targets  # noqa: E402
from hwsnn.fixed import FixedCubaLIFNode, FixedLIFNode, FixedLinear  # noqa: E402
from hwsnn.fixed.recurrent import FixedRecurrent  # noqa: E402
from hwsnn.functional import reset_net, set_step_mode  # noqa: E402

from _common import machine, parse_args, try_import  # noqa: E402


def xylo_network(seed: int = 0, fan_out: int = 32) -> torch.nn.Sequential:
    """16 inputs -> 1000 recurrent hidden CUBA neurons (each feeding ``fan_out`` others) -> 8 readouts."""
    tg = targets.load("xylo")
    g = torch.Generator().manual_seed(seed)
    n = 1000
    w_in = torch.randint(-127, 128, (n, 16), generator=g) * (torch.rand(n, 16, generator=g) < 0.04)
    w_rec = torch.zeros(n, n, dtype=torch.int64)
    for j in range(n):  # source j reaches fan_out random targets
        w_rec[torch.randperm(n, generator=g)[:fan_out], j] = torch.randint(-60, 61, (fan_out,), generator=g)
    w_out = torch.randint(-127, 128, (8, n), generator=g) * (torch.rand(8, n, generator=g) < 0.5)
    net = torch.nn.Sequential(
        FixedLinear(w_in, tg, None, 4, first_layer=True, name="w_in"),
        FixedRecurrent(FixedCubaLIFNode(tg, 2000, 3, 4, name="hidden"), w_rec, 0, name="hidden"),
        FixedLinear(w_out, tg, None, 0, name="w_out"),
        FixedCubaLIFNode(tg, 2000, 3, 4, readout=True, name="readout"),
    )
    set_step_mode(net, "m")
    return net


def dense_network(seed: int = 0) -> torch.nn.Sequential:
    tg = targets.load("generic_int8")
    g = torch.Generator().manual_seed(seed)
    sizes = [784, 512, 512, 10]
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(FixedLinear(torch.randint(-127, 128, (b, a), generator=g), tg, None, -4, name=f"fc{i}"))
        layers.append(FixedLIFNode(tg, 3000, 2, state_exponent=0, name=f"lif{i}", readout=i == len(sizes) - 2))
    net = torch.nn.Sequential(*layers)
    set_step_mode(net, "m")
    return net


def xylosim_runner(net: torch.nn.Sequential, x: np.ndarray):
    """The same network in SynSense's ``xylosim`` engine (what Rockpool's ``XyloSim`` runs), or None
    with the reason. Returns ``(run() -> readout spikes [T, 8], None)``."""
    xs, why = try_import("xylosim.v2")
    if xs is None:
        return None, why
    w_in, w_rec, w_out = net[0].weight.numpy(), net[1].weight.numpy(), net[2].weight.numpy()
    hid, ro = net[1].neuron, net[3]
    n, n_out = w_in.shape[0], w_out.shape[0]

    def synapses(w: np.ndarray) -> list:  # per source: (target, synapse 0, weight)
        return [[xs.XyloSynapse(int(j), 0, int(w[j, i])) for j in np.flatnonzero(w[:, i])] for i in range(w.shape[1])]

    syn_in, syn_rec, syn_out = synapses(w_in), synapses(w_rec), synapses(w_out)
    layer = xs.XyloLayer(
        syn_in, syn_rec, syn_out, [[] for _ in range(n)],
        [hid.threshold] * n, [ro.threshold] * n_out, False, [0] * n, [0] * n_out,
        net[0].weight_shift, net[1].weight_shift, net[2].weight_shift,
        [hid.decay_mem] * n, [ro.decay_mem] * n_out, [[hid.decay_syn, hid.decay_syn]] * n, [[ro.decay_syn, ro.decay_syn]] * n_out, "bench",
    )
    inp = x[:, 0, :].astype(int).tolist()
    keep_alive = (syn_in, syn_rec, syn_out)  # the engine keeps raw pointers to the synapse objects

    def run():
        assert keep_alive
        layer.reset_all()
        return np.asarray(layer.evolve(inp))

    return run, None


def time_pair(fns: dict, reps: int, warmup: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    out = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[k].append(time.perf_counter() - t0)
    return out


def table(title: str, times: dict[str, list[float]], missing: dict[str, str], work: float, unit: str) -> None:
    print(f"\n### {title}\n")
    print(f"machine: {machine()}\n")
    print(f"| implementation | median ms | min ms | {unit}/s | time / hwsnn sim |")
    print("|---|---:|---:|---:|---:|")
    base = statistics.median(times["hwsnn sim"])
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"| {k} | {med * 1e3:.1f} | {min(ts) * 1e3:.1f} | {work / med:,.0f} | {med / base:.2f}x |")
    for k, why in missing.items():
        print(f"| {k} | missing | ({why}) | | |")


def main() -> None:
    args = parse_args("simulator throughput (benchmark 4)", reps=11, warmup=2)
    torch.manual_seed(0)
    tmp = Path(tempfile.mkdtemp())

    # 1. Xylo-sized network
    net = xylo_network()
    T = 1000
    g = np.random.default_rng(0)
    x = (g.random((T, 1, 16)) < 0.1).astype(np.int8)
    path = quant.export(net, tmp / "xylo", input_kind="counts")
    ex = sim.load_export(path)
    res = sim.run(ex, x)
    reset_net(net)
    assert np.array_equal(res.output, net(torch.from_numpy(x)).numpy()), "simulator and twin disagree"
    fns = {"hwsnn sim": lambda: sim.run(ex, x, record="none", chunk=T)}
    missing = {}
    if sim.fast.available():
        fns["hwsnn sim, NumPy only (jit=False)"] = lambda: sim.run(ex, x, record="none", chunk=T, jit=False)
    else:
        missing["hwsnn sim, compiled (numba)"] = "numba is not installed: the first row is NumPy only"
    runner, why = xylosim_runner(net, x)
    if runner is not None:
        fns["xylosim (XyloSim's engine)"] = runner
        ref = runner()
        same = ref.shape == res.output[:, 0].shape and np.array_equal(ref, res.output[:, 0])
        print(f"readout spikes of hwsnn sim vs xylosim: {'bit-exact' if same else 'DIFFERENT'} "
              f"({int(res.output.sum())} vs {int(ref.sum())} spikes)")
    else:
        missing["xylosim (XyloSim's engine)"] = why
    times = time_pair(fns, args.reps, args.warmup)
    table(f"Xylo-sized network 16-1000-8 (CUBA, recurrent fan-out 32, per-event saturation), T={T}, batch 1, "
          "bit-exact with the twin", 
          times, missing, T, "steps")
    import tracemalloc

    peaks = []
    for steps in (T, 4 * T):
        xs = (g.random((steps, 1, 16)) < 0.1).astype(np.int8)
        tracemalloc.start()
        sim.run(ex, xs, record="none")
        peaks.append(tracemalloc.get_traced_memory()[1] - xs.nbytes)
        tracemalloc.stop()
    print(f"\nmemory (record='none', chunk 64, inputs excluded): peak {peaks[0] / 1e6:.2f} MB at T={T}, "
          f"{peaks[1] / 1e6:.2f} MB at T={4 * T} (per-step counters are O(T) scalars)")

    # 2. dense feed-forward vs the BLAS floor
    net = dense_network()
    T, N = 16, 64
    x = (g.random((T, N, 784)) < 0.2).astype(np.int8)
    path = quant.export(net, tmp / "dense")
    ex = sim.load_export(path)
    res = sim.run(ex, x)
    reset_net(net)
    assert np.array_equal(res.output, net(torch.from_numpy(x)).numpy()), "simulator and twin disagree"
    ws = [ex.tables[f"fc{i}.weight"].astype(np.float32).T.copy() for i in range(3)]
    xf = x.reshape(T * N, 784).astype(np.float32)
    acts = [xf, np.zeros((T * N, 512), np.float32), np.zeros((T * N, 512), np.float32)]

    def blas_floor():
        for a, w in zip(acts, ws):
            a @ w

    times = time_pair({"hwsnn sim": lambda: sim.run(ex, x, record="none", chunk=T), "float32 matmul (BLAS floor)": blas_floor},
                      args.reps, args.warmup)
    table(f"dense 784-512-512-10 + LIF (generic_int8), T={T}, batch {N}, bit-exact with the twin", times, {}, T * N,
          "sample-steps")
    floor = statistics.median(times["float32 matmul (BLAS floor)"]) / statistics.median(times["hwsnn sim"])
    print(f"\nsimulator at {100 * floor:.0f} % of the BLAS floor (goal: >= 50 %)")


if __name__ == "__main__":
    main()
