"""Reading YAML files the way every hwsnn file is read: ``yaml.SafeLoader`` (no Python tags) and
no duplicate keys (PyYAML keeps the last value of a repeated key silently; a chip description or
a run file that says a thing twice is refused, naming the key and both lines)."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["load_yaml", "DuplicateKeyError"]


class DuplicateKeyError(yaml.YAMLError):
    """A mapping names a key twice: ``key``, ``line`` (1-based, the repetition) and ``first_line``."""

    def __init__(self, key: Any, line: int, column: int, first_line: int) -> None:
        self.key, self.line, self.column, self.first_line = key, line, column, first_line
        super().__init__(f"line {line}, column {column}: duplicate key {key!r} (first on line {first_line}); "
                         "a key may appear once per mapping")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key repeated within one mapping."""


def _mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            continue  # SafeLoader reports an unhashable key itself
        if key in seen:
            mark = key_node.start_mark
            raise DuplicateKeyError(key, mark.line + 1, mark.column + 1, seen[key])
        seen[key] = key_node.start_mark.line + 1
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str) -> Any:
    """Parse ``text`` with the safe loader, refusing duplicate keys (:class:`DuplicateKeyError`, a
    ``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
