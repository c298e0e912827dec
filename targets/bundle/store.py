r"""Writing, reading and verifying an export directory (a *bundle*), atomically.

Layout (``docs/EXPORT_FORMAT.md``)::

    out_dir/
      manifest.json     the typed network, every table's metadata, every file's SHA-256, the seal
                        and the bundle digest (canonical JSON)
      tables.npz        the integer tables (one member per table, stored)
      hex/<table>.mem   optional $readmemh words
      examples.npz      optional test vectors (inputs [T, N, ...], labels [N])
      reference.npz     reference outputs recorded at export time: inputs and every layer's output
      <views>           vendor formats written beside the network (Rockpool, netx, NIR), listed too

**Atomic writes.** A bundle is built in ``.<name>.tmp-<random>`` beside ``out_dir`` and renamed into
place; an existing bundle is first renamed to ``.<name>.old-<random>`` and removed after the new
one is in place. :func:`recover` (run by every write and by ``hwsnn verify``) brings a directory
back to exactly one intact bundle after a kill at any point: a missing ``out_dir`` with an
``.old-*`` beside it is restored, and every ``.tmp-*``/``.old-*`` is removed. One writer per
directory at a time.

**Reading** (:func:`load_bundle`) checks, in this order, and refuses with a
:class:`~targets.bundle.errors.BundleError` naming what differs: the manifest parses (no duplicate
keys, no NaN), format and version, the bundle digest (on a mismatch the seal names the edited
fields), the canonical form, the members of the directory (nothing missing, nothing extra, no
links), every file's size and SHA-256, every npz member (exactly the listed ones), every table's
shape, dtype and SHA-256, the typed network (:class:`~targets.bundle.network.Network`), and with
``deep=True`` every hex word against its table.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from ..loader import TargetError, from_dict, to_dict
from ..target import Target
from .errors import BundleError, NotABundleError, SpecError
from .hexwords import hex_text, parse_hex
from .network import Network
from .seal import canonical_json, diff_seal, digest_of, seal_of, sha256_hex, strict_json

__all__ = ["FORMAT", "FORMAT_VERSION", "Bundle", "write_bundle", "load_bundle", "recover", "npz_bytes",
           "read_npz", "extend_bundle", "sha256_of", "replace_directory", "write_file", "check_destination", "sign"]

FORMAT = "hwsnn-export"
FORMAT_VERSION = 2
TABLES_FILE = "tables.npz"
MANIFEST = "manifest.json"
#: top-level manifest keys and whether they are required
_TOP = {"format": True, "format_version": True, "producer": True, "target": True, "dt": True, "input": True,
        "layers": True, "tables": True, "files": True, "seal": True, "bundle_digest": True,
        "examples": False, "reference": False, "views": False}
_TABLE_KEYS = {"layer", "role", "shape", "dtype", "bits", "signed", "exponent", "npz_key", "sha256"}
PathLike = Union[str, "os.PathLike[str]"]


def sha256_of(data: Union[bytes, np.ndarray]) -> str:
    """SHA-256 hex digest of ``bytes``, or of an array's C-order bytes."""
    if isinstance(data, np.ndarray):
        data = data.tobytes(order="C")
    return sha256_hex(data)


