"""Quantization error of each integer twin against its float layer, per target.

Every layer gets the same inputs on both sides: the twin's integer input, and its exact real value
for the float layer, so the table shows the error the layer itself adds (rounded decays and
thresholds, narrow widths, saturation), not the error of quantizing its input.

    python benchmarks/twin_error.py [--t 100] [--n 256] [--seed 0]
"""

from __future__ import annotations

import argparse
import math

import torch

import hwsnn.layer as L
import hwsnn.neuron as N
from hwsnn.fixed import FitError
from hwsnn.fixed.compare import TwinError, compare
from hwsnn.functional import set_step_mode

TARGETS = ("ideal", "generic_int8", "loihi", "xylo")


def _neuron(kind: str, target: str) -> torch.nn.Module:
    v_reset = 0.0 if target == "loihi" else None  # Loihi resets to zero only; the others subtract
    if kind == "LIFNode":
        return N.LIFNode(tau=8.0, decay_input=False, v_reset=v_reset)
    if kind == "IFNode":
        return N.IFNode(v_reset=v_reset)
    return N.CubaLIFNode(tau_syn=4.0, tau_mem=8.0, v_reset=v_reset)


def _input_current(twin, T: int, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random currents on the twin's input grid: (integer, real value)."""
    e = twin.input_exponent
    x = (torch.randn(T, n, generator=g) * 0.3 + 0.12).clamp(-1, 1)
    q = torch.round(x * 2.0**-e).to(torch.int64)
    return q, q.to(torch.float64) * 2.0**e


def measure(kind: str, target: str, T: int, n: int, seed: int) -> TwinError:
    """Run one layer kind on one target; raise FitError/ValueError when the target refuses it."""
    g = torch.Generator().manual_seed(seed)
    if kind in ("LIFNode", "IFNode", "CubaLIFNode"):
        layer = _neuron(kind, target).double()
        twin = layer.to_fixed(target, name=kind)
        q, x = _input_current(twin, T, n, g)
        set_step_mode(layer, "m")
        set_step_mode(twin, "m")
        return compare(layer(x), twin(q), 0, twin=twin, spikes=True)
    spikes = (torch.rand(T, 2, n, generator=g) < 0.2).to(torch.int8)
    if kind.startswith("SynapseFilter"):
        tau = float(kind.split("tau=")[1].rstrip(")"))
        layer = L.SynapseFilter(tau=tau, step_mode="m", backend="torch").double()
        twin = layer.to_fixed(target, name=kind)
        return compare(layer(spikes.double()), twin(spikes), twin.exponents["out_i"], twin=twin)
    torch.manual_seed(seed)
    layer = L.Linear(n, 64, step_mode="m").double()
    twin = layer.to_fixed(target, name=kind, first_layer=True)
    twin.step_mode = "m"
    out = twin(spikes)
    if not torch.is_tensor(out):
        raise ValueError("the dense twin hands per-event synaptic input to the neuron on this target (no sum to compare)")
    expected = layer(spikes.double())
    latency = twin.latency
    if latency:  # the chip's sum of step t arrives at t + latency
        expected = torch.cat([torch.zeros_like(expected[:latency]), expected[:-latency]])
    return compare(expected, out, twin.output_exponent, twin=twin)


def _note(kind: str, target: str) -> str:
    if kind == "CubaLIFNode" and target == "xylo":
        return ("Xylo adds the input before the current decays (current gain 1 - 2^-k_syn, to fold into the weights) "
                "and fires up to 31 spikes per step where the float layer fires 1")
    if kind == "SynapseFilter(tau=100)":
        return "tau 100 runs as 2^7 = 128"
    if kind == "Linear" and target == "loihi":
        return "compared with the float output one step later (Dense latency)"
    return ""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--t", type=int, default=100)
    p.add_argument("--n", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(2)
    print(f"Twin vs float, T={args.t}, {args.n} neurons/inputs, seed {args.seed}\n")
    print("| layer | target | max abs error | RMSE | spikes equal | saturations | note |")
    print("|---|---|---|---|---|---|---|")
    # tau=16 is a power of two (the error is rounding alone); tau=100 runs as 128 (the report says so)
    for kind in ("IFNode", "LIFNode", "CubaLIFNode", "SynapseFilter(tau=16)", "SynapseFilter(tau=100)", "Linear"):
        for target in TARGETS:
            try:
                r = measure(kind, target, args.t, args.n, args.seed)
            except (FitError, ValueError) as exc:
                note = str(exc).split(". ")[0].replace("|", "/")
                print(f"| {kind} | {target} | - | - | - | - | refused: {note} |")
                continue
            agree = "-" if r.spike_agreement is None else f"{100 * r.spike_agreement:.2f} %"
            sat = sum(r.saturations.values())
            rmse = f"{r.rmse:.3g}" if math.isfinite(r.rmse) else "nan"
            note = _note(kind, target)
            print(f"| {kind} | {target} | {r.max_abs:.3g} | {rmse} | {agree} | {sat} | {note} |")


if __name__ == "__main__":
    main()
