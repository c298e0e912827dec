"""Event data kinds of run files (``data.kind: shd | nmnist``, hwsnn.events, through tonic).

Tiny files are written in each data set's own on-disk layout (SHD: HDF5 with spikes/times,
spikes/units, labels, extra/keys, extra/speaker; N-MNIST: Train|Test/<digit>/<id>.bin of 40-bit
events) and loaded through the run-file path; the binned counts are compared with plain loops
written from the documented rules (fixed steps of dt from t = 0, pooling by channel groups).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hwsnn.config import ConfigError, load_run_config, run_config_from_dict

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "shd_xylo.yaml"


@pytest.fixture
def tonic_h5py():
    pytest.importorskip("h5py")
    return pytest.importorskip("tonic")


# --------------------------------------------------------------------------- writers (the real layouts)


def write_shd(folder: Path, split: str, samples: list[tuple[list[float], list[int]]], labels: list[int],
              time_dtype=np.float32) -> Path:
    """``folder/shd_<split>.h5`` in the SHD layout: one (times in s, units) pair per sample."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"shd_{split}.h5"
    with h5py.File(path, "w") as f:
        times = f.create_dataset("spikes/times", (len(samples),), dtype=h5py.vlen_dtype(time_dtype))
        units = f.create_dataset("spikes/units", (len(samples),), dtype=h5py.vlen_dtype(np.uint16))
        for i, (t, u) in enumerate(samples):
            times[i] = np.asarray(t, dtype=time_dtype)
            units[i] = np.asarray(u, dtype=np.uint16)
        f["labels"] = np.asarray(labels, dtype=np.uint16)
        f["extra/keys"] = np.array([f"word-{k}".encode() for k in range(20)])
        f["extra/speaker"] = np.zeros(len(samples), dtype=np.uint16)
    return path


def write_nmnist(folder: Path, split: str, samples: list[tuple[int, list[tuple[int, int, int, int]]]]) -> list[Path]:
    """``folder/Train|Test/<label>/<i>.bin``: each event (x, y, t_us, p) as 5 bytes
    x, y, p << 7 | t >> 16, (t >> 8) & 255, t & 255 (the 40-bit N-MNIST format)."""
    paths = []
    for i, (label, events) in enumerate(samples):
        d = folder / {"train": "Train", "test": "Test"}[split] / str(label)
        d.mkdir(parents=True, exist_ok=True)
        raw = bytearray()
        for x, y, t, p in events:
            assert 0 <= t < 1 << 23
            raw += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 255, t & 255])
        path = d / f"{i:05d}.bin"
        path.write_bytes(bytes(raw))
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- hand computations


def shd_hand(samples, T: int, dt_us: int, channels: int) -> np.ndarray:
    """[T, N, channels]: step = floor(t_us / dt) with t_us = int(seconds * 1e6); pooled channel j
    holds the units from ceil(700 j / C) up to ceil(700 (j + 1) / C) - 1."""
    starts = [math.ceil(700 * j / channels) for j in range(channels)]
    out = np.zeros((T, len(samples), channels))
    for n, (times, units) in enumerate(samples):
        for t, u in zip(times, units):
            t_us = int(float(np.float32(t)) * 1e6)
            step = t_us // dt_us
            if step >= T:
                continue
            group = max(j for j in range(channels) if starts[j] <= u)
            out[step, n, group] += 1
    return out


