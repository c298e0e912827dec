"""The ``hwsnn`` command line.

* ``hwsnn run``: the main job on the embedded default task: float training, conversion to the
  integer twins of a target, export, cycle-level simulation of the held-out set and the bit-exact
  report (QAT joins in the next release).
* ``hwsnn export OUT``: the same up to the export directory (with the held-out set as test vectors).
* ``hwsnn simulate DIR``: run the NumPy simulator on an export (its test vectors or ``--inputs``).
* ``hwsnn report DIR``: simulator vs the torch twin rebuilt from the export's tables, bit for bit.
* ``hwsnn targets list|show NAME|validate FILE...``: list, print and check chip descriptions.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__

__all__ = ["main", "build_parser"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwsnn", description="Hardware-oriented spiking neural networks.")
    parser.add_argument("--version", action="version", version=f"hwsnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the main job on the embedded default task")
    run.add_argument("--epochs", type=_positive_int, default=15, help="training epochs (default: 15)")
    run.add_argument("--seed", type=int, default=0, help="seed of data, weights and masks (default: 0)")
    run.add_argument("--train-samples", type=_positive_int, default=2000, help="training samples (default: 2000)")
    run.add_argument("--test-samples", type=_positive_int, default=500, help="held-out samples (default: 500)")
    run.add_argument("--target", default="generic_int8", help="target name or YAML file (default: generic_int8)")
    run.add_argument("--out", default="hwsnn-out", help="output directory: export/ and report/ (default: hwsnn-out)")
    run.add_argument("--no-plots", action="store_true", help="no report plots")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

    exp = sub.add_parser("export", help="train the default network, convert it and export its integer tables")
    exp.add_argument("out", help="export directory to create")
    exp.add_argument("--target", default="generic_int8", help="target name or YAML file (default: generic_int8)")
    exp.add_argument("--epochs", type=_positive_int, default=15, help="training epochs (default: 15)")
    exp.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    exp.add_argument("--train-samples", type=_positive_int, default=2000, help="training samples (default: 2000)")
    exp.add_argument("--test-samples", type=_positive_int, default=500, help="held-out samples kept as test vectors (default: 500)")
    exp.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    exp.add_argument("--no-hex", action="store_true", help="no hex/*.mem files")
    exp.add_argument("--no-progress", action="store_true", help="no progress bars")

    simp = sub.add_parser("simulate", help="run the cycle-level simulator on an export directory")
    simp.add_argument("export", help="export directory")
    simp.add_argument("--inputs", help=".npy file of integer inputs [T, N, ...] (default: the export's test vectors)")
    simp.add_argument("--labels", help=".npy file of integer labels [N] (default: the export's)")
    simp.add_argument("--record", default="output", choices=["none", "output", "layers", "states"], help="what to keep (default: output)")
    simp.add_argument("--save", help="write outputs and counters to this .npz file")
    simp.add_argument("--chunk", type=_positive_int, default=64, help="time steps per chunk (default: 64)")
    simp.add_argument("--no-progress", action="store_true", help="no progress bars")

    rep = sub.add_parser("report", help="bit-exact report: simulator vs the torch twin of the exported tables")
    rep.add_argument("export", help="export directory")
    rep.add_argument("--inputs", help=".npy file of integer inputs [T, N, ...] (default: the export's test vectors)")
    rep.add_argument("--labels", help=".npy file of integer labels [N] (default: the export's)")
    rep.add_argument("--out", help="report directory (default: <export>/../report)")
    rep.add_argument("--no-plots", action="store_true", help="no plots")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")

    tgt = sub.add_parser("targets", help="list, show or validate chip target descriptions")
    tsub = tgt.add_subparsers(dest="targets_command", required=True)
    tsub.add_parser("list", help="the shipped targets, one line each")
    show = tsub.add_parser("show", help="the resolved parameters of a target (name or YAML path)")
    show.add_argument("name", help="a shipped target name (see `hwsnn targets list`) or a path to a .yaml file")
    val = tsub.add_parser("validate", help="check a target YAML file; lists every problem")
    val.add_argument("file", nargs="+", help="target YAML file(s)")
    return parser


def _targets(args: argparse.Namespace) -> int:
    import yaml

    import targets

    if args.targets_command == "list":
        rows = [(name, targets.load(name)) for name in targets.available()]
        width = max(len(name) for name, _ in rows)
        print(f"{'name':<{width}}  description")
        for name, t in rows:
            print(f"{name:<{width}}  {t.description}")
        print(f"\n{len(rows)} targets in {targets.target_dir()}")
        return 0
    if args.targets_command == "show":
        try:
            t = targets.load(args.name)
        except targets.TargetError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(yaml.safe_dump(targets.to_dict(t), sort_keys=False, default_flow_style=None).rstrip())
        unverified = [k for k, f in vars(t.costs).items() if not f.verified]
        if unverified:
            print(f"# unverified figures: {', '.join(unverified)}")
        return 0
    status = 0
    for path in args.file:
        try:
            t = targets.load(path if path.endswith((".yaml", ".yml")) or "/" in path else f"./{path}")
        except targets.TargetError as exc:
            print(exc, file=sys.stderr)
            status = 1
        else:
            print(f"{path}: OK (target {t.name!r})")
    return status


def _train(args: argparse.Namespace):
    import torch

    from .demo import DemoConfig, run_float_demo

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    config = DemoConfig(epochs=args.epochs, seed=args.seed, train_samples=args.train_samples, test_samples=args.test_samples)
    print(
        f"hwsnn {__version__} main job on the embedded task: {config.classes} spike-pattern classes, "
        f"{config.channels} channels, T={config.T}, {config.train_samples} train / {config.test_samples} held-out samples"
    )
    result = run_float_demo(config, progress=not args.no_progress)
    print(f"  float training: {config.epochs} epochs in {result.seconds:.1f} s, final loss {result.final_loss:.4f}, "
          f"held-out accuracy {100 * result.test_accuracy:.1f} %")
    return config, result


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _fail(exc: Exception) -> int:
    print(f"hwsnn: error: {exc}", file=sys.stderr)
    return 2


def _target(args: argparse.Namespace):
    """The ``--target`` of ``run``/``export``, or None after printing why it cannot be loaded."""
    import targets

    try:
        return targets.load(args.target)
    except targets.TargetError as exc:
        _fail(exc)
        return None


def _run(args: argparse.Namespace) -> int:
    from quant.job import integer_stages

    target = _target(args)
    if target is None:
        return 2
    _, result = _train(args)
    try:
        stages = integer_stages(result.net, target, args.out, result.x_test, result.y_test, seed=args.seed,
                                progress=not args.no_progress, plots=not args.no_plots)
    except (ValueError, TypeError) as exc:
        return _fail(exc)
    rep = stages["report"]
    acc = rep.get("accuracy", {})
    costs = rep.get("costs", {})

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.1f} %"

    print()
    _table([
        ("stage", "result"),
        ("float accuracy (held-out)", pct(result.test_accuracy)),
        ("QAT accuracy", "not in this release (see README roadmap)"),
        (f"integer accuracy (sim, {target.name})", pct(acc.get("sim"))),
        ("bit-exact (sim vs twin)", "yes" if rep.get("bit_exact") else "NO, see the report"),
        ("cycles per step (mean)", f"{costs.get('cycles_per_step_mean', float('nan')):.0f}"),
        ("energy per inference", f"{costs.get('energy_per_inference_j', float('nan')) * 1e9:.3g} nJ"
         + (" (unverified figures)" if costs.get("unverified_figures") else "")),
        ("fits the target", "yes" if rep.get("fit", {}).get("fits") else "no: " + "; ".join(rep.get("fit", {}).get("problems", []))),
        ("output directory", str(args.out)),
    ])
    return 0 if rep.get("bit_exact") else 1


def _export(args: argparse.Namespace) -> int:
    from quant.job import export_stage

    target = _target(args)
    if target is None:
        return 2
    _, result = _train(args)
    try:
        twin, path = export_stage(result.net, target, args.out, result.x_test, result.y_test, seed=args.seed,
                                  overwrite=args.overwrite, hex_files=not args.no_hex)
    except (ValueError, TypeError, FileExistsError, FileNotFoundError) as exc:
        return _fail(exc)
    print(f"  exported {len(twin)} layers for {target.name} to {path} (test vectors: {result.x_test.shape[1]} samples)")
    return 0


def _inputs(args: argparse.Namespace, export):
    import numpy as np

    from sim.bundle import load_examples

    examples = load_examples(export)
    if args.inputs:
        x = np.load(args.inputs, allow_pickle=False)
    elif "inputs" in examples:
        x = examples["inputs"]
    else:
        raise ValueError(f"{export.path} has no test vectors; pass --inputs FILE.npy")
    if args.labels:
        labels = np.load(args.labels, allow_pickle=False)
    else:  # the export's labels belong to its own test vectors only
        labels = None if args.inputs else examples.get("labels")
    return x, labels


def _simulate(args: argparse.Namespace) -> int:
    import numpy as np

    import sim

    try:
        ex = sim.load_export(args.export)
        x, labels = _inputs(args, ex)
        r = sim.run(ex, x, record=args.record, chunk=args.chunk, progress=not args.no_progress)
    except (ValueError, TypeError, OSError) as exc:
        return _fail(exc)
    c = r.costs
    rows = [
        ("target", r.target),
        ("steps x samples", f"{r.steps} x {r.batch}"),
        ("simulation wall time", f"{r.wall_seconds:.2f} s ({r.steps * r.batch / max(r.wall_seconds, 1e-9):.0f} sample-steps/s)"),
        ("cycles per step (mean / max)", f"{c['cycles_per_step_mean']:.0f} / {c['cycles_per_step_max']:.0f}"),
        ("latency per step", f"{c['latency_per_step_s'] * 1e6:.3g} us at {c['clock_hz'] / 1e6:.4g} MHz"),
        ("real-time factor", f"{c['real_time_factor']:.3g} (dt = {c['dt_s'] * 1e3:.3g} ms)"),
        ("energy per inference", f"{c['energy_per_inference_j'] * 1e9:.4g} nJ" + (" (unverified figures)" if c["unverified_figures"] else "")),
        ("synaptic events / inference", f"{c['synaptic_events_per_inference']:.0f}"),
        ("saturations", ", ".join(f"{k}: {sum(v.values())}" for k, v in r.saturations.items() if sum(v.values())) or "none"),
        ("fits the target", "yes" if r.fit["fits"] else "NO: " + "; ".join(r.fit["problems"])),
    ]
    if labels is not None:
        rows.insert(2, ("accuracy", f"{100 * float((r.predictions() == np.asarray(labels)).mean()):.1f} %"))
    _table(rows)
    if args.save:
        arrays = {"output_sum": r.output_sum, "predictions": r.predictions()}
        if r.output is not None:
            arrays["output"] = r.output
        for layer, tr in r.traces.items():
            for k, v in tr.items():
                arrays[f"{layer}/{k}"] = v
        for layer, lc in r.counters.items():
            arrays[f"{layer}/synaptic_events"] = lc.synaptic_events
            arrays[f"{layer}/neuron_updates"] = lc.neuron_updates
        _save_npz(args.save, arrays)
        print(f"  saved {len(arrays)} arrays to {args.save}")
    return 0


def _save_npz(path: str, arrays: dict) -> None:
    import os
    import tempfile

    import numpy as np

    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    import sim
    from quant.report import make_report
    from quant.twin import load_twin

    try:
        ex = sim.load_export(args.export)
        x, labels = _inputs(args, ex)
        twin = load_twin(ex)
        out = Path(args.out) if args.out else Path(args.export).absolute().parent / "report"
        rep = make_report(twin, ex.path, torch.from_numpy(x.astype("int64")),
                          labels=None if labels is None else torch.from_numpy(labels.astype("int64")),
                          out_dir=out, plots=not args.no_plots, progress=not args.no_progress)
    except (ValueError, TypeError, OSError) as exc:
        return _fail(exc)
    print(f"  bit-exact: {'yes' if rep.get('bit_exact') else 'NO'}; report in {out}")
    return 0 if rep.get("bit_exact") else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "targets":
        return _targets(args)
    if args.command == "export":
        return _export(args)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "report":
        return _report(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse guarantees a known command


if __name__ == "__main__":
    sys.exit(main())
