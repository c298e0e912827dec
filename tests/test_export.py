"""Export directory: round trip, hex words, checksums, atomic writes, determinism, refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

import quant
import sim
from hwsnn.fixed import FixedLIFNode, FixedLinear
from targets.bundle import ExportError, NotABundleError, hex_words, parse_hex
from tests.bundle_tools import resign, rewrite_npz_member
from tests.test_bundle_tamper import resign_files_only
from tests.test_fixed_network import convert, float_net, spikes


def twin_net(target: str = "generic_int8", seed: int = 0):
    loihi = target == "loihi"
    net = float_net(seed, v_reset=0.0 if loihi else None)
    return convert(net, target, seed, clip=loihi, syn_exponent=-12 if loihi else None)


@pytest.fixture
def exported(tmp_path):
    twin = twin_net()
    x = spikes(0, T=12)
    twin(x)  # draws the dropout mask, so that it is exported too
    return twin, quant.export(twin, tmp_path / "exp"), x


def test_round_trip_gives_identical_integers(exported):
    twin, path, _ = exported
    bundle = quant.load_export(path)
    layers = quant.twin_layers(twin)
    assert [e["name"] for e in bundle.layers] == [t.layer_name for t in layers]
    fc1 = bundle.layer_tables("fc1")
    assert np.array_equal(fc1["weight"], twin[0].weight.numpy())
    assert np.array_equal(fc1["bias"], twin[0].bias.numpy())
    assert np.array_equal(bundle.layer_tables("drop")["mask"], twin[3].mask_packed.numpy())
    meta = bundle.manifest["tables"]["fc1.weight"]
    assert meta["bits"] == 8 and meta["signed"] and meta["dtype"] == "int8" and meta["exponent"] == twin[0].weight_exponent


def test_rebuilt_twin_computes_what_the_exported_one_did(exported):
    twin, path, x = exported
    from hwsnn.functional import reset_net

    reset_net(twin)
    twin[3].draws = 0  # the rebuilt twin starts from the exported draw (0)
    y = twin(x)
    rebuilt = quant.load_twin(path)
    assert torch.equal(rebuilt(x), y)


@pytest.mark.parametrize("bits", [4, 8, 12, 16])
def test_hex_files_are_full_width_twos_complement(tmp_path, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    values = np.array([lo, -3, -1, 0, 1, hi], dtype=np.int64)
    words = hex_words(values, bits)
    digits = (bits + 3) // 4
    assert all(len(w) == digits for w in words)
    assert words[1] == format((1 << bits) - 3, f"0{digits}x")  # -3: fd at 8 bits, ffd at 12, d at 4
    assert np.array_equal(parse_hex(words, bits, signed=True), values)
    # Verilog zero-extends a short word: a word of fewer digits would read back positive
    assert int(words[1], 16) >= 1 << (bits - 1)


def test_hex_examples_from_the_issue():
    assert hex_words(np.array([-3]), 8) == ["fd"]
    assert hex_words(np.array([-3]), 12) == ["ffd"]
    assert hex_words(np.array([-3]), 4) == ["d"]
    with pytest.raises(ValueError, match="does not fit"):
        hex_words(np.array([8]), 4)
    with pytest.raises(ValueError, match="wider than 4 bits"):
        parse_hex(["1f"], 4, signed=True)


def test_exported_hex_files_parse_back(exported):
    _, path, _ = exported
    bundle = quant.load_export(path)
    for name, arr in bundle.tables.items():
        assert np.array_equal(bundle.hex_values(name), arr.astype(np.int64)), name
    # 9-bit Loihi weights: three digits per word
    twin = twin_net("loihi")
    p = quant.export(twin, path.parent / "loihi")
    b = quant.load_export(p)
    meta = b.manifest["tables"]["fc1.weight"]
    assert meta["bits"] == 9 and meta["hex"]["digits"] == 3
    assert np.array_equal(b.hex_values("fc1.weight"), b.tables["fc1.weight"].astype(np.int64))


def test_a_flipped_byte_is_refused_naming_the_file_or_the_table(exported):
    _, path, _ = exported

    def flip(data: bytes) -> bytes:
        b = bytearray(data)
        b[-1] ^= 0x01  # last byte of the array data
        return bytes(b)

    rewrite_npz_member(path / "tables.npz", "fc2.weight", flip)
    with pytest.raises(ExportError, match=r"tables.npz: fails its SHA-256 check"):
        quant.load_export(path)
    with pytest.raises(ExportError, match="tables.npz"):
        sim.run(path, spikes(0, T=3).numpy())
    resign_files_only(path)  # the file digests signed again: the table's own checksum still fails
    with pytest.raises(ExportError, match=r"table 'fc2.weight': fails its SHA-256 check"):
        quant.load_export(path)


def test_a_truncated_file_is_refused(exported):
    _, path, _ = exported
    data = (path / "tables.npz").read_bytes()
    (path / "tables.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExportError, match=r"tables.npz: \d+ bytes, the manifest says \d+ \(truncated or changed\)"):
        quant.load_export(path)
    resign_files_only(path)
    with pytest.raises(ExportError, match="tables.npz: cannot be read .* the file is damaged"):
        quant.load_export(path)


def test_a_changed_shape_or_missing_table_is_refused_even_when_signed(exported):
    _, path, _ = exported
    resign(path, lambda m: m["tables"]["fc1.weight"].update(shape=[16, 32]))
    with pytest.raises(ExportError, match=r"table 'fc1.weight': shape \[32, 16\] and dtype int8; the manifest says \[16, 32\]"):
        quant.load_export(path)


def test_format_version_and_format_are_checked(exported):
    _, path, _ = exported
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NotABundleError, match="format_version 99 is not supported: this hwsnn reads version 2"):
        quant.load_export(path)
    manifest["format_version"] = 1  # hwsnn 0.3 - 0.5: refused, naming both versions
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NotABundleError, match="format_version 1 is not supported: this hwsnn reads version 2 only .written by hwsnn 0.3 - 0.5"):
        quant.load_export(path)
    manifest["format"] = "other"
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="expected 'hwsnn-export'"):
        quant.load_export(path)
    (path / "manifest.json").unlink()
    with pytest.raises(ExportError, match="no manifest.json"):
        quant.load_export(path)


def test_export_is_deterministic_and_refuses_to_overwrite(tmp_path):
    twin = twin_net()
    a = quant.export(twin, tmp_path / "a")
    b = quant.export(twin, tmp_path / "b")
    for rel in ["manifest.json", "tables.npz", "hex/fc1.weight.mem", "reference.npz"]:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    with pytest.raises(FileExistsError, match="overwrite=True"):
        quant.export(twin, a)
    quant.export(twin, a, overwrite=True, hex_files=False)
    assert not (a / "hex").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_interrupted_export_leaves_no_directory(tmp_path, monkeypatch):
    store = sys.modules["targets.bundle.store"]

    twin = twin_net()
    calls = {"n": 0}
    real = store._write_file

    def failing_write(path, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real(path, data)

    monkeypatch.setattr(store, "_write_file", failing_write)
    with pytest.raises(KeyboardInterrupt):
        quant.export(twin, tmp_path / "exp")
    assert list(tmp_path.iterdir()) == []
    # an existing export survives an interrupted overwrite untouched
    monkeypatch.setattr(store, "_write_file", real)
    good = quant.export(twin, tmp_path / "exp")
    before = (good / "tables.npz").read_bytes()
    calls["n"] = 0
    monkeypatch.setattr(store, "_write_file", failing_write)
    with pytest.raises(KeyboardInterrupt):
        quant.export(twin, tmp_path / "exp", overwrite=True)
    assert (good / "tables.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]


def test_overwrite_never_replaces_what_is_not_a_bundle(tmp_path):
    twin = twin_net()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match="not an hwsnn export; refusing to replace it"):
        quant.export(twin, tmp_path / "mine", overwrite=True)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is not a directory"):
        quant.export(twin, tmp_path / "afile", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "empty").mkdir()
    quant.export(twin, tmp_path / "empty", overwrite=True)  # an empty directory is fine


def test_examples_are_stored_and_checked(tmp_path):
    twin = twin_net()
    x = spikes(1, T=5)
    y = torch.arange(x.shape[1]) % 10
    p = quant.export(twin, tmp_path / "e", examples={"inputs": x, "labels": y})
    ex = sim.load_export(p)
    got = ex.examples()
    assert np.array_equal(got["inputs"], x.numpy()) and np.array_equal(got["labels"], y.numpy())
    with pytest.raises(ValueError, match=r"examples\['inputs'\] must be \[T, N, 16\]"):
        quant.export(twin, tmp_path / "f", examples={"inputs": x[..., :3]})
    (p / "examples.npz").write_bytes((p / "examples.npz").read_bytes()[:-4] + b"abcd")
    with pytest.raises(ExportError, match="examples.npz: fails its SHA-256 check"):
        ex.examples()


def test_bad_networks_are_refused_with_clear_messages(tmp_path):
    with pytest.raises(TypeError, match="is not an integer twin"):
        quant.export(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path / "x")
    a = FixedLinear(torch.ones(3, 4, dtype=torch.int64), "generic_int8", name="a")
    b = FixedLIFNode("loihi", 100, 100, name="b", reset="zero")
    with pytest.raises(ValueError, match="one target"):
        quant.export(torch.nn.Sequential(a, b), tmp_path / "x")
    with pytest.raises(ValueError, match=r"input_shape: \[5\]; a dense layer with in_features = 4 takes \[4\]"):
        quant.export(torch.nn.Sequential(a), tmp_path / "x", input_shape=(5,))
    with pytest.raises(FileNotFoundError, match="parent directory"):
        quant.export(torch.nn.Sequential(a), tmp_path / "missing" / "x")


def test_reading_an_export_never_imports_torch(exported):
    _, path, x = exported
    np.save(path.parent / "x.npy", x.numpy())
    code = (
        "import sys, numpy as np, sim\n"
        f"r = sim.run({str(path)!r}, np.load({str(path.parent / 'x.npy')!r}), record='states')\n"
        "import sim.report\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "print('ok', r.output.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=os.getcwd())
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")
