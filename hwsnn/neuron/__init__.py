"""Spiking neurons (float). Equations: :mod:`hwsnn.functional.neuron`."""

from .nodes import BaseNode, IFNode, LIFNode
from .online import OTTTLIFNode

__all__ = ["BaseNode", "IFNode", "LIFNode", "OTTTLIFNode"]
