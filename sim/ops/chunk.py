r"""Helpers shared by the routing ops (:mod:`.dropout`, :mod:`.delay`, :mod:`.voting`, :mod:`.pool`,
:mod:`.flatten`): the input check of a chunk and the accumulator overflow.

Every routing op takes a chunk ``x`` ``[Tc, N, *input_shape]`` of integers and returns
``[Tc, N, *output_shape]``.

``ovf`` is the target's accumulator overflow: :math:`\mathrm{ovf}(s)` brings ``s`` into
``target.widths.accumulator`` bits by ``target.overflow.accumulator`` (saturate or wrap); the
values changed are counted per step in ``counters['saturations']`` and in total in
``saturations['accumulator']``.
"""

from __future__ import annotations

import numpy as np

from .. import arith
from .base import Events, Op

__all__ = ["check_chunk", "accumulator_overflow"]


def check_chunk(op: Op, x) -> np.ndarray:
    """``x`` as an integer array ``[Tc, N, *input_shape]``, or an error naming the layer."""
    if isinstance(x, Events):
        raise op.error("takes a dense integer chunk [Tc, N, ...], not per-event input (Events)")
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        raise op.error(
            f"takes integer chunks (0/1 spikes or quantized values); got dtype {a.dtype}. "
            "Quantize first: q = round(x * 2**-e)"
        )
    want = (op.batch, *op.input_shape)
    if a.ndim != len(want) + 1 or tuple(a.shape[1:]) != want:
        raise op.error(f"expects a chunk [Tc, {', '.join(map(str, want))}] (time, batch, input_shape); got {a.shape}")
    return a


def accumulator_overflow(op: Op, s: np.ndarray) -> np.ndarray:
    """``ovf_acc`` of the chunk ``s`` ``[Tc, ...]``: counted per step and in ``saturations['accumulator']``."""
    width = op.target.widths.accumulator
    mode = op.target.overflow.accumulator
    y, n = arith.overflow(s, width, mode)
    if n:
        per_step = np.array([arith.overflow(s[t], width, mode)[1] for t in range(s.shape[0])], np.int64)
        op.counters["saturations"] += per_step
    op.count_saturations("accumulator", n)
    return y
