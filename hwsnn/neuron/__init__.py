"""Spiking neurons (float). Equations: :mod:`hwsnn.functional.neuron`."""

from .cuba import CubaLIFNode
from .cuba2 import CubaLIF2Node
from .nodes import BaseNode, IFNode, LIFNode
from .online import OTTTLIFNode
from .simple import SimpleBaseNode, SimpleIFNode, SimpleLIFNode

__all__ = [
    "BaseNode",
    "IFNode",
    "LIFNode",
    "CubaLIFNode",
    "CubaLIF2Node",
    "OTTTLIFNode",
    "SimpleBaseNode",
    "SimpleIFNode",
    "SimpleLIFNode",
]