def nmnist_hand(samples, T: int, dt_us: int, pool: int, first_saccade_only: bool = False) -> np.ndarray:
    """[T, N, 2 * side * side]: channel p * side^2 + (y // pool) * side + x // pool."""
    side = 34 // pool
    out = np.zeros((T, len(samples), 2 * side * side))
    for n, (_, events) in enumerate(samples):
        for x, y, t, p in events:
            if first_saccade_only and t >= 100_000:
                continue
            step = t // dt_us
            if step < T:
                out[step, n, p * side * side + (y // pool) * side + x // pool] += 1
    return out


def random_shd(rng: np.random.Generator, n: int, t_max: float = 1.3) -> list:
    samples = []
    for _ in range(n):
        k = int(rng.integers(0, 60))
        samples.append((np.sort(rng.uniform(0, t_max, k)).tolist(), rng.integers(0, 700, k).tolist()))
    return samples


def run_data(tmp_path: Path, data: dict, network=None) -> dict:
    d = {"data": {"cache_dir": str(tmp_path / "cache"), "workers": 0, **data}}
    if network is not None:
        d["network"] = network
    return d


def load(d: dict, source=None):
    return run_config_from_dict(d, source=source).load_data(progress=False)


# --------------------------------------------------------------------------- SHD


@pytest.mark.parametrize("channels,T,dt_ms", [(700, 12, 125), (16, 10, 100), (5, 7, 50.5), (1, 3, 400)])
def test_shd_counts_equal_a_hand_computation(tmp_path, tonic_h5py, channels, T, dt_ms):
    rng = np.random.default_rng(channels)
    edges = ([0.0, 0.125, 0.25, 0.5, 0.5, 0.875, 1.0, 1.5], [0, 699, 43, 44, 87, 88, 174, 175])  # exact float32 times
    train = random_shd(rng, 5) + [edges, ([], [])]  # boundaries, group edges, an empty sample
    test = random_shd(rng, 3)
    write_shd(tmp_path / "shd", "train", train, list(range(len(train))))
    write_shd(tmp_path / "shd", "test", test, [19, 0, 7])
    x, y, xt, yt = load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "shd"), "channels": channels,
                                            "T": T, "dt_ms": dt_ms}))
    dt_us = round(dt_ms * 1000)
    assert x.dtype == torch.float32 and x.shape == (T, len(train), channels)
    np.testing.assert_array_equal(x.numpy(), shd_hand(train, T, dt_us, channels))
    np.testing.assert_array_equal(xt.numpy(), shd_hand(test, T, dt_us, channels))
    assert y.tolist() == list(range(len(train))) and yt.tolist() == [19, 0, 7] and y.dtype == torch.int64
    assert x.sum() > 0


def test_shd_float16_times_and_a_tonic_save_to_folder(tmp_path, tonic_h5py):
    """tonic's own layout (<save_to>/SHD/shd_train.h5) is found too; float16 times are read."""
    samples = [([0.0, 0.01, 0.02, 0.5], [1, 2, 3, 699])]
    write_shd(tmp_path / "SHD", "train", samples, [4], time_dtype=np.float16)
    write_shd(tmp_path / "SHD", "test", samples, [5], time_dtype=np.float16)
    x, y, _, yt = load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path), "T": 60, "dt_ms": 10}))
    times = [float(np.float16(t)) for t in samples[0][0]]  # the hand computation of what the file holds
    np.testing.assert_array_equal(x.numpy(), shd_hand([(times, samples[0][1])], 60, 10_000, 700))
    assert y.tolist() == [4] and yt.tolist() == [5]


def test_shd_max_count_clips_and_one_binarizes(tmp_path, tonic_h5py):
    burst = ([0.001 * i for i in range(30)], [10] * 30)  # 30 events of unit 10 within 30 ms
    write_shd(tmp_path / "d", "train", [burst], [0])
    write_shd(tmp_path / "d", "test", [burst], [0])
    base = {"kind": "shd", "path": str(tmp_path / "d"), "T": 2, "dt_ms": 100, "channels": 4}
    raw = load(run_data(tmp_path, base))[0]
    assert raw[0, 0, 0] == 30 and raw.sum() == 30
    assert load(run_data(tmp_path, {**base, "max_count": 15}))[0][0, 0, 0] == 15
    spikes = load(run_data(tmp_path, {**base, "max_count": 1}))[0]
    assert set(spikes.unique().tolist()) == {0.0, 1.0}


def test_shd_labels_subset_and_random_samples(tmp_path, tonic_h5py):
    rng = np.random.default_rng(3)
    train = random_shd(rng, 40)
    labels = [i % 20 for i in range(40)]
    write_shd(tmp_path / "d", "train", train, labels)
    write_shd(tmp_path / "d", "test", train[:20], labels[:20])
    base = {"kind": "shd", "path": str(tmp_path / "d"), "channels": 8, "T": 20, "dt_ms": 50}
    x, y, xt, yt = load(run_data(tmp_path, {**base, "labels": [7, 2, 11]}))
    # the kept classes, relabelled by their position in the list: 7 -> 0, 2 -> 1, 11 -> 2
    keep = [i for i in range(40) if labels[i] in (7, 2, 11)]
    assert y.tolist() == [[7, 2, 11].index(labels[i]) for i in keep]
    np.testing.assert_array_equal(x.numpy(), shd_hand([train[i] for i in keep], 20, 50_000, 8))
    assert yt.tolist() == [1, 0, 2]
    # a seeded random subset, in file order; another seed draws another subset
    d = run_data(tmp_path, {**base, "train_samples": 10, "test_samples": 4})
    a, b = load(d), load({**d, "seed": 0})
    c = load({**d, "seed": 5})
    assert a[0].shape == (20, 10, 8) and a[2].shape == (20, 4, 8)
    assert torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0])
    full = load(run_data(tmp_path, base))
    picks = [next(j for j in range(40) if torch.equal(full[0][:, j], a[0][:, i]) and full[1][j] == a[1][i]) for i in range(10)]
    assert len(set(picks)) == 10


