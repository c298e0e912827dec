"""The prepared GPU check: the Triton kernels and the CUDA training path against the CPU reference,
then timings. One command, about 2 minutes on one H100 (most of it Triton compiling)::

    python3 benchmarks/gpu_check.py           # with a CUDA GPU: everything below
    python3 benchmarks/gpu_check.py --cpu     # the CPU part only (what a machine without CUDA runs)

Without a CUDA device the script says so, runs the CPU part (the Triton kernels on CPU tensors
under ``TRITON_INTERPRET=1`` against the torch path, few cases, and the CPU rows of the timing
table) and exits 0 when those checks pass; ``tests/test_gpu_check.py`` runs it that way.

Checks (one line each, ``ok`` or ``FAIL`` with the largest difference):

1. float kernels (:mod:`hwsnn.backend.triton_kernels`) against ``backend='torch'`` on the same
   device: IF/LIF forward and backward over surrogates, resets, ``decay_input``, ``detach_reset``,
   threshold tensors, odd sizes, float16/bfloat16, the synapse filter (fixed and learnable tau),
   the modules; spikes bit for bit, states to 1e-5 and gradients to 1e-4 (relative to the
   gradient's largest magnitude); call counters prove the Triton kernels ran;
2. integer kernels (:mod:`hwsnn.backend.fixed_triton`): the twins of the default network on every
   shipped target, one fused Triton sequence against the twin's own steps, bit for bit
   (outputs, states, saturation counters);
3. CUDA against CPU (GPU only): the same float network forward/backward on CUDA (Triton) and on
   the CPU (max |d output|, max |d grad|, share of differing spikes), the QAT forward and the
   integer twins on CUDA and on the CPU (bit-exact);
4. the main job (GPU only): ``hwsnn run --device cuda`` (tiny) is bit-exact and the CUDA-trained
   checkpoints give the same bundle bytes when exported again on the CPU (``--resume --device cpu``).

Timings (median of ``--reps``): one training step of the default network (float and QAT, T = 20,
batch 64) on CUDA and on the CPU, and (GPU only) a bare LIF layer forward + backward: Triton,
hwsnn's torch kernels on CUDA, the step-by-step autograd loop on CUDA, SpikingJelly 2.0 on CUDA
(when installed). Exit status: 0 all checks pass (also without a GPU), 1 a check failed, 2 Triton
is not installed.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import os
import random
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import torch  # noqa: E402  (torch does not import triton: TRITON_INTERPRET can still be set below)

FAILURES: list[str] = []
Row = tuple[str, Optional[float], str]


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cpu", "--interpret", dest="cpu", action="store_true",
                   help="the CPU part only (Triton under TRITON_INTERPRET=1), even where a GPU exists")
    p.add_argument("--quick", action="store_true", help="fewer cases and smaller sizes on the GPU")
    p.add_argument("--reps", type=int, default=0, help="timed repetitions, median reported (default 11; 3 on CPU only)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for the CPU rows (default: torch's default)")
    return p.parse_args(argv)


def report(name: str, ok: bool, detail: str = "") -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {name}" + (f": {detail}" if detail else ""), flush=True)
    if not ok:
        FAILURES.append(name)


def guarded(name: str, fn: Callable[[], None]) -> None:
    """Run one check; an exception is a failure with its message (the run goes on)."""
    t0 = time.perf_counter()
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - any error is a failed check, reported
        report(name, False, f"{type(exc).__name__}: {exc}")
        traceback.print_exc(limit=4)
    print(f"     ({name}: {time.perf_counter() - t0:.1f} s)", flush=True)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """:math:`\\max |a - b|` (both moved to the CPU, float64)."""
    if a.numel() == 0:
        return 0.0
    return float((a.detach().cpu().double() - b.detach().cpu().double()).abs().max())


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """:math:`\\max |a - b| / (1 + \\max |b|)`."""
    return max_diff(a, b) / (1.0 + float(b.detach().abs().max())) if b.numel() else 0.0


class Counter:
    """Counts the calls of a module's entry points (so that a silent fall-back cannot pass)."""

    def __init__(self, module, names: tuple[str, ...]) -> None:
        self.module, self.calls = module, {n: 0 for n in names}
        self.orig = {n: getattr(module, n) for n in names}
        for n in names:
            setattr(module, n, self._wrap(n))

    def _wrap(self, name: str):
        def call(*a, **k):
            self.calls[name] += 1
            return self.orig[name](*a, **k)

        return call

    def restore(self) -> dict[str, int]:
        for n, f in self.orig.items():
            setattr(self.module, n, f)
        return dict(self.calls)


