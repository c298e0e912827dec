"""The embedded default task: digits spike encoding and split, the chip-ready default network,
the reusable float training loop and accuracy."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

pytest.importorskip("sklearn")

import quant  # noqa: E402
import sim  # noqa: E402
import targets  # noqa: E402
from hwsnn import functional, layer, neuron  # noqa: E402
from hwsnn.data import digits_spikes, digits_split  # noqa: E402
from hwsnn.demo import DemoConfig, accuracy, default_network, reset_kind, run_float_demo, train  # noqa: E402


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.from_numpy(d.images.round().astype(np.int64)), torch.from_numpy(d.target.astype(np.int64))


# -- encoding -------------------------------------------------------------------------------------
def test_encoding_of_one_row_by_hand(digits):
    """Image 0 (a zero), row 2 is [0, 3, 15, 2, 0, 11, 8, 0]; columns 1..6 are 3, 15, 2, 0, 11, 8.
    Levels (4, 10): channel pairs (>4, >10) = (0,0) (1,1) (0,0) (0,0) (1,1) (1,0); row 2 lies in
    row group 2*4//8 = 1 of the position code."""
    images, _ = digits
    assert images[0, 2].tolist() == [0, 3, 15, 2, 0, 11, 8, 0]
    x, y = digits_spikes("all", limit=1)
    expected = [0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0] + [0, 1, 0, 0]
    for t in (4, 5):  # row 2 is shown at steps 2*R .. 2*R + R - 1 with R = 2
        assert x[t, 0].tolist() == expected
    assert y.tolist() == [0]


