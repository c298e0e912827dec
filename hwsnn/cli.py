"""The ``hwsnn`` command line.

* ``hwsnn run [--config run.yaml]``: the main job (:mod:`quant.job`): float training, calibration
  and QAT with Brevitas for a target, conversion to the integer twins, export, cycle-level
  simulation of the held-out set and the bit-exact report, then a summary table. Default: the
  embedded digits task (scikit-learn's bundled 8x8 digits as spike trains).
* ``hwsnn export OUT``: the same up to the export directory (with the held-out set as test vectors).
* ``hwsnn verify DIR``: check every file of a bundle against its digest (like ``sha256sum -c``).
* ``hwsnn simulate DIR``: run the NumPy simulator on an export (its test vectors or ``--inputs``).
* ``hwsnn report DIR``: the three checks of the proof: files = digest, simulator = the twin rebuilt
  from the export, simulator = the reference outputs recorded at export.
* ``hwsnn targets list|show NAME|validate FILE...``: list, print and check chip descriptions.
* ``hwsnn formats``: the vendor views ``hwsnn export --format NAME`` can write (``netx``: lava-dl netx HDF5).
* ``hwsnn import-netx FILE.h5 OUT``: a lava-dl netx HDF5 file as a ``loihi`` export (:func:`quant.from_netx`).

Exit status (every command):

====  =====================================================================================
0     success: done, verified, bit-exact (and, for ``run``, the network fits the target)
1     the proof failed: the simulator differs from the twin or from the recorded reference
2     bad input or usage: a flag, a run file, a target, a data array, a path (checked before
      any training)
3     a corrupt or tampered bundle: a file, table or manifest field differs from its digest
4     ``run``: the network does not fit the target (the report says why)
70    an internal error (a bug in hwsnn: please report it with ``HWSNN_DEBUG=1`` set); also a
      rank of a ``torchrun`` job that stopped because another rank failed (that rank prints its
      own error and status)
130   interrupted (Ctrl-C)
====  =====================================================================================
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from . import __version__
from .cli_checks import InputError

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_PROOF_FAILED", "EXIT_BAD_INPUT", "EXIT_BUNDLE", "EXIT_DOES_NOT_FIT",
           "EXIT_INTERNAL", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_PROOF_FAILED, EXIT_BAD_INPUT, EXIT_BUNDLE, EXIT_DOES_NOT_FIT = 0, 1, 2, 3, 4
EXIT_INTERNAL, EXIT_INTERRUPTED = 70, 130


def _int_at_least(low: int):
    """An argparse type: an integer >= ``low``, else a message naming the bound."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_non_negative_int = _int_at_least(0)


