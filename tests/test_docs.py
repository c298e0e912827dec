"""The documentation site: every ```python block of docs/*.md runs as written (as the README's
do; a block whose first line is ``# needs: MODULE`` is skipped where that optional module is not
installed), every link of the README and the docs points at a file inside the repository, and
``mkdocs build --strict`` passes (the API reference is generated from the docstrings)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs").rglob("*.md"))
BLOCKS = [
    (page, i, block)
    for page in PAGES
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S))
]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def test_docs_have_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("page,index,block", BLOCKS, ids=[f"{p.stem}[{i}]" for p, i, _ in BLOCKS])
def test_docs_example_runs(page, index, block):
    need = re.match(r"# needs: (\S+)\n", block)
    if need and importlib.util.find_spec(need.group(1)) is None:
        pytest.skip(f"{page.name} python block {index} needs {need.group(1)} (an optional extra)")
    exec(compile(block, f"{page.relative_to(REPO)}[python block {index}]", "exec"), {"__name__": "__docs__"})


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)  # code is not a link
    return LINK.findall(text)


@pytest.mark.parametrize("path", [REPO / "README.md", *PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_links_stay_inside_the_repository(path):
    problems = []
    for target in _links(path):
        if re.match(r"[a-z]+://", target) or target.startswith("#") or target.startswith("mailto:"):
            continue
        file = (path.parent / target.split("#", 1)[0]).resolve()
        if REPO not in file.parents and file != REPO:
            problems.append(f"{target}: outside the repository")
        elif not file.exists():
            problems.append(f"{target}: no such file")
    text = path.read_text(encoding="utf-8")
    if "../shared" in text:
        problems.append("mentions ../shared (not part of the repository)")
    assert not problems, f"{path.relative_to(REPO)}: " + "; ".join(problems)


def test_mkdocs_build_strict(tmp_path):
    """``mkdocs build --strict`` (CI installs the ``docs`` extra; elsewhere skipped without it)."""
    if shutil.which("mkdocs") is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install the docs extra (mkdocs, mkdocstrings[python])")
        pytest.skip("mkdocs not installed: pip install -e '.[docs]'")
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    reference = (tmp_path / "site" / "reference" / "hwsnn" / "index.html").read_text(encoding="utf-8")
    assert "LIFNode" in reference and "FixedLIFNode" in reference  # generated from the docstrings