# --------------------------------------------------------------------------- N-MNIST


def random_nmnist(rng: np.random.Generator, n: int) -> list:
    samples = []
    for i in range(n):
        k = int(rng.integers(0, 80))
        t = np.sort(rng.integers(0, 320_000, k))
        ev = [(int(rng.integers(0, 34)), int(rng.integers(0, 34)), int(tt), int(rng.integers(0, 2))) for tt in t]
        samples.append((i % 10, ev))
    return samples


def _by_file_order(samples):
    """tonic lists the files sorted by digit folder, then name: the order of the loaded samples."""
    return sorted(samples, key=lambda s: s[0])


@pytest.mark.parametrize("pool,T,dt_ms,first", [(1, 35, 10, False), (2, 8, 40, False), (17, 5, 100, True), (34, 4, 80, False)])
def test_nmnist_counts_equal_a_hand_computation(tmp_path, tonic_h5py, pool, T, dt_ms, first):
    rng = np.random.default_rng(pool)
    train = random_nmnist(rng, 12)
    train[0] = (0, [(0, 0, 0, 0), (33, 33, 9_999, 1), (33, 0, 10_000, 1), (0, 33, 100_000, 0), (5, 6, 349_999, 1)])
    train.append((3, []))  # an empty recording
    test = random_nmnist(rng, 4)
    write_nmnist(tmp_path / "nm", "train", train)
    write_nmnist(tmp_path / "nm", "test", test)
    x, y, xt, yt = load(run_data(tmp_path, {"kind": "nmnist", "path": str(tmp_path / "nm"), "pool": pool, "T": T,
                                            "dt_ms": dt_ms, "first_saccade_only": first}))
    side = 34 // pool
    assert x.shape == (T, len(train), 2 * side * side)
    ordered = _by_file_order(train)
    np.testing.assert_array_equal(x.numpy(), nmnist_hand(ordered, T, dt_ms * 1000, pool, first))
    np.testing.assert_array_equal(xt.numpy(), nmnist_hand(_by_file_order(test), T, dt_ms * 1000, pool, first))
    assert y.tolist() == [s[0] for s in ordered]


def test_nmnist_image_layout_keeps_polarity_rows_columns(tmp_path, tonic_h5py):
    samples = [(2, [(5, 7, 1_000, 1), (5, 7, 2_000, 1), (33, 0, 15_000, 0)])]
    write_nmnist(tmp_path, "train", samples)
    write_nmnist(tmp_path, "test", samples)
    x, *_ = load(run_data(tmp_path, {"kind": "nmnist", "path": str(tmp_path), "layout": "image", "T": 2, "dt_ms": 10}))
    assert x.shape == (2, 1, 2, 34, 34)
    assert x[0, 0, 1, 7, 5] == 2 and x[1, 0, 0, 0, 33] == 1 and x.sum() == 3
    flat, *_ = load(run_data(tmp_path, {"kind": "nmnist", "path": str(tmp_path), "T": 2, "dt_ms": 10}))
    assert torch.equal(flat, x.reshape(2, 1, -1))


# --------------------------------------------------------------------------- missing files, no download


