"""The main job, stage by stage: float training -> calibration + QAT -> conversion -> export ->
cycle-level simulation -> report.

:func:`run_job` runs it for a :class:`hwsnn.config.RunConfig` (``hwsnn run``; ``hwsnn export``
stops after the export). Each stage prints one summary line (and a progress bar where it loops);
the returned :class:`JobResult` holds the numbers of the final summary table
(:func:`summary_rows`).

The QAT accuracy is measured with the prepared model, whose forward is the integer twin's
(:mod:`quant.prepare`), so it equals the integer accuracy of the simulator when the report says
bit-exact; the float reference of the report is the float network with the QAT-tuned weights.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
import torch.nn as nn

from .convert import conversion_table, format_conversion_table
from .export import export, load_export, network_spec
from .prepare import prepare

__all__ = ["JobResult", "run_job", "summary_rows", "float_copy", "preflight", "PreflightError", "input_kind", "dry_views"]


@dataclass
class JobResult:
    """Numbers and paths of one main-job run (see :func:`summary_rows`)."""

    target: str
    float_accuracy: float
    qat_accuracy: Optional[float]
    float_seconds: float
    qat_seconds: float
    export: Path
    out: Path
    report: Optional[dict] = None
    conversion: list[dict] = field(default_factory=list)
    calibration: Optional[Any] = None
    timings: dict[str, float] = field(default_factory=dict)
    digest: Optional[str] = None
    #: where it trained: device, world_size, backend, kernels (:meth:`quant.distributed.Session.info`)
    training: dict = field(default_factory=dict)

    @property
    def sim_accuracy(self) -> Optional[float]:
        return None if self.report is None else self.report.get("accuracy", {}).get("sim")

    @property
    def bit_exact(self) -> Optional[bool]:
        return None if self.report is None else bool(self.report.get("bit_exact"))

    @property
    def fits(self) -> Optional[bool]:
        return None if self.report is None else bool(self.report.get("fit", {}).get("fits"))


def float_copy(float_net: nn.Module, trained: nn.Module) -> nn.Module:
    """A copy of the float network carrying ``trained``'s weights (same ``state_dict`` keys; the
    QAT network keeps the float keys, so its tuned weights load into the float model)."""
    net = copy.deepcopy(float_net)
    net.load_state_dict(trained.state_dict(), strict=True)
    return net


class PreflightError(ValueError):
    """A mistake found before training (paths, data, a network the target cannot run): exit status 2."""


def input_kind(*xs: torch.Tensor) -> str:
    """``spikes`` when every input is 0/1, ``counts`` for other non-negative integers; anything else
    (negative or fractional values) is off the input grid of a chip and refused."""
    kind = "spikes"
    for x in xs:
        if x.numel() == 0:
            continue
        if not torch.equal(x, torch.round(x)) or bool((x < 0).any()):
            bad = (x != torch.round(x)) | (x < 0)
            idx = tuple(int(i) for i in torch.nonzero(bad)[0])
            raise PreflightError(f"data: inputs must be 0/1 spikes or non-negative integer event counts (the chip's "
                                 f"input grid); found {float(x[idx])} at index [t, n, ...] = {list(idx)} "
                                 f"({int(bad.sum())} value(s) off the grid)")
        if float(x.max()) > 1:
            kind = "counts"
    return kind


def preflight(net: nn.Module, target: Any, x_train: torch.Tensor, x_test: torch.Tensor, *, seed: int,
              export_dir: Path, overwrite: bool, report_dir: Optional[Path], formats: Sequence[str] = ()) -> str:
    """Everything that can be checked before training, so that a mistake costs seconds, not a
    training run: the output paths (``export_dir`` replaceable, ``report_dir`` holding no foreign
    files), the inputs on the chip's grid, a dry conversion and export description of the
    untrained network for ``target`` (layers the chip cannot run, sizes, ranges; on a Xylo target,
    the layout as one core: LIF/IF neurons are refused naming the layer and suggesting
    ``CubaLIFNode``; sizes are left to the fit check of the report) and, for each
    vendor view in ``formats`` (``hwsnn export --format``), the view written from a dry export of
    the untrained network (:func:`dry_views`: a network a view cannot describe, e.g. one that does
    not fuse into one Xylo core, is refused now; checks on the trained values still run at the
    end). Returns the export's input kind (``spikes`` or ``counts``); raises
    :class:`PreflightError` or the converter's :class:`~hwsnn.fixed.FitError`."""
    from sim.report import check_report_destination
    from targets.bundle import SpecError, check_destination
    from targets.bundle.xylo_fuse import FuseError, fuse_ops

    for what, p in (("export directory", export_dir), ("report directory", report_dir)):
        if p is None:
            continue
        for anc in Path(p).expanduser().absolute().parents:
            if anc.exists() and not anc.is_dir():
                raise PreflightError(f"{what} {p}: {anc} is a file, not a directory")
    existing = Path(export_dir).expanduser().absolute()
    if existing.parent.is_dir():
        try:
            check_destination(existing, overwrite)
        except (FileExistsError, FileNotFoundError) as exc:
            raise PreflightError(str(exc)) from None
    if report_dir is not None and Path(report_dir).parent.is_dir():
        try:
            check_report_destination(Path(report_dir))
        except (FileExistsError, FileNotFoundError) as exc:
            raise PreflightError(str(exc)) from None
    kind = input_kind(x_train, x_test)
    dry = copy.deepcopy(net)
    try:
        twin = prepare(dry, target, seed=seed, clip=True).eval().to_twin()
        spec = network_spec(twin, input_shape=tuple(x_test.shape[2:]), input_kind=kind)
    except SpecError as exc:
        raise PreflightError(f"the network cannot be exported for target {target.name!r} (checked before training): "
                             f"{exc}") from None
    if target.limits.layout == "xylo_core":  # the whole network must lay out as the one core the chip runs
        try:
            fuse_ops(spec.ops, target)
        except FuseError as exc:
            raise PreflightError(f"the network cannot run on one Xylo core ({target.name}; checked before training): "
                                 f"{exc}") from None
    if formats:
        dry_views(twin, formats, target.name, input_shape=tuple(x_test.shape[2:]), input_kind=kind)
    return kind


