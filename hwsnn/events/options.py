"""Run-file options of the event data kinds (``data.kind: shd | nmnist``) and their checks.

Each check returns ``None`` for a good value, else the message that follows ``data.<key>: `` in a
:class:`hwsnn.config.ConfigError`. :data:`EVENT_OPTIONS` maps ``kind -> option -> (check,
default)``; ``path`` has no default (it is required).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Optional

__all__ = ["EVENT_KINDS", "EVENT_OPTIONS", "EventDataError", "NMNIST_POOLS", "SHD_CHANNELS", "defaults", "dt_us"]

#: the event data kinds a run file may name
EVENT_KINDS = ("nmnist", "shd")
#: SHD's cochlea channels (tonic's ``SHD.sensor_size`` is ``(700, 1, 1)``)
SHD_CHANNELS = 700
SHD_CLASSES = 20
#: N-MNIST's sensor is 34 x 34 pixels, 2 polarities; the pixel pools that tile it exactly
NMNIST_SIDE = 34
NMNIST_CLASSES = 10
NMNIST_POOLS = (1, 2, 17, 34)
REQUIRED = object()

Check = Callable[[Any], Optional[str]]


class EventDataError(ValueError):
    """A problem with event data, tied to the run-file option ``key`` (``data.<key>``)."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"data.{key}: {message}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _int_range(low: int, high: Optional[int] = None, nullable: bool = False) -> Check:
    def check(v: Any) -> Optional[str]:
        if nullable and v is None:
            return None
        if not _is_int(v) or v < low or (high is not None and v > high):
            span = f">= {low}" if high is None else f"in [{low}, {high}]"
            return f"must be an int {span}{' or null' if nullable else ''}; got {v!r}"
        return None

    return check


def _dt_ms(v: Any) -> Optional[str]:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
    if not ok:
        return f"must be a number of milliseconds > 0; got {v!r}"
    if abs(v * 1000 - round(v * 1000)) > 1e-6:
        return f"must be a whole number of microseconds (a multiple of 0.001 ms); got {v!r}"
    return None


def _bool(v: Any) -> Optional[str]:
    return None if isinstance(v, bool) else f"must be true or false; got {v!r}"


def _str(nullable: bool) -> Check:
    def check(v: Any) -> Optional[str]:
        if nullable and v is None:
            return None
        if isinstance(v, str) and v.strip():
            return None
        return f"must be a non-empty string{' or null' if nullable else ''}; got {v!r}"

    return check


def _labels(classes: int) -> Check:
    def check(v: Any) -> Optional[str]:
        if v is None:
            return None
        ok = (isinstance(v, list) and len(v) >= 2 and all(_is_int(x) and 0 <= x < classes for x in v)
              and len(set(v)) == len(v))
        return None if ok else f"must be null or a list of at least 2 distinct labels in [0, {classes}); got {v!r}"

    return check


def _one_of(values: tuple) -> Check:
    def check(v: Any) -> Optional[str]:
        ok = any(v == a and type(v) is type(a) for a in values)
        return None if ok else f"must be one of {', '.join(map(repr, values))}; got {v!r}"

    return check


def _common(T: int, dt: float, classes: int) -> dict[str, tuple[Check, Any]]:
    return {
        "path": (_str(False), REQUIRED),
        "T": (_int_range(1), T),
        "dt_ms": (_dt_ms, dt),
        "max_count": (_int_range(1, nullable=True), None),
        "labels": (_labels(classes), None),
        "train_samples": (_int_range(1, nullable=True), None),
        "test_samples": (_int_range(1, nullable=True), None),
        "workers": (_int_range(0), 2),
        "cache": (_bool, True),
        "cache_dir": (_str(True), None),
    }


#: kind -> option -> (check, default); ``REQUIRED`` marks ``path``
EVENT_OPTIONS: dict[str, dict[str, tuple[Check, Any]]] = {
    "shd": {
        **_common(T=100, dt=10.0, classes=SHD_CLASSES),
        "channels": (_int_range(1, SHD_CHANNELS), SHD_CHANNELS),
    },
    "nmnist": {
        **_common(T=30, dt=10.0, classes=NMNIST_CLASSES),
        "pool": (_one_of(NMNIST_POOLS), 1),
        "layout": (_one_of(("flat", "image")), "flat"),
        "first_saccade_only": (_bool, False),
    },
}


def defaults(kind: str) -> dict[str, Any]:
    """The default of every option of ``kind`` (without ``path``)."""
    return {k: d for k, (_, d) in EVENT_OPTIONS[kind].items() if d is not REQUIRED}


def dt_us(dt_ms: float) -> int:
    """The step length in whole microseconds (the unit of tonic's event times)."""
    return int(round(float(dt_ms) * 1000))
