r"""``dropout``, ``dropout2d``, ``dropconnect``: masks from the counter-based generator.

``keep = (bits(seed, draw, index) >> 8) < keep_threshold`` with ``keep_threshold = round((1 - p) 2^24)``,
``bits`` the lowbias32 construction of ``hwsnn/fixed/rng.py`` and ``index`` the flat C-order index over
the mask of one batch. ``dropout`` holds one mask ``[N, *shape]`` per run (``dropout2d``: one bit per
``(n, c)``), :math:`y = x \odot B`; inactive (eval): the identity. ``dropconnect`` masks the weights
(and bias) of an integer dense layer per sample, one draw per step (``invariant: false``) or per run.
Stored masks are packed like ``numpy.packbits(mask.ravel(), bitorder='little')``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..target import Target
from .base import OpSpec, TableFormat, param, passes_through, register, table
from .dense import SynapticSpec

__all__ = ["Dropout", "Dropout2d", "DropConnect", "keep_threshold_of"]

KEEP_BITS = 24


def keep_threshold_of(p: float) -> int:
    """``round((1 - p) 2^24)`` (Python's round of a float64)."""
    return int(round((1.0 - float(p)) * float(1 << KEEP_BITS)))


def _packed_bytes(n_bits: int) -> int:
    return (n_bits + 7) // 8


def _mask_params(op: OpSpec, problems: list[str]) -> None:
    if not 0.0 <= op.p < 1.0:
        problems.append(f"params.p: {op.p} is outside [0, 1)")
    elif op.keep_threshold != keep_threshold_of(op.p):
        problems.append(f"params.keep_threshold: {op.keep_threshold} but round((1 - p) 2^24) = {keep_threshold_of(op.p)}")
    if op.draw < 0:
        problems.append(f"params.draw: {op.draw} must be >= 0")


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Dropout(OpSpec):
    kind = "dropout"
    summary = "`y = x * B`, one mask B per run from (seed, draw); inactive: the identity"

    p: float = param("drop probability in [0, 1)")
    seed: int = param("generator seed (0 .. 2^32 - 1)", ge=0, le=(1 << 32) - 1)
    keep_threshold: int = param("round((1 - p) 2^24)", ge=0, le=1 << KEEP_BITS)
    active: bool = param("training mode: masks applied")
    draw: int = param("draw number of the first mask a run uses (the held mask's, else the next)")
    mask_shape: Optional[tuple[int, ...]] = param("shape of the stored mask incl. the batch axis, or null", ge=1)
    mask: Optional[np.ndarray] = table("the held mask, packed uint8 (optional)", required=False)

    def _consistency(self, problems: list[str]) -> None:
        passes_through(self, problems)
        _mask_params(self, problems)
        if (self.mask is None) != (self.mask_shape is None):
            problems.append("params.mask_shape: must be given exactly when a mask table is stored")
        if self.mask is not None and self.mask_shape is not None:
            n = int(np.prod(self.mask_shape, dtype=np.int64))
            if self.mask.shape != (_packed_bytes(n),):
                problems.append(f"tables.mask: {list(self.mask.shape)} bytes; a packed mask of {list(self.mask_shape)} "
                                f"takes [{_packed_bytes(n)}]")
            want = self.expected_mask_shape(self.mask_shape[0])
            if tuple(self.mask_shape) != want:
                problems.append(f"params.mask_shape: {list(self.mask_shape)}; a batch of {self.mask_shape[0]} takes {list(want)}")

    def expected_mask_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, *self.input_shape)

    def passes_exponent(self, incoming: Optional[int]) -> Optional[int]:
        return incoming

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role == "mask":
            return TableFormat(8, False, None)
        return super().table_format(role, target)


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class Dropout2d(Dropout):
    kind = "dropout2d"
    summary = "as dropout with one bit per (sample, channel), broadcast over the spatial axes"

    def expected_mask_shape(self, batch: int) -> tuple[int, ...]:
        return (batch, self.input_shape[0]) + (1,) * (len(self.input_shape) - 1)


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class DropConnect(SynapticSpec):
    kind = "dropconnect"
    summary = ("integer dense layer with per-sample weight (and bias) masks: one draw per step (`invariant: false`) "
               "or per run; ReLU when `relu`; no latency")

    in_features: int = param("number of inputs", ge=1)
    out_features: int = param("number of outputs", ge=1)
    has_bias: bool = param("the layer has a bias table")
    relu: bool = param("ReLU on the output")
    invariant: bool = param("one mask per run (true) or per step (false)")
    p: float = param("drop probability in [0, 1)")
    seed: int = param("generator seed", ge=0, le=(1 << 32) - 1)
    keep_threshold: int = param("round((1 - p) 2^24)", ge=0, le=1 << KEEP_BITS)
    active: bool = param("training mode: masks applied")
    draw: int = param("draw of the stored masks, else of the next mask")
    mask_batch: Optional[int] = param("samples of the stored masks, or null", ge=1)
    weight: np.ndarray = table("[out, in] integer weights (widths.weight)")
    bias: Optional[np.ndarray] = table("[out] integer bias (widths.bias)", required=False)
    mask_w: Optional[np.ndarray] = table("stored weight masks [mask_batch, out, in], packed uint8", required=False)
    mask_b: Optional[np.ndarray] = table("stored bias masks [mask_batch, out], packed uint8", required=False)

    def _consistency(self, problems: list[str]) -> None:
        if self.input_shape != (self.in_features,) or self.output_shape != (self.out_features,):
            problems.append(f"input_shape/output_shape: {list(self.input_shape)} -> {list(self.output_shape)}; expected "
                            f"[{self.in_features}] -> [{self.out_features}]")
        if self.weight is not None and self.weight.shape != (self.out_features, self.in_features):
            problems.append(f"tables.weight: shape {list(self.weight.shape)}; expected [{self.out_features}, {self.in_features}]")
        if self.has_bias != (self.bias is not None):
            problems.append(f"params.has_bias: {self.has_bias} but the bias table is {'present' if self.bias is not None else 'absent'}")
        if self.output_kind != "values":
            problems.append(f"output.kind: dropconnect outputs 'values'; got {self.output_kind!r}")
        self._synaptic_consistency(problems, self.weight, self.bias, self.out_features)
        _mask_params(self, problems)
        stored = [m for m in (self.mask_w, self.mask_b) if m is not None]
        if stored and self.mask_batch is None:
            problems.append("params.mask_batch: null but mask tables are stored")
        if self.mask_batch is not None:
            o, i = self.out_features, self.in_features
            for role, n in (("mask_w", self.mask_batch * o * i), ("mask_b", self.mask_batch * o)):
                m = getattr(self, role)
                if m is not None and m.shape != (_packed_bytes(n),):
                    problems.append(f"tables.{role}: {list(m.shape)} bytes; {n} packed bits take [{_packed_bytes(n)}]")
            if self.mask_w is None or (self.bias is not None) != (self.mask_b is not None):
                problems.append("tables: stored masks need mask_w, and mask_b exactly when there is a bias")

    def _check_target(self, target: Target, problems: list[str]) -> None:
        if target.synapse.accumulation != "sum":
            problems.append(f"op: dropconnect needs a target that sums its inputs; {target.name!r} accumulates by "
                            f"{target.synapse.accumulation!r}")
        self._synaptic_target(target, problems)

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role in ("mask_w", "mask_b"):
            return TableFormat(8, False, None)
        if role == "bias":
            return TableFormat.of(target.widths.bias, self.output_exponent)
        return super().table_format(role, target)
