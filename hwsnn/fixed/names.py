"""The export names of a twin network's layers (the bundle's op names, the NIR node names)."""

from __future__ import annotations

import re
from typing import Sequence

from .base import FixedModule

__all__ = ["twin_layer_names"]

_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]")


def twin_layer_names(layers: Sequence[FixedModule]) -> list[str]:
    """Unique export names of ``layers``: each twin's ``layer_name`` with characters outside
    ``[A-Za-z0-9_.-]`` replaced by ``_``, a repeated name suffixed with its position."""
    names: list[str] = []
    seen: set[str] = set()
    for i, tw in enumerate(layers):
        base = _NAME_BAD.sub("_", tw.layer_name or type(tw).__name__) or f"layer{i}"
        name = f"{base}_{i}" if base in seen else base
        seen.add(name)
        names.append(name)
    return names
