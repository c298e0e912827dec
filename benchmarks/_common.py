"""Shared harness of the benchmark scripts: peers, neuron layers, alternating timing, tables.

Every script builds the *same* network for each framework (identical torch stateless layers, time
folded into the batch); only the spiking neuron layer differs. Timings alternate between the
implementations inside every repetition (so drifts in clock speed or memory state hit all of them
alike), after warm-up rounds, and the table reports the median of the repetitions.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import hwsnn  # noqa: E402
from hwsnn.neuron import BaseNode, LIFNode  # noqa: E402


def parse_args(description: str, reps: int = 15, warmup: int = 3, extra: Optional[Callable] = None):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--reps", type=int, default=reps, help="timed repetitions per implementation (median reported)")
    p.add_argument("--warmup", type=int, default=warmup, help="untimed warm-up rounds")
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", default="", help="comma-separated subset of implementations to run")
    if extra is not None:
        extra(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    return args


# ------------------------------------------------------------------------------------------------
# peers (optional installs: a missing one is reported, never faked)
# ------------------------------------------------------------------------------------------------
def try_import(name: str):
    try:
        module = __import__(name, fromlist=["_"])
        return module, None
    except Exception as exc:  # noqa: BLE001 - any import failure means "unavailable"
        return None, f"{type(exc).__name__}: {exc}".splitlines()[0][:90]


class Fold(nn.Module):
    """Stateless module over ``[T, B, ...]`` with time folded into the batch."""

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        self.body = nn.Sequential(*modules)

    def forward(self, x):
        T, B = x.shape[:2]
        y = self.body(x.flatten(0, 1))
        return y.reshape((T, B) + tuple(y.shape[1:]))


class StepLoop(nn.Module):
    """Loop a single-step neuron ``cell(x, state) -> (spike, state)`` over dim 0."""

    def __init__(self, cell: nn.Module, kind: str) -> None:
        super().__init__()
        self.cell, self.kind = cell, kind

    def forward(self, x):
        state = None
        out = []
        for t in range(x.shape[0]):
            if self.kind == "snntorch":
                if state is None:
                    state = torch.zeros_like(x[t])
                s, state = self.cell(x[t], state)
            else:  # norse cells take state=None at the start
                s, state = self.cell(x[t], state)
            out.append(s)
        return torch.stack(out)


def make_lif(framework: str) -> nn.Module:
    """A multi-step LIF layer (tau = 2, threshold 1, hard reset to 0) for ``[T, B, ...]`` inputs."""
    if framework == "hwsnn":
        return LIFNode(tau=2.0, step_mode="m")
    if framework == "hwsnn-reference":
        node = LIFNode(tau=2.0, step_mode="m")
        node._fused_multi_step = lambda x_seq: None  # the step-by-step autograd loop
        return node
    if framework == "spikingjelly":
        from spikingjelly.activation_based import neuron, surrogate

        return neuron.LIFNode(tau=2.0, step_mode="m", surrogate_function=surrogate.Sigmoid())
    if framework == "snntorch":
        import snntorch as snn

        return StepLoop(snn.Leaky(beta=0.5, threshold=1.0, reset_mechanism="zero"), "snntorch")
    if framework == "norse":
        import norse.torch as nt

        # v <- v + dt * tau_mem_inv * (v_leak - v + x): dt * tau_mem_inv = 0.5 is the tau = 2 leak
        p = nt.LIFBoxParameters(tau_mem_inv=torch.as_tensor(500.0), v_th=torch.as_tensor(1.0))
        return StepLoop(nt.LIFBoxCell(p=p), "norse")
    raise ValueError(framework)


FRAMEWORKS = {
    "hwsnn": None,
    "hwsnn-reference": None,
    "spikingjelly": "spikingjelly.activation_based",
    "snntorch": "snntorch",
    "norse": "norse.torch",
}


def available(only: str = "") -> tuple[list[str], dict[str, str]]:
    names, missing = [], {}
    wanted = [s for s in only.split(",") if s]
    for name, module in FRAMEWORKS.items():
        if wanted and name not in wanted:
            continue
        if module is not None:
            _, err = try_import(module)
            if err is not None:
                missing[name] = err
                continue
        names.append(name)
    return names, missing


def reset_states(model: nn.Module) -> None:
    for m in model.modules():
        reset = getattr(m, "reset", None)
        if callable(reset) and (isinstance(m, BaseNode) or type(m).__module__.startswith("spikingjelly")):
            reset()


# ------------------------------------------------------------------------------------------------
# timing
# ------------------------------------------------------------------------------------------------
def training_steps(names: list[str], build: Callable[[str], nn.Module], x: torch.Tensor,
                   loss_fn: Callable[[torch.Tensor], torch.Tensor], device: str) -> dict[str, Callable[[], None]]:
    """One forward + backward per call for each implementation: reset, ``loss_fn(model(x))``,
    backward, drop the gradients."""
    fns = {}
    for name in names:
        model = build(name).to(device)

        def step(model: nn.Module = model) -> None:
            reset_states(model)
            loss_fn(model(x)).backward()
            for p in model.parameters():
                p.grad = None

        fns[name] = step
    return fns


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_alternating(fns: dict[str, Callable[[], None]], reps: int, warmup: int, device: str) -> dict[str, list[float]]:
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    return times


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
        f"python {platform.python_version()}, hwsnn {hwsnn.__version__}"
    )


def print_table(title: str, times: dict[str, list[float]], missing: dict[str, str], baseline: str = "hwsnn",
                extra_rows: Optional[list[tuple[str, str, str]]] = None) -> None:
    print(f"\n### {title}\n")
    print(f"machine: {machine()}\n")
    print("| implementation | median ms | min ms | time / hwsnn |")
    print("|---|---:|---:|---:|")
    base = statistics.median(times[baseline]) if baseline in times else None
    for name, ts in times.items():
        med = statistics.median(ts)
        ratio = f"{med / base:.2f}x" if base else "-"
        print(f"| {name} | {med * 1e3:.1f} | {min(ts) * 1e3:.1f} | {ratio} |")
    for name, a, b in extra_rows or []:
        print(f"| {name} | {a} | {b} | |")
    for name, why in missing.items():
        print(f"| {name} | missing | ({why}) | |")
    print()
