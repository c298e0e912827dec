"""Kill tests: a process killed (SIGKILL) at any step of writing a bundle, or of ``hwsnn run``,
leaves the old bundle or the new one intact, and the next export or ``hwsnn verify`` leaves no
temporary directory behind."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hwsnn import cli
from targets.bundle import load_bundle
from tests.bundle_nets import build

REPO = Path(__file__).resolve().parents[1]

# A child that rewrites a bundle through the real writer and kills itself at the N-th file write,
# rename or removal of the writer (N = 0: never). NumPy only: no torch, so it starts fast.
WRITER = textwrap.dedent("""
    import os, shutil, signal, sys
    sys.path.insert(0, {repo!r})
    import targets.bundle.store as store
    from targets.bundle import load_bundle, write_bundle

    kill_at, count = int(sys.argv[1]), [0]

    def hit(what):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    real_write, real_replace, real_rmtree = store._write_file, os.replace, shutil.rmtree
    store._write_file = lambda p, d: (hit("write"), real_write(p, d))[1]
    store.os.replace = lambda a, b: (hit("replace"), real_replace(a, b))[1]
    store.shutil.rmtree = lambda p, **kw: (hit("rmtree"), real_rmtree(p, **kw))[1]
    src = load_bundle(sys.argv[2])
    members = {{n: src.member(n) for n in ("examples.npz", "reference.npz")}}
    sections = {{k: src.manifest[k] for k in ("examples", "reference")}}
    write_bundle(sys.argv[3], src.network, producer={{"name": "kill-test"}}, members=members, sections=sections,
                 overwrite=True)
    print("events", count[0])
""")


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def test_a_kill_at_every_step_of_an_export_leaves_one_intact_bundle(tmp_path):
    _, old_src, _ = build("mlp_lif", tmp_path / "old_src")
    _, new_src, _ = build("xylo", tmp_path / "new_src")
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    # the events of a whole replacement (every file, both renames, the removal of the old bundle)
    work = tmp_path / "w0"
    work.mkdir()
    shutil.copytree(old_src, work / "exp")
    done = subprocess.run([sys.executable, str(script), "0", str(new_src), str(work / "exp")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    events = int(done.stdout.split()[-1])
    new_digest = load_bundle(work / "exp").digest
    old_digest = load_bundle(old_src).digest
    assert events >= 8 and new_digest != old_digest
    outcomes = set()
    for n in range(1, events + 1):
        work = tmp_path / f"w{n}"
        work.mkdir()
        shutil.copytree(old_src, work / "exp")
        proc = subprocess.run([sys.executable, str(script), str(n), str(new_src), str(work / "exp")],
                              capture_output=True, text=True)
        assert proc.returncode == -signal.SIGKILL, (n, proc.stdout, proc.stderr)
        # the next command (hwsnn verify) recovers: one bundle, old or new, and nothing else
        assert cli.main(["verify", str(work / "exp"), "--quiet"]) == 0, n
        digest = load_bundle(work / "exp").digest
        assert digest in (old_digest, new_digest), n
        outcomes.add(digest)
        assert _leftovers(work) == [], (n, _leftovers(work))
        assert sorted(p.name for p in work.iterdir()) == ["exp"]
    assert outcomes == {old_digest, new_digest}  # early kills keep the old bundle, late ones the new


def test_the_next_export_cleans_up_after_a_killed_one(tmp_path):
    _, src, _ = build("dropconnect", tmp_path / "src")
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(repo=str(REPO)))
    target = tmp_path / "w" / "exp"
    target.parent.mkdir()
    proc = subprocess.run([sys.executable, str(script), "2", str(src), str(target)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL and _leftovers(target.parent)  # a half-written .tmp directory
    import quant
    from tests.bundle_nets import dropconnect_net

    quant.export(dropconnect_net(), target)
    assert _leftovers(target.parent) == [] and load_bundle(target).digest


# -- hwsnn run, killed at each stage ----------------------------------------------------------------
RUN = ["--epochs", "1", "--qat-epochs", "0", "--train-samples", "32", "--test-samples", "8", "--no-progress",
       "--no-plots", "--seed"]

KILLER = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {repo!r})
    import targets.bundle.store as store

    rule = sys.argv[1]          # e.g. "replace:.export.tmp", "write:.report.tmp", "line:float training"
    kind, needle = rule.split(":", 1)
    real_replace, real_write = os.replace, store._write_file

    def replace(a, b):
        if kind == "replace" and (needle in str(a) or needle in str(b)):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(a, b)

    def write(p, d):
        if kind == "write" and needle in str(p):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(p, d)

    store.os.replace, store._write_file = replace, write
    if kind == "line":
        import builtins
        real_print = builtins.print
        def print_(*a, **kw):
            real_print(*a, **kw)
            if any(needle in str(x) for x in a):
                os.kill(os.getpid(), signal.SIGKILL)
        builtins.print = print_
    from hwsnn.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A finished ``hwsnn run`` (seed 0): its export and report are the "old" state."""
    root = tmp_path_factory.mktemp("run")
    out = root / "out"
    proc = subprocess.run([sys.executable, "-m", "hwsnn", "run", *RUN, "0", "--out", str(out)], capture_output=True,
                          text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return out, load_bundle(out / "export").digest


@pytest.mark.parametrize("rule,expect", [
    ("line:float training", "old"),            # during training: nothing written yet
    ("replace:.export.tmp", "old"),            # the new bundle written, not yet renamed into place
    ("replace:.export.old", "either"),         # between the two renames of the export
    ("write:.report.tmp", "new-stale"),        # export done, the report not yet written
    ("replace:.report.old", "new"),            # between the two renames of the report
])
def test_a_killed_run_leaves_an_intact_bundle_and_says_when_the_report_is_stale(first_run, tmp_path, capsys, rule, expect):
    src, old_digest = first_run
    out = tmp_path / "out"
    shutil.copytree(src, out)
    script = tmp_path / "killer.py"
    script.write_text(KILLER.format(repo=str(REPO)))
    proc = subprocess.run([sys.executable, str(script), rule, "run", *RUN, "1", "--out", str(out)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == -signal.SIGKILL, (rule, proc.stdout[-2000:], proc.stderr[-2000:])
    assert cli.main(["verify", str(out / "export")]) == 0
    verify_err = capsys.readouterr().err
    assert _leftovers(out) == [], _leftovers(out)
    digest = load_bundle(out / "export").digest
    report = json.loads((out / "report" / "report.json").read_text())
    if expect == "old":
        assert digest == old_digest and report["bundle_digest"] == digest
    elif expect in ("new", "new-stale"):
        assert digest != old_digest
    if digest != report["bundle_digest"]:  # a new export beside the old report: said, never "yes"
        assert "stale" in verify_err and report["bundle_digest"] == old_digest
        assert cli.main(["simulate", str(out / "export"), "--no-progress"]) == 0
        assert "stale" in capsys.readouterr().err
    if expect == "new-stale":
        assert report["bundle_digest"] == old_digest and "stale" in verify_err