# -- npz ------------------------------------------------------------------------------------------
def npz_bytes(arrays: Mapping[str, np.ndarray], compress: bool = False) -> bytes:
    """A deterministic ``.npz``: fixed timestamps and permissions, members in the given order,
    stored (or deflated with ``compress``): the same arrays give the same bytes."""
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for key, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.array(arr, order="C", copy=False), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = method
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def read_npz(data: bytes, where: str, expect: Optional[set] = None) -> dict[str, np.ndarray]:
    """The arrays of verified ``.npz`` bytes (``allow_pickle=False``); with ``expect``, the member
    names (without ``.npy``) must be exactly those."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = zf.namelist()
            if len(names) != len(set(names)):
                raise BundleError(f"{where}: a member appears twice")
            keys = [n[:-4] if n.endswith(".npy") else n for n in names]
            if expect is not None and set(keys) != set(expect):
                extra, missing = sorted(set(keys) - set(expect)), sorted(set(expect) - set(keys))
                raise BundleError(f"{where}: its members differ from the manifest",
                                  [f"extra member {m!r}" for m in extra] + [f"missing member {m!r}" for m in missing])
            out = {}
            for name, key in zip(names, keys):
                with zf.open(name) as f:
                    arr = np.lib.format.read_array(io.BytesIO(f.read()), allow_pickle=False)
                out[key] = arr
            return out
    except BundleError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError) as err:
        raise BundleError(f"{where}: cannot be read ({type(err).__name__}: {err}); the file is damaged") from err


# -- the bundle -----------------------------------------------------------------------------------
@dataclass
class Bundle:
    """A verified export directory: the manifest, its digest, the target, the typed network and the
    tables. ``cache`` holds values derived from the tables alone (core map, sparse weights)."""

    path: Path
    manifest: dict
    digest: str
    target: Target
    network: Network
    tables: dict[str, np.ndarray]
    cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def layers(self) -> list[dict]:
        """The manifest's layer entries, in execution order."""
        return self.manifest["layers"]

    @property
    def ops(self) -> tuple:
        """The typed op descriptions, in execution order."""
        return self.network.ops

    def layer_tables(self, layer: str) -> dict[str, np.ndarray]:
        """The tables of ``layer`` by role."""
        return dict(self.network.op(layer).tables())

    def member(self, name: str) -> bytes:
        """The bytes of member ``name``, checked against the manifest's SHA-256 again."""
        meta = self.manifest["files"].get(name)
        if meta is None:
            raise KeyError(f"{name!r} is not a member of this bundle; members: {sorted(self.manifest['files'])}")
        data = _read_member(self.path, name)
        if sha256_hex(data) != meta["sha256"]:
            raise BundleError(f"{self.path / name}: fails its SHA-256 check (changed after loading): re-export")
        return data

    def hex_values(self, table: str) -> np.ndarray:
        """The values of ``table``'s hex file, reshaped to the table's shape (for checking HDL inputs)."""
        meta = self.manifest["tables"][table]
        if "hex" not in meta:
            raise KeyError(f"table {table!r} was exported without a hex file")
        words = parse_hex(self.member(meta["hex"]["file"]), meta["hex"]["word_bits"], meta["signed"])
        return words.reshape(meta["shape"])

    def examples(self) -> dict[str, np.ndarray]:
        """The test vectors (``inputs`` ``[T, N, ...]``, optional ``labels`` ``[N]``); ``{}`` when none."""
        meta = self.manifest.get("examples")
        if not meta:
            return {}
        return read_npz(self.member(meta["file"]), str(self.path / meta["file"]), set(meta["arrays"]))

    def reference(self) -> Optional[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """``(inputs, {layer: output})`` recorded at export time, or ``None``."""
        meta = self.manifest.get("reference")
        if not meta:
            return None
        arrays = read_npz(self.member(meta["file"]), str(self.path / meta["file"]),
                          {"inputs", *(f"outputs/{n}" for n in meta["layers"])})
        return arrays["inputs"], {n: arrays[f"outputs/{n}"] for n in meta["layers"]}


def _read_member(root: Path, name: str) -> bytes:
    p = root / name
    if p.is_symlink():
        raise BundleError(f"{p}: is a symbolic link; a bundle holds plain files only")
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise BundleError(f"{root}: member {name!r} is missing") from None
    except OSError as err:
        raise BundleError(f"{p}: cannot be read ({err})") from err


def _fail(path: Path, msg: str, problems: Optional[list[str]] = None) -> BundleError:
    return BundleError(f"{path}: {msg}", problems)


def _parse_manifest(path: Path) -> tuple[dict, bytes]:
    mpath = path / MANIFEST
    if not path.exists():
        raise NotABundleError(f"{path}: does not exist")
    if not path.is_dir():
        raise NotABundleError(f"{path}: is not a directory (an export is a directory with a manifest.json)")
    if not mpath.is_file():
        raise NotABundleError(f"{path}: no manifest.json: not an hwsnn export directory (or an interrupted export; "
                              "`hwsnn verify` cleans up after one)")
    raw = _read_member(path, MANIFEST)
    try:
        manifest = strict_json(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise _fail(mpath, f"is not valid JSON ({err}); the file is damaged or truncated") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise NotABundleError(f"{mpath}: format is {got!r}, expected {FORMAT!r}: not an hwsnn export")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        hint = (" (written by hwsnn 0.3 - 0.5, without a bundle digest: re-export it with this hwsnn to get a signed bundle)"
                if version == 1 else "")
        raise NotABundleError(f"{mpath}: format_version {version!r} is not supported: this hwsnn reads version "
                              f"{FORMAT_VERSION} only{hint}")
    return manifest, raw


def _check_integrity(path: Path, manifest: dict, raw: bytes) -> str:
    """The digest, the seal and the canonical form (in that order, for the most precise message)."""
    mpath = path / MANIFEST
    recorded = manifest.get("bundle_digest")
    actual = digest_of(manifest)
    if recorded != actual:
        changed = diff_seal(manifest)
        if not changed:
            changed = ["seal or bundle_digest: edited (every field matches the seal, but the digest does not)"]
        raise _fail(mpath, "does not match its bundle digest: the manifest was edited after export", changed)
    if raw != canonical_json(manifest).encode("ascii"):
        pos = next((i for i, (a, b) in enumerate(zip(raw, canonical_json(manifest).encode("ascii"))) if a != b),
                   min(len(raw), len(canonical_json(manifest))))
        raise _fail(mpath, f"is not in the canonical form hwsnn writes (first difference at byte {pos}): the file "
                           "was re-saved or edited after export")
    problems = [f"{k}: unknown top-level key" for k in manifest if k not in _TOP]
    problems += [f"{k}: missing" for k, req in _TOP.items() if req and k not in manifest]
    if problems:
        raise _fail(mpath, "has an unexpected structure", problems)
    return actual


def _check_members(path: Path, files: dict) -> None:
    """Nothing missing, nothing extra, no links: the directory holds exactly the listed files."""
    listed = set(files) | {MANIFEST}
    dirs = {str(Path(n).parent) for n in listed} - {"."}
    dirs |= {str(p) for n in list(dirs) for p in Path(n).parents} - {"."}
    problems = []
    for root, dnames, fnames in os.walk(path, followlinks=False):
        rel = Path(root).relative_to(path)
        for d in dnames:
            r = str(rel / d)
            if (Path(root) / d).is_symlink():
                problems.append(f"{r}: a symbolic link (a bundle holds plain files only)")
            elif r not in dirs:
                problems.append(f"{r}/: an extra directory, not listed in the manifest")
        for f in fnames:
            r = str(rel / f) if str(rel) != "." else f
            if (Path(root) / f).is_symlink():
                problems.append(f"{r}: a symbolic link (a bundle holds plain files only)")
            elif r not in listed:
                problems.append(f"{r}: an extra file, not listed in the manifest")
    for name in sorted(files):
        if not (path / name).is_file():
            problems.append(f"{name}: listed in the manifest but missing")
    if problems:
        raise _fail(path, "its members differ from the manifest", problems)


def _check_files(path: Path, files: dict) -> dict[str, bytes]:
    out, problems = {}, []
    for name, meta in sorted(files.items()):
        if not isinstance(meta, dict) or set(meta) != {"sha256", "size"}:
            problems.append(f"files.{name}: expected {{sha256, size}}; got {meta!r}")
            continue
        data = _read_member(path, name)
        if len(data) != meta["size"]:
            problems.append(f"{name}: {len(data)} bytes, the manifest says {meta['size']} (truncated or changed)")
        elif sha256_hex(data) != meta["sha256"]:
            problems.append(f"{name}: fails its SHA-256 check (expected {meta['sha256'][:16]}..., got "
                            f"{sha256_hex(data)[:16]}...): the file was modified or damaged")
        else:
            out[name] = data
    if problems:
        raise _fail(path, "files do not match the manifest", problems)
    return out


def _check_tables(path: Path, manifest: dict, data: dict[str, bytes]) -> dict[str, np.ndarray]:
    metas = manifest["tables"]
    if not isinstance(metas, dict):
        raise _fail(path / MANIFEST, "tables: expected an object")
    if TABLES_FILE not in data:
        raise _fail(path, f"{TABLES_FILE} is not listed in the manifest's files")
    problems = []
    for name, meta in metas.items():
        keys = set(meta) if isinstance(meta, dict) else set()
        if keys - {"hex"} != _TABLE_KEYS:
            problems.append(f"tables.{name}: keys {sorted(keys)}; expected {sorted(_TABLE_KEYS)} (+ hex)")
        elif meta["npz_key"] != name:
            problems.append(f"tables.{name}.npz_key: {meta['npz_key']!r}; the table's member is named after it ({name!r})")
    if problems:
        raise _fail(path / MANIFEST, "has invalid table entries", problems)
    arrays = read_npz(data[TABLES_FILE], str(path / TABLES_FILE), set(metas))
    for name, meta in metas.items():
        arr = arrays[name]
        if list(arr.shape) != list(meta["shape"]) or str(arr.dtype) != meta["dtype"]:
            problems.append(f"table {name!r}: shape {list(arr.shape)} and dtype {arr.dtype}; the manifest says "
                            f"{meta['shape']} and {meta['dtype']}")
        elif sha256_of(arr) != meta["sha256"]:
            problems.append(f"table {name!r}: fails its SHA-256 check: the table was modified or damaged")
    if problems:
        raise _fail(path / TABLES_FILE, "tables do not match the manifest", problems)
    return arrays


def _check_table_formats(path: Path, manifest: dict, network: Network, arrays: dict[str, np.ndarray],
                         data: dict[str, bytes], deep: bool) -> None:
    """Each table's declared storage equals what its op derives, and its hex words equal its values."""
    metas, problems = manifest["tables"], []
    expected = {t.name: t for t in network.tables()}
    for name in sorted(set(metas) ^ set(expected)):
        problems.append(f"tables.{name}: {'not used by any layer' if name in metas else 'used by a layer but not listed'}")
    for name, t in expected.items():
        meta = metas.get(name)
        if meta is None:
            continue
        want = {"layer": t.layer, "role": t.role, "bits": t.fmt.bits, "signed": t.fmt.signed,
                "exponent": t.fmt.exponent, "dtype": str(t.fmt.dtype)}
        for k, v in want.items():
            if meta[k] != v:
                problems.append(f"tables.{name}.{k}: {meta[k]!r}, but its op stores {v!r}")
        hx = meta.get("hex")
        if hx is not None:
            if not isinstance(hx, dict) or set(hx) != {"file", "word_bits", "digits"} or hx.get("word_bits") != t.fmt.bits \
                    or hx.get("digits") != (t.fmt.bits + 3) // 4 or hx.get("file") != f"hex/{name}.mem":
                problems.append(f"tables.{name}.hex: {hx!r} does not describe hex/{name}.mem at {t.fmt.bits} bits")
            elif hx["file"] not in data:
                problems.append(f"tables.{name}.hex: {hx['file']} is not listed in files")
            elif deep:
                try:
                    words = parse_hex(data[hx["file"]], t.fmt.bits, t.fmt.signed)
                except ValueError as err:
                    problems.append(f"{hx['file']}: {err}")
                    continue
                if words.size != arrays[name].size or not np.array_equal(words, arrays[name].reshape(-1).astype(words.dtype)):
                    problems.append(f"{hx['file']}: its words differ from table {name!r}")
    if problems:
        raise _fail(path, "tables are inconsistent with the network", problems)


def _check_sections(path: Path, manifest: dict, network: Network, data: dict[str, bytes]) -> None:
    problems = []
    ex = manifest.get("examples")
    if ex is not None:
        if not isinstance(ex, dict) or set(ex) != {"file", "arrays"} or ex["file"] not in data:
            problems.append(f"examples: {ex!r} must name a listed file and its arrays")
        else:
            arrays = read_npz(data[ex["file"]], str(path / ex["file"]), set(ex["arrays"]))
            problems += _example_problems(arrays, network, "examples")
    ref = manifest.get("reference")
    if ref is not None:
        keys = {"file", "layers", "steps", "samples"}
        if not isinstance(ref, dict) or set(ref) != keys or ref["file"] not in data:
            problems.append(f"reference: {ref!r} must name a listed file, its layers, steps and samples")
        elif ref["layers"] != [op.name for op in network.ops]:
            problems.append(f"reference.layers: {ref['layers']} are not the network's layers")
        else:
            want = {"inputs", *(f"outputs/{n}" for n in ref["layers"])}
            arrays = read_npz(data[ref["file"]], str(path / ref["file"]), want)
            problems += _example_problems({"inputs": arrays["inputs"]}, network, "reference")
            for op in network.ops:
                out = arrays[f"outputs/{op.name}"]
                shape = (ref["steps"], ref["samples"], *op.trace_shape())
                if out.shape != shape or out.dtype.kind not in "iu":
                    problems.append(f"reference: outputs of {op.name!r} are {list(out.shape)} {out.dtype}; expected "
                                    f"{list(shape)} integers")
    views = manifest.get("views")
    if views is not None:
        if not isinstance(views, dict):
            problems.append("views: expected an object {name: {format, files}}")
        else:
            for name, v in views.items():
                if not isinstance(v, dict) or not isinstance(v.get("files"), list) or \
                        any(f not in data for f in v["files"]):
                    problems.append(f"views.{name}: must list files of the bundle")
    if problems:
        raise _fail(path, "test vectors or reference outputs are not valid", problems)


def _example_problems(arrays: dict, network: Network, what: str) -> list[str]:
    x = arrays.get("inputs")
    problems = []
    if x is None or x.dtype.kind not in "iub" or x.ndim != 2 + len(network.input_shape) \
            or tuple(x.shape[2:]) != network.input_shape:
        problems.append(f"{what}: inputs must be integers [T, N, {', '.join(map(str, network.input_shape))}]; got "
                        f"{None if x is None else (list(x.shape), str(x.dtype))}")
    y = arrays.get("labels")
    if y is not None and x is not None and (y.dtype.kind not in "iu" or y.shape != (x.shape[1],)):
        problems.append(f"{what}: labels must be integers [N] = [{x.shape[1]}]; got {list(y.shape)} {y.dtype}")
    return problems


def load_bundle(path: PathLike, *, deep: bool = False) -> Bundle:
    """Read and verify the bundle at ``path`` (module docstring); ``deep`` also compares every hex
    word with its table. Raises :class:`~targets.bundle.errors.BundleError` naming what differs."""
    path = Path(path)
    manifest, raw = _parse_manifest(path)
    digest = _check_integrity(path, manifest, raw)
    files = manifest["files"]
    if not isinstance(files, dict) or any(not isinstance(k, str) or k.startswith(("/", "..")) or ".." in Path(k).parts
                                          for k in files):
        raise _fail(path / MANIFEST, "files: expected {relative name: {sha256, size}}")
    _check_members(path, files)
    data = _check_files(path, files)
    tgt = manifest["target"]
    try:
        if not isinstance(tgt, dict) or set(tgt) != {"name", "parameters"}:
            raise TargetError(str(path / MANIFEST), [f"target: expected {{name, parameters}}; got {tgt!r}"])
        target = from_dict(tgt["parameters"], source=f"{path / MANIFEST} (target.parameters)")
    except TargetError as err:
        raise _fail(path / MANIFEST, f"the target copy is invalid: {err}") from err
    arrays = _check_tables(path, manifest, data)
    try:
        network = Network.from_manifest(manifest, arrays, target)
    except SpecError as err:
        raise _fail(path / MANIFEST, str(err).splitlines()[0], err.problems) from err
    _check_table_formats(path, manifest, network, arrays, data, deep)
    _check_sections(path, manifest, network, data)
    return Bundle(path=path, manifest=manifest, digest=digest, target=target, network=network, tables=arrays)


# -- writing --------------------------------------------------------------------------------------
def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def recover(out_dir: PathLike) -> list[str]:
    """Bring ``out_dir`` back to one intact bundle after an interrupted write (module docstring).
    Returns what was done, one line per action (empty when nothing was left behind)."""
    out = Path(out_dir).expanduser().absolute()
    parent, name = out.parent, out.name
    if not parent.is_dir():
        return []
    actions = []
    olds = sorted(parent.glob(f".{name}.old-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    tmps = list(parent.glob(f".{name}.tmp-*"))
    if olds and not out.exists():
        os.replace(olds[0], out)
        actions.append(f"restored {out} from {olds[0].name} (a replacement was interrupted)")
        olds = olds[1:]
    for p in olds + tmps:
        shutil.rmtree(p, ignore_errors=True)
        actions.append(f"removed {p.name} (left by an interrupted export)")
    if actions:
        _fsync_dir(parent)
    return actions


def _table_section(network: Network, hex_files: bool) -> tuple[dict, dict[str, np.ndarray], dict[str, bytes]]:
    metas, arrays, hexes = {}, {}, {}
    for t in network.tables():
        stored = t.stored()
        arrays[t.name] = stored
        meta = {"layer": t.layer, "role": t.role, "shape": list(stored.shape), "dtype": str(stored.dtype),
                "bits": t.fmt.bits, "signed": t.fmt.signed, "exponent": t.fmt.exponent, "npz_key": t.name,
                "sha256": sha256_of(stored)}
        if hex_files:
            meta["hex"] = {"file": f"hex/{t.name}.mem", "word_bits": t.fmt.bits, "digits": (t.fmt.bits + 3) // 4}
            hexes[meta["hex"]["file"]] = hex_text(stored, t.fmt.bits, t.fmt.signed)
        metas[t.name] = meta
    return metas, arrays, hexes


def sign(manifest: dict) -> dict:
    """``manifest`` with its ``seal`` and ``bundle_digest`` (recomputed)."""
    body = {k: v for k, v in manifest.items() if k not in ("seal", "bundle_digest")}
    body["seal"] = seal_of(body)
    body["bundle_digest"] = digest_of(body)
    return body


def write_bundle(out_dir: PathLike, network: Network, *, producer: dict, members: Optional[dict[str, bytes]] = None,
                 sections: Optional[dict[str, Any]] = None, hex_files: bool = True, overwrite: bool = False) -> Path:
    """Write ``network`` as the bundle ``out_dir`` atomically (module docstring).

    :param members: extra files by relative name (e.g. ``examples.npz``), listed in ``files``
    :param sections: extra manifest sections (``examples``, ``reference``, ``views``) describing them
    :param overwrite: replace an existing bundle (a directory that is not an hwsnn bundle, or a
        file, is never replaced)
    """
    out = Path(out_dir).expanduser().absolute()
    check_destination(out, overwrite)
    recover(out)
    metas, arrays, hexes = _table_section(network, hex_files)
    files: dict[str, bytes] = {TABLES_FILE: npz_bytes(arrays), **hexes, **(members or {})}
    unknown = set(sections or {}) - {k for k, req in _TOP.items() if not req}
    if unknown:
        raise ValueError(f"write_bundle: unknown manifest sections {sorted(unknown)}")
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "producer": dict(producer),
        "target": {"name": network.target.name, "parameters": to_dict(network.target)},
        "dt": float(network.dt), "input": network.input_entry(), "layers": network.layer_entries(),
        "tables": metas, "files": {n: {"sha256": sha256_hex(d), "size": len(d)} for n, d in sorted(files.items())},
        **(sections or {}),
    }
    return _commit(out, sign(manifest), files)


def check_destination(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, a destination that cannot take a bundle: its parent is missing, it
    is a file, it exists without ``overwrite``, or it is a non-empty directory that is no bundle."""
    out = Path(out).expanduser().absolute()
    if not out.parent.is_dir():
        raise FileNotFoundError(f"export: the parent directory {out.parent} does not exist")
    if out.exists() or out.is_symlink():
        if not out.is_dir() or out.is_symlink():
            raise FileExistsError(f"export: {out} exists and is not a directory; choose another path")
        if not overwrite:
            raise FileExistsError(f"export: {out} exists; pass overwrite=True (CLI: --overwrite) to replace it")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise FileExistsError(f"export: {out} is a non-empty directory that is not an hwsnn export; refusing to "
                                  "replace it (choose another path)")


def replace_directory(out: PathLike, fill: Callable[[Path], None]) -> Path:
    """Build a directory with ``fill(tmp)`` in ``.<name>.tmp-<random>`` beside ``out`` and put it in
    place atomically (an existing ``out`` is renamed aside first and removed afterwards; a kill at
    any point leaves the old or the new directory, and :func:`recover` removes what is left)."""
    out = Path(out).expanduser().absolute()
    parent = out.parent
    tmp = parent / f".{out.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        fill(tmp)
        _fsync_dir(tmp)
        if out.exists():
            old = parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
            os.replace(out, old)
            os.replace(tmp, out)
            _fsync_dir(parent)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
        _fsync_dir(parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (parents created) and flush it to disk."""
    _write_file(path, data)


def _commit(out: Path, manifest: dict, files: dict[str, bytes]) -> Path:
    def fill(tmp: Path) -> None:
        for name, data in files.items():
            _write_file(tmp / name, data)
        _write_file(tmp / MANIFEST, canonical_json(manifest).encode("ascii"))

    return replace_directory(out, fill)


def extend_bundle(path: PathLike, members: dict[str, bytes], sections: dict[str, Any]) -> Bundle:
    """Add (or replace) ``members`` and manifest ``sections`` of the verified bundle at ``path``,
    re-signed and atomically (vendor views written beside the network). Returns the new bundle."""
    old = load_bundle(path)
    files = {name: old.member(name) for name in old.manifest["files"]}
    files.update(members)
    manifest = {k: v for k, v in old.manifest.items() if k not in ("seal", "bundle_digest")}
    manifest.update(sections)
    manifest["files"] = {n: {"sha256": sha256_hex(d), "size": len(d)} for n, d in sorted(files.items())}
    _commit(old.path.absolute(), sign(manifest), files)
    return load_bundle(path)
