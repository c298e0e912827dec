"""The simulator's ops, one module per family; importing this package registers them all."""

from . import (conv, delay, delaydense, dense, dropout, flatten, neuron, output_code, pool, recurrent,  # noqa: F401
               synapse, voting, xylo_core)
from .base import OPS, Events, Op, register_op

__all__ = ["OPS", "Op", "Events", "register_op"]
