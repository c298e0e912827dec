r"""The manifest's proof of integrity: canonical JSON, the bundle digest and the field seal.

* **Canonical form**: ``manifest.json`` is written as ``json.dumps(m, sort_keys=True, indent=2,
  ensure_ascii=True, allow_nan=False) + "\n"``; a reader re-serialises what it parsed and refuses a
  file whose bytes differ (a whitespace, key-order or number-format edit).
* **Bundle digest**: ``bundle_digest = "sha256:" + SHA-256(canonical(manifest without
  bundle_digest))``. The manifest lists every other file of the bundle with its SHA-256, so this
  one digest covers the whole bundle.
* **Field seal**: ``seal.fields`` maps the JSON pointer of every leaf of the manifest (except
  ``seal`` and ``bundle_digest``) to the first 16 hex digits of the SHA-256 of its canonical JSON.
  It only serves the error message: when the digest fails, the seal names the fields that were
  changed, added or removed. (The digest, not the seal, is the integrity check.)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterator

__all__ = ["canonical_json", "strict_json", "digest_of", "seal_of", "diff_seal", "pointer_label", "sha256_hex"]

SEAL_ALGORITHM = "sha256-64"
_DIGEST_PREFIX = "sha256:"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> str:
    """The one serialisation hwsnn writes (module docstring)."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _unique_pairs(pairs: list) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate key {k!r}")
        out[k] = v
    return out


def strict_json(text: str) -> Any:
    """Parse JSON refusing duplicate keys and NaN/Infinity (a ``ValueError`` says which)."""
    return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_no_constant)


def _body(manifest: dict, *drop: str) -> dict:
    return {k: v for k, v in manifest.items() if k not in drop}


def digest_of(manifest: dict) -> str:
    """``"sha256:<hex>"`` of the canonical manifest without ``bundle_digest``."""
    return _DIGEST_PREFIX + sha256_hex(canonical_json(_body(manifest, "bundle_digest")).encode("ascii"))


def _leaves(obj: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(obj, dict) and obj:
        for k in sorted(obj):
            yield from _leaves(obj[k], f"{pointer}/{str(k).replace('~', '~0').replace('/', '~1')}")
    elif isinstance(obj, list) and obj and any(isinstance(x, (dict, list)) for x in obj):
        for i, x in enumerate(obj):
            yield from _leaves(x, f"{pointer}/{i}")
    else:  # a scalar, an empty container, or a list of scalars (a shape): one leaf
        yield pointer, obj


def _leaf_hash(value: Any) -> str:
    return sha256_hex(json.dumps(value, sort_keys=True, ensure_ascii=True, allow_nan=False).encode("ascii"))[:16]


def seal_of(manifest: dict) -> dict:
    """The ``seal`` section of ``manifest`` (its leaves except ``seal`` and ``bundle_digest``)."""
    body = _body(manifest, "seal", "bundle_digest")
    return {"algorithm": SEAL_ALGORITHM, "fields": {p: _leaf_hash(v) for p, v in _leaves(body)}}


def pointer_label(pointer: str, manifest: dict) -> str:
    """A readable name of a JSON pointer: ``/layers/1/params/weight_shift`` ->
    ``layers[1].params.weight_shift (layer 'fc2')``."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    if len(parts) > 1 and parts[0] == "layers" and parts[1].isdigit():
        layers = manifest.get("layers")
        i = int(parts[1])
        if isinstance(layers, list) and i < len(layers) and isinstance(layers[i], dict):
            out += f" (layer {layers[i].get('name')!r}, {layers[i].get('op')})"
    return out or "(the whole manifest)"


def diff_seal(manifest: dict) -> list[str]:
    """What differs between ``manifest`` and its recorded seal: one line per changed, added or
    removed field (empty when every field matches its seal)."""
    seal = manifest.get("seal")
    fields = seal.get("fields") if isinstance(seal, dict) else None
    if not isinstance(fields, dict):
        return ["seal: missing or not valid: the manifest cannot be checked field by field"]
    now = seal_of(manifest)["fields"]
    out = []
    for p, h in now.items():
        if p not in fields:
            out.append(f"{pointer_label(p, manifest)}: added after export")
        elif fields[p] != h:
            out.append(f"{pointer_label(p, manifest)}: changed after export")
    for p in fields:
        if p not in now:
            out.append(f"{pointer_label(p, manifest)}: removed after export")
    return out