def test_missing_files_name_the_path_and_file(tmp_path, tonic_h5py):
    with pytest.raises(ConfigError) as err:
        load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "nowhere")}))
    msg = str(err.value)
    assert "data.path: SHD train file shd_train.h5 not found" in msg and str(tmp_path / "nowhere" / "shd_train.h5") in msg
    write_shd(tmp_path / "half", "train", [([0.1], [1])], [0])  # the test file is missing
    with pytest.raises(ConfigError, match=r"data\.path: SHD test file shd_test\.h5 not found") as err:
        load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "half")}))
    assert str(tmp_path / "half" / "shd_test.h5") in str(err.value)
    with pytest.raises(ConfigError, match=r"data\.path: .*shd_train\.h5 is a file; data\.path names the folder"):
        load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "half" / "shd_train.h5")}))
    with pytest.raises(ConfigError, match=r"data\.path: N-MNIST train folder Train/ not found") as err:
        load(run_data(tmp_path, {"kind": "nmnist", "path": str(tmp_path / "nowhere")}))
    assert str(tmp_path / "nowhere" / "Train") in str(err.value)


def test_tonic_never_downloads(tmp_path, tonic_h5py, monkeypatch):
    """tonic's constructors download when their archive is missing; the local readers refuse, and
    the loader never reaches tonic's downloader even with only the unzipped files present."""
    import tonic.dataset
    import urllib.request

    from hwsnn.events import EventDataError
    from hwsnn.events.nmnist import LocalNMNIST
    from hwsnn.events.shd import LocalSHD

    def no_network(*a, **k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tonic.dataset, "download_and_extract_archive", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(EventDataError, match="shd_train.h5 not found.*nothing is downloaded"):
        LocalSHD(str(tmp_path), train=True)
    with pytest.raises(EventDataError, match="no .bin files under .*Train.*nothing is downloaded"):
        LocalNMNIST(str(tmp_path), train=True)
    write_shd(tmp_path / "shd", "train", [([0.1], [1])], [0])  # no shd_train.h5.zip: tonic alone would download
    write_shd(tmp_path / "shd", "test", [([0.1], [1])], [0])
    write_nmnist(tmp_path / "nm", "train", [(1, [(1, 1, 10, 0)])])  # 1 file, no train.zip
    write_nmnist(tmp_path / "nm", "test", [(1, [(1, 1, 10, 0)])])
    assert load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "shd")}))[0].sum() == 1
    assert load(run_data(tmp_path, {"kind": "nmnist", "path": str(tmp_path / "nm")}))[0].sum() == 1


def test_bad_files_name_the_file(tmp_path, tonic_h5py):
    import h5py

    folder = tmp_path / "bad"
    write_shd(folder, "train", [([0.1], [1])], [0])
    write_shd(folder, "test", [([0.1], [1])], [0])
    with h5py.File(folder / "shd_train.h5", "a") as f:
        del f["labels"]
    with pytest.raises(ConfigError, match=r"data\.path: .*shd_train\.h5: not an SHD file: missing dataset\(s\) labels"):
        load(run_data(tmp_path, {"kind": "shd", "path": str(folder)}))
    (folder / "shd_train.h5").write_bytes(b"not hdf5")
    with pytest.raises(ConfigError, match=r"data\.path: .*shd_train\.h5: not a readable HDF5 file"):
        load(run_data(tmp_path, {"kind": "shd", "path": str(folder)}))
    write_shd(folder, "train", [([0.1], [1]), ([0.1], [1, 2])], [0, 1])  # 1 time, 2 units
    with pytest.raises(ConfigError, match=r"data\.path: cannot bin .*shd_train\.h5 sample 1: .*holds 1 times but spikes/units 2"):
        load(run_data(tmp_path, {"kind": "shd", "path": str(folder), "cache": False}))
    write_shd(folder, "train", [([0.1], [1]), ([0.1, 0.2], [3, 700])], [0, 1])  # unit 700 is off the sensor
    with pytest.raises(ConfigError, match=r"data\.path: cannot bin .*shd_train\.h5 sample 1: .*x in \[3, 700\], outside"):
        load(run_data(tmp_path, {"kind": "shd", "path": str(folder), "cache": False}))
    nm = tmp_path / "nm"
    write_nmnist(nm, "train", [(1, [(1, 1, 10, 0)])])
    (nm / "Train" / "stray.bin").write_bytes(b"\0" * 5)
    with pytest.raises(ConfigError, match=r"data\.path: .*stray\.bin: N-MNIST files must lie in digit folders"):
        load(run_data(tmp_path, {"kind": "nmnist", "path": str(nm)}))
    (nm / "Train" / "stray.bin").unlink()
    (nm / "Train" / "1" / "odd.bin").write_bytes(b"\0" * 7)
    with pytest.raises(ConfigError, match=r"odd\.bin: 7 bytes, not a whole number of 5-byte events"):
        load(run_data(tmp_path, {"kind": "nmnist", "path": str(nm)}))


