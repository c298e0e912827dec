"""Vendor views of a bundle: the same network in another tool's format, written *into* the bundle
directory and covered by its digest (``hwsnn export --format NAME``).

A view is a function ``make(bundle, **options) -> {relative file name: bytes}`` registered under a
name with :func:`register_view`; :func:`add_view` writes its files beside the network and signs the
bundle again (:func:`targets.bundle.extend_bundle`), listing them under ``views.<name>`` in the
manifest. Views register when their module is imported; :data:`VIEW_MODULES` names the modules
that :func:`available_views` imports (lazily: a view's extra dependencies are needed only to use it).
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Union

from targets.bundle import Bundle, extend_bundle, load_bundle

__all__ = ["View", "register_view", "available_views", "add_view", "unknown_view_message", "missing_view_modules",
           "VIEW_MODULES"]


@dataclass(frozen=True)
class View:
    """A registered view: its ``name``, a one-line ``description`` and the ``make`` function."""

    name: str
    description: str
    make: Callable[..., dict[str, bytes]]


_VIEWS: dict[str, View] = {}
#: modules of :data:`VIEW_MODULES` that could not be imported, with the reason (their missing extra)
_MISSING: dict[str, str] = {}
#: modules whose import registers views (each may need an optional extra)
VIEW_MODULES: tuple[str, ...] = ("quant.nir_view", "quant.netx.write", "quant.xylo.view")


def register_view(name: str, description: str):
    """Decorator: ``make(bundle, **options) -> {name: bytes}`` is the view ``name``."""

    def deco(fn: Callable[..., dict[str, bytes]]) -> Callable[..., dict[str, bytes]]:
        _VIEWS[name] = View(name, description, fn)
        return fn

    return deco


def available_views() -> dict[str, View]:
    """Every view, by name (importing :data:`VIEW_MODULES`; a module whose extra is missing is
    skipped here and named when its view is asked for)."""
    for mod in VIEW_MODULES:
        try:
            importlib.import_module(mod)
        except ImportError as err:
            _MISSING[mod] = str(err)
            continue
        _MISSING.pop(mod, None)
    return dict(_VIEWS)


def missing_view_modules() -> dict[str, str]:
    """The view modules that could not be imported by the last :func:`available_views`, with the reason."""
    return dict(_MISSING)


def unknown_view_message(name: str, views: dict[str, View]) -> str:
    """Why the view ``name`` is not offered: the known views and the view modules whose extra is missing."""
    known = ", ".join(sorted(views)) or "none installed"
    missing = "".join(f"; not installed: {mod} ({why})" for mod, why in sorted(_MISSING.items()))
    return f"unknown export format {name!r}; known: {known}{missing}"


def add_view(export: Union[str, "os.PathLike[str]", Bundle], name: str, **options: Any) -> Bundle:
    """Write the view ``name`` into the bundle ``export`` and sign it again; returns the new bundle.

    :raises ValueError: an unknown view (the message lists the known ones)
    """
    views = available_views()
    if name not in views:
        raise ValueError(unknown_view_message(name, views))
    bundle = export if isinstance(export, Bundle) else load_bundle(export)
    files = views[name].make(bundle, **options)
    for rel in files:
        if rel in ("manifest.json", "tables.npz") or rel.startswith(("hex/", "/")) or ".." in rel.split("/"):
            raise ValueError(f"view {name!r}: may not write {rel!r}")
    listed = dict(bundle.manifest.get("views") or {})
    listed[name] = {"format": name, "files": sorted(files)}
    return extend_bundle(bundle.path, files, {"views": listed})
