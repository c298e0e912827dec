"""Data-parallel training (hwsnn.parallel, quant.distributed): the sharding, the per-rank seeds, and
two gloo processes on 127.0.0.1 against one process with the global batch."""

from __future__ import annotations

import time

import pytest
import torch
import torch.multiprocessing as mp

import dist_workers as W
from hwsnn.demo import accuracy, train
from hwsnn.parallel import Parallel, rank_seed, shard_batches, shard_range
from quant import calibrate


# ------------------------------------------------------------------------------------ pure functions
@pytest.mark.parametrize("n", [1, 2, 5, 16, 49, 50])
@pytest.mark.parametrize("batch", [1, 3, 8])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_split_every_global_batch_exactly_once(n, batch, world):
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n + batch))
    globs = list(torch.split(order, batch * world))  # the batches one process with batch B * W would take
    per_rank = [list(shard_batches(order, batch, Parallel(rank=r, world_size=world))) for r in range(world)]
    assert all(len(p) == len(globs) for p in per_rank)  # every rank runs the same number of steps
    for step, glob in enumerate(globs):
        real = [(idx, w) for idx, w in (p[step] for p in per_rank) if w > 0]
        got = torch.cat([idx for idx, _ in real])
        assert sorted(got.tolist()) == sorted(glob.tolist())  # together: exactly the global batch
        assert len(set(got.tolist())) == got.numel()  # no sample twice
        for idx, w in real:
            assert w == world / glob.numel() and 1 <= idx.numel() <= batch
        stand_ins = [p[step] for p in per_rank if p[step][1] == 0]
        assert len(stand_ins) == max(0, world - glob.numel())  # only ranks left without a sample
        assert all(idx.numel() == 1 and int(idx) in glob.tolist() for idx, _ in stand_ins)
    if world == 1:  # one process: the single-process loop's batches
        assert [idx.tolist() for idx, _ in per_rank[0]] == [order[i : i + batch].tolist() for i in range(0, n, batch)]


def test_shard_range_covers_the_samples_once():
    for n in (0, 1, 7, 100):
        for world in (1, 2, 3, 8):
            parts = [shard_range(n, Parallel(rank=r, world_size=world)) for r in range(world)]
            assert parts[0][0] == 0 and parts[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))


def test_rank_seeds_are_distinct_reproducible_and_keep_rank_0():
    for seed in (0, 1, 12345):
        seeds = [rank_seed(seed, r) for r in range(64)]
        assert seeds[0] == seed and seeds == [rank_seed(seed, r) for r in range(64)]
        assert len(set(seeds)) == 64 and all(0 <= s < 2**31 for s in seeds[1:])
    assert rank_seed(0, 1) != rank_seed(1, 1)


# ------------------------------------------------------------------------------------ two processes
def run_workers(fn, args: tuple, world: int, timeout: float) -> None:
    """Start ``world`` spawned processes ``fn(rank, *args)``; fail (and stop them) after ``timeout`` s."""
    ctx = mp.start_processes(fn, args=args, nprocs=world, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world} worker processes did not finish within {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.terminate()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """What each of 2 gloo ranks saw (tests/dist_workers.py: n = 51 samples, per-rank batch 8)."""
    out = tmp_path_factory.mktemp("ranks")
    mp_env = pytest.MonkeyPatch()
    mp_env.setenv("GLOO_SOCKET_IFNAME", "lo")
    try:
        run_workers(W.training_worker, (2, str(out / "store"), str(out), 51, 8), world=2, timeout=240)
    finally:
        mp_env.undo()
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]


def test_two_ranks_train_like_one_process_with_the_global_batch(two_ranks):
    """No dropout: 1 epoch on 2 ranks with batch 8 each = 1 process with batch 16 (gradient
    averaging), also through the short last batch (51 = 3 x 16 + 3: 2 samples on rank 0, 1 on rank 1)."""
    x, y = W.tiny_data(51)
    net = W.tiny_network()
    train(net, x, y, epochs=1, lr=1e-2, batch_size=16, seed=3, progress=False)
    ref = net.state_dict()
    untouched = W.tiny_network().state_dict()
    for r in range(2):
        for k, v in two_ranks[r]["float"].items():
            assert not torch.equal(v, untouched[k]), k  # training changed it ...
            torch.testing.assert_close(v, ref[k], rtol=1e-5, atol=1e-6)  # ... as one process does
    for k in ref:  # DDP keeps the ranks' weights identical
        assert torch.equal(two_ranks[0]["float"][k], two_ranks[1]["float"][k])
        assert torch.equal(two_ranks[0]["qat"][k], two_ranks[1]["qat"][k])


def test_calibration_and_accuracy_across_ranks_equal_one_process(two_ranks):
    """The maximum over all ranks' batches: the same ranges and exponents as one process that sees all."""
    x, y = W.tiny_data(51)
    net = W.tiny_network()
    cal = calibrate(net, "generic_int8", x, batch_size=5, max_batches=3)
    acc = accuracy(net, x, y, batch_size=7)
    for r in range(2):
        assert two_ranks[r]["observed"] == cal.observed
        assert two_ranks[r]["exponents"] == cal.state_exponents and two_ranks[r]["batches"] == 3
        assert two_ranks[r]["accuracy"] == acc


def test_dropout_masks_differ_per_rank_and_follow_seed_rank_and_draw(two_ranks):
    """Rank r's first mask is the first draw of torch.manual_seed(rank_seed(seed, r)); the ranks'
    masks differ; a second run from the same seed draws the same masks again."""
    for r in range(2):
        masks = two_ranks[r]["masks"]
        half = len(masks) // 2
        assert half >= 4 and all(torch.equal(a, b) for a, b in zip(masks[:half], masks[half:]))
        torch.manual_seed(rank_seed(3, r))
        keep = torch.rand(masks[0].shape) >= 0.5
        assert torch.equal(masks[0], keep.float() * 2.0)
    assert not torch.equal(two_ranks[0]["masks"][0], two_ranks[1]["masks"][0])
