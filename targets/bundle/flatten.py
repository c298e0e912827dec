r"""``flatten``: ``torch.flatten(step, start_dim, end_dim)`` of one step ``[N, ...]`` (the batch axis stays)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .base import OpSpec, param, register

__all__ = ["Flatten"]


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Flatten(OpSpec):
    kind = "flatten"
    summary = "reshape: merge the axes start_dim .. end_dim of one step [N, ...]"

    start_dim: int = param("first merged axis of the step [N, ...] (as torch; 0 is the batch)")
    end_dim: int = param("last merged axis (negative: from the end)")

    def passes_exponent(self, incoming: Optional[int]) -> Optional[int]:
        return incoming

    def _consistency(self, problems: list[str]) -> None:
        rank = 1 + len(self.input_shape)
        dims = []
        for key in ("start_dim", "end_dim"):
            d = getattr(self, key)
            if not -rank <= d < rank:
                problems.append(f"params.{key}: {d} is out of range for a step of rank {rank}")
                return
            dims.append(d + rank if d < 0 else d)
        a, b = dims
        if a > b:
            problems.append(f"params.start_dim: {a} comes after end_dim {b}")
            return
        if a == 0 and b > 0:
            problems.append("params.start_dim: 0 would merge the batch axis into the features")
            return
        step = (1, *self.input_shape)
        want = step[:a] + (int(np.prod(step[a:b + 1], dtype=np.int64)),) + step[b + 1:]
        if self.output_shape != want[1:]:
            problems.append(f"output_shape: {list(self.output_shape)}; the dims give {list(want[1:])}")
        if self.output_kind != self.input_kind:
            problems.append(f"output.kind: {self.output_kind!r}; flatten passes its input kind {self.input_kind!r} on")