# ------------------------------------------------------------------------------------------ 1. float kernels
def check_neuron_kernels(device: torch.device, cases: int, sizes: list[int]) -> None:
    import hwsnn.backend as B
    from hwsnn import surrogate as SG

    rng = random.Random(0)
    torch.manual_seed(0)
    sur = [SG.Sigmoid, SG.ATan, SG.PiecewiseQuadratic]
    combos = [c for c in itertools.product([None, 2.0, 3.3], [True, False], [0.0, None], [False, True], range(3),
                                           [True, False], [False, True]) if not (c[0] is None and not c[1])]
    rng.shuffle(combos)
    worst = {"v": 0.0, "grad": 0.0}
    for tau, di, vr, det, si, spiking, tvth in combos[:cases]:
        sf = sur[si](spiking=spiking)
        T, N = rng.choice([1, 5, 16]), rng.choice(sizes)
        x = (torch.randn(T, N, device=device) * 1.5).requires_grad_()
        v0 = (torch.randn(N, device=device) * 0.5).requires_grad_()
        vth = (torch.rand(N, device=device) + 0.5) if tvth else 0.8
        kw = dict(tau=tau, decay_input=di, v_threshold=vth, v_reset=vr, detach_reset=det, store_v_seq=True)
        out = {}
        for be in ("torch", "triton"):
            s, v, q = B.neuron_multi_step(x, v0, surrogate_function=sf, backend=be, **kw)
            g = torch.Generator(device=device).manual_seed(1)
            gs, gv = torch.randn(s.shape, device=device, generator=g), torch.randn(v.shape, device=device, generator=g)
            grads = torch.autograd.grad((s * gs).sum() + (v * gv).sum() + q.square().sum(), (x, v0))
            out[be] = (s, v, q, grads)
        (s1, v1, q1, g1), (s2, v2, q2, g2) = out["torch"], out["triton"]
        if spiking and not torch.equal(s1, s2):
            case = f"tau={tau} decay_input={di} v_reset={vr} detach={det} {sur[si].__name__} T={T} N={N}"
            report(f"neuron spikes ({case})", False, f"{int((s1 != s2).sum())} spikes differ")
        worst["v"] = max(worst["v"], max_diff(v1, v2), max_diff(q1, q2))
        worst["grad"] = max(worst["grad"], *(rel_diff(a, b) for a, b in zip(g2, g1)))
    report(f"neuron forward/backward, {min(cases, len(combos))} configurations (triton = torch)",
           worst["v"] <= 1e-5 and worst["grad"] <= 1e-4,
           f"max |dv| {worst['v']:.1e}, max relative |dgrad| {worst['grad']:.1e}")
    for dt in (torch.float16, torch.bfloat16):
        x = (torch.randn(8, 1000, device=device) * 2).to(dt)
        res = [B.neuron_multi_step(x, torch.zeros(1000, device=device), surrogate_function=SG.Sigmoid(), tau=2.0,
                                   backend=be) for be in ("torch", "triton")]
        (s1, v1, _), (s2, v2, _) = res
        report(f"neuron {dt} (spikes in {dt})", s2.dtype == dt and torch.equal(s1, s2) and max_diff(v1, v2) <= 1e-5,
               f"max |dv| {max_diff(v1, v2):.1e}")


def check_synapse_kernels(device: torch.device, sizes: list[int]) -> None:
    import hwsnn.backend as B

    worst = 0.0
    for learn, T, N in [(False, 1, 5), (True, 6, sizes[-1]), (False, 16, sizes[0]), (True, 3, 257)]:
        x = (torch.rand(T, N, device=device) < 0.3).float().requires_grad_()
        i0 = torch.randn(N, device=device).requires_grad_()
        w = torch.tensor(-1.2, device=device, requires_grad=True)
        res = {}
        for be in ("torch", "triton"):
            k = torch.sigmoid(w) if learn else 0.3
            o = B.synapse_multi_step(x, i0, k, backend=be)
            go = torch.randn(o.shape, device=device, generator=torch.Generator(device=device).manual_seed(2))
            res[be] = (o, torch.autograd.grad((o * go).sum(), (x, i0, w) if learn else (x, i0)))
        (o1, g1), (o2, g2) = res["torch"], res["triton"]
        worst = max(worst, max_diff(o1, o2), *(rel_diff(a, b) for a, b in zip(g2, g1)))
    report("synapse filter forward/backward, fixed and learnable tau (triton = torch)", worst <= 1e-4,
           f"max difference {worst:.1e}")