@pytest.mark.parametrize("row_steps,tail_steps,levels,columns,position", [
    (2, 4, (4, 10), (1, 7), 4),
    (3, 0, (7,), (0, 8), 0),
    (1, 5, (0, 5, 12), (2, 5), 8),
])
def test_encoding_matches_the_formula_for_every_step(digits, row_steps, tail_steps, levels, columns, position):
    images, labels = digits
    x, y = digits_spikes("all", row_steps=row_steps, tail_steps=tail_steps, levels=levels, columns=columns,
                         position_channels=position, limit=40)
    width = columns[1] - columns[0]
    assert x.shape == (8 * row_steps + tail_steps, 40, width * len(levels) + position)
    assert x.dtype == torch.float32 and y.dtype == torch.int64 and torch.equal(y, labels[:40])
    for t in range(x.shape[0]):
        r = t // row_steps
        for n in (0, 17, 39):
            if r >= 8:
                assert not x[t, n].any()  # the silent tail
                continue
            pix = [float(images[n, r, c] > lv) for c in range(*columns) for lv in levels]
            pos = [float(r * position // 8 == i) for i in range(position)]
            assert x[t, n].tolist() == pix + pos


def test_default_encoding_fits_xylo_and_demo_config_agrees():
    x, _ = digits_spikes("test", limit=3)
    cfg = DemoConfig()
    assert x.shape == (cfg.T, 3, cfg.channels) and cfg.channels == 16
    assert cfg.channels <= targets.load("xylo").limits.input_channels


def test_determinism_and_the_split_seed():
    a, ya = digits_spikes("train", limit=50)
    b, yb = digits_spikes("train", limit=50)
    assert torch.equal(a, b) and torch.equal(ya, yb)
    c, yc = digits_spikes("train", split_seed=1, limit=50)
    assert not torch.equal(ya, yc)


@pytest.mark.parametrize("fraction,seed", [(0.2, 0), (0.5, 3)])
def test_split_is_disjoint_complete_and_stratified(digits, fraction, seed):
    _, labels = digits
    train_idx = digits_split(labels, "train", fraction, seed)
    test_idx = digits_split(labels, "test", fraction, seed)
    assert set(train_idx.tolist()).isdisjoint(test_idx.tolist())
    assert sorted(train_idx.tolist() + test_idx.tolist()) == list(range(labels.numel()))
    per_class = torch.bincount(labels)
    assert torch.equal(torch.bincount(labels[test_idx], minlength=10),
                       torch.tensor([round(fraction * int(n)) for n in per_class]))
    # digits_spikes encodes exactly these images, in this order
    x_all, _ = digits_spikes("all")
    x_test, y_test = digits_spikes("test", test_fraction=fraction, split_seed=seed)
    assert torch.equal(x_test, x_all[:, test_idx]) and torch.equal(y_test, labels[test_idx])


def test_limit_keeps_a_prefix():
    full, y_full = digits_spikes("test")
    part, y_part = digits_spikes("test", limit=7)
    assert torch.equal(part, full[:, :7]) and torch.equal(y_part, y_full[:7])
    more, _ = digits_spikes("test", limit=10_000)
    assert torch.equal(more, full)


@pytest.mark.parametrize("kw", [
    dict(split="valid"), dict(row_steps=0), dict(tail_steps=-1), dict(row_steps=2.0), dict(levels=()),
    dict(levels=(10, 4)), dict(levels=(4, 16)), dict(columns=(3, 3)), dict(columns=(0, 9)), dict(columns=(1,)),
    dict(position_channels=3), dict(test_fraction=0.0), dict(test_fraction=1.0), dict(limit=0), dict(limit=True),
])
def test_bad_arguments(kw):
    with pytest.raises(ValueError, match="digits_spikes"):
        digits_spikes(**kw)


def test_missing_scikit_learn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails
    with pytest.raises(ImportError, match=r"hwsnn\[digits\]"):
        digits_spikes(limit=1)


# -- the default network --------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["generic_int8", "xylo", "xylo_audio3", "xylo_imu", "loihi", "ideal"])
def test_default_network_converts_runs_and_simulates(target, tmp_path):
    torch.manual_seed(0)
    net = default_network(target, hidden=16)
    kinds = [type(m).__name__ for m in net]
    if target.startswith("xylo"):  # CUBA neurons only, ten classes as codewords over the 8 readouts
        assert kinds[-1] == "OutputCode" and "LIFNode" not in kinds and "SynapseFilter" not in kinds
        assert kinds.count("CubaLIFNode") >= 2 and net[-1].readouts == 8 and net[-1].classes == 10
    else:
        assert {"Linear", "LIFNode", "SynapseFilter", "Delay", "Dropout", "VotingLayer"} <= set(kinds)
    tg = targets.load(target)
    for m in net:
        if isinstance(m, neuron.BaseNode):
            assert m.v_reset == (None if "subtract" in tg.neuron.reset else 0.0)
        if isinstance(m, nn.Linear):
            assert m.bias is None
    x, _ = digits_spikes("test", limit=6)
    assert net(x).shape == (x.shape[0], 6, 10)
    functional.reset_net(net)
    twin = quant.convert(net.eval(), target, clip=True)
    spikes = x.to(torch.int8)
    out = twin(spikes)
    functional.reset_net(twin)
    assert out.shape == (x.shape[0], 6, 10) and not out.is_floating_point()
    path = quant.export(twin, tmp_path / "export")
    res = sim.run(path, spikes.numpy())
    assert np.array_equal(res.output, out.numpy())  # the simulator computes what the twin computes


def test_reset_kind_follows_the_target():
    assert reset_kind("loihi") == 0.0 and reset_kind("xylo") is None and reset_kind("generic_int8") is None


# -- training and accuracy ------------------------------------------------------------------------
def _loss(net, x, y, gain=10.0):
    net.eval()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(net(x).mean(0) * gain, y)
    functional.reset_net(net)
    return float(loss)


def test_train_reduces_the_loss_and_is_deterministic():
    x, y = digits_spikes("train", limit=96)
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        net = default_network("generic_int8", hidden=32)
        net[0].weight.requires_grad_(False)  # frozen: train must leave it alone
        frozen = net[0].weight.detach().clone()
        before = _loss(net, x, y)
        last = train(net, x, y, epochs=4, lr=1e-2, batch_size=32, seed=5, progress=False)
        assert np.isfinite(last) and _loss(net, x, y) < before
        assert torch.equal(net[0].weight, frozen)
        nets.append(net)
    for a, b in zip(nets[0].state_dict().values(), nets[1].state_dict().values()):
        assert torch.equal(a, b)
    torch.manual_seed(0)
    other = default_network("generic_int8", hidden=32)
    train(other, x, y, epochs=1, lr=1e-2, batch_size=32, seed=6, progress=False)
    torch.manual_seed(0)
    same = default_network("generic_int8", hidden=32)
    train(same, x, y, epochs=1, lr=1e-2, batch_size=32, seed=5, progress=False)
    assert not torch.equal(other[3].weight, same[3].weight)  # the seed matters


def test_train_refuses_bad_input():
    net = default_network(hidden=8)
    x, y = digits_spikes("train", limit=8)
    with pytest.raises(ValueError, match="N = len"):
        train(net, x, y[:4], epochs=1, lr=1e-3, batch_size=4, seed=0, progress=False)
    for p in net.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        train(net, x, y, epochs=1, lr=1e-3, batch_size=4, seed=0, progress=False)


class _Channels(nn.Module):
    """A 'network' whose class scores are its input channels (no memory)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_accuracy_on_a_separable_case():
    y = torch.tensor([0, 2, 1, 1, 0, 2])
    x = nn.functional.one_hot(y, 3).float().unsqueeze(0).repeat(5, 1, 1)  # [T, N, 3]: the label's channel fires
    assert accuracy(_Channels(), x, y, batch_size=4) == 1.0
    assert accuracy(_Channels(), x, (y + 1) % 3) == 0.0
    assert accuracy(_Channels(), x, torch.tensor([0, 2, 1, 0, 0, 0]), batch_size=2) == pytest.approx(4 / 6)


def test_run_float_demo_tiny():
    r = run_float_demo(DemoConfig(epochs=1, train_samples=64, test_samples=32, hidden=16), progress=False)
    assert 0.0 <= r.train_accuracy <= 1.0 and 0.0 <= r.test_accuracy <= 1.0 and np.isfinite(r.final_loss)
    assert r.x_test.shape == (DemoConfig().T, 32, 16) and r.y_test.shape == (32,) and not r.net.training
