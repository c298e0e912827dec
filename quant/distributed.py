r"""The main job on several processes: the session that ``hwsnn run`` opens under ``torchrun``,
and the calibration reduced across ranks.

``torchrun --standalone --nproc-per-node N -m hwsnn run ...`` starts ``N`` copies of the command
with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the rendezvous address in the environment.
:func:`start_session` turns that into a process group (gloo for CPU training, NCCL for CUDA) and a
device (:func:`hwsnn.device.resolve_device`: ``cuda:<local rank>``); without those variables it is
one process and nothing communicates. In the session

* the float stage and QAT train with DistributedDataParallel (:func:`hwsnn.demo.train` shards
  every epoch, :mod:`hwsnn.parallel`);
* :func:`calibrate_across_ranks` spreads the calibration batches over the ranks and takes the
  maximum of every observed range over all of them, so every rank (and a single process) picks
  the same state exponents;
* rank 0 alone writes checkpoints, the export and the report, and prints: the other ranks' standard
  output is discarded, and they wait for rank 0's result (:meth:`Session.share`) before exiting
  with the same status;
* a failure on any rank stops all: the failing rank exits with its error; the others' next
  collective fails at once (gloo notices the closed connection; ``torchrun`` also stops the
  remaining workers) and they exit with :class:`PeerFailure`. A collective that waits longer than
  ``HWSNN_DIST_TIMEOUT`` seconds (default 1800) fails too.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

import torch
import torch.nn as nn

from hwsnn.device import describe_device, kernel_backend, resolve_device
from hwsnn.parallel import Parallel, all_gather, broadcast, current
from targets import Target

from .calibrate import Calibration, choose_exponents, merge_ranges, observe_ranges

__all__ = ["Session", "PeerFailure", "start_session", "local_session", "calibrate_across_ranks", "is_peer_failure"]

_PEER_SIGNS = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Timed out", "timed out",
               "NCCL", "ProcessGroup", "gloo")


class PeerFailure(RuntimeError):
    """This rank stopped because another rank failed or left (its error is printed by that rank)."""


def is_peer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective that failed because a peer is gone (or timed out)."""
    import torch.distributed as dist

    dist_error = getattr(dist, "DistError", None)
    if dist_error is not None and isinstance(exc, dist_error):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in _PEER_SIGNS)


def _timeout() -> datetime.timedelta:
    text = os.environ.get("HWSNN_DIST_TIMEOUT", "1800")
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0:
        raise ValueError(f"HWSNN_DIST_TIMEOUT={text!r}: expected a number of seconds > 0")
    return datetime.timedelta(seconds=seconds)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r}: expected an integer (set by torchrun)") from None


@dataclass
class Session:
    """Where and with whom this process trains: ``par`` (rank, world size, collective backend),
    ``device`` and the fused ``kernels`` that run there. A context manager: on ranks other than 0
    standard output is discarded inside it; leaving it closes the process group it opened."""

    par: Parallel
    device: torch.device
    kernels: str
    owns_group: bool = False
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack, repr=False)

    @property
    def is_main(self) -> bool:
        return self.par.is_main

    def info(self) -> dict:
        """What the run summary and ``report.json`` record (``training``): device, ``world_size``,
        the collective ``backend`` (``None`` for one process) and the fused ``kernels``."""
        return {"device": describe_device(self.device), "world_size": self.par.world_size,
                "backend": self.par.backend, "kernels": self.kernels}

    def describe(self) -> str:
        """``cpu, 2 processes (gloo), numba kernels``."""
        procs = f"{self.par.world_size} process" + ("es" if self.par.world_size != 1 else "")
        group = f" ({self.par.backend})" if self.par.backend else ""
        return f"{describe_device(self.device)}, {procs}{group}, {self.kernels} kernels"

    def share(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank (the others wait here for it)."""
        return broadcast(obj, self.par)

    def __enter__(self) -> "Session":
        if not self.par.is_main:
            devnull = self._stack.enter_context(open(os.devnull, "w"))
            self._stack.enter_context(contextlib.redirect_stdout(devnull))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stack.close()
        if exc is None:
            self.close()
            return None
        if self.par.active and is_peer_failure(exc):
            raise PeerFailure(f"rank {self.par.rank} of {self.par.world_size} stopped: another rank failed or left "
                              f"(its error is printed above; torchrun names it). The collective said: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        return None  # the error goes on; the process exits and its peers notice

    def close(self) -> None:
        """Close the process group this session opened (after the last collective)."""
        import torch.distributed as dist

        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False


def start_session(device: str = "auto") -> Session:
    """The session of this process: the process group ``torchrun`` describes in the environment
    (``WORLD_SIZE`` > 1; gloo on CPU, NCCL on CUDA), or the one the caller opened already, or a
    single process; and the device (:func:`hwsnn.device.resolve_device`; for CUDA, this rank's GPU
    becomes the current one). Raises :class:`hwsnn.device.DeviceError` for an unavailable device."""
    import torch.distributed as dist

    world = _env_int("WORLD_SIZE", 1)
    local_rank = _env_int("LOCAL_RANK", 0)
    dev = resolve_device(device, local_rank)
    owns = False
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        if not dist.is_available():
            raise RuntimeError("torch.distributed is not available in this torch build; run one process")
        backend = "nccl" if dev.type == "cuda" and dist.is_nccl_available() else "gloo"
        dist.init_process_group(backend=backend, timeout=_timeout())
        owns = True
    return Session(par=current(), device=dev, kernels=kernel_backend(dev), owns_group=owns)


def local_session(device: Union[str, torch.device] = "cpu") -> Session:
    """A session without opening a process group: the caller's group if there is one (else one
    process) on ``device`` (a :class:`torch.device`, or a ``--device`` value)."""
    dev = resolve_device(device, current().local_rank) if isinstance(device, str) else torch.device(device)
    return Session(par=current(), device=dev, kernels=kernel_backend(dev))


def calibrate_across_ranks(model: nn.Sequential, target: Union[str, Target], x: torch.Tensor, *, batch_size: int,
                           max_batches: int, margin: float = 1.0, par: Optional[Parallel] = None) -> Calibration:
    """:func:`quant.calibrate` over the first ``max_batches`` batches of ``x`` ``[T, N, ...]``
    (``batch_size`` samples each), spread over the ranks: rank ``r`` observes batches ``r, r + W,
    ...``, the observed ranges are gathered and reduced by their maximum, and every rank chooses the
    exponents from the same maxima, equal to one process observing all the batches."""
    par = current() if par is None else par
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"calibrate: expected an nn.Sequential of hwsnn layers; got {type(model).__name__}")
    if x.dim() < 2:
        raise ValueError(f"calibrate: inputs must be [T, N, ...]; got shape {tuple(x.shape)}")
    batches = [x[:, i : i + batch_size] for i in range(0, x.shape[1], batch_size)][:max_batches]
    mine = batches[par.rank :: par.world_size]
    observed, used = observe_ranges(model, mine, max_batches=len(mine))
    parts: Iterable[tuple[dict, int]] = all_gather((observed, used), par)
    parts = list(parts)
    return choose_exponents(model, target, merge_ranges(o for o, _ in parts), sum(u for _, u in parts), margin=margin)