def test_without_tonic_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tonic", None)
    with pytest.raises(ConfigError, match=r"data\.kind: shd needs tonic and h5py .*hwsnn\[events\]"):
        load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path)}))


# --------------------------------------------------------------------------- cache and workers


def _count_binning(monkeypatch) -> list:
    from hwsnn.events import loader

    calls = []
    real = loader._bin_split

    def counting(ds, index, *a, **k):
        calls.append(len(index))
        return real(ds, index, *a, **k)

    monkeypatch.setattr(loader, "_bin_split", counting)
    return calls


def test_cache_hit_is_identical_and_any_change_misses(tmp_path, tonic_h5py, monkeypatch):
    rng = np.random.default_rng(9)
    train = random_shd(rng, 8)
    write_shd(tmp_path / "d", "train", train, [1] * 8)
    write_shd(tmp_path / "d", "test", train[:3], [2] * 3)
    calls = _count_binning(monkeypatch)
    d = run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "d"), "channels": 16, "T": 30, "dt_ms": 40})
    first = load(d)
    assert calls == [8, 3]
    files = sorted((tmp_path / "cache").glob("shd-*.npz"))
    assert len(files) == 2 and not list((tmp_path / "cache").glob(".*tmp"))
    with np.load(files[0], allow_pickle=False) as f:
        assert f["counts"].dtype == np.int16
    second = load(d)
    assert calls == [8, 3]  # served from the cache
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    load({**d, "data": {**d["data"], "max_count": 2}})
    assert calls == [8, 3]  # max_count applies after the cache
    for change in ({"dt_ms": 20}, {"T": 31}, {"channels": 15}, {"train_samples": 5}):
        calls.clear()
        other = load({**d, "data": {**d["data"], **change}})
        assert calls, change  # binned again
        assert any(a.shape != b.shape or not torch.equal(a, b) for a, b in zip(first, other)), change
    calls.clear()
    relabelled = load({**d, "data": {**d["data"], "labels": [2, 1]}})  # the same samples: the same counts
    assert calls == [] and torch.equal(relabelled[0], first[0])
    assert relabelled[1].tolist() == [1] * 8 and relabelled[3].tolist() == [0] * 3
    # a rewritten source file (same shape, other events) misses the cache
    calls.clear()
    write_shd(tmp_path / "d", "train", random_shd(rng, 8), [1] * 8)
    os.utime(tmp_path / "d" / "shd_train.h5", ns=(1, 1))  # even with an old modification time: the size changes
    again = load(d)
    assert calls == [8] and not torch.equal(again[0], first[0])
    # a damaged cache entry is a miss, rebinned and rewritten
    calls.clear()
    for f in (tmp_path / "cache").glob("shd-test-*.npz"):
        f.write_bytes(b"garbage")
    assert torch.equal(load(d)[2], first[2]) and calls == [3]
    calls.clear()
    assert torch.equal(load(d)[2], first[2]) and calls == []
    # cache: false neither reads nor writes
    calls.clear()
    before = sorted((tmp_path / "cache").iterdir())
    load({**d, "data": {**d["data"], "cache": False}})
    assert calls == [8, 3] and sorted((tmp_path / "cache").iterdir()) == before


def test_nmnist_cache_notices_a_changed_file(tmp_path, tonic_h5py, monkeypatch):
    samples = [(1, [(1, 1, 10, 0)]), (2, [(2, 2, 20, 1)])]
    paths = write_nmnist(tmp_path / "nm", "train", samples)
    write_nmnist(tmp_path / "nm", "test", samples)
    calls = _count_binning(monkeypatch)
    d = run_data(tmp_path, {"kind": "nmnist", "path": str(tmp_path / "nm"), "T": 2})
    a = load(d)
    load(d)
    assert calls == [2, 2]
    paths[0].write_bytes(bytes([3, 3, 0, 0, 10]) * 2)  # two events now
    b = load(d)
    assert calls == [2, 2, 2] and b[0].sum() == a[0].sum() + 1


