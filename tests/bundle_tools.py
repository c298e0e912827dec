"""Test helpers: edit an exported bundle the way a person would, then sign it again by hand (the
attack that only the recorded reference outputs can catch)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from targets.bundle import canonical_json, hex_text, npz_bytes, sha256_of, sign


def read_manifest(path: Path) -> dict:
    return json.loads((Path(path) / "manifest.json").read_text())


def read_tables(path: Path) -> dict[str, np.ndarray]:
    with np.load(Path(path) / "tables.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_manifest(path: Path, manifest: dict) -> None:
    """Write ``manifest`` exactly as hwsnn does (canonical JSON), without re-signing."""
    (Path(path) / "manifest.json").write_text(canonical_json(manifest))


def resign(path: Path, edit_manifest: Optional[Callable[[dict], None]] = None,
           edit_tables: Optional[Callable[[dict], None]] = None) -> dict:
    """Apply the edits, then recompute every table checksum, ``tables.npz``, the hex files, every
    file digest, the seal and the bundle digest: a consistently re-signed bundle."""
    path = Path(path)
    manifest = read_manifest(path)
    tables = read_tables(path)
    if edit_tables is not None:
        edit_tables(tables)
        for name, arr in tables.items():
            meta = manifest["tables"][name]
            meta["sha256"] = sha256_of(arr)
            meta["shape"], meta["dtype"] = list(arr.shape), str(arr.dtype)
            if "hex" in meta:
                (path / meta["hex"]["file"]).write_bytes(hex_text(arr, meta["hex"]["word_bits"], meta["signed"]))
        (path / "tables.npz").write_bytes(npz_bytes(tables))
    if edit_manifest is not None:  # after the tables: an edit of the table metadata stays as edited
        edit_manifest(manifest)
    for name in manifest["files"]:
        data = (path / name).read_bytes()
        manifest["files"][name] = {"sha256": sha256_of(data), "size": len(data)}
    manifest = sign(manifest)
    write_manifest(path, manifest)
    return manifest


def rewrite_npz_member(npz_path: Path, key: str, mutate: Callable[[bytes], bytes]) -> None:
    """Rewrite one npz member with ``mutate(bytes) -> bytes`` (keeps the other members)."""
    with zipfile.ZipFile(npz_path) as zf:
        members = {i.filename: zf.read(i.filename) for i in zf.infolist()}
    members[f"{key}.npy"] = mutate(members[f"{key}.npy"])
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    Path(npz_path).write_bytes(buf.getvalue())
