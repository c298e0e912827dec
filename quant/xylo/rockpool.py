r"""The hand-off to SynSense's tools, both ways: an hwsnn ``xylo_core`` export <-> the specification
that Rockpool's ``XyloSim.from_specification`` and ``config_from_specification`` take.

=====================================  ==========================================================
Rockpool argument                      the ``xylo_core`` op (:mod:`targets.bundle.xylo_core`)
=====================================  ==========================================================
``weights_in`` ``(Nin, Nien, S)``      ``w_in`` (S = 2 where synapse 2 is used, else 1)
``weights_rec`` ``(N, N, S)``          ``w_rec`` (row = source)
``weights_out`` ``(Noen, M)``          ``w_out``; XyloAudio 2 (``syns61201``): padded to ``(N, M)`` with
                                       zero rows in front (its ``config_from_specification`` takes
                                       all hidden neurons as readout sources)
``dash_mem``, ``dash_syn``,            ``dash_mem``, ``dash_syn``, ``dash_syn2`` (not for XyloIMU,
``dash_syn_2``                         ``syns63300``, which has one synapse)
``threshold``, ``bias``                ``threshold``, ``bias`` (``config_from_specification``:
                                       ``bias_hidden``)
``*_out``                              the readout tables
``weight_shift_in/_rec/_out``          the three weight shifts
``aliases`` (list of lists)            ``alias`` (``[a]`` for ``alias = a``, ``[]`` for ``-1``)
``dt``                                 the bundle's ``dt`` (``from_specification`` only)
=====================================  ==========================================================

Rockpool is imported lazily (:func:`rockpool_xylo`): ``rockpool.devices.xylo``'s package
``__init__`` imports ``samna``, whose public package is an empty stub that tries to install the
real one when imported. Unless a usable ``samna`` is already loaded, the sub-package is imported
directly with ``samna`` hidden, so Rockpool falls back to its shims.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from typing import Any, Mapping, NamedTuple, Optional, Union

import numpy as np

from targets.bundle import Bundle, load_bundle
from targets.bundle.xylo_core import fit_checks
from targets.bundle.xylo_fuse import FuseError, fuse_ops

__all__ = ["VARIANTS", "TARGETS", "resolve_variant", "xylo_sim_class", "to_rockpool_xylo", "from_rockpool_xylo", "rockpool_xylo", "core_of", "XyloImport",
           "spec_arrays"]

#: Rockpool's Xylo modules -> hwsnn target
VARIANTS = {"syns61201": "xylo", "syns65302": "xylo_audio3", "syns63300": "xylo_imu"}
#: hwsnn target -> Rockpool module
TARGETS = {v: k for k, v in VARIANTS.items()}
#: where each variant's ``XyloSim`` lives (XyloAudio 3 re-exports XyloIMU's)
_SIM_MODULE = {"syns61201": "syns61201", "syns65302": "syns63300", "syns63300": "syns63300"}
#: specification keys that carry no network data (Rockpool's mapper, XyloSim options)
_IGNORED = ("mapped_graph", "verify_config", "output_mode")


def rockpool_xylo(module: str) -> types.ModuleType:
    """``rockpool.devices.xylo.<module>`` (e.g. ``syns61201``), imported without ``samna`` unless a
    usable one is loaded already; ``ImportError`` naming ``pip install rockpool`` when Rockpool is missing."""
    full = f"rockpool.devices.xylo.{module}"
    if full in sys.modules:
        return sys.modules[full]
    if importlib.util.find_spec("rockpool") is None:
        raise ImportError("the Rockpool hand-off needs Rockpool: pip install 'hwsnn[xylo]' (rockpool==3.1.0 and xylosim, which XyloSim runs on)")
    samna = sys.modules.get("samna")
    if samna is not None and hasattr(samna, "xyloCore2"):  # a real samna: Rockpool's own import works
        return importlib.import_module(full)
    parent = "rockpool.devices.xylo"
    hidden = "samna" not in sys.modules
    sys.modules["samna"] = None  # type: ignore[assignment]  # Rockpool's shims instead of the PyPI stub
    try:
        if parent not in sys.modules:
            importlib.import_module("rockpool.devices")
            spec = importlib.util.find_spec(parent)
            stub = types.ModuleType(parent, "rockpool.devices.xylo, loaded by hwsnn without its __init__ (samna)")
            stub.__path__ = list(spec.submodule_search_locations or [])  # type: ignore[union-attr]
            stub.__package__ = parent
            sys.modules[parent] = stub
        return importlib.import_module(full)
    except ImportError as err:
        if "samna" not in str(err):
            raise
        raise ImportError(f"{full} needs SynSense's samna (not the empty stub on PyPI) for its hardware parts; "
                          f"XyloSim alone: quant.xylo.xylo_sim_class({module!r})") from None
    finally:
        if hidden:
            sys.modules.pop("samna", None)


def xylo_sim_class(variant: str) -> type:
    """Rockpool's ``XyloSim`` class for ``variant`` (``syns61201``, ``syns65302``, ``syns63300``, or an
    hwsnn Xylo target name); XyloAudio 3 uses XyloIMU's (Rockpool re-exports it). Needs no samna;
    ``XyloSim`` itself needs ``xylosim`` (``pip install xylosim``)."""
    return rockpool_xylo(_SIM_MODULE[resolve_variant(variant, "")]).XyloSim


def core_of(bundle: Bundle):
    """The Xylo core of ``bundle``: its one ``xylo_core`` op, or its layered ops laid out as one core
    (:func:`targets.bundle.xylo_fuse.fuse_ops`, equal step for step); ``ValueError`` naming the reason
    otherwise."""
    cores = [op for op in bundle.ops if op.kind == "xylo_core"]
    if len(cores) == 1 and bundle.ops[0] is cores[0]:
        return cores[0]
    if not cores and bundle.target.limits.layout == "xylo_core":
        try:
            return fuse_ops(bundle.ops, bundle.target)[0]
        except FuseError as err:
            raise ValueError(f"{bundle.path}: the network cannot be laid out as one Xylo core: {err}") from None
    raise ValueError(f"{bundle.path}: a Rockpool Xylo specification needs one Xylo core (a xylo_core op first, or "
                     f"layered ops for a Xylo target); the bundle has {[f'{op.name} ({op.kind})' for op in bundle.ops]} "
                     f"for target {bundle.target.name!r}")


def resolve_variant(variant: Optional[str], target_name: str) -> str:
    """Rockpool's variant name (``syns61201``...) for ``variant`` (a variant or an hwsnn target name) or,
    when ``None``, for the target ``target_name`` (``ValueError`` naming the choices otherwise)."""
    if variant is None:
        if target_name not in TARGETS:
            raise ValueError(f"target {target_name!r} is not a Xylo variant; pass variant= one of {sorted(VARIANTS)}")
        return TARGETS[target_name]
    if variant in TARGETS:  # an hwsnn target name
        variant = TARGETS[variant]
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(sorted(VARIANTS))} (or {', '.join(sorted(TARGETS))}); "
                         f"got {variant!r}")
    return variant


def to_rockpool_xylo(export: Union[str, "os.PathLike[str]", Bundle], variant: Optional[str] = None, *,
                     which: str = "sim") -> dict[str, Any]:
    """The keyword arguments of Rockpool's ``XyloSim.from_specification`` (``which="sim"``) or
    ``config_from_specification`` (``which="config"``) for ``variant`` (``syns61201``, ``syns65302``,
    ``syns63300``; default: the bundle's target) holding the bundle's ``xylo_core`` integers
    (module table). ``ValueError`` when the core does not fit that variant.

    >>> kw = to_rockpool_xylo("out/export")                                       # doctest: +SKIP
    >>> sim = xylo_sim_class("syns61201").from_specification(**kw)                 # doctest: +SKIP
    """
    import targets

    if which not in ("sim", "config"):
        raise ValueError(f"which must be 'sim' or 'config'; got {which!r}")
    bundle = export if isinstance(export, Bundle) else load_bundle(export)
    core = core_of(bundle)
    variant = resolve_variant(variant, bundle.target.name)
    tg = targets.load(VARIANTS[variant])
    problems = []
    try:
        core.check(tg)
    except ValueError as err:
        problems += list(getattr(err, "problems", [str(err)]))
    problems += [c["why"] for c in fit_checks(core, tg) if not c["ok"]]
    if problems:
        raise ValueError(f"{bundle.path}: the core {core.name!r} does not fit {variant} ({tg.name}): " + "; ".join(problems))
    arr = spec_arrays(core, variant)
    kw: dict[str, Any] = {k: v for k, v in arr.items() if k not in ("aliases",)}
    kw["aliases"] = [[int(a)] if a >= 0 else [] for a in arr["aliases"]]
    for k in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
        kw[k] = int(getattr(core, k))
    if which == "sim":
        kw["dt"] = float(bundle.network.dt)
    else:
        kw["bias_hidden"] = kw.pop("bias")
    return kw


def spec_arrays(core, variant: str) -> dict[str, np.ndarray]:
    """The array arguments of the specification (``aliases`` as ``[N]`` with ``-1`` for none)."""
    n, m = core.hidden, core.readout
    w_out = np.asarray(core.w_out, np.int64)
    if variant == "syns61201" and core.output_expansion < n:
        w_out = np.concatenate([np.zeros((n - core.output_expansion, m), np.int64), w_out])
    out = {
        "weights_in": np.asarray(core.w_in, np.int64), "weights_out": w_out, "weights_rec": np.asarray(core.w_rec, np.int64),
        "dash_mem": np.asarray(core.dash_mem, np.int64), "dash_mem_out": np.asarray(core.dash_mem_out, np.int64),
        "dash_syn": np.asarray(core.dash_syn, np.int64), "dash_syn_out": np.asarray(core.dash_syn_out, np.int64),
        "threshold": np.asarray(core.threshold, np.int64), "threshold_out": np.asarray(core.threshold_out, np.int64),
        "bias": np.asarray(core.bias, np.int64), "bias_out": np.asarray(core.bias_out, np.int64),
        "aliases": np.asarray(core.alias, np.int64),
    }
    if variant != "syns63300" and core.dash_syn2 is not None:
        out["dash_syn_2"] = np.asarray(core.dash_syn2, np.int64)
    return out


# -- import ----------------------------------------------------------------------------------------
class XyloImport(NamedTuple):
    """What :func:`from_rockpool_xylo` returns: the twin, and the export's path (``None`` without ``out_dir``)."""

    twin: Any
    export: Any


def _int_array(spec: Mapping, key: str, problems: list[str], ndim: tuple[int, ...], default=None) -> Optional[np.ndarray]:
    if key not in spec or spec[key] is None:
        return default
    try:
        a = np.asarray(spec[key])
    except Exception:  # ragged lists
        problems.append(f"{key}: not an array")
        return None
    if a.dtype.kind not in "iubf" or (a.dtype.kind == "f" and not (np.isfinite(a).all() and np.array_equal(a, np.round(a)))):
        problems.append(f"{key}: must hold integers (quantize first, e.g. rockpool.transform.quantize_methods."
                        f"channel_quantize); got dtype {a.dtype}")
        return None
    if a.ndim not in ndim:
        problems.append(f"{key}: expected {' or '.join(f'{d}-D' for d in ndim)}; got shape {list(a.shape)}")
        return None
    return a.astype(np.int64)


def from_rockpool_xylo(spec: Mapping[str, Any], variant: str = "syns61201", *, out_dir: Union[str, "os.PathLike[str]", None] = None,
                       name: str = "xylo_core", examples: Optional[dict] = None, input_kind: str = "counts",
                       overwrite: bool = False, dt: Optional[float] = None) -> XyloImport:
    """An hwsnn twin (:class:`~hwsnn.fixed.FixedXyloCore`) and, with ``out_dir``, a signed export of
    the Rockpool Xylo specification ``spec`` (the keyword arguments of ``from_specification`` or
    ``config_from_specification``, e.g. from Rockpool's ``mapper`` after quantization) for
    ``variant``. Every key is checked (unknown keys, shapes, integers, ranges: a ``ValueError``
    listing each problem); missing optional tables take ``XyloSim.from_specification``'s defaults,
    except thresholds, which Xylo needs > 0 and must be given.

    Importing a specification and exporting it again (:func:`to_rockpool_xylo`) gives the same integers.
    """
    import targets
    import torch

    from hwsnn.fixed import FixedXyloCore
    from targets.bundle import SpecError

    variant = resolve_variant(variant, "")
    tg = targets.load(VARIANTS[variant])
    if not isinstance(spec, Mapping):
        raise TypeError(f"from_rockpool_xylo: spec must be a mapping of Rockpool's keyword arguments; got {type(spec).__name__}")
    allowed = {"weights_in", "weights_out", "weights_rec", "dash_mem", "dash_mem_out", "dash_syn", "dash_syn_2",
               "dash_syn_out", "threshold", "threshold_out", "bias", "bias_hidden", "bias_out", "weight_shift_in",
               "weight_shift_rec", "weight_shift_out", "aliases", "dt", *_IGNORED}
    problems = [f"{k}: unknown key; allowed: {', '.join(sorted(allowed - set(_IGNORED)))}" for k in spec if k not in allowed]
    if "bias" in spec and "bias_hidden" in spec and spec["bias"] is not None and spec["bias_hidden"] is not None:
        problems.append("bias, bias_hidden: give one of them (from_specification's and config_from_specification's names)")
    for key in ("weights_in", "weights_out", "threshold", "threshold_out"):
        if key not in spec or spec[key] is None:
            problems.append(f"{key}: missing")
    if problems:
        raise ValueError("from_rockpool_xylo: the specification is not valid:\n  " + "\n  ".join(problems))
    w_in = _int_array(spec, "weights_in", problems, (2, 3))
    w_out = _int_array(spec, "weights_out", problems, (2,))
    w_rec = _int_array(spec, "weights_rec", problems, (2, 3))
    if problems:
        raise ValueError("from_rockpool_xylo: the specification is not valid:\n  " + "\n  ".join(problems))
    if w_in.ndim == 2:
        w_in = w_in[:, :, None]
    nin, nien, s_in = w_in.shape
    noen, m = w_out.shape
    n = w_rec.shape[0] if w_rec is not None else max(nien, noen)
    if w_rec is None:
        w_rec = np.zeros((n, n, s_in), np.int64)
    elif w_rec.ndim == 2:
        w_rec = w_rec[:, :, None]
    s = max(w_in.shape[2], w_rec.shape[2])
    if s > 2:
        problems.append(f"weights_in / weights_rec: at most 2 synapses; got {s}")
        s = 2
    pad = lambda w: np.concatenate([w[:, :, :s], np.zeros((*w.shape[:2], s - min(w.shape[2], s)), np.int64)], axis=2)  # noqa: E731
    w_in, w_rec = pad(w_in), pad(w_rec)
    one_synapse = tg.limits.hidden_synapses < 2
    if one_synapse and s == 2:  # XyloIMU: a second synapse only if it carries nothing (its config ignores it)
        if w_in[:, :, 1].any() or w_rec[:, :, 1].any():
            problems.append(f"weights_in / weights_rec: synapse-2 weights, but {variant} has one synapse per neuron")
        w_in, w_rec, s = w_in[:, :, :1], w_rec[:, :, :1], 1
    vec = {}
    for key, size, default in (("dash_mem", n, 0), ("dash_syn", n, 0), ("dash_syn_2", n, None), ("threshold", n, None),
                               ("bias", n, 0), ("bias_hidden", n, None), ("dash_mem_out", m, 0), ("dash_syn_out", m, 0),
                               ("threshold_out", m, None), ("bias_out", m, 0)):
        a = _int_array(spec, key, problems, (1,))
        if a is not None and a.shape != (size,):
            problems.append(f"{key}: shape {list(a.shape)}; expected [{size}]")
        vec[key] = a if a is not None else (None if default is None else np.full(size, default, np.int64))
    if vec["bias_hidden"] is not None:
        vec["bias"] = vec["bias_hidden"]
    if one_synapse:
        vec["dash_syn_2"] = None  # (XyloIMU's config ignores it; its XyloSim's second current stays 0)
    elif s == 2 and vec["dash_syn_2"] is None:
        vec["dash_syn_2"] = np.zeros(n, np.int64)  # XyloSim.from_specification's default
    alias = np.full(n, -1, np.int64)
    aliases = spec.get("aliases")
    if aliases is not None:
        if len(aliases) != n:
            problems.append(f"aliases: {len(aliases)} entries; expected one list per hidden neuron ({n})")
        else:
            for j, a in enumerate(aliases):
                a = list(a)
                if len(a) > 1:
                    problems.append(f"aliases[{j}]: {a}; Xylo has one alias target per neuron")
                elif a:
                    alias[j] = int(a[0])
    shifts = []
    for key in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
        v = spec.get(key, 0)
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) and not (
                isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "iu"):
            problems.append(f"{key}: expected an integer; got {v!r}")
            v = 0
        shifts.append(int(v))
    if problems:
        raise ValueError("from_rockpool_xylo: the specification is not valid:\n  " + "\n  ".join(problems))
    t = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    hidden = {"dash_syn": t(vec["dash_syn"]), "dash_syn2": t(vec["dash_syn_2"]), "dash_mem": t(vec["dash_mem"]),
              "threshold": t(vec["threshold"]), "bias": t(vec["bias"]), "alias": t(alias)}
    readout = {"dash_syn_out": t(vec["dash_syn_out"]), "dash_mem_out": t(vec["dash_mem_out"]),
               "threshold_out": t(vec["threshold_out"]), "bias_out": t(vec["bias_out"])}
    try:
        twin = FixedXyloCore(tg, t(w_in), t(w_rec), t(w_out), shifts, hidden, readout, name=name, step_mode="m")
        twin.to_spec(name, (nin,), input_kind, 0).check(tg)
    except (SpecError, ValueError) as err:
        detail = "\n  ".join(getattr(err, "problems", []) or [str(err)])
        raise ValueError(f"from_rockpool_xylo: the specification does not fit {variant} ({tg.name}):\n  {detail}") from None
    path = None
    if out_dir is not None:
        from ..export import export as write_export

        step = spec.get("dt", 1e-3) if dt is None else dt
        path = write_export(twin, out_dir, input_shape=(nin,), input_kind=input_kind, dt=float(step),
                            examples=examples, overwrite=overwrite)
    return XyloImport(twin, path)