def test_workers_bin_the_same_tensors(tmp_path, tonic_h5py):
    rng = np.random.default_rng(1)
    train = random_shd(rng, 70)  # more than two loader batches
    write_shd(tmp_path / "d", "train", train, [i % 20 for i in range(70)])
    write_shd(tmp_path / "d", "test", train[:5], [0] * 5)
    d = run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "d"), "channels": 16, "cache": False})
    serial = load(d)
    parallel = load({**d, "data": {**d["data"], "workers": 2}})
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))
    np.testing.assert_array_equal(parallel[0].numpy(), shd_hand(train, 100, 10_000, 16))


def test_progress_bar_on_the_first_pass_only(tmp_path, tonic_h5py, capsys):
    write_shd(tmp_path / "d", "train", [([0.1], [1])], [0])
    write_shd(tmp_path / "d", "test", [([0.1], [1])], [0])
    cfg = run_config_from_dict(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "d")}))
    cfg.load_data(progress=True)
    assert "binning shd train" in capsys.readouterr().err
    cfg.load_data(progress=True)
    assert "binning" not in capsys.readouterr().err


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize("data,wants", [
    ({"kind": "shd"}, "data.path: missing (required for kind shd"),
    ({"kind": "shd", "path": ""}, "data.path: must be a non-empty string"),
    ({"kind": "shd", "path": "x", "T": 0}, "data.T: must be an int >= 1; got 0"),
    ({"kind": "shd", "path": "x", "dt_ms": 0}, "data.dt_ms: must be a number of milliseconds > 0; got 0"),
    ({"kind": "shd", "path": "x", "dt_ms": 0.0005}, "data.dt_ms: must be a whole number of microseconds"),
    ({"kind": "shd", "path": "x", "channels": 701}, "data.channels: must be an int in [1, 700]; got 701"),
    ({"kind": "shd", "path": "x", "chanels": 16}, "data.chanels: unknown key (did you mean 'channels'?)"),
    ({"kind": "shd", "path": "x", "max_count": 0}, "data.max_count: must be an int >= 1 or null; got 0"),
    ({"kind": "shd", "path": "x", "labels": [3, 3]}, "data.labels: must be null or a list of at least 2 distinct labels in [0, 20)"),
    ({"kind": "shd", "path": "x", "labels": [0, 20]}, "data.labels: must be null or a list of at least 2 distinct labels in [0, 20)"),
    ({"kind": "shd", "path": "x", "workers": -1}, "data.workers: must be an int >= 0; got -1"),
    ({"kind": "shd", "path": "x", "cache": "yes"}, "data.cache: must be true or false; got 'yes'"),
    ({"kind": "shd", "path": "x", "pool": 2}, "data.pool: unknown key"),
    ({"kind": "nmnist", "path": "x", "pool": 3}, "data.pool: must be one of 1, 2, 17, 34; got 3"),
    ({"kind": "nmnist", "path": "x", "layout": "conv"}, "data.layout: must be one of 'flat', 'image'; got 'conv'"),
    ({"kind": "nmnist", "path": "x", "labels": [1, 10]}, "data.labels: must be null or a list of at least 2 distinct labels in [0, 10)"),
    ({"kind": "nmnist", "path": "x", "first_saccade_only": 1}, "data.first_saccade_only: must be true or false; got 1"),
    ({"kind": "nmnist", "path": "x", "channels": 16}, "data.channels: unknown key"),
])
def test_bad_options_name_the_key(data, wants):
    with pytest.raises(ConfigError) as err:
        run_config_from_dict({"data": data})
    assert any(p.startswith(wants) for p in err.value.problems), err.value.problems


def test_paths_resolve_against_the_run_file_and_round_trip(tmp_path):
    (tmp_path / "cfg").mkdir()
    run = tmp_path / "cfg" / "run.yaml"
    run.write_text("data: {kind: shd, path: ../data/shd, cache_dir: cache, channels: 16}\n")
    cfg = load_run_config(run)  # the folder is not read before the data is loaded
    assert cfg.data.options["path"] == str((tmp_path / "data" / "shd").resolve())
    assert cfg.data.options["cache_dir"] == str((tmp_path / "cfg" / "cache").resolve())
    assert run_config_from_dict(cfg.to_dict(), source=run) == cfg
    assert json.loads(json.dumps(cfg.to_dict()))["data"]["channels"] == 16


