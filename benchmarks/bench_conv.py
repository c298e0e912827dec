"""Conv net: Conv(2->32, 3x3) + BN + LIF, Conv(32->64, 3x3) + BN + LIF, AvgPool 2, Linear;
34x34 input (N-MNIST sized), T=8, batch 16, forward + backward.

    python benchmarks/bench_conv.py [--reps 15] [--threads 2]
"""

from __future__ import annotations

import torch
import torch.nn as nn

from _common import Fold, available, make_lif, parse_args, print_table, time_alternating, training_steps


def build(framework: str) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        Fold(nn.Conv2d(2, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32)), make_lif(framework),
        Fold(nn.Conv2d(32, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64)), make_lif(framework),
        Fold(nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64 * 17 * 17, 10)),
    )


def main() -> None:
    args = parse_args(__doc__)
    T, B = 8, 16
    names, missing = available(args.only)
    torch.manual_seed(0)
    x = (torch.rand(T, B, 2, 34, 34) < 0.1).float().to(args.device)
    labels = torch.randint(0, 10, (B,), device=args.device)
    fns = training_steps(names, build, x, lambda out: nn.functional.cross_entropy(out.mean(0), labels), args.device)
    times = time_alternating(fns, args.reps, args.warmup, args.device)
    print_table(f"Conv net 2-32-64 + BN + LIF, 34x34, T={T}, batch {B}, forward+backward ({args.device})", times, missing)


if __name__ == "__main__":
    main()
