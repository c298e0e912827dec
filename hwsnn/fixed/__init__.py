"""Integer twins of the float layers (see :mod:`hwsnn.fixed.base`)."""

from .arith import FitError
from .base import FixedModule, resolve_target
from .convert import converters, register, to_fixed
from .events import SynapticEvents, accumulate_events

# Twin modules register their converters on import.
from . import _load_all  # noqa: E402,F401

__all__ = [
    "FitError",
    "FixedModule",
    "resolve_target",
    "converters",
    "register",
    "to_fixed",
    "SynapticEvents",
    "accumulate_events",
]
