"""Bare multi-step LIF layer [T, N], forward + backward (dense upstream gradient), with the memory
copy floor measured in the same run.

The fused forward + backward must at least read X, write S and the saved charge H (forward), then
read H and the spike gradient and write the input gradient (backward): six [T, N] float32 streams.
``copy floor (1x)`` copies one [T, N] tensor (read + write: 2 streams); ``copy floor (3x)`` copies
three, i.e. exactly the bytes the fused layer has to move.

``hwsnn`` is the default backend (``'auto'``: the numba CPU kernels when numba is installed),
``hwsnn-torch`` the same layer forced onto the torch fused path (``backend='torch'``).

    python benchmarks/bench_lif.py [--t 64] [--n 1048576] [--reps 11] [--only hwsnn,hwsnn-torch]
"""

from __future__ import annotations

import torch

from _common import available, make_lif, parse_args, print_table, reset_states, time_alternating

from hwsnn.neuron import LIFNode


def main() -> None:
    def extra(p):
        p.add_argument("--t", type=int, default=64)
        p.add_argument("--n", type=int, default=1 << 20)

    args = parse_args(__doc__, reps=11, warmup=2, extra=extra)
    T, N = args.t, args.n
    names, missing = available(args.only)
    if not args.only or "hwsnn-torch" in args.only.split(","):
        names.insert(1 if "hwsnn" in names else 0, "hwsnn-torch")
    torch.manual_seed(0)
    x = torch.randn(T, N, device=args.device).requires_grad_()
    grad = torch.randn(T, N, device=args.device)
    fns = {}
    for name in names:
        node = LIFNode(tau=2.0, step_mode="m", backend="torch") if name == "hwsnn-torch" else make_lif(name)
        node = node.to(args.device)

        def step(node=node):
            reset_states(node)
            s = node(x)
            s.backward(grad)
            x.grad = None

        fns[name] = step
    src = [torch.randn(T, N, device=args.device) for _ in range(3)]
    dst = [torch.empty_like(s) for s in src]
    fns["copy floor (1x)"] = lambda: dst[0].copy_(src[0])
    fns["copy floor (3x)"] = lambda: [d.copy_(s) for d, s in zip(dst, src)]
    times = time_alternating(fns, args.reps, args.warmup, args.device)
    gb = T * N * 4 / 1e9
    print_table(f"Bare LIF [T={T}, N={N}], forward+backward ({args.device}); one [T, N] float32 tensor = {gb:.3f} GB", times, missing)


if __name__ == "__main__":
    main()
