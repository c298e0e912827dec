"""Every run file in examples/ is valid and does what its comments say: it loads, builds a network
whose input and output fit its data, and the run files on embedded data run end to end (tiny
sizes) to a bit-exact report. Together they cover the documented run-file features."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml

from hwsnn import cli
from hwsnn.config import load_run_config

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
EMBEDDED = ("digits", "temporal_patterns")


def _input_shape(cfg) -> tuple[int, tuple[int, ...]]:
    """``(T, per-sample shape)`` of the data the run file asks for, from its options alone."""
    kind, o = cfg.data.kind, cfg.data.options
    if kind == "digits":
        return 8 * o.get("row_steps", 2) + o.get("tail_steps", 4), (16,)
    if kind == "temporal_patterns":
        return o.get("T", 20), (o.get("channels", 16),)
    if kind == "shd":
        return o.get("T", 100), (o.get("channels", 700),)
    if kind == "nmnist":
        side = 34 // o.get("pool", 1)
        shape = (2, side, side) if o.get("layout", "flat") == "image" else (2 * side * side,)
        return o.get("T", 30), shape
    raise AssertionError(f"no shape rule for data kind {kind!r}")


def _classes(cfg) -> int:
    o = cfg.data.options
    if o.get("labels"):
        return len(o["labels"])
    return {"digits": 10, "shd": 20, "nmnist": 10}.get(cfg.data.kind, o.get("classes", 10))


def test_there_are_examples():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_loads_builds_and_fits_its_data(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith(f"# hwsnn run --config examples/{path.name}"), "first line: the command that runs it"
    cfg = load_run_config(path)
    net = cfg.build_network()
    T, shape = _input_shape(cfg)
    with torch.no_grad():
        out = net(torch.zeros(T, 2, *shape))
    assert out.shape == (T, 2, _classes(cfg))


def test_examples_cover_the_documented_features():
    """One run file per feature: each data kind with a shipped reader, a recurrent population,
    convolution/pooling/flatten, delays, current-based neurons, every target family."""
    layer_types, kinds, targets = set(), set(), set()
    for path in EXAMPLES:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
        kinds.add(d.get("data", {}).get("kind", "digits"))
        targets.add(d.get("target", "generic_int8"))
        layer_types.update(e["type"] for e in d.get("network") or [])
    assert {"digits", "temporal_patterns", "shd", "nmnist"} <= kinds
    assert {"RecurrentContainer", "Conv2d", "AvgPool2d", "Flatten", "Dropout2d", "Delay", "CubaLIFNode"} <= layer_types
    assert {"generic_int8", "xylo", "loihi"} <= targets


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if load_run_config(p).data.kind in EMBEDDED], ids=lambda p: p.name
)
def test_example_on_embedded_data_runs_bit_exact(path, tmp_path, capsys):
    tiny = ["--epochs", "1", "--qat-epochs", "1", "--train-samples", "96", "--test-samples", "16"]
    status = cli.main(["run", "--config", str(path), *tiny, "--no-progress", "--no-plots", "--out", str(tmp_path / "o")])
    out = capsys.readouterr().out
    assert status in (cli.EXIT_OK, cli.EXIT_DOES_NOT_FIT), out
    row = re.search(r"bit-exact \(digest, twin, reference\)\s+(\S+)", out)
    assert row and row.group(1) == "yes", out