def dry_views(twin: nn.Module, formats: Sequence[str], target_name: str, *, input_shape: Sequence[int],
              input_kind: str) -> None:
    """Write every view of ``formats`` from a throw-away export of ``twin`` (a temporary directory,
    removed after); raises :class:`PreflightError` naming the view and its reason on the first one
    that cannot be written."""
    import tempfile

    from .views import add_view, available_views, unknown_view_message

    views = available_views()
    for name in formats:
        if name not in views:
            raise PreflightError(f"--format {name}: {unknown_view_message(name, views)}")
    with tempfile.TemporaryDirectory(prefix="hwsnn-dry-") as tmp:
        path = export(twin, Path(tmp) / "export", input_shape=input_shape, input_kind=input_kind, hex_files=False,
                      reference_samples=1)
        for name in formats:
            try:
                add_view(path, name)
            except (ValueError, TypeError, NotImplementedError) as exc:
                raise PreflightError(f"--format {name}: the view cannot be written for this network on target "
                                     f"{target_name!r} (checked before training): {exc}") from None


def _line(text: str) -> None:
    print(f"  {text}", flush=True)


def _check_outputs(net: nn.Module, x: torch.Tensor, *ys: torch.Tensor) -> None:
    """A given model must output one score per class of the data (checked before training)."""
    from hwsnn.functional import reset_net

    probe = copy.deepcopy(net)
    reset_net(probe)
    try:
        with torch.no_grad():
            width = probe(x[:, :1]).shape[-1]
    except (RuntimeError, ValueError) as err:
        raise PreflightError(f"model: it does not take the data's input of shape {list(x.shape[2:])} per sample: "
                             f"{str(err).splitlines()[0]}") from None
    classes = int(max(int(y.max()) for y in ys)) + 1
    if width < classes:
        raise PreflightError(f"model: it has {width} outputs, but the data has {classes} classes")