def _job_arguments(p: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``export``: a run file and the overrides of its keys."""
    p.add_argument("--config", help="run file (YAML) describing data, network, target and training; "
                                    "see examples/run.yaml (default: the embedded digits task)")
    p.add_argument("--target", help="target name or YAML file (default: the config's, generic_int8)")
    p.add_argument("--epochs", type=_positive_int, help="float training epochs (default: the config's, 40)")
    p.add_argument("--qat-epochs", type=_non_negative_int, help="QAT epochs, 0 to skip (default: the config's; 3, or 6 on Xylo targets)")
    p.add_argument("--seed", type=_non_negative_int, help="seed of data split, weights, order and masks (default: 0)")
    p.add_argument("--train-samples", type=_positive_int, help="use only the first N training samples")
    p.add_argument("--test-samples", type=_positive_int, help="use only the first N held-out samples")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--model", metavar="FILE.nir", help="a trained model as a NIR graph (snnTorch, SpikingJelly, ...) "
                                                       "instead of the run file's network; float training is skipped "
                                                       "unless --epochs is given (needs hwsnn[nir])")
    p.add_argument("--dt", type=float, help="with --model: the time step in seconds the graph was written for "
                                            "(default: the graph's hwsnn metadata; snnTorch/SpikingJelly write 1e-4)")
    p.add_argument("--reset", choices=["zero", "subtract"], help="with --model: the reset of every spiking neuron "
                                                                 "(default: the metadata's, else the NIR version's)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where training and QAT run (default auto: a GPU when torch sees one); under torchrun each "
                        "process uses the GPU of its local rank")
    p.add_argument("--resume", action="store_true",
                   help="load the checkpoints of an earlier run with the same settings instead of training")
    p.add_argument("--checkpoints", metavar="DIR",
                   help="checkpoint directory (default for run: <out>/checkpoints; export: none)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwsnn", description="Hardware-oriented spiking neural networks.")
    parser.add_argument("--version", action="version", version=f"hwsnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the main job: float training, QAT, conversion, export, simulation, report")
    _job_arguments(run)
    run.add_argument("--out", help="output directory: export/ and report/ (default: the config's, hwsnn-out)")
    run.add_argument("--no-plots", action="store_true", help="no report plots")

    exp = sub.add_parser("export", help="the main job up to the export of the integer tables")
    exp.add_argument("out", help="export directory to create")
    _job_arguments(exp)
    exp.add_argument("--overwrite", action="store_true", help="replace an existing directory")
    exp.add_argument("--no-hex", action="store_true", help="no hex/*.mem files")
    exp.add_argument("--format", action="append", default=[], metavar="NAME",
                     help="also write this vendor view into the bundle (repeatable; see `hwsnn formats`)")

    sub.add_parser("formats", help="the vendor views `hwsnn export --format` can write")

    imp = sub.add_parser("import-netx", help="a lava-dl netx HDF5 file (Loihi) as an hwsnn export (simulate, report)")
    imp.add_argument("file", help="the netx .h5 file (as lava-dl's slayer writes it)")
    imp.add_argument("out", help="export directory to create")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing directory")

    simp = sub.add_parser("simulate", help="run the cycle-level simulator on an export directory")
    simp.add_argument("export", help="export directory")
    simp.add_argument("--inputs", help=".npy file of integer inputs [T, N, ...] (default: the export's test vectors)")
    simp.add_argument("--labels", help=".npy file of integer labels [N] (default: the export's)")
    simp.add_argument("--record", default="output", choices=["none", "output", "layers", "states"], help="what to keep (default: output)")
    simp.add_argument("--save", help="write outputs and counters to this .npz file")
    simp.add_argument("--chunk", type=_positive_int, default=64, help="time steps per chunk (default: 64)")
    simp.add_argument("--no-progress", action="store_true", help="no progress bars")

    ver = sub.add_parser("verify", help="check every file of a bundle against its digest (like sha256sum -c)")
    ver.add_argument("export", help="export directory")
    ver.add_argument("--quiet", action="store_true", help="print only the digest line (or the errors)")

    rep = sub.add_parser("report", help="the proof: files = digest, simulator = twin, simulator = recorded reference")
    rep.add_argument("export", help="export directory")
    rep.add_argument("--inputs", help=".npy file of integer inputs [T, N, ...] (default: the export's test vectors)")
    rep.add_argument("--labels", help=".npy file of integer labels [N] (default: the export's)")
    rep.add_argument("--out", help="report directory (default: <export>/../report, or <export>/../report-check "
                                   "when that holds the current report of `hwsnn run`)")
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
        unverified = [k for k, f in vars(t.costs).items() if isinstance(f, targets.Figure) and not f.verified]
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


def _table(rows: list[tuple[str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def _fail(exc: Exception, status: int = EXIT_BAD_INPUT) -> int:
    print(f"hwsnn: error: {exc}", file=sys.stderr)
    return status


def _warn(text: str) -> None:
    print(f"hwsnn: warning: {text}", file=sys.stderr)


def _job_config(args: argparse.Namespace):
    """The run file (or the defaults) with the command line's overrides applied."""
    import dataclasses

    from .config import RunConfig, load_run_config, run_config_from_dict

    config = load_run_config(args.config) if args.config else RunConfig()
    d = config.to_dict()
    for key, value in (("target", args.target), ("seed", args.seed), ("out", getattr(args, "out", None))):
        if value is not None:
            d[key] = value
    for key, value in (("epochs", args.epochs), ("qat_epochs", args.qat_epochs)):
        if value is not None:
            d["training"][key] = value
    for key, value in (("train_samples", args.train_samples), ("test_samples", args.test_samples)):
        if value is not None:
            d["data"][key] = value
    new = run_config_from_dict(d, source=config.source)
    return dataclasses.replace(new, source=config.source)


def _job(args: argparse.Namespace, *, export_only: bool):
    """Build the config and run the job; returns ``(result, None)`` or ``(None, exit status)``."""
    import torch

    from quant.job import run_job
    from targets import TargetError

    from .config import ConfigError

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    try:
        config = _job_config(args)
    except (ConfigError, TargetError) as exc:
        return None, _fail(exc)
    what = f"run file {args.config}" if args.config else "the embedded digits task"
    session = args.session
    print(f"hwsnn {__version__} main job on {what}, target {config.target}, seed {config.seed}; training on "
          f"{session.describe()}")
    from pathlib import Path

    extra: dict = {}
    if args.model is None and (args.dt is not None or args.reset is not None):
        raise InputError("--dt and --reset describe a NIR model: give them with --model FILE.nir")
    if args.model is not None:
        from .nir.cli import load_job_model

        model, dt, summary = load_job_model(args.model, dt=args.dt, reset=args.reset, target=config.target)
        print(f"  {summary}")
        extra = dict(model=model, dt=dt, train_float=args.epochs is not None)
    result = run_job(config, progress=not args.no_progress, plots=not getattr(args, "no_plots", True),
                     export_only=export_only, overwrite=getattr(args, "overwrite", True),
                     export_dir=Path(args.out) if export_only else None, hex_files=not getattr(args, "no_hex", False),
                     session=session, resume=args.resume, checkpoint_dir=args.checkpoints and Path(args.checkpoints),
                     formats=tuple(getattr(args, "format", ())), **extra)
    return result, None


def _run(args: argparse.Namespace) -> int:
    from quant.job import summary_rows

    result, status = _job(args, export_only=False)
    if result is None:
        return status
    print()
    _table(summary_rows(result))
    if not result.bit_exact:
        return EXIT_PROOF_FAILED
    return EXIT_OK if result.fits else EXIT_DOES_NOT_FIT


def _export(args: argparse.Namespace) -> int:
    from quant.views import add_view, available_views, unknown_view_message

    views = available_views()
    for name in args.format:  # checked before any training
        if name not in views:
            raise InputError(f"--format {name}: {unknown_view_message(name, views)}")
    result, status = _job(args, export_only=True)
    if result is None:
        return status
    print(f"  exported {len(result.conversion)} layers for {result.target} to {result.export}")
    digest = result.digest
    for name in args.format if args.session.is_main else ():  # rank 0 writes the bundle
        bundle = add_view(result.export, name)
        digest = bundle.digest
        print(f"  view {name}: {', '.join(bundle.manifest['views'][name]['files'])}")
    print(f"  bundle {digest}")
    return EXIT_OK


def _formats(args: argparse.Namespace) -> int:
    from quant.views import available_views, missing_view_modules

    views = available_views()
    if not views:
        print("no vendor views are installed")
    for name, view in sorted(views.items()):
        print(f"{name:<16} {view.description}")
    for mod, why in sorted(missing_view_modules().items()):
        print(f"(not installed: {mod}: {why})")
    return EXIT_OK


def _import_netx(args: argparse.Namespace) -> int:
    from quant.netx import from_netx

    res = from_netx(args.file, args.out, overwrite=args.overwrite)
    print(f"  imported {args.file}: {len(res.twin)} twin layers for loihi, input {list(res.input_shape)}")
    print(f"  export {res.export} (the netx file inside it as the 'netx' view)")
    return EXIT_OK


def _load(path: str, deep: bool = False):
    """Recover an interrupted write (reported), then load and verify the bundle."""
    import sim
    from targets.bundle import recover

    from pathlib import Path

    here = Path(path).absolute()
    for p in (here, here.parent / "report", here.parent / "report-check"):  # the bundle and its reports
        for action in recover(p):
            _warn(action)
    return sim.load_export(path, deep=deep)


def _report_dir(export_path):
    """The report directory of ``hwsnn run`` beside an export: ``<export>/../report``."""
    from pathlib import Path

    return Path(export_path).absolute().parent / "report"


def _check_stale(bundle) -> None:
    from .cli_checks import stale_report

    msg = stale_report(_report_dir(bundle.path), bundle.digest)
    if msg:
        _warn(msg)


def _inputs(args: argparse.Namespace, bundle):
    from .cli_checks import integer_inputs, integer_labels, load_array

    examples = bundle.examples()
    spec = bundle.network
    if args.inputs:
        x = integer_inputs(load_array(args.inputs, "--inputs"), spec.input_shape, spec.input_kind)
    elif "inputs" in examples:
        x = examples["inputs"]
    else:
        raise InputError(f"{bundle.path} has no test vectors; pass --inputs FILE.npy")
    classes = int(spec.ops[-1].output_shape[-1]) if spec.ops[-1].output_shape else 1
    if args.labels:
        labels = integer_labels(load_array(args.labels, "--labels"), x.shape[1], classes)
    else:  # the export's labels belong to its own test vectors only
        labels = None if args.inputs else examples.get("labels")
    return x, labels


def _verify(args: argparse.Namespace) -> int:
    bundle = _load(args.export, deep=True)
    if not args.quiet:
        for name in sorted(bundle.manifest["files"]):
            print(f"{name}: OK")
        print(f"manifest.json: OK ({len(bundle.ops)} layers, {len(bundle.tables)} tables, target {bundle.target.name})")
        _check_stale(bundle)
    print(f"{bundle.digest}  {bundle.path}")
    return EXIT_OK


def _simulate(args: argparse.Namespace) -> int:
    import numpy as np

    import sim

    ex = _load(args.export)
    _check_stale(ex)
    x, labels = _inputs(args, ex)
    r = sim.run(ex, x, record=args.record, chunk=args.chunk, progress=not args.no_progress)
    c = r.costs
    rows = [
        ("target", r.target),
        ("bundle", ex.digest),
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
        rows.insert(3, ("accuracy", f"{100 * float((r.predictions() == np.asarray(labels)).mean()):.1f} %"))
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
    return EXIT_OK


def _save_npz(path: str, arrays: dict) -> None:
    import os
    import tempfile

    import numpy as np

    from .cli_checks import check_writable

    d = os.path.dirname(os.path.abspath(path))
    check_writable(d, "--save")
    if not os.path.isdir(d):
        raise InputError(f"--save {path}: the directory {d} does not exist")
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

    from quant.report import make_report
    from quant.twin import load_twin
    from sim.report import check_report_destination, read_report

    ex = _load(args.export, deep=True)
    if args.out:
        out = Path(args.out)
    else:
        out = _report_dir(ex.path)
        prev = read_report(out)
        if prev is not None and prev.get("producer") == "hwsnn run" and prev.get("bundle_digest") == ex.digest:
            out = out.parent / "report-check"  # never overwrite the richer report of `hwsnn run`
    check_report_destination(out)
    x, labels = _inputs(args, ex)
    twin = load_twin(ex)
    rep = make_report(twin, ex, torch.from_numpy(x.astype("int64")),
                      labels=None if labels is None else torch.from_numpy(labels.astype("int64")),
                      out_dir=out, plots=not args.no_plots, progress=not args.no_progress, producer="hwsnn report")
    print(f"  {rep['headline']}")
    print(f"  bundle {ex.digest}; report in {out}")
    return EXIT_OK if rep.get("bit_exact") else EXIT_PROOF_FAILED


def _in_session(args: argparse.Namespace, command) -> int:
    """Run ``command`` (run, export) in a training session (:mod:`quant.distributed`): under
    ``torchrun`` a process group, output and files from rank 0 only, and rank 0's exit status on
    every rank."""
    from quant.distributed import PeerFailure, start_session

    try:
        with start_session(args.device) as session:
            args.session = session
            return int(session.share(command(args)))
    except PeerFailure as exc:
        return _fail(exc, EXIT_INTERNAL)


def _dispatch(args: argparse.Namespace) -> int:
    commands = {"run": _run, "targets": _targets, "export": _export, "verify": _verify, "simulate": _simulate,
                "report": _report, "formats": _formats, "import-netx": _import_netx}
    if args.command in ("run", "export"):
        return _in_session(args, commands[args.command])
    return commands[args.command](args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; returns its exit status (see the module docstring). Bad input never ends in
    a traceback, and an internal error never shares its status with "not bit-exact"."""
    import os

    from targets import TargetError
    from targets.bundle import BundleError, NotABundleError

    args = build_parser().parse_args(argv)  # usage errors: argparse exits with status 2
    try:
        return _dispatch(args)
    except NotABundleError as exc:
        return _fail(exc, EXIT_BAD_INPUT)
    except BundleError as exc:
        return _fail(exc, EXIT_BUNDLE)
    except KeyboardInterrupt:
        print("hwsnn: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (InputError, TargetError, FileExistsError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
            PermissionError, ImportError, ValueError, TypeError) as exc:
        if os.environ.get("HWSNN_DEBUG"):
            raise
        return _fail(exc)
    except Exception as exc:  # a bug: say so, with its own status
        if os.environ.get("HWSNN_DEBUG"):
            raise
        print(f"hwsnn: internal error (a bug in hwsnn, not in your input): {type(exc).__name__}: {exc}\n"
              "  run again with HWSNN_DEBUG=1 for the traceback, and please report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