def check_modules(device: torch.device) -> None:
    from hwsnn.layer import SynapseFilter
    from hwsnn.neuron import IFNode, LIFNode

    torch.manual_seed(3)
    x = (torch.randn(12, 4, 300, device=device) * 1.5).requires_grad_()
    for make in (lambda be: LIFNode(tau=2.0, step_mode="m", backend=be), lambda be: IFNode(step_mode="m", backend=be),
                 lambda be: SynapseFilter(tau=4.0, step_mode="m", backend=be)):
        outs = []
        for be in ("torch", "triton"):
            y = make(be).to(device)(x)
            outs.append((y, torch.autograd.grad(y.sum(), x)[0]))
        dy, dg = max_diff(outs[0][0], outs[1][0]), rel_diff(outs[1][1], outs[0][1])
        report(f"{type(make('torch')).__name__}(step_mode='m', backend='triton') = backend='torch'",
               dy <= 1e-5 and dg <= 1e-4, f"max |dy| {dy:.1e}, max relative |dgrad| {dg:.1e}")


# ------------------------------------------------------------------------------------------ 2. integer kernels
def twin_run(twin: torch.nn.Sequential, x: torch.Tensor, backend: Optional[str]) -> tuple:
    """``(outputs, states, saturation counters)`` of ``twin`` on ``x`` (``backend``: every layer's
    ``fused_backend``, or ``None`` to keep it)."""
    from hwsnn.functional import reset_net

    for m in twin.modules():
        if backend is not None and hasattr(m, "fused_backend"):
            m.fused_backend = backend
        if hasattr(m, "clear_counts"):
            m.clear_counts()
    reset_net(twin)
    with torch.no_grad():
        y = twin(x)
    y = y.counts if hasattr(y, "counts") else y
    states = [getattr(m, s).cpu() for m in twin.modules() for s in ("v", "i", "out_i")
              if torch.is_tensor(getattr(m, s, None))]
    sats = [dict(getattr(m, "saturations", {})) for m in twin.modules()]
    return y.cpu(), states, sats


def same_run(a: tuple, b: tuple) -> bool:
    return (torch.equal(a[0], b[0]) and len(a[1]) == len(b[1]) and all(torch.equal(p, q) for p, q in zip(a[1], b[1]))
            and a[2] == b[2])


def twins_and_inputs(T: int, n: int):
    """``(target, twin, integer input)`` for the default network of every shipped target."""
    import quant
    import targets
    from hwsnn.demo import default_network

    for k, name in enumerate(targets.available()):
        torch.manual_seed(4 + k)
        net = default_network(name, dropout=0.0).eval()
        yield name, quant.convert(net, name), (torch.rand(T, n, 16) < 0.3).to(torch.int64)


def check_integer_kernels(device: torch.device, T: int, n: int) -> None:
    from hwsnn.backend import fixed_triton as ft

    counter = Counter(ft, ("neuron_sequence_triton", "synapse_sequence_triton"))
    try:
        for name, twin, x in twins_and_inputs(T, n):
            twin, x = twin.to(device), x.to(device)
            same = same_run(twin_run(twin, x, "torch"), twin_run(twin, x, "triton"))
            report(f"integer twins on {name}: fused Triton sequence = the twin's steps (outputs, states, saturations)",
                   same)
    finally:
        calls = counter.restore()
    report("the integer Triton kernels ran (calls per entry point)", all(v > 0 for v in calls.values()), str(calls))


