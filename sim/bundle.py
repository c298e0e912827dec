r"""Reading an export directory (``docs/EXPORT_FORMAT.md``) with NumPy only, checking everything.

:func:`load_export` returns an :class:`Export`: the manifest, the target (validated by
:func:`targets.from_dict`) and the integer tables, each verified against its shape, dtype and
SHA-256 before use. :func:`hex_words` / :func:`parse_hex` are the ``$readmemh`` encoding:
full-width two's complement words of ``ceil(bits/4)`` hex digits, one per line, C order.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np

import targets

__all__ = ["FORMAT", "FORMAT_VERSION", "Export", "ExportError", "load_export", "load_examples", "sha256_of", "hex_words", "parse_hex", "read_hex"]

FORMAT = "hwsnn-export"
FORMAT_VERSION = 1


class ExportError(ValueError):
    """An export directory that cannot be used: missing, tampered, truncated or of another format."""


def sha256_of(data: Union[bytes, np.ndarray]) -> str:
    """SHA-256 hex digest of ``bytes``, or of an array's C-order bytes."""
    if isinstance(data, np.ndarray):
        data = data.tobytes(order="C")
    return hashlib.sha256(data).hexdigest()


@dataclass
class Export:
    """A verified export directory: ``manifest`` (dict), ``target``, ``tables`` (name -> array)."""

    path: Path
    manifest: dict
    target: targets.Target
    tables: dict[str, np.ndarray] = field(default_factory=dict)
    #: values derived from the tables alone (core map, fit check), filled by :func:`sim.run`
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def layers(self) -> list[dict]:
        return self.manifest["layers"]

    def layer_tables(self, layer: str) -> dict[str, np.ndarray]:
        """The tables of ``layer`` by role."""
        for entry in self.layers:
            if entry["name"] == layer:
                return {role: self.tables[t] for role, t in entry.get("tables", {}).items()}
        raise KeyError(f"no layer {layer!r}; layers: {[e['name'] for e in self.layers]}")


def _fail(path: Path, msg: str) -> ExportError:
    return ExportError(f"{path}: {msg}")