def test_data_width_is_checked_against_the_network(tmp_path, tonic_h5py):
    write_shd(tmp_path / "d", "train", [([0.1], [1])], [0])
    write_shd(tmp_path / "d", "test", [([0.1], [1])], [0])
    net = [{"type": "Linear", "in_features": 700, "out_features": 4, "bias": False},
           {"type": "LIFNode", "tau": 2.0}]
    with pytest.raises(ConfigError, match=r"network\[0\]\.in_features: 700, but the data \(data\.kind shd\) has 16 input channels"):
        load(run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "d"), "channels": 16}, net))


# --------------------------------------------------------------------------- the job on counts, the example


def test_job_exports_count_inputs(tmp_path, tonic_h5py, capsys):
    """The main job on binned SHD counts: the export declares ``counts`` inputs, the simulator runs
    them bit-exactly, and on Xylo a count above 15 is announced (the integer network clips it)."""
    from quant.job import run_job

    rng = np.random.default_rng(2)
    train = random_shd(rng, 24, t_max=0.2)
    train[0] = ([0.001 * i for i in range(20)], [3] * 20)  # 20 events in one step and channel
    write_shd(tmp_path / "d", "train", train, [i % 2 for i in range(24)])
    write_shd(tmp_path / "d", "test", train[:8], [i % 2 for i in range(8)])
    net = [{"type": "Linear", "in_features": 16, "out_features": 8, "bias": False},
           {"type": "CubaLIFNode", "tau_syn": 4.0, "tau_mem": 4.0, "v_reset": None},
           {"type": "Linear", "in_features": 8, "out_features": 2, "bias": False},
           {"type": "CubaLIFNode", "tau_syn": 4.0, "tau_mem": 4.0, "v_reset": None}]
    for target in ("generic_int8", "xylo"):
        d = run_data(tmp_path, {"kind": "shd", "path": str(tmp_path / "d"), "channels": 16, "T": 10, "dt_ms": 20}, net)
        d.update(target=target, out=str(tmp_path / target),
                 training={"epochs": 1, "qat_epochs": 0, "batch_size": 8, "calibration_batches": 1})
        result = run_job(run_config_from_dict(d), progress=False, plots=False)
        manifest = json.loads((result.export / "manifest.json").read_text())
        assert manifest["input"]["kind"] == "counts", target
        assert result.bit_exact, target
        out = capsys.readouterr().out
        assert ("takes at most 15" in out) == (target == "xylo"), out
    d["data"]["max_count"] = 1
    result = run_job(run_config_from_dict(d), progress=False, plots=False)
    assert json.loads((result.export / "manifest.json").read_text())["input"]["kind"] == "spikes"
    assert "takes at most" not in capsys.readouterr().out


def test_example_shd_xylo_validates_and_builds():
    """examples/shd_xylo.yaml parses and builds (no data here): 16 pooled inputs, hidden CUBA
    neurons within Xylo's 1000, at most 8 readout neurons, the classes of its label list."""
    cfg = load_run_config(EXAMPLE)
    assert cfg.target == "xylo" and cfg.data.kind == "shd"
    opts = cfg.data.options
    assert opts["channels"] == 16 and opts["max_count"] == 15
    net = cfg.build_network()
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    assert linears[0].in_features == 16
    hidden = sum(m.out_features for m in linears[:-1])
    assert hidden <= 1000 and linears[-1].out_features <= 8
    classes = len(opts["labels"]) if opts.get("labels") else 20
    with torch.no_grad():
        out = net(torch.randint(0, 16, (opts["T"], 2, 16)).float())
    assert out.shape == (opts["T"], 2, classes)
    assert Path(opts["path"]).is_absolute()


def test_input_kind_of_the_export():
    from quant.job import PreflightError, input_kind

    assert input_kind(torch.tensor([[0.0, 1.0]])) == "spikes"
    assert input_kind(torch.tensor([[0.0, 3.0, 15.0]])) == "counts"
    assert input_kind(torch.zeros(2, 0)) == "spikes"
    for off_grid in ([[0.5, 2.5]], [[-2.0, 3.0]]):  # not spikes or counts: refused before training
        with pytest.raises(PreflightError, match="off the grid"):
            input_kind(torch.tensor(off_grid))
    assert input_kind(torch.tensor([[0.0, 1.0]]), torch.tensor([[2.0]])) == "counts"  # train or test
