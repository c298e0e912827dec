"""The ``hwsnn`` command line.

``hwsnn run`` is the main job. In this release it runs its float stage on the embedded default
task (train the default network, report held-out accuracy); QAT, conversion to integer twins,
export, cycle-level simulation and the bit-exact report join it in the next releases.

``hwsnn targets list|show NAME|validate FILE...`` lists, prints and checks chip descriptions.
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
    run.add_argument("--no-progress", action="store_true", help="no progress bars")

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


def _run(args: argparse.Namespace) -> int:
    import torch

    from .demo import DemoConfig, run_float_demo

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    config = DemoConfig(epochs=args.epochs, seed=args.seed, train_samples=args.train_samples, test_samples=args.test_samples)
    print(
        f"hwsnn {__version__} main job on the embedded task: {config.classes} spike-pattern classes, "
        f"{config.channels} channels, T={config.T}, {config.train_samples} train / {config.test_samples} held-out samples"
    )
    result = run_float_demo(config, progress=not args.no_progress)
    rows = [
        ("stage", "result"),
        ("float training", f"{config.epochs} epochs in {result.seconds:.1f} s, final loss {result.final_loss:.4f}"),
        ("float accuracy (train)", f"{100 * result.train_accuracy:.1f} %"),
        ("float accuracy (held-out)", f"{100 * result.test_accuracy:.1f} %"),
        ("QAT, integer twin, export, simulation, report", "not in this release (see README roadmap)"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    if args.command == "targets":
        return _targets(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse guarantees a known command


if __name__ == "__main__":
    sys.exit(main())
