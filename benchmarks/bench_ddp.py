"""Data-parallel scaling of training: 1 process against N processes (gloo, CPU), same global batch.

The training loop of ``hwsnn run`` (:func:`hwsnn.demo.train`) on the embedded digits (1,437
training samples, T = 20, 16 channels), the default network, one epoch per repetition: first the
float network, then its QAT network on ``generic_int8``. Configurations (each in fresh processes):

* ``1 process x 1 thread``, global batch B;
* ``1 process x P threads`` (P = ``--procs``), global batch B: the same cores used by intra-op threads;
* ``P processes x 1 thread`` (gloo over 127.0.0.1, DistributedDataParallel), per-rank batch B / P:
  the same steps with the same global batch (:mod:`hwsnn.parallel`).

Reported: the median epoch time of rank 0 (ranks synchronized before and after every epoch), the
samples per second, the speed-up over ``1 x 1``, the CPU seconds of all ranks per epoch (process
time: less sensitive than wall time to other jobs on a shared machine; it includes threads that
spin while waiting), and the largest weight difference between the
``P x 1`` run and the ``1 x 1`` run after the same epochs (the data-parallel step equals the
single-process step up to float rounding). The machine's load average is printed: on a shared
machine other jobs take cores too.

    python3 benchmarks/bench_ddp.py --procs 2 --reps 3
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def worker(rank: int, world: int, threads: int, batch: int, reps: int, store: str, out: str) -> None:
    """One rank: ``reps + 1`` float epochs and ``reps + 1`` QAT epochs (the first of each untimed)."""
    import torch.distributed as dist

    import quant
    from hwsnn.data import digits_spikes
    from hwsnn.demo import default_network, train

    torch.set_num_threads(threads)
    if world > 1:
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
        dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                                timeout=datetime.timedelta(seconds=600))

    def sync() -> None:
        if world > 1:
            dist.barrier()

    try:
        x, y = digits_spikes("train")
        torch.manual_seed(0)
        net = default_network("generic_int8", dropout=0.0)
        times: dict[str, list[float]] = {"float": [], "QAT": []}
        cpu: dict[str, list[float]] = {"float": [], "QAT": []}
        model = net
        for stage in ("float", "QAT"):
            if stage == "QAT":
                model = quant.prepare(net, "generic_int8", clip=True)
            for r in range(reps + 1):
                sync()
                t0, c0 = time.perf_counter(), time.process_time()
                train(model, x, y, epochs=1, lr=1e-3, batch_size=batch, seed=r, progress=False, cosine=False)
                c1 = time.process_time()
                sync()
                if r > 0:
                    times[stage].append(time.perf_counter() - t0)
                    cpu[stage].append(c1 - c0)
        torch.save({"cpu": cpu}, Path(out) / f"cpu{rank}.pt")
        if rank == 0:
            torch.save({"times": times, "n": int(x.shape[1]), "state": net.state_dict(),
                        "qat": {k: v for k, v in model.state_dict().items() if v.is_floating_point()}},
                       Path(out) / "result.pt")
    finally:
        if world > 1:
            dist.destroy_process_group()


def run_config(procs: int, threads: int, batch: int, reps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(worker, args=(procs, threads, batch, reps, str(Path(tmp) / "store"), tmp), nprocs=procs, join=True)
        result = torch.load(Path(tmp) / "result.pt", weights_only=True)
        ranks = [torch.load(Path(tmp) / f"cpu{r}.pt", weights_only=True)["cpu"] for r in range(procs)]
        # CPU seconds of all ranks together per epoch (the median epoch of each rank, summed)
        result["cpu"] = {k: sum(statistics.median(c[k]) for c in ranks) for k in ranks[0]}
        return result


def max_weight_diff(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--procs", type=int, default=2, help="processes (and threads) to compare with 1")
    p.add_argument("--batch", type=int, default=64, help="global batch size")
    p.add_argument("--reps", type=int, default=3, help="timed epochs per stage (median reported)")
    args = p.parse_args()
    if args.procs < 2 or args.batch % args.procs:
        p.error("--procs must be >= 2 and divide --batch")
    P, B = args.procs, args.batch
    import platform

    import hwsnn

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    print(f"## data-parallel scaling (hwsnn.demo.train, digits, default network)\n\nmachine: {cpu}, "
          f"{os.cpu_count()} cores, torch {torch.__version__}, hwsnn {hwsnn.__version__}")
    load0 = os.getloadavg()
    configs = [(f"1 process x 1 thread, batch {B}", 1, 1, B),
               (f"1 process x {P} threads, batch {B}", 1, P, B),
               (f"{P} processes x 1 thread (gloo), batch {B // P} per rank", P, 1, B // P)]
    results = {name: run_config(procs, threads, batch, args.reps) for name, procs, threads, batch in configs}
    load1 = os.getloadavg()
    base = results[configs[0][0]]
    n = base["n"]
    for stage in ("float", "QAT"):
        t_base = statistics.median(base["times"][stage])
        print(f"\n### {stage} training, one epoch ({n} samples, T = 20), median of {args.reps}\n")
        print("| configuration | s / epoch (wall) | samples / s | speed-up vs 1 x 1 | CPU s / epoch, all ranks |\n"
              "|---|---:|---:|---:|---:|")
        for name, *_ in configs:
            t = statistics.median(results[name]["times"][stage])
            print(f"| {name} | {t:.2f} | {n / t:.0f} | {t_base / t:.2f} | {results[name]['cpu'][stage]:.2f} |")
    ddp = results[configs[2][0]]
    print(f"\nlargest weight difference, {P} processes vs 1 process after the same epochs: "
          f"float {max_weight_diff(ddp['state'], base['state']):.1e}, QAT {max_weight_diff(ddp['qat'], base['qat']):.1e}")
    print(f"load average (1 min) before / after: {load0[0]:.1f} / {load1[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
