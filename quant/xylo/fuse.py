"""A layered Xylo twin network as the one Xylo core the chip runs: :func:`fuse`.

The layout rules are those of :func:`targets.bundle.xylo_fuse.fuse_ops` (torch-free, shared with the
simulator's fit check and the Rockpool hand-off): the twins describe themselves as ops
(:func:`quant.network_spec`), the ops are fused into one ``xylo_core`` op, and the core's twin is
built from it (:meth:`~hwsnn.fixed.FixedXyloCore.from_spec`). Routing twins after the readout (voting)
are kept as they are. The fused core is tested equal to the layered twins on every state.
"""

from __future__ import annotations

from typing import Optional, Sequence

from torch import nn

from hwsnn.fixed import FixedXyloCore
from hwsnn.functional import set_step_mode
from targets.bundle.xylo_fuse import FuseError, fuse_ops

from ..export import network_spec, twin_layers

__all__ = ["fuse", "FuseError"]


def fuse(twin: nn.Module, name: str = "xylo_core", *, input_shape: Optional[Sequence[int]] = None,
         input_kind: str = "counts") -> nn.Sequential:
    """``Sequential(core, *off_chip)``: the layered Xylo twin network ``twin`` (``FixedLinear(first_layer)
    -> hidden -> [FixedLinear -> hidden]* -> FixedLinear -> readout FixedCubaLIFNode``, then routing
    twins such as voting; ``hidden``: ``FixedCubaLIFNode`` or a ``FixedRecurrent`` of one) as one
    :class:`~hwsnn.fixed.FixedXyloCore`. A network that is a core already (a two-synapse network
    converted by :func:`quant.convert`, then routing twins) comes back as it is.

    :raises FuseError: a layer the core cannot hold (LIF/IF neurons, projection biases, latencies
        other than the chip's, different hidden weight shifts), named
    """
    layers = twin_layers(twin)
    if not layers:
        raise FuseError("fuse: the network has no twin layers")
    tg = layers[0].target
    if tg.limits.layout != "xylo_core":
        raise FuseError(f"fuse: target {tg.name!r} has no Xylo core (limits.layout: {tg.limits.layout})")
    net = network_spec(twin, input_shape=input_shape, input_kind=input_kind)
    core, off = fuse_ops(net.ops, tg, name)
    step_mode = getattr(layers[0], "step_mode", "s")
    fused = nn.Sequential(FixedXyloCore.from_spec(core, tg), *layers[len(layers) - len(off):])
    set_step_mode(fused, step_mode)
    return fused
