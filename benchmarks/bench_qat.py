"""QAT training step vs float training step: the fused integer path against the previous step-by-step one.

For each network, three training steps (forward, cross-entropy of the mean output over time,
backward, Adam step), timed alternating inside every repetition:

* ``float``: the float network (hwsnn's fused float kernels);
* ``qat``: ``quant.prepare(net, target)`` with the fused integer forward (:mod:`quant.qat_fused`) and
  the dense fast path (:mod:`quant.qat_dense`: the twin's sum in one exact float matmul, no float
  Brevitas matmul);
* ``qat-neurons``: the same with ``HWSNN_QAT_FUSED=neurons``: fused neurons, dense layers as before
  the dense fast path (the dense twin's int64 bookkeeping plus the Brevitas float layer);
* ``qat-previous``: ``HWSNN_QAT_FUSED=0`` (every stateful layer step by step in eager torch, the
  path before issue 18).

The rows share what this work changed outside the switch (the twin rebuild from Brevitas'
integers, the input check), so ``qat-neurons`` is faster than the code before it; the commit
before the dense fast path is measured by checking it out (RESULTS.md).

The QAT steps include what a QAT step costs besides the neurons: the twin rebuilt after each
optimizer step (:func:`quant.convert`), Brevitas' weight quantizer, the dense twins. ``--profile``
prints where the time of the fused QAT step goes (cProfile, top entries by cumulative time).
``--compile-time`` measures the numba compile of the integer kernels in a fresh cache directory
(first use) and with the cache (a later process), in subprocesses.

    python benchmarks/bench_qat.py --reps 15
"""

from __future__ import annotations

import copy
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from _common import machine, parse_args, time_alternating

import hwsnn.layer as L  # noqa: E402
import hwsnn.neuron as N  # noqa: E402
import quant  # noqa: E402
from hwsnn.demo import default_network  # noqa: E402
from hwsnn.functional import reset_net, set_step_mode  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def mlp() -> nn.Sequential:
    """MLP 784-512-512-10, LIF (tau 2, soft reset) after every layer (bench_mlp's shape, hwsnn layers)."""
    layers: list[nn.Module] = []
    for a, b in ((784, 512), (512, 512), (512, 10)):
        layers += [L.Linear(a, b, bias=False), N.LIFNode(tau=2.0, decay_input=False, v_reset=None, detach_reset=True)]
    net = nn.Sequential(*layers)
    set_step_mode(net, "m")
    return net


def workloads(batch: int) -> list[tuple[str, str, nn.Module, torch.Tensor, torch.Tensor]]:
    """``(title, target, float net, spikes [T, N, C], labels)``."""
    g = torch.Generator().manual_seed(0)
    out = []
    for target in ("generic_int8", "xylo", "loihi"):
        torch.manual_seed(0)
        net = default_network(target)
        x = (torch.rand(20, batch, 16, generator=g) < 0.3).float()
        out.append((f"default network (16-64-40, LIF + CUBA + filter), {target}, T=20, batch {batch}", target, net, x,
                    torch.randint(0, 10, (batch,), generator=g)))
    torch.manual_seed(0)
    x = (torch.rand(16, batch, 784, generator=g) < 0.2).float()
    out.append((f"MLP 784-512-512-10 + LIF, generic_int8, T=16, batch {batch}", "generic_int8", mlp(), x,
                torch.randint(0, 10, (batch,), generator=g)))
    return out


def step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, fused: str | None):
    """One training step of ``model``; ``fused`` is HWSNN_QAT_FUSED for the call (``None``: float)."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> None:
        if fused is not None:
            os.environ["HWSNN_QAT_FUSED"] = fused
        reset_net(model)
        loss = F.cross_entropy(model(x).mean(0) * 5.0, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def compile_times() -> tuple[float, float]:
    """Seconds to first use of the integer kernels (neuron + filter) with an empty numba cache, and again with it."""
    code = ("import time, torch; t = time.perf_counter(); from hwsnn.fixed import FixedLIFNode, FixedSynapseFilter; "
            "FixedLIFNode('generic_int8', 10, 1).multi_step_forward(torch.ones(2, 3, dtype=torch.int64)); "
            "FixedSynapseFilter(1, 'generic_int8').multi_step_forward(torch.ones(2, 3, dtype=torch.int64)); "
            "print(time.perf_counter() - t)")
    out = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache, "PYTHONPATH": str(REPO)}
        for _ in range(2):
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out.append(float(res.stdout.strip().splitlines()[-1]))
    return out[0], out[1]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], reps=15, extra=lambda p: (
        p.add_argument("--batch", type=int, default=64),
        p.add_argument("--profile", action="store_true", help="cProfile the fused QAT step of each network"),
        p.add_argument("--compile-time", action="store_true", help="measure the numba compile time (subprocesses)"),
    ))
    print(f"machine: {machine()}")
    summary = []
    for title, target, net, x, y in workloads(args.batch):
        if args.only and not any(s in title for s in args.only.split(",")):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qats = {mode: quant.prepare(copy.deepcopy(net).train(), target) for mode in ("1", "neurons", "0")}
        fns = {"float": step_fn(copy.deepcopy(net).train(), x, y, None), "qat": step_fn(qats["1"], x, y, "1"),
               "qat-neurons": step_fn(qats["neurons"], x, y, "neurons"),
               "qat-previous": step_fn(qats["0"], x, y, "0")}
        times = time_alternating(fns, args.reps, args.warmup, "cpu")
        os.environ.pop("HWSNN_QAT_FUSED", None)
        base = statistics.median(times["float"])
        print(f"\n### {title}\n")
        print("| training step | median ms | min ms | time / float |")
        print("|---|---:|---:|---:|")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"| {name} | {med * 1e3:.1f} | {min(ts) * 1e3:.1f} | {med / base:.2f}x |")
        summary.append((title, statistics.median(times["qat"]) / base, min(times["qat"]) / min(times["float"]),
                        statistics.median(times["qat-neurons"]) / base))
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            for _ in range(args.reps):
                fns["qat"]()
            prof.disable()
            print(f"\nprofile of {args.reps} fused QAT steps (cumulative, top 25):\n```")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
            print("```")
    print("\n| network | QAT / float (medians) | QAT / float (minima) | qat-neurons / float (medians) |")
    print("|---|---:|---:|---:|")
    for title, r, r_min, s in summary:
        print(f"| {title} | {r:.2f}x | {r_min:.2f}x | {s:.2f}x |")
    if args.compile_time:
        first, cached = compile_times()
        print(f"\nnumba integer kernels: first use {first:.1f} s (compile, empty cache), later processes {cached:.2f} s (cache)")


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")
