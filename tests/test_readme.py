"""Every ```python block of the README runs as written (a block whose first line is
``# needs: MODULE`` is skipped where that optional module is not installed)."""

import importlib.util
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 1


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index):
    need = re.match(r"# needs: (\S+)\n", BLOCKS[index])
    if need and importlib.util.find_spec(need.group(1)) is None:
        pytest.skip(f"README python block {index} needs {need.group(1)} (an optional extra)")
    exec(compile(BLOCKS[index], f"README.md[python block {index}]", "exec"), {"__name__": "__readme__"})
