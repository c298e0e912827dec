"""Vendor views: files written into a bundle by a registered view are covered by its digest."""

from __future__ import annotations

import shutil

import pytest

from quant import views
from targets.bundle import BundleError, load_bundle


@pytest.fixture
def demo_view():
    @views.register_view("demo-text", "the layer names, one per line (a test view)")
    def make(bundle, suffix=""):
        return {"demo/layers.txt": ("\n".join(op.name for op in bundle.ops) + suffix + "\n").encode()}

    yield "demo-text"
    views._VIEWS.pop("demo-text", None)


def test_a_view_is_written_into_the_bundle_and_signed(net_bundles, tmp_path, demo_view):
    path = tmp_path / "b"
    shutil.copytree(net_bundles["xylo"], path)
    before = load_bundle(path).digest
    bundle = views.add_view(path, demo_view, suffix="!")
    assert bundle.digest != before and bundle.manifest["views"] == {"demo-text": {"format": "demo-text",
                                                                                  "files": ["demo/layers.txt"]}}
    assert (path / "demo" / "layers.txt").read_text().endswith("!\n")
    load_bundle(path, deep=True)
    (path / "demo" / "layers.txt").write_text("edited\n")
    with pytest.raises(BundleError, match="demo/layers.txt: .*(SHA-256|bytes)"):
        load_bundle(path)


def test_unknown_views_and_forbidden_files_are_refused(net_bundles, tmp_path, demo_view):
    path = tmp_path / "b"
    shutil.copytree(net_bundles["xylo"], path)
    with pytest.raises(ValueError, match="unknown export format 'nope'; known: .*demo-text"):
        views.add_view(path, "nope")

    @views.register_view("bad", "writes over the tables")
    def bad(bundle):
        return {"tables.npz": b"x"}

    try:
        with pytest.raises(ValueError, match="may not write 'tables.npz'"):
            views.add_view(path, "bad")
    finally:
        views._VIEWS.pop("bad")
    assert load_bundle(path).digest == load_bundle(net_bundles["xylo"]).digest
