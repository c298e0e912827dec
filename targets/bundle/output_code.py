r"""``output_code``: class scores of an output code, decoded off the chip by nearest codeword.

A chip with fewer readout neurons than classes (XyloAudio 2: 8 readouts, 10 digits) can still
classify when every class owns a **codeword**: row :math:`c_k \in \{0, 1\}^M` of the ``codebook``
``C [classes, M]`` says which of the :math:`M` readouts should fire for class :math:`k`. The op
turns the readout activity :math:`x \in \mathbb{Z}^M` of one step into class scores

.. math::
    s_k = \mathrm{ovf}\Big(\sum_{j<M} (2 C_{kj} - 1)\, x_j\Big),

(``ovf``: the target's accumulator), and the predicted class is :math:`\arg\max_k \sum_t s_k[t]`
(the first on ties), which is the **nearest codeword** to the spike counts
:math:`n = \sum_t x[t]`:

*Proof.* Every codeword has the same weight :math:`w = |c_k|^2 = \sum_j C_{kj}` (checked). Without
overflow the scores are linear, :math:`\sum_t s_k[t] = (2c_k - \mathbf 1)\cdot n = 2\,c_k\cdot n -
\mathbf 1\cdot n`, and
:math:`\lVert n - c_k\rVert^2 = \lVert n\rVert^2 - 2\,c_k\cdot n + w`. Both are functions of
:math:`c_k\cdot n` alone, the score increasing and the distance decreasing, with terms that do not
depend on :math:`k`; so :math:`\arg\max_k \sum_t s_k[t] = \arg\min_k \lVert n - c_k\rVert^2`, ties
included, for any real :math:`n` (negative too). For 0/1 counts the squared distance is the Hamming
distance. :math:`\square`

With the default codebook (:func:`default_codebook`: 10 words of weight 4 over 8 readouts, taken
from the extended Hamming code [8, 4, 4], pairwise Hamming distance :math:`\ge 4`) a readout
pattern with one wrong bit is still decoded to its class.

The scores are exact integer sums of :math:`M` terms :math:`\pm x_j`; the output exponent is the
input's (the op only adds and subtracts), ``output_kind`` is ``values``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..target import Target
from .base import OpSpec, TableFormat, param, register, table
from .errors import SpecError

__all__ = ["OutputCode", "check_codebook", "codebook_problems", "default_codebook", "MAX_DEFAULT_READOUTS"]

#: :func:`default_codebook` enumerates the words of weight M/2: at most C(20, 10) = 184756 of them
MAX_DEFAULT_READOUTS = 20


def codebook_problems(codebook: np.ndarray, path: str = "tables.codebook") -> list[str]:
    """Every reason ``codebook`` ``[classes, readouts]`` is not a usable output code: not 2-D, values
    other than 0/1, rows of different weight (the nearest-codeword proof needs one weight), a row of
    weight 0 or ``readouts`` (its score does not depend on the readouts), repeated rows."""
    c = np.asarray(codebook)
    if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
        return [f"{path}: expected a 2-D table [classes, readouts]; got shape {list(c.shape)}"]
    problems: list[str] = []
    if c.dtype.kind not in "iub" or not np.isin(c, (0, 1)).all():
        bad = [int(v) if float(v).is_integer() else float(v) for v in np.unique(c[~np.isin(c, (0, 1))])[:5]]
        return [f"{path}: holds values other than 0 and 1: {bad}"]
    weights = c.astype(np.int64).sum(axis=1)
    if len(set(weights.tolist())) > 1:
        problems.append(f"{path}: every codeword must have the same number of ones (the nearest-codeword decoding "
                        f"needs it); the rows have {weights.tolist()}")
    elif weights[0] in (0, c.shape[1]):
        problems.append(f"{path}: codewords of weight {int(weights[0])} carry no information (use weight 1 .. "
                        f"{c.shape[1] - 1})")
    seen: dict[bytes, int] = {}
    for k, row in enumerate(c.astype(np.uint8)):
        key = row.tobytes()
        if key in seen:
            problems.append(f"{path}: rows {seen[key]} and {k} are the same codeword {row.tolist()}")
        seen.setdefault(key, k)
    return problems


def default_codebook(classes: int, readouts: int) -> np.ndarray:
    r"""The deterministic codebook ``[classes, readouts]`` (uint8 0/1) used when none is given.

    * ``classes == readouts``: the identity (one readout per class, weight 1);
    * otherwise words of weight :math:`w = \lfloor M/2 \rfloor` taken greedily in lexicographic order
      (``itertools.combinations``), each together with its complement when :math:`M = 2w` (so every
      readout is on for half of the classes), keeping only words at Hamming distance :math:`\ge d`
      from all kept ones, for the largest :math:`d` that yields ``classes`` words; the first
      ``classes`` kept words. For :math:`M = 8` and :math:`d = 4` this is the lexicographic code
      whose 14 words are the weight-4 words of the extended Hamming code [8, 4, 4]; 10 classes take
      five complementary pairs (each readout on for exactly 5 classes).

    :raises ValueError: ``classes`` or ``readouts`` < 1, more classes than distinct words of weight
        :math:`w`, or ``readouts`` > :data:`MAX_DEFAULT_READOUTS` (give a codebook)
    """
    for what, v in (("classes", classes), ("readouts", readouts)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"default_codebook: {what} must be an int >= 1; got {v!r}")
    classes, readouts = int(classes), int(readouts)
    if classes == readouts:
        return np.eye(classes, dtype=np.uint8)
    if readouts > MAX_DEFAULT_READOUTS:
        raise ValueError(f"default_codebook: {readouts} readouts; the default code is searched for at most "
                         f"{MAX_DEFAULT_READOUTS} (give a codebook)")
    w = readouts // 2
    if w < 1 or math.comb(readouts, w) < classes:
        raise ValueError(f"default_codebook: {classes} classes need {classes} distinct codewords; {readouts} readouts "
                         f"have {math.comb(readouts, w) if w else 0} of weight {w} (use more readouts)")
    words = [np.isin(np.arange(readouts), idx).astype(np.uint8) for idx in itertools.combinations(range(readouts), w)]
    for d in range(2 * w, 1, -2):  # distances between words of equal weight are even
        kept: list[np.ndarray] = []
        for word in words:
            for cand in (word, 1 - word) if 2 * w == readouts else (word,):
                if all(int(np.sum(cand != k)) >= d for k in kept):
                    kept.append(cand)
            if len(kept) >= classes:
                return np.stack(kept[:classes]).astype(np.uint8)
    raise AssertionError("unreachable: d = 2 keeps every distinct word")  # pragma: no cover


@register
@dataclass(frozen=True, eq=False, kw_only=True)
class OutputCode(OpSpec):
    kind = "output_code"
    summary = ("class scores of an output code, run off the chip: `ovf(sum_j (2 C[k, j] - 1) x_j)`; the class is the "
               "argmax of the time-summed scores = the nearest codeword to the readout counts")

    classes: int = param("number of classes (rows of the codebook)", ge=1)
    readouts: int = param("M, the readouts (columns of the codebook; the last input axis)", ge=1)
    weight: int = param("w, the number of ones in every codeword", ge=1)
    codebook: np.ndarray = table("[classes, readouts] 0/1 codewords, all of weight w, distinct (uint8)")

    def passes_exponent(self, incoming: Optional[int]) -> Optional[int]:
        return incoming

    def _consistency(self, problems: list[str]) -> None:
        c = self.codebook
        if c.shape != (self.classes, self.readouts):
            problems.append(f"tables.codebook: shape {list(c.shape)}; expected [classes, readouts] = "
                            f"[{self.classes}, {self.readouts}]")
            return
        found = codebook_problems(c)
        problems.extend(found)
        if not found and int(c[0].sum()) != self.weight:
            problems.append(f"params.weight: {self.weight} but the codewords have {int(c[0].sum())} ones")
        if not self.input_shape or self.input_shape[-1] != self.readouts:
            problems.append(f"input_shape: the last axis of {list(self.input_shape)} must be readouts = {self.readouts}")
        else:
            want = (*self.input_shape[:-1], self.classes)
            if self.output_shape != want:
                problems.append(f"output_shape: {list(self.output_shape)}; expected {list(want)}")
        if self.output_kind != "values":
            problems.append(f"output.kind: class scores are 'values'; got {self.output_kind!r}")

    def table_format(self, role: str, target: Target) -> TableFormat:
        if role == "codebook":
            return TableFormat(1, False, None)
        return super().table_format(role, target)

    def signs(self) -> np.ndarray:
        """The score matrix :math:`2C - 1` ``[classes, readouts]`` of +1/-1 (int64)."""
        return 2 * self.codebook.astype(np.int64) - 1


def check_codebook(codebook: np.ndarray, who: str) -> np.ndarray:
    """``codebook`` as a read-only uint8 array, or a :class:`SpecError` from ``who`` listing every problem."""
    c = np.asarray(codebook)
    problems = codebook_problems(c, "codebook")
    if problems:
        raise SpecError(f"{who}: not a valid output code", problems)
    out = c.astype(np.uint8)
    out.setflags(write=False)
    return out
