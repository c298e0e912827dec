"""The error of a run configuration that does not validate."""

from __future__ import annotations

import os
from typing import Sequence, Union

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A run configuration that does not validate; ``problems`` lists each ``key.path: message``."""

    def __init__(self, source: Union[str, os.PathLike, None], problems: Sequence[str]) -> None:
        self.source = str(source) if source is not None else "<run config>"
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{self.source}: {len(self.problems)} problem(s) in the run configuration:\n{lines}")
