"""The tamper table: no edit of a bundle, accidental or deliberate, gets past the reader or the
report as "BIT-EXACT: yes".

* every manifest field of every op kind edited one at a time (+1, doubled, a flag flipped, a
  shape changed): refused, the message naming the field and its layer;
* a byte flipped in each kind of file, a hex word flipped, a member added or removed: refused,
  naming the file or member; ``hwsnn report`` exits with the tampering status (3);
* an edit signed again with correct digests: the report says NOT bit-exact against the recorded
  reference, names the first differing output, and exits with the proof-failed status (1).
"""

from __future__ import annotations

import copy
import json
import shutil

import numpy as np
import pytest

import quant
from hwsnn import cli
from targets.bundle import BundleError, load_bundle
from targets.bundle.seal import pointer_label
from tests.bundle_nets import NETS
from tests.bundle_tools import read_manifest, resign, rewrite_npz_member, write_manifest


@pytest.fixture
def bundles(net_bundles):
    return net_bundles


def _edits(value):
    """The edits of one manifest value: +1 and doubled for integers, a flipped flag, a changed
    string, a changed first element of a list (a shape), a number for null."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value * 2 if value * 2 != value else value - 1]
    if isinstance(value, float):
        return [value * 2 if value else 0.5]
    if isinstance(value, str):
        return [value + "x"]
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [[value[0] + 1, *value[1:]]]
    if value is None:
        return [1]
    return []


def _layer_fields(manifest):
    """``(pointer, path to the value)`` of every field of every layer entry."""
    for i, entry in enumerate(manifest["layers"]):
        for key in ("name", "op", "input_shape", "input_kind", "output_shape"):
            yield f"/layers/{i}/{key}", ("layers", i, key)
        for key in ("kind", "exponent"):
            yield f"/layers/{i}/output/{key}", ("layers", i, "output", key)
        for key in entry["params"]:
            yield f"/layers/{i}/params/{key}", ("layers", i, "params", key)
        for role in entry["tables"]:
            yield f"/layers/{i}/tables/{role}", ("layers", i, "tables", role)


def _get(d, path):
    for k in path:
        d = d[k]
    return d


def _set(d, path, value):
    for k in path[:-1]:
        d = d[k]
    d[path[-1]] = value


@pytest.mark.parametrize("name", list(NETS))
def test_every_manifest_field_of_every_op_is_refused_by_name(bundles, name, tmp_path):
    src = bundles[name]
    path = tmp_path / "b"
    shutil.copytree(src, path)
    original = read_manifest(path)
    ops = {e["op"] for e in original["layers"]}
    edits = 0
    for pointer, where in _layer_fields(original):
        for new in _edits(_get(original, where)):
            m = copy.deepcopy(original)
            _set(m, where, new)
            write_manifest(path, m)
            with pytest.raises(BundleError) as err:
                load_bundle(path)
            label = pointer_label(pointer, m)
            assert label in str(err.value) and "changed after export" in str(err.value), (pointer, str(err.value))
            edits += 1
    write_manifest(path, original)
    assert load_bundle(path).digest == original["bundle_digest"]  # the original is accepted again
    assert edits > 10 * len(ops)


def test_the_table_meta_target_files_and_top_level_fields_are_sealed_too(bundles, tmp_path):
    path = tmp_path / "b"
    shutil.copytree(bundles["mlp_loihi"], path)
    original = read_manifest(path)
    for where in [("dt",), ("input", "shape"), ("input", "kind"), ("target", "parameters", "widths", "weight", "bits"),
                  ("target", "name"), ("tables", "fc1.weight", "exponent"), ("tables", "fc1.weight", "bits"),
                  ("files", "tables.npz", "size"), ("reference", "samples"), ("examples", "arrays", "inputs", "dtype"),
                  ("producer", "version"), ("format_version",)]:
        m = copy.deepcopy(original)
        _set(m, where, _edits(_get(m, where))[0])
        write_manifest(path, m)
        with pytest.raises(BundleError) as err:
            load_bundle(path)
        msg = str(err.value)
        assert ".".join(str(w) for w in where) in msg or "format_version" in msg, (where, msg)
    # an added and a removed field
    m = copy.deepcopy(original)
    m["layers"][0]["params"]["extra"] = 1
    write_manifest(path, m)
    with pytest.raises(BundleError, match=r"layers\[0\]\.params\.extra .*: added after export"):
        load_bundle(path)
    m = copy.deepcopy(original)
    del m["layers"][1]["params"]["threshold"]
    write_manifest(path, m)
    with pytest.raises(BundleError, match=r"layers\[1\]\.params\.threshold .*: removed after export"):
        load_bundle(path)
    # the seal or the digest edited on its own
    m = copy.deepcopy(original)
    m["bundle_digest"] = "sha256:" + "0" * 64
    write_manifest(path, m)
    with pytest.raises(BundleError, match="seal or bundle_digest: edited"):
        load_bundle(path)
    # a formatting-only change (same content, other bytes)
    (path / "manifest.json").write_text(json.dumps(original, indent=1, sort_keys=True) + "\n")
    with pytest.raises(BundleError, match="not in the canonical form"):
        load_bundle(path)


def _flip(path, offset=-1):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("member", ["tables.npz", "hex/fc1.weight.mem", "examples.npz", "reference.npz"])
def test_a_flipped_byte_in_each_kind_of_file_is_refused_naming_it(bundles, tmp_path, member):
    path = tmp_path / "b"
    shutil.copytree(bundles["mlp_lif"], path)
    _flip(path / member, len((path / member).read_bytes()) // 2)
    with pytest.raises(BundleError, match=rf"{member}: fails its SHA-256 check"):
        load_bundle(path)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "r"), "--no-plots", "--no-progress"]) == cli.EXIT_BUNDLE


def test_a_flipped_hex_word_is_refused(bundles, tmp_path):
    path = tmp_path / "b"
    shutil.copytree(bundles["mlp_lif"], path)
    hexfile = path / "hex" / "fc2.weight.mem"
    lines = hexfile.read_text().splitlines()
    lines[3] = format(int(lines[3], 16) ^ 1, f"0{len(lines[3])}x")
    hexfile.write_text("\n".join(lines) + "\n")
    with pytest.raises(BundleError, match=r"hex/fc2.weight.mem: fails its SHA-256 check"):
        load_bundle(path)
    # signed again: the digest holds, the word no longer equals its table (checked by verify and report)
    resign(path)
    hexfile.write_text("\n".join(lines) + "\n")
    m = read_manifest(path)
    data = hexfile.read_bytes()
    from targets.bundle import sha256_of, sign

    m["files"]["hex/fc2.weight.mem"] = {"sha256": sha256_of(data), "size": len(data)}
    write_manifest(path, sign(m))
    load_bundle(path)  # the quick load trusts the signed file
    with pytest.raises(BundleError, match=r"hex/fc2.weight.mem: its words differ from table 'fc2.weight'"):
        load_bundle(path, deep=True)
    assert cli.main(["verify", str(path)]) == cli.EXIT_BUNDLE


def test_a_flipped_byte_in_the_manifest_is_refused(bundles, tmp_path):
    path = tmp_path / "b"
    shutil.copytree(bundles["conv"], path)
    text = (path / "manifest.json").read_text()
    i = text.index('"kernel_size": [')
    i += next(k for k, c in enumerate(text[i + 15:]) if c.isdigit()) + 15
    assert text[i] == "3"
    (path / "manifest.json").write_text(text[:i] + "4" + text[i + 1:])  # one digit of a kernel size
    with pytest.raises(BundleError, match=r"kernel_size .*changed after export"):
        load_bundle(path)


def test_members_added_or_removed_are_refused_naming_them(bundles, tmp_path):
    src = bundles["mlp_lif"]
    cases = {
        "extra file": (lambda p: (p / "notes.txt").write_text("hi"), r"notes.txt: an extra file"),
        "extra dir": (lambda p: (p / "junk").mkdir(), r"junk/: an extra directory"),
        "extra hex": (lambda p: (p / "hex" / "x.mem").write_text("00\n"), r"hex/x.mem: an extra file"),
        "removed hex": (lambda p: (p / "hex" / "fc1.weight.mem").unlink(), r"hex/fc1.weight.mem: listed in the manifest but missing"),
        "removed examples": (lambda p: (p / "examples.npz").unlink(), r"examples.npz: listed in the manifest but missing"),
        "symlink": (lambda p: (p / "link.npz").symlink_to(p / "tables.npz"), r"link.npz: a symbolic link"),
    }
    for what, (do, match) in cases.items():
        path = tmp_path / what.replace(" ", "_")
        shutil.copytree(src, path)
        do(path)
        with pytest.raises(BundleError, match=match):
            load_bundle(path)
        assert cli.main(["verify", str(path), "--quiet"]) == cli.EXIT_BUNDLE, what


def test_npz_members_added_or_removed_are_refused_even_when_signed(bundles, tmp_path):
    import io
    import zipfile

    path = tmp_path / "b"
    shutil.copytree(bundles["mlp_lif"], path)
    npz = path / "tables.npz"
    with zipfile.ZipFile(npz) as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    extra = io.BytesIO()
    np.lib.format.write_array(extra, np.zeros(3, np.int8))
    members["smuggled.npy"] = extra.getvalue()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    npz.write_bytes(buf.getvalue())
    resign_files_only(path)
    with pytest.raises(BundleError, match=r"tables.npz: its members differ from the manifest\n  - extra member 'smuggled'"):
        load_bundle(path)
    del members["smuggled.npy"], members["fc2.weight.npy"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    npz.write_bytes(buf.getvalue())
    resign_files_only(path)
    with pytest.raises(BundleError, match=r"missing member 'fc2.weight'"):
        load_bundle(path)


def resign_files_only(path):
    """Update the files' digests and sign, leaving the tables' own checksums as they were."""
    from targets.bundle import sha256_of, sign

    m = read_manifest(path)
    for name in m["files"]:
        data = (path / name).read_bytes()
        m["files"][name] = {"sha256": sha256_of(data), "size": len(data)}
    write_manifest(path, sign(m))


def test_a_table_without_npz_key_is_refused_with_the_tampering_status(bundles, tmp_path):
    path = tmp_path / "b"
    shutil.copytree(bundles["mlp_lif"], path)
    resign(path, lambda m: m["tables"]["fc1.weight"].pop("npz_key"))
    with pytest.raises(BundleError, match=r"tables.fc1.weight: keys .*expected"):
        load_bundle(path)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "r"), "--no-plots", "--no-progress"]) == cli.EXIT_BUNDLE


# -- edited and signed again: only the recorded reference can tell ---------------------------------
@pytest.mark.parametrize("how", ["weight", "threshold", "weight_shift"])
def test_an_edit_signed_again_fails_against_the_recorded_reference(bundles, tmp_path, capsys, how):
    path = tmp_path / "b"
    shutil.copytree(bundles["mlp_lif"], path)
    bundle = load_bundle(path)
    if how == "weight":
        w = bundle.tables["fc1.weight"].copy()
        w[w == w.max()] -= 1  # every largest weight one step smaller
        resign(path, edit_tables=lambda t: t.update({"fc1.weight": w}))
    elif how == "threshold":
        def double(m):
            p = m["layers"][1]["params"]
            p["threshold"] *= 2
            p["threshold_int"] *= 2
        resign(path, double)
    else:
        def shift(m):  # a consistent edit: the output exponent stays, the integers change
            p = m["layers"][0]["params"]
            p["weight_shift"] += 1
            p["weight_exponent"] += 1
            m["tables"]["fc1.weight"]["exponent"] += 1
        resign(path, shift)
    signed = load_bundle(path, deep=True)  # every digest is correct again
    assert signed.digest != bundle.digest
    out = tmp_path / "r"
    status = cli.main(["report", str(path), "--out", str(out), "--no-plots", "--no-progress"])
    printed = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert status == cli.EXIT_PROOF_FAILED, printed
    assert rep["bit_exact"] is False and rep["checks"]["integrity"]["ok"] is True
    assert rep["checks"]["twin"]["ok"] is True  # the twin is rebuilt from the same edited tables
    ref = rep["checks"]["reference"]
    assert ref["ok"] is False and ref["first_mismatch"]["layer"] in [e["name"] for e in signed.layers]
    f = ref["first_mismatch"]
    assert rep["headline"].startswith("BIT-EXACT: NO — the simulator differs from the reference outputs recorded at export")
    assert f"layer {f['layer']}, step {f['step']}, sample {f['sample']}" in rep["headline"]
    assert f"sim {f['sim']} vs recorded {f['reference']}" in rep["headline"] and f["sim"] != f["reference"]
    assert "BIT-EXACT: yes" not in (out / "report.md").read_text()


def test_the_untouched_bundles_pass_all_three_checks(bundles, tmp_path, capsys):
    for name in ("mlp_loihi", "conv", "xylo_recurrent"):
        out = tmp_path / name
        assert cli.main(["report", str(bundles[name]), "--out", str(out), "--no-plots", "--no-progress"]) == 0
        rep = json.loads((out / "report.json").read_text())
        assert rep["bit_exact"] is True and rep["headline"].startswith("BIT-EXACT: yes")
        assert rep["bundle_digest"] == load_bundle(bundles[name]).digest
        assert all(rep["checks"][k]["ok"] for k in ("integrity", "twin", "reference"))
    assert quant.load_export(bundles["conv"]).reference()[0].shape == (12, 3, 2, 8, 8)
