"""The validated run configuration :class:`RunConfig`: builds the float network and loads the data."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..events import EVENT_KINDS
from .data import as_tensors, check_against_network, load_npz
from .errors import ConfigError
from .layers import make_layer
from .options import DATA_OPTIONS
from .specs import DataSpec, LayerSpec, TrainingSpec

__all__ = ["RunConfig"]


@dataclass(frozen=True)
class RunConfig:
    """A validated run file (:func:`load_run_config`); ``network=None`` means the default network."""

    seed: int = 0
    target: str = "generic_int8"
    out: str = "hwsnn-out"
    data: DataSpec = field(default_factory=DataSpec)
    network: Optional[tuple[LayerSpec, ...]] = None
    training: TrainingSpec = field(default_factory=TrainingSpec)
    source: Optional[Path] = field(default=None, compare=False)

    # ------------------------------------------------------------------ network
    def build_network(self, target: Any = None):
        """The float network, multi-step, weights drawn after ``torch.manual_seed(seed)``.

        ``target`` (a name, path or :class:`targets.Target`; default ``self.target``) is passed to
        :func:`hwsnn.demo.default_network` when ``network`` is null.
        """
        import torch
        import torch.nn as nn

        from .. import functional

        target = self.target if target is None else target
        torch.manual_seed(self.seed)
        if self.network is None:
            from ..demo import default_network

            net = default_network(target)
        else:
            modules, problems = [], []
            for i, spec in enumerate(self.network):
                try:
                    modules.append(make_layer(spec))
                except (TypeError, ValueError, RuntimeError) as exc:
                    problems.append(f"network[{i}] ({spec.type}): {exc}")
            if problems:
                raise ConfigError(self.source, problems)
            net = nn.Sequential(*modules)
        functional.set_step_mode(net, "m")
        return net

    # ------------------------------------------------------------------ data
    def load_data(self, progress: bool = True):
        """``(x_train, y_train, x_test, y_test)``: x float32 ``[T, N, ...]``, y int64 ``[N]``.

        ``progress`` shows a bar while event data (``shd``, ``nmnist``) is binned. Also checks the
        data against an explicit network (first Linear's ``in_features`` against the input
        channels, labels against the number of outputs).
        """
        kind, opts = self.data.kind, dict(self.data.options)
        if kind == "digits":
            arrays = self._digits(opts)
        elif kind == "temporal_patterns":
            arrays = self._temporal_patterns(opts)
        elif kind in EVENT_KINDS:
            arrays = self._events(kind, opts, progress)
        else:
            arrays = load_npz(Path(opts["path"]), opts.get("classes"))
        if self.network is not None:
            check_against_network(self.network, arrays, kind, self.source)
        return arrays

    def _digits(self, opts: dict):
        from .. import data

        fn = getattr(data, "digits_spikes", None)
        if fn is None:
            raise ConfigError(self.source, ["data.kind: digits needs hwsnn.data.digits_spikes, which this installation lacks"])
        train_limit, test_limit = opts.pop("train_samples", None), opts.pop("test_samples", None)
        for key in ("levels", "columns"):
            if key in opts:
                opts[key] = tuple(opts[key])
        try:
            x_train, y_train = fn("train", split_seed=self.seed, limit=train_limit, **opts)
            x_test, y_test = fn("test", split_seed=self.seed, limit=test_limit, **opts)
        except (ImportError, ValueError) as exc:
            raise ConfigError(self.source, [f"data (kind digits): {exc}"]) from None
        return as_tensors(x_train, y_train, x_test, y_test)

    def _temporal_patterns(self, opts: dict):
        from ..data import temporal_patterns

        full = {k: d for k, (_, d) in DATA_OPTIONS["temporal_patterns"].items()}
        full.update(opts)
        n_train, n_test = full.pop("train_samples"), full.pop("test_samples")
        try:
            x_train, y_train = temporal_patterns(n_train, seed=self.seed, **full)
            # held out: the same class templates, samples from another stream
            x_test, y_test = temporal_patterns(n_test, seed=self.seed, sample_seed=self.seed + 10_000, **full)
        except ValueError as exc:
            raise ConfigError(self.source, [f"data: {exc}"]) from None
        return as_tensors(x_train, y_train, x_test, y_test)

    def _events(self, kind: str, opts: dict, progress: bool):
        from ..events import EventDataError, load_event_data

        try:
            return load_event_data(kind, opts, seed=self.seed, progress=progress)
        except EventDataError as exc:
            raise ConfigError(self.source, [str(exc)]) from None
        except ImportError as exc:
            raise ConfigError(self.source, [f"data.kind: {exc}"]) from None

    # ------------------------------------------------------------------ plain data
    def to_dict(self) -> dict:
        """Plain data that :func:`run_config_from_dict` turns back into an equal config."""
        d: dict[str, Any] = {"seed": self.seed, "target": self.target, "out": self.out}
        d["data"] = {"kind": self.data.kind, **copy.deepcopy(self.data.options)}
        d["network"] = None if self.network is None else [{"type": s.type, **_plain(s.options)} for s in self.network]
        d["training"] = dataclasses.asdict(self.training)
        return d


def _plain(v: Any) -> Any:
    if isinstance(v, LayerSpec):  # a nested layer (RecurrentContainer's sub_module)
        return {"type": v.type, **_plain(v.options)}
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v