def load_export(path: Union[str, os.PathLike]) -> Export:
    """Read and verify the export directory ``path`` (format, version, every table's checksum)."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise _fail(path, "no manifest.json: not an hwsnn export directory (or an interrupted export)")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _fail(mpath, f"is not valid JSON ({err}); the file is damaged or truncated") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _fail(mpath, f"format is {manifest.get('format') if isinstance(manifest, dict) else None!r}, expected {FORMAT!r}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise _fail(mpath, f"format_version {version!r} is not supported by this reader (it reads 1..{FORMAT_VERSION}); "
                           "upgrade hwsnn or re-export")
    for key in ("target", "layers", "tables", "input", "dt", "npz"):
        if key not in manifest:
            raise _fail(mpath, f"missing key {key!r}")
    try:
        target = targets.from_dict(manifest["target"]["parameters"], source=f"{mpath} (target.parameters)")
    except targets.TargetError as err:
        raise _fail(mpath, f"the target copy is invalid: {err}") from err
    npz_path = path / manifest["npz"]["file"]
    if not npz_path.is_file():
        raise _fail(path, f"{manifest['npz']['file']} is missing")
    tables: dict[str, np.ndarray] = {}
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            for name, meta in manifest["tables"].items():
                key = meta["npz_key"]
                if key not in npz.files:
                    raise _fail(npz_path, f"table {name!r} (npz key {key!r}) is missing")
                try:
                    arr = npz[key]
                except Exception as err:  # zlib/zip/format errors of a damaged member
                    raise _fail(npz_path, f"table {name!r} cannot be read ({type(err).__name__}: {err}); the file is "
                                          "damaged or truncated") from err
                _verify(npz_path, name, meta, arr)
                tables[name] = arr
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        if isinstance(err, ExportError):
            raise
        raise _fail(npz_path, f"cannot be read ({type(err).__name__}: {err}); the file is damaged or truncated") from err
    for entry in manifest["layers"]:
        for role, tname in entry.get("tables", {}).items():
            if tname not in tables:
                raise _fail(mpath, f"layer {entry.get('name')!r} refers to table {tname!r}, which the manifest does not list")
    return Export(path=path, manifest=manifest, target=target, tables=tables)


def _verify(npz_path: Path, name: str, meta: dict, arr: np.ndarray) -> None:
    if list(arr.shape) != list(meta["shape"]) or str(arr.dtype) != meta["dtype"]:
        raise _fail(npz_path, f"table {name!r} has shape {list(arr.shape)} and dtype {arr.dtype}; the manifest says "
                              f"{meta['shape']} and {meta['dtype']} (tampered or truncated)")
    digest = sha256_of(arr)
    if digest != meta["sha256"]:
        raise _fail(npz_path, f"table {name!r} fails its SHA-256 check (expected {meta['sha256'][:16]}..., got "
                              f"{digest[:16]}...): the table was modified or damaged; re-export")


def hex_words(values: np.ndarray, bits: int, signed: bool = True) -> list[str]:
    """``values`` (C order) as full-width two's complement words of ``ceil(bits/4)`` lowercase hex digits.

    ``-3`` at 8 bits is ``fd``, at 12 bits ``ffd``, at 4 bits ``d``. Values must fit ``bits``
    (two's complement range when ``signed``, else ``0 .. 2^bits - 1``)."""
    if not 1 <= bits <= 64:
        raise ValueError(f"hex_words: word width must be 1..64 bits; got {bits}")
    digits = (bits + 3) // 4
    mask = (1 << bits) - 1
    flat = np.asarray(values).reshape(-1)
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    out = []
    for v in flat.tolist():
        v = int(v)
        if v < lo or v > hi:
            raise ValueError(f"hex_words: {v} does not fit {bits} {'signed' if signed else 'unsigned'} bits")
        out.append(format(v & mask, f"0{digits}x"))
    return out


def parse_hex(lines: list[str], bits: int, signed: bool) -> np.ndarray:
    """The integers of ``$readmemh`` words (inverse of :func:`hex_words`) as int64 (uint64 for
    unsigned 64-bit); a word wider than ``bits`` is an error."""
    mask = (1 << bits) - 1
    out = []
    for i, line in enumerate(lines):
        word = line.strip()
        if not word:
            continue
        u = int(word, 16)
        if u > mask:
            raise ValueError(f"parse_hex: line {i + 1} ({word!r}) is wider than {bits} bits")
        out.append(u - (1 << bits) if signed and u >> (bits - 1) else u)
    return np.array(out, dtype=np.uint64 if (not signed and bits == 64) else np.int64)


def read_hex(export: Export, table: str) -> np.ndarray:
    """The values of ``table``'s hex file, reshaped to the table's shape (for checking HDL inputs)."""
    meta = export.manifest["tables"][table]
    if "hex" not in meta:
        raise KeyError(f"table {table!r} was exported without a hex file")
    text = (export.path / meta["hex"]["file"]).read_text(encoding="ascii")
    return parse_hex(text.splitlines(), meta["hex"]["word_bits"], meta["signed"]).reshape(meta["shape"])


def load_examples(export: Export) -> dict[str, np.ndarray]:
    """The export's test vectors (``examples.npz``: ``inputs`` [T, N, ...], optional ``labels`` [N]),
    checked against the manifest's SHA-256; ``{}`` when the export has none."""
    meta = export.manifest.get("examples")
    if not meta:
        return {}
    path = export.path / meta["file"]
    if not path.is_file():
        raise _fail(export.path, f"{meta['file']} is listed in the manifest but missing")
    data = path.read_bytes()
    if sha256_of(data) != meta["sha256"]:
        raise _fail(path, "fails its SHA-256 check: the test vectors were modified or damaged; re-export")
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