def run_job(config: Any, *, progress: bool = True, plots: bool = True, overwrite: bool = True,
            export_only: bool = False, export_dir: Optional[Path] = None, hex_files: bool = True,
            model: Optional[nn.Module] = None, train_float: bool = True, dt: float = 1e-3,
            session: Any = None, resume: bool = False, checkpoint_dir: Optional[Path] = None,
            formats: Sequence[str] = ()) -> JobResult:
    """Run the main job for ``config`` (a :class:`hwsnn.config.RunConfig`).

    Writes ``<out>/export`` (or ``export_dir``) and, unless ``export_only``, ``<out>/report``, and
    the checkpoints ``float.pt`` / ``qat.pt`` in ``checkpoint_dir`` (default ``<out>/checkpoints``;
    none for ``export_only`` unless given; :mod:`quant.checkpoint`); ``resume`` loads matching
    checkpoints instead of training. Trains on ``session``'s device and processes
    (:mod:`quant.distributed`; default: this process, ``--device auto``); rank 0 alone converts,
    exports and reports, the other ranks return before that with the training numbers.
    ``model`` (a float ``nn.Sequential``, e.g. imported from NIR) replaces the run file's network;
    ``train_float=False`` skips float training (the model arrives trained); ``dt`` is the bundle's
    time step in seconds. ``formats``: the vendor views the caller will add to the export
    (``hwsnn export --format``), tried on the untrained network before training (:func:`preflight`).
    Raises ``ValueError``/``TypeError`` (e.g. :class:`~hwsnn.fixed.FitError`) with the converter's
    message when the network cannot run on the target.
    """
    import targets
    from hwsnn.demo import accuracy, train
    from hwsnn.functional import reset_net
    from hwsnn.parallel import rank_seed

    from .checkpoint import Checkpoints, float_fingerprint, load_state, qat_fingerprint, state_digest
    from .distributed import calibrate_across_ranks, local_session

    session = local_session("auto") if session is None else session
    progress = progress and session.is_main

    tg = targets.load(config.target)
    config = replace(config, training=config.training.for_target(tg))  # the target's QAT defaults
    tr = config.training
    out = Path(config.out)
    timings: dict[str, float] = {}
    target_dir = Path(export_dir) if export_dir is not None else out / "export"
    report_dir = None if export_only else out / "report"
    if checkpoint_dir is None and not export_only:
        checkpoint_dir = out / "checkpoints"

    t0 = time.perf_counter()
    x_train, y_train, x_test, y_test = config.load_data(progress=progress)
    net = config.build_network(tg) if model is None else model
    if model is not None:
        _check_outputs(net, x_test, y_train, y_test)
    in_kind = preflight(net, tg, x_train, x_test, seed=config.seed, export_dir=target_dir,
                        overwrite=overwrite, report_dir=report_dir, formats=formats)
    _line(f"data: {x_train.shape[1]} train / {x_test.shape[1]} held-out samples, input {tuple(x_train.shape[2:])} "
          f"({in_kind}), T={x_train.shape[0]}; network: {' -> '.join(type(m).__name__ for m in net)}; "
          f"checked before training: paths, data, conversion to {tg.name}")
    ckpts = Checkpoints(checkpoint_dir, resume=resume, par=session.par)
    fp_float = float_fingerprint(config, net, tg.name)
    if model is not None:  # a given model: its own weights (and whether it trains) define the float stage
        fp_float.update({"model weights": state_digest(net), "float training": bool(train_float)})
    net.to(session.device)
    cap = tg.synapse.max_input_events
    top = int(max(x_train.max(), x_test.max())) if in_kind == "counts" else 1
    if cap is not None and top > cap:
        _line(f"note: the inputs hold up to {top} events per channel and step; {tg.name} takes at most {cap} "
              f"(the integer network clips them; set data.max_count: {cap} to train on what the chip sees)")

    t0 = time.perf_counter()
    saved = ckpts.restore("float", fp_float)
    loss = float("nan")
    if saved is not None:
        load_state(net, saved, ckpts.path("float"))
    elif train_float:
        loss = train(net, x_train, y_train, epochs=tr.epochs, lr=tr.lr, batch_size=tr.batch_size, seed=config.seed,
                     progress=progress, desc="float training")
        ckpts.save("float", net, fp_float, info=session.info())
        ckpts.discard("qat")  # it came from other float weights
    timings["float training"] = time.perf_counter() - t0
    float_acc = accuracy(net, x_test, y_test)
    what = (f"resumed from {ckpts.path('float')} (trained on {_trained_on(saved)})" if saved is not None else
            f"{tr.epochs} epochs in {timings['float training']:.1f} s, final loss {loss:.4f}" if train_float else
            "skipped (the model arrives trained)")
    _line(f"float training: {what}, held-out accuracy {100 * float_acc:.1f} % [{session.describe()}]")

    t0 = time.perf_counter()
    cal = calibrate_across_ranks(net, tg, x_train, batch_size=tr.batch_size, max_batches=tr.calibration_batches,
                                 par=session.par)
    fp_qat = qat_fingerprint(fp_float, config, state_digest(net))
    saved = ckpts.restore("qat", fp_qat)
    state_exponents = cal.state_exponents if saved is None else saved["state_exponents"]
    qat = prepare(net, tg, seed=rank_seed(config.seed, session.par.rank), clip=True, state_exponents=state_exponents)
    exps = ", ".join(f"{k} {v}" for k, v in state_exponents.items())
    _line(f"calibration: {cal.batches} batches -> state exponents {exps or 'none'}"
          + (" (those of the QAT checkpoint)" if saved is not None else ""))
    qat_acc: Optional[float] = None
    if saved is not None:
        load_state(qat, saved, ckpts.path("qat"))
    elif tr.qat_epochs > 0:
        loss = train(qat, x_train, y_train, epochs=tr.qat_epochs, lr=tr.qat_lr, batch_size=tr.batch_size,
                     seed=config.seed + 1, progress=progress, desc="QAT")
    if saved is None:
        ckpts.save("qat", qat, fp_qat, info=session.info(), state_exponents=state_exponents)
    timings["QAT"] = time.perf_counter() - t0
    qat_acc = accuracy(qat, x_test, y_test)
    what = f"{tr.qat_epochs} epochs, final loss {loss:.4f}" if tr.qat_epochs > 0 else "0 epochs (calibrated conversion only)"
    if saved is not None:
        what = f"resumed from {ckpts.path('qat')} (trained on {_trained_on(saved)})"
    _line(f"QAT on {tg.name}: {what} in {timings['QAT']:.1f} s, held-out accuracy {100 * qat_acc:.1f} % "
          "(the integer forward)")
    net.cpu()  # conversion, export and simulation run on CPU: the bundle does not depend on the training device
    qat.cpu()
    qat.seed = config.seed  # rank 0's: the export's dropout seeds
    if not session.is_main:  # rank 0 alone converts, exports and reports
        return JobResult(target=tg.name, float_accuracy=float_acc, qat_accuracy=qat_acc,
                         float_seconds=timings["float training"], qat_seconds=timings["QAT"], export=target_dir,
                         out=out, calibration=cal, timings=timings, training=session.info())

    t0 = time.perf_counter()
    qat.eval()
    twin = qat.to_twin()
    rows = conversion_table(twin)
    clipped = {r["layer"]: r["clipped"] for r in rows if r["clipped"]}
    _line(f"conversion: {len(twin)} layers, clipped {clipped or 'nothing'}")
    for line in format_conversion_table(rows).splitlines():
        _line("    " + line)
    examples = {"inputs": x_test.to(torch.int8) if x_test.abs().max() < 128 else x_test.to(torch.int64), "labels": y_test}
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    path = export(twin, target_dir, examples=examples, overwrite=overwrite, hex_files=hex_files, input_kind=in_kind,
                  dt=dt)
    timings["conversion + export"] = time.perf_counter() - t0
    digest = load_export(path).digest
    _line(f"export: {path} ({timings['conversion + export']:.1f} s), bundle {digest}")

    result = JobResult(target=tg.name, float_accuracy=float_acc, qat_accuracy=qat_acc,
                       float_seconds=timings["float training"], qat_seconds=timings["QAT"], export=path, out=out,
                       conversion=rows, calibration=cal, timings=timings, digest=digest, training=session.info())
    if export_only:
        return result

    from .report import make_report

    t0 = time.perf_counter()
    reference = float_copy(net, qat).eval()
    reset_net(twin)  # the exported twin, from its reset state
    result.report = make_report(twin, path, examples["inputs"], float_model=reference, labels=y_test,
                                out_dir=report_dir, plots=plots, progress=progress, producer="hwsnn run",
                                training=result.training)
    timings["simulation + report"] = time.perf_counter() - t0
    _line(f"simulation + report: {timings['simulation + report']:.1f} s -> {out / 'report'}")
    return result


