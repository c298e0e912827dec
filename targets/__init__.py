"""Chip descriptions: one YAML file per target, validated into a frozen :class:`Target`.

>>> import targets
>>> targets.available()                      # doctest: +SKIP
['generic_int8', 'ideal', 'loihi', 'xylo', ...]
>>> t = targets.load("xylo")                 # or targets.load("path/to/my_chip.yaml")
>>> t.widths.membrane.bits, t.decay.rounding
(16, 'xylo_min1')
"""

from .loader import TargetError, available, from_dict, load, target_dir, to_dict
from .target import (
    COMPARE,
    OVERFLOW,
    RESET,
    ROUNDING,
    Costs,
    Decay,
    Figure,
    Limits,
    Neuron,
    Overflow,
    Spikes,
    Synapse,
    Target,
    Width,
    Widths,
)

__all__ = [
    "TargetError",
    "available",
    "from_dict",
    "load",
    "target_dir",
    "to_dict",
    "COMPARE",
    "OVERFLOW",
    "RESET",
    "ROUNDING",
    "Costs",
    "Decay",
    "Figure",
    "Limits",
    "Neuron",
    "Overflow",
    "Spikes",
    "Synapse",
    "Target",
    "Width",
    "Widths",
]