# ------------------------------------------------------------------------------------------ 3. CUDA against CPU
def check_cuda_vs_cpu(cuda: torch.device = torch.device("cuda")) -> None:
    """CUDA (``cuda``; the tests pass the CPU to run this code without a GPU) against the CPU."""
    import quant
    from hwsnn.demo import default_network
    from hwsnn.functional import reset_net

    cpu = torch.device("cpu")
    torch.manual_seed(5)
    net = default_network(dropout=0.0)
    x = (torch.rand(20, 64, 16) < 0.3).float()
    res = {}
    for key, dev in (("cpu", cpu), ("cuda", cuda)):
        m = copy.deepcopy(net).to(dev)
        reset_net(m)
        y = m(x.to(dev))
        y.sum().backward()
        res[key] = (y.detach().cpu(), [p.grad.cpu() for p in m.parameters() if p.grad is not None])
    (y1, g1), (y2, g2) = res["cpu"], res["cuda"]
    flips = float((y1 != y2).double().mean())
    dg = max((rel_diff(a, b) for a, b in zip(g2, g1)), default=0.0)
    report("float network forward/backward, CUDA (Triton) vs CPU", flips <= 5e-3 and dg <= 1e-2,
           f"max |d output| {max_diff(y1, y2):.1e} ({100 * flips:.3f} % of outputs differ), "
           f"max relative |d grad| {dg:.1e}")

    qat = quant.prepare(net, "generic_int8", clip=True)
    outs = []
    for dev in (cpu, cuda):
        m = copy.deepcopy(qat).to(dev).eval()
        reset_net(m)
        with torch.no_grad():
            outs.append(m(x.to(dev)).cpu())
    report("QAT forward (integer values), CUDA vs CPU: bit-exact", torch.equal(outs[0], outs[1]),
           f"{int((outs[0] != outs[1]).sum())} of {outs[0].numel()} outputs differ")

    for name, twin, xi in twins_and_inputs(20, 64):
        on_cpu = twin_run(twin, xi, None)  # auto: numba (or the twin's steps) on the CPU
        on_cuda = twin_run(copy.deepcopy(twin).to(cuda), xi.to(cuda), None)  # auto: Triton on CUDA
        report(f"integer twins on {name}: CUDA vs CPU bit-exact (outputs, states, saturations)",
               same_run(on_cpu, on_cuda))