def _trained_on(saved: dict) -> str:
    info = saved.get("info", {})
    return f"{info.get('device', '?')}, world_size {info.get('world_size', '?')}"


def summary_rows(result: JobResult) -> list[tuple[str, str]]:
    """The final summary table: stage -> result."""

    def pct(v: Optional[float]) -> str:
        return "n/a" if v is None else f"{100 * v:.1f} %"

    rep = result.report or {}
    costs = rep.get("costs", {})
    fit = rep.get("fit", {})
    rows = [
        ("stage", "result"),
        ("float accuracy (held-out)", pct(result.float_accuracy)),
        (f"QAT accuracy ({result.target})", pct(result.qat_accuracy)),
        (f"integer accuracy (sim, {result.target})", pct(result.sim_accuracy)),
        ("bit-exact (digest, twin, reference)", "n/a" if result.report is None else
         ("yes" if result.bit_exact else "NO, see the report")),
        ("bundle digest", result.digest or "n/a"),
    ]
    if (rep.get("decoder") or {}).get("text"):  # the class read off the readouts (an output code), e.g. off the chip
        rows.insert(4, ("decoder", rep["decoder"]["text"]))
    if result.training:
        t = result.training
        rows.insert(1, ("training", f"{t['device']}, world_size {t['world_size']} ({t['backend'] or 'one process'}), "
                                    f"{t['kernels']} kernels"))
    if result.report is not None:
        rows += [
            ("cycles per step (mean)", f"{costs.get('cycles_per_step_mean', float('nan')):.0f}"),
            ("energy per inference", f"{costs.get('energy_per_inference_j', float('nan')) * 1e9:.3g} nJ"
             + (" (unverified figures)" if costs.get("unverified_figures") else "")),
            ("fits the target", "yes" if fit.get("fits") else "no: " + "; ".join(fit.get("problems", []))),
        ]
    rows.append(("output directory", str(result.out)))
    return rows
