"""Integer twins of the float layers: what a chip computes, integer for integer, per target.

``layer.to_fixed(target, **scales)`` (or :func:`to_fixed`) turns a float layer into its twin;
see :mod:`hwsnn.fixed.base` for the conventions (integer states with power-of-two exponents,
saturation and clip counters, ``dequantize``).
"""

from . import rng
from .arith import FitError
from .base import FixedModule, resolve_target
from .conv import FixedConv2d
from .convert import converters, register, to_fixed
from .delay import FixedDelay
from .dense import FixedLinear
from .dropout import FixedDropConnectLinear, FixedDropout, FixedDropout2d, fold_rescale
from .events import SynapticEvents, accumulate_events
from .neuron import FixedCubaLIFNode, FixedIFNode, FixedLIFNode
from . import neuron_convert  # noqa: F401  (registers the neuron converters)
from .flatten import FixedFlatten
from .output_code import FixedOutputCode
from .pool import FixedAvgPool2d, FixedMaxPool2d
from .recurrent import FixedRecurrent
from .synapse import FixedSynapseFilter
from .voting import FixedVotingLayer
from .xylo_core import FixedXyloCore
from .xylo_float import xylo_core_from_float
from ..base import set_twin_converter

set_twin_converter(to_fixed)  # layer.to_fixed(target, ...) on every float layer

__all__ = [
    "rng",
    "FitError",
    "FixedModule",
    "resolve_target",
    "converters",
    "register",
    "to_fixed",
    "SynapticEvents",
    "accumulate_events",
    "FixedIFNode",
    "FixedLIFNode",
    "FixedCubaLIFNode",
    "FixedRecurrent",
    "FixedLinear",
    "FixedConv2d",
    "FixedSynapseFilter",
    "FixedDropout",
    "FixedDropout2d",
    "FixedDropConnectLinear",
    "fold_rescale",
    "FixedDelay",
    "FixedVotingLayer",
    "FixedOutputCode",
    "FixedAvgPool2d",
    "FixedMaxPool2d",
    "FixedFlatten",
    "FixedXyloCore",
    "xylo_core_from_float",
]
