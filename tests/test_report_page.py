"""The report a hardware engineer reads: the one-screen headline, named costs with units, every
saturable state (zeros too), the confusion matrix, the self-contained page (a parser check, and
headless Chromium loads it without errors and shows the headline)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

import quant
from quant.report import make_report
from sim.report.build import costs_table
from sim.report.compare import confusion
from tests.test_fixed_network import convert, float_net, spikes

VOID = {"meta", "img", "br", "hr", "link", "input", "col", "source", "area", "base", "wbr"}


class _Balance(HTMLParser):
    """Every non-void element closed, in order."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.images, self.text = [], [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images += 1
            src = dict(attrs).get("src", "")
            if not src.startswith("data:image/png;base64,"):
                self.errors.append(f"an image that is not embedded: {src[:40]}")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("page")
    net = float_net(0)
    twin = convert(net, "generic_int8", 0)
    x = spikes(3, T=16, batch=12)
    labels = torch.arange(12) % 10
    path = quant.export(twin, root / "export", examples={"inputs": x, "labels": labels})
    rep = make_report(twin, path, x, float_model=net, labels=labels, out_dir=root / "report", plots=True,
                      producer="hwsnn run")
    return root / "report", rep


def test_the_headline_answers_can_i_ship_it(report_dir):
    out, rep = report_dir
    s = rep["summary"]
    assert s["bit_exact"] is True and s["checks"] == {"integrity": True, "twin": True, "reference": True}
    assert s["bundle_digest"] == quant.load_export(out.parent / "export").digest
    assert s["fits"] is True and s["fit_problems"] == []
    assert s["accuracy_integer"] == rep["accuracy"]["sim"] and s["accuracy_qat"] == rep["accuracy"]["twin"]
    assert s["clock_for_real_time_hz"] == pytest.approx(rep["costs"]["cycles_per_step_max"] / rep["costs"]["dt_s"])
    md = (out / "report.md").read_text().splitlines()
    assert md[0].startswith("# BIT-EXACT: yes")
    head = "\n".join(md[:14])  # the first screen
    for field in ("bit-exact", "bundle", "fits the target", "accuracy", "energy per inference", "latency per step",
                  "cycles per step", "clock needed for real time"):
        assert f"| {field}" in head, field


def test_costs_are_named_figures_with_units():
    rows = {r["figure"]: r for r in costs_table({
        "cycles_per_step_mean": 370.0, "cycles_per_step_max": 400.0, "cycles_per_inference": 7400.0,
        "clock_hz": 1e8, "latency_per_step_s": 3.7e-6, "latency_per_inference_s": 7.4e-5, "dt_s": 1e-3,
        "real_time_factor": 270.3, "energy_per_inference_j": 1.05e-8, "synaptic_events_per_inference": 7000.0,
        "neuron_updates_per_inference": 2880.0, "words_read_per_inference": 9880.0})}
    assert rows["energy per inference"]["display"] == "10.5 nJ" and rows["energy per inference"]["unit"] == "J"
    assert rows["latency per step"]["display"] == "3.7 µs"
    assert rows["clock needed for real time"]["value"] == pytest.approx(4e5)
    assert rows["clock needed for real time"]["display"] == "400 kHz"
    assert rows["clock of the target"]["display"] == "100 MHz"
    assert rows["cycles per step (mean)"]["display"] == "370 cycles"


def test_saturations_list_every_state_zeros_included_and_the_confusion_matrix(report_dir):
    _, rep = report_dir
    rows = {(r["layer"], r["state"]): r["count"] for r in rep["saturation_rows"]}
    assert ("fc1", "accumulator") in rows and ("lif1", "v") in rows and ("syn", "out_i") in rows
    assert any(c == 0 for c in rows.values())
    for layer, d in rep["saturations"].items():
        for state, n in d.items():
            assert rows[(layer, state)] == n
    c = np.asarray(rep["accuracy"]["confusion_sim"])
    assert c.sum() == 12 and np.trace(c) / 12 == pytest.approx(rep["accuracy"]["sim"])
    assert confusion(np.array([0, 1, 1, 2]), np.array([0, 2, 1, 2]), 3) == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_the_page_is_self_contained_and_well_formed(report_dir):
    out, rep = report_dir
    html = (out / "report.html").read_text()
    p = _Balance()
    p.feed(html)
    p.close()
    assert p.errors == [] and p.stack == [], (p.errors, p.stack)
    assert p.images == len(rep["files"]) - 3 >= 6  # every plot embedded (json, md and html are not images)
    plots = json.loads((out / "report.json").read_text())["plots"]["files"]
    for stem in ("cycles", "quant_error", "confusion", "saturations", "raster_lif1", "traces_lif1"):
        assert stem in plots, stem
    assert rep["headline"] in "".join(p.text)


def test_headless_chromium_loads_the_page_and_shows_the_headline(report_dir, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium (.ci/run installs it from the system's packages)")
        pytest.skip("chromium is not installed")
    out, rep = report_dir
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
                           "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                           (out / "report.html").as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'id="headline"' in proc.stdout and "BIT-EXACT: yes" in proc.stdout
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