# ------------------------------------------------------------------------------------------ 4. the main job
def check_main_job(device: str = "cuda") -> None:
    from hwsnn import cli

    tiny = ["--epochs", "1", "--qat-epochs", "1", "--train-samples", "256", "--test-samples", "64", "--no-progress",
            "--no-plots"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "o"
        status = cli.main(["run", *tiny, "--device", device, "--out", str(out)])
        report(f"hwsnn run --device {device}: bit-exact, fits", status == 0, f"exit status {status}")
        first = {str(p.relative_to(out)): p.read_bytes() for p in (out / "export").rglob("*") if p.is_file()}
        status = cli.main(["run", *tiny, "--device", "cpu", "--resume", "--out", str(out)])
        again = {str(p.relative_to(out)): p.read_bytes() for p in (out / "export").rglob("*") if p.is_file()}
        report(f"{device}-trained checkpoints give the same bundle bytes when exported again on the CPU",
               status == 0 and bool(first) and first == again, f"{len(first)} files, exit status {status}")


# ------------------------------------------------------------------------------------------ timings
def median_ms(fn: Callable[[], None], reps: int, device: torch.device, warmup: int = 2) -> float:
    """The median wall time of ``fn`` in ms (CUDA synchronized around every call)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2] * 1e3


def lif_rows(T: int, N: int, reps: int, cuda: torch.device = torch.device("cuda")) -> list[Row]:
    from hwsnn.neuron import LIFNode

    rows: list[Row] = []

    def step_of(node):
        x = torch.randn(T, N, device=cuda).requires_grad_()
        g = torch.randn(T, N, device=cuda)

        def step():
            node.reset()
            node(x).backward(g)
            x.grad = None

        return step

    def step_by_step():
        node = LIFNode(tau=2.0, step_mode="m")
        node._fused_multi_step = lambda x_seq: None  # no fused kernel: the autograd loop over t
        return node

    def spikingjelly():
        from spikingjelly.activation_based import neuron, surrogate

        return neuron.LIFNode(tau=2.0, step_mode="m", surrogate_function=surrogate.Sigmoid())

    for name, make in [("hwsnn triton", lambda: LIFNode(tau=2.0, step_mode="m", backend="triton")),
                       ("hwsnn torch kernels", lambda: LIFNode(tau=2.0, step_mode="m", backend="torch")),
                       ("hwsnn step-by-step autograd", step_by_step),
                       ("spikingjelly 2.0, backend torch", spikingjelly)]:
        try:
            rows.append((f"{name} ({cuda.type})", median_ms(step_of(make().to(cuda)), reps, cuda), ""))
        except Exception as exc:  # noqa: BLE001 - a missing peer is a row saying why
            rows.append((f"{name} ({cuda.type})", None, f"{type(exc).__name__}: {str(exc)[:80]}"))
    return rows


def training_rows(devices: list[torch.device], reps: int) -> list[Row]:
    """One Adam step of the default network (float and QAT on generic_int8), T = 20, batch 64."""
    import torch.nn.functional as F

    import quant
    from hwsnn.demo import default_network
    from hwsnn.functional import reset_net

    rows: list[Row] = []
    for what in ("float", "QAT"):
        for device in (torch.device("cuda"), torch.device("cpu")):
            name = f"default network, {what} step ({device.type})"
            if device not in devices:
                rows.append((name, None, "no CUDA device"))
                continue
            torch.manual_seed(0)
            x = (torch.rand(20, 64, 16, device=device) < 0.3).float()
            y = torch.randint(0, 10, (64,), device=device)
            net = default_network().to(device)
            model = net if what == "float" else quant.prepare(net, "generic_int8", clip=True).to(device)
            opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

            def step(model=model, opt=opt, x=x, y=y):
                model.train()
                loss = F.cross_entropy(model(x).mean(0) * 5, y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                reset_net(model)

            try:
                rows.append((name, median_ms(step, reps, device), ""))
            except Exception as exc:  # noqa: BLE001
                rows.append((name, None, f"{type(exc).__name__}: {exc}"))
                report(name, False, f"{type(exc).__name__}: {exc}")
    return rows


def print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n### {title}\n\n| what | median ms | note |\n|---|---:|---|")
    for name, ms, note in rows:
        print(f"| {name} | {'-' if ms is None else f'{ms:.2f}'} | {note} |")
    cuda = {n.rsplit(" (", 1)[0]: ms for n, ms, _ in rows if n.endswith("(cuda)") and ms}
    for n, ms, _ in rows:
        base = n.rsplit(" (", 1)[0]
        if n.endswith("(cpu)") and ms and base in cuda:
            print(f"\n{base}: CUDA {ms / cuda[base]:.1f}x faster than the CPU")


# ------------------------------------------------------------------------------------------ main
def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    gpu = torch.cuda.is_available() and not args.cpu
    if not gpu:
        if "triton" not in sys.modules:
            os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported: the kernels on CPU tensors
        why = "--cpu given" if args.cpu else "no CUDA device is available"
        print(f"gpu_check: {why}: running the CPU part only (Triton kernels under TRITON_INTERPRET=1 against the "
              "torch path, few cases; CPU timings); the CUDA checks and timings are skipped", flush=True)
    try:
        import triton
    except ImportError:
        print("gpu_check: Triton is not installed (pip install triton)", file=sys.stderr)
        return 2
    import hwsnn

    if args.threads:
        torch.set_num_threads(args.threads)
    reps = args.reps or (11 if gpu else 3)
    device = torch.device("cuda" if gpu else "cpu")
    card = torch.cuda.get_device_name(0) if gpu else "none (CPU tensors, TRITON_INTERPRET=1)"
    print(f"## hwsnn {hwsnn.__version__} GPU check\n\nGPU: {card}; torch {torch.__version__} "
          f"(CUDA {torch.version.cuda}); triton {triton.__version__}; CPU threads {torch.get_num_threads()}\n")
    small = args.quick or not gpu
    sizes = [7, 300] if small else [7, 257, 4099, 1 << 16]
    cases = 6 if not gpu else (10 if args.quick else 20)
    t_start = time.perf_counter()
    print("### correctness\n")
    from hwsnn.backend import triton_kernels as tk

    counter = Counter(tk, ("neuron_forward_triton", "neuron_backward_triton", "synapse_forward_triton",
                           "synapse_backward_triton"))
    try:
        guarded("neuron kernels", lambda: check_neuron_kernels(device, cases, sizes))
        guarded("synapse kernels", lambda: check_synapse_kernels(device, sizes))
        guarded("modules", lambda: check_modules(device))
    finally:
        calls = counter.restore()
    report("the float Triton kernels ran (calls per entry point)", all(v > 0 for v in calls.values()), str(calls))
    guarded("integer kernels", lambda: check_integer_kernels(device, *((20, 32) if gpu else (6, 3))))
    if gpu:
        guarded("CUDA vs CPU", check_cuda_vs_cpu)
        guarded("main job on CUDA", check_main_job)
        T, N = (64, 1 << 18) if args.quick else (64, 1 << 20)
        print_rows(f"bare LIF [T={T}, N={N}], forward + backward", lif_rows(T, N, reps))
    print_rows("one training step of the default network, T=20, batch 64 (Adam)",
               training_rows([device, torch.device("cpu")], reps))
    print(f"\n{time.perf_counter() - t_start:.0f} s in all")
    if FAILURES:
        print(f"{len(FAILURES)} CHECK(S) FAILED: " + "; ".join(FAILURES))
        return 1
    print("ALL CHECKS PASSED" + ("" if gpu else " (the CPU part; no CUDA checks ran)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
