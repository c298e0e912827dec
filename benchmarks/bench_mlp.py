"""MLP 784-512-512-10 with LIF after every layer, T=16, batch 64, forward + backward.

    python benchmarks/bench_mlp.py [--reps 15] [--threads 2] [--only hwsnn,spikingjelly]
"""

from __future__ import annotations

import torch
import torch.nn as nn

from _common import Fold, available, make_lif, parse_args, print_table, time_alternating, training_steps


def build(framework: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        Fold(nn.Linear(784, 512)), make_lif(framework),
        Fold(nn.Linear(512, 512)), make_lif(framework),
        Fold(nn.Linear(512, 10)), make_lif(framework),
    )


def main() -> None:
    args = parse_args(__doc__)
    T, B = 16, 64
    names, missing = available(args.only)
    torch.manual_seed(0)
    x = (torch.rand(T, B, 784) < 0.2).float().to(args.device)  # Poisson-like input spikes
    target = torch.nn.functional.one_hot(torch.randint(0, 10, (B,)), 10).float().to(args.device)
    fns = training_steps(names, build, x, lambda out: nn.functional.mse_loss(out.mean(0), target), args.device)
    times = time_alternating(fns, args.reps, args.warmup, args.device)
    print_table(f"MLP 784-512-512-10 + LIF, T={T}, batch {B}, forward+backward ({args.device})", times, missing)


if __name__ == "__main__":
    main()
