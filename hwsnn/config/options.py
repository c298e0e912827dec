r"""The value checks of a run file and the tables of the ``data`` and ``training`` options.

Each check returns ``None`` when the value is fine, else the message after ``"path: "``.
:data:`DATA_OPTIONS` maps ``kind -> option -> (check, default)`` (:data:`UNSET`: the default is
left to the data function); :data:`TRAINING_CHECKS` maps each ``training`` key to its check.
Numbers: an int is an ``int`` that is not a ``bool``; a number is a finite int or float.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Optional, Sequence

from ..events import EVENT_KINDS, EVENT_OPTIONS

__all__ = [
    "DATA_KINDS",
    "DATA_OPTIONS",
    "NPZ_ARRAYS",
    "TRAINING_CHECKS",
    "UNSET",
    "is_int",
    "is_num",
    "int_ge",
    "num_in",
    "check_levels",
    "check_columns",
    "nonempty_str",
    "unknown_key",
]


DATA_KINDS = tuple(sorted(("digits", "npz", "temporal_patterns", *EVENT_KINDS)))
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")


UNSET = object()  # an option default left to the data function


def is_int(v: Any) -> bool:
    """Whether ``v`` is an ``int`` (a ``bool`` is not)."""
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """Whether ``v`` is a finite ``int`` or ``float`` (a ``bool`` is not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def int_ge(low: int, nullable: bool = False):
    r"""A check: an int :math:`\ge` ``low`` (or ``None`` when ``nullable``)."""
    def check(v: Any) -> Optional[str]:
        if nullable and v is None:
            return None
        if not is_int(v) or v < low:
            return f"must be an int >= {low}{' or null' if nullable else ''}; got {v!r}"
        return None

    return check


def num_in(low: float, high: float, low_open: bool = False, high_open: bool = False):
    """A check: a number in the interval from ``low`` to ``high`` (each end open or closed)."""
    lo, hi = ("(" if low_open else "["), (")" if high_open else "]")
    what = f"> {low:g}" if math.isinf(high) and low_open else f"in {lo}{low:g}, {high:g}{hi}"

    def check(v: Any) -> Optional[str]:
        if not is_num(v) or v < low or v > high or (low_open and v == low) or (high_open and v == high):
            return f"must be a number {what}; got {v!r}"
        return None

    return check


def check_levels(v: Any) -> Optional[str]:
    """``digits`` ``levels``: a non-empty, strictly increasing list of ints in [0, 15]."""
    ok = isinstance(v, list) and v and all(is_int(x) and 0 <= x <= 15 for x in v) and all(a < b for a, b in zip(v, v[1:]))
    return None if ok else f"must be a non-empty, strictly increasing list of ints in [0, 15]; got {v!r}"


def check_columns(v: Any) -> Optional[str]:
    r"""``digits`` ``columns``: ``[first, end]`` with :math:`0 \le first < end \le 8`."""
    ok = isinstance(v, list) and len(v) == 2 and all(is_int(x) for x in v) and 0 <= v[0] < v[1] <= 8
    return None if ok else f"must be a list [first, end] of ints with 0 <= first < end <= 8; got {v!r}"


def nonempty_str(v: Any) -> Optional[str]:
    """A check: a string that is not blank."""
    return None if isinstance(v, str) and v.strip() else f"must be a non-empty string; got {v!r}"


# kind -> option -> (check, default)
DATA_OPTIONS: dict[str, dict[str, tuple[Any, Any]]] = {
    "digits": {
        "row_steps": (int_ge(1), UNSET),
        "tail_steps": (int_ge(0), UNSET),
        "levels": (check_levels, UNSET),
        "columns": (check_columns, UNSET),
        "position_channels": (int_ge(0), UNSET),
        "test_fraction": (num_in(0.0, 1.0, True, True), UNSET),
        "train_samples": (int_ge(1, nullable=True), UNSET),
        "test_samples": (int_ge(1, nullable=True), UNSET),
    },
    "temporal_patterns": {
        "T": (int_ge(1), 20),
        "channels": (int_ge(1), 16),
        "classes": (int_ge(2), 10),
        "train_samples": (int_ge(1), 2000),
        "test_samples": (int_ge(1), 500),
        "template_rate": (num_in(0.0, 1.0), 0.2),
        "jitter": (int_ge(0), 1),
        "drop": (num_in(0.0, 1.0), 0.1),
        "noise": (num_in(0.0, 1.0), 0.02),
    },
    "npz": {
        "path": (nonempty_str, UNSET),
        "classes": (int_ge(2, nullable=True), UNSET),
    },
}


# shd, nmnist (hwsnn.events): their checks and defaults live with the loader
DATA_OPTIONS.update(EVENT_OPTIONS)


TRAINING_CHECKS = {
    "epochs": int_ge(1),
    "lr": num_in(0.0, math.inf, low_open=True),
    "batch_size": int_ge(1),
    "qat_epochs": int_ge(0),
    "qat_lr": num_in(0.0, math.inf, low_open=True),
    "calibration_batches": int_ge(1),
}


def unknown_key(path: str, key: Any, allowed: Sequence[str]) -> str:
    """The message for an unknown ``key`` under ``path``, with the closest allowed key as a hint."""
    near = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" (did you mean {near[0]!r}?)" if near else ""
    return f"{path}{key}: unknown key{hint}; allowed keys here: {', '.join(allowed)}"
