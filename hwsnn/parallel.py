r"""Data-parallel training with :mod:`torch.distributed`: who am I, which samples are mine, and the
few collectives the training loop needs.

The training loop (:func:`hwsnn.demo.train`) asks :func:`current` for the process group that
``torchrun`` (or the caller) set up; without one it is rank 0 of 1 and nothing here communicates.

**Sharding** (:func:`shard_batches`, the equivalent of a ``DistributedSampler``): every rank draws
the same permutation of the :math:`n` samples per epoch (a generator seeded with the run's seed)
and cuts it into *global* batches of :math:`G = bW` samples (:math:`b` the per-rank batch size,
:math:`W` the world size). Rank :math:`r` takes positions :math:`r, r+W, r+2W, \dots` of each
global batch. Its loss is the sum of its samples' losses times :math:`W/m` (:math:`m` the size of
the global batch), and DistributedDataParallel averages the gradients over the :math:`W` ranks:

.. math::
    \frac{1}{W}\sum_{r}\frac{W}{m}\sum_{i \in B_r}\nabla \ell_i = \frac{1}{m}\sum_{i \in B}\nabla\ell_i,

the gradient of the mean loss over the global batch, exactly as one process with batch :math:`G`
would compute it (also for a short last batch). A rank left without a sample in a short last
batch computes one sample of the batch with weight 0, so every rank runs the same number of
steps (no rank waits for a collective the others never start). With :math:`W = 1` the batches are
those of the single-process loop.

**Seeds**: :func:`rank_seed` gives each rank its own stream for dropout masks and noise,
reproducible from ``(seed, rank)`` (rank 0 keeps ``seed``, so one process draws what it always did).
"""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import torch
import torch.nn as nn

__all__ = ["Parallel", "current", "rank_seed", "shard_batches", "shard_range", "wrap", "all_sum", "all_gather",
           "broadcast"]


@dataclass(frozen=True)
class Parallel:
    """This process's place in the process group: ``rank`` of ``world_size`` (``local_rank`` on its
    node), and the collective ``backend`` (``gloo``, ``nccl``; ``None`` without a process group)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: Optional[str] = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs, writes checkpoints, the export and the report."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """More than one process (collectives communicate)."""
        return self.world_size > 1

    def collective_device(self) -> torch.device:
        """Where tensors handed to a collective must live: the rank's GPU for NCCL, else the CPU."""
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


def current() -> Parallel:
    """The process group set up by ``torch.distributed.init_process_group``, or rank 0 of 1."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Parallel(rank=dist.get_rank(), world_size=dist.get_world_size(),
                        local_rank=int(os.environ.get("LOCAL_RANK", "0")), backend=str(dist.get_backend()))
    return Parallel()


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random stream (dropout masks, noise): ``seed`` itself on rank 0,
    else the first 31 bits of ``sha256("seed:rank")`` (distinct per rank, independent of the
    world size, below :math:`2^{31}` so that a dropout twin's ``seed + layer`` stays in 32 bits)."""
    if rank == 0:
        return int(seed)
    digest = hashlib.sha256(f"hwsnn-rank-seed:{int(seed)}:{int(rank)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFF_FFFF


def shard_batches(order: torch.Tensor, batch_size: int, par: Parallel) -> Iterator[tuple[torch.Tensor, float]]:
    """This rank's batches of one epoch: ``(sample indices, loss weight)`` per step (module docstring).

    ``order`` is the epoch's permutation (the same on every rank); ``batch_size`` the per-rank
    batch. The weight is :math:`W/m` (:math:`m` the global batch's size), or 0 for the stand-in
    sample of a rank that has none in a short last batch.
    """
    w = par.world_size
    step = batch_size * w
    n = order.shape[0]
    for start in range(0, n, step):
        glob = order[start : start + step]
        mine = glob[par.rank :: w]
        if mine.numel() == 0:
            yield glob[:1], 0.0
        else:
            yield mine, w / glob.shape[0]


def shard_range(n: int, par: Parallel) -> tuple[int, int]:
    """Rank ``r``'s contiguous share ``[r n / W, (r+1) n / W)`` of ``n`` items (for evaluation)."""
    return par.rank * n // par.world_size, (par.rank + 1) * n // par.world_size


def wrap(net: nn.Module, par: Parallel) -> nn.Module:
    """``net`` in :class:`~torch.nn.parallel.DistributedDataParallel` when several processes train
    (gradients averaged over the ranks; parameters broadcast from rank 0 at construction), else
    ``net`` itself. Buffers are not broadcast per step (the hwsnn layers keep their states as
    memories, not buffers)."""
    if not par.active:
        return net
    from torch.nn.parallel import DistributedDataParallel

    p = next(net.parameters())
    ids = [p.device.index] if p.device.type == "cuda" else None
    # torch >= 2.13 names the per-step buffer sync forward_sync_buffers (broadcast_buffers is deprecated)
    sync = "forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters \
        else "broadcast_buffers"
    return DistributedDataParallel(net, device_ids=ids, **{sync: False})


def all_sum(value: float, par: Parallel) -> float:
    """The sum of ``value`` over all ranks (float64; ``value`` itself with one process)."""
    if not par.active:
        return value
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64, device=par.collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())


def all_gather(obj: Any, par: Parallel) -> list:
    """Every rank's ``obj`` (picklable), in rank order: ``[obj]`` with one process."""
    if not par.active:
        return [obj]
    import torch.distributed as dist

    out: list = [None] * par.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast(obj: Any, par: Parallel) -> Any:
    """Rank 0's ``obj`` on every rank (the others' ``obj`` is ignored)."""
    if not par.active:
        return obj
    import torch.distributed as dist

    box = [obj if par.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
