"""The simulator's ops, one module per family; importing this package registers them all."""

from . import dense, misc, neuron, recurrent, synapse, xylo_core  # noqa: F401
from .base import OPS, Events, Op, register_op

__all__ = ["OPS", "Op", "Events", "register_op"]
