"""Worker functions for the multi-process tests (imported by spawned processes, so they live in a
module, not in a test file). Every worker joins a gloo group through a file store (no port to
race for) with GLOO_SOCKET_IFNAME=lo, i.e. on 127.0.0.1 only, and with a short timeout."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import torch

T, CHANNELS, CLASSES = 8, 6, 3


def tiny_data(n: int, seed: int = 5):
    """Spikes [T, n, CHANNELS] and labels [n] (a fixed random draw)."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, n, CHANNELS, generator=g) < 0.4).float()
    y = torch.randint(0, CLASSES, (n,), generator=g)
    return x, y


def tiny_network(dropout: float = 0.0):
    from hwsnn.demo import default_network

    torch.manual_seed(11)
    return default_network("generic_int8", channels=CHANNELS, hidden=12, classes=CLASSES, voting_size=2, dropout=dropout)


def _join(rank: int, world: int, store: str) -> None:
    import torch.distributed as dist

    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=90))


def training_worker(rank: int, world: int, store: str, out: str, n: int, batch: int) -> None:
    """On every rank: calibration and accuracy of the untrained network (across ranks), one epoch
    of float training and one of QAT; saves what it saw to ``out/rank<r>.pt``."""
    import torch.distributed as dist

    import quant
    from hwsnn.demo import accuracy, train
    from hwsnn.layer import Dropout
    from hwsnn.parallel import rank_seed
    from quant.distributed import calibrate_across_ranks

    _join(rank, world, store)
    try:
        x, y = tiny_data(n)
        net = tiny_network()
        cal = calibrate_across_ranks(net, "generic_int8", x, batch_size=5, max_batches=3)
        acc0 = accuracy(net, x, y, batch_size=7)
        train(net, x, y, epochs=1, lr=1e-2, batch_size=batch, seed=3, progress=False)
        float_state = {k: v.clone() for k, v in net.state_dict().items()}
        qat = quant.prepare(net, "generic_int8", seed=rank_seed(0, rank), clip=True, state_exponents=cal.state_exponents)
        train(qat, x, y, epochs=1, lr=1e-3, batch_size=batch, seed=4, progress=False)
        # dropout: record the masks each rank draws, twice from the same seed
        masks = []
        drop_net = tiny_network(dropout=0.5)
        drop = next(m for m in drop_net if isinstance(m, Dropout))
        original = drop.create_mask

        def recording(h, original=original):
            original(h)
            masks.append(drop.mask.clone())

        drop.create_mask = recording
        for _ in range(2):
            train(drop_net, x, y, epochs=1, lr=1e-2, batch_size=batch, seed=3, progress=False)
        torch.save({"observed": cal.observed, "exponents": cal.state_exponents, "batches": cal.batches,
                    "accuracy": acc0, "float": float_state, "qat": qat.state_dict(), "masks": masks},
                   Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
