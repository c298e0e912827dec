r"""Fused multi-step neurons and synapse filter in plain torch: one autograd node per sequence.

The reference (:func:`hwsnn.functional.neuron.neuron_multi_step`) lets autograd record every op
of every time step: ~10 nodes and ~10 saved tensors per step. Here the whole ``[T, N]`` sequence
is one :class:`torch.autograd.Function` whose forward runs under ``no_grad`` with in-place ops
into preallocated buffers, and whose backward is the hand-written BPTT below. Only the charged
membrane :math:`H` is saved (spikes, surrogate gradients and reset derivatives are recomputed
from it), so the saved memory is one ``[T, N]`` tensor instead of ~10.

The pieces, one concept per module (this module re-exports their public names):

* :mod:`hwsnn.backend.fused_neuron`: IF/LIF forward, hand-written BPTT, surrogate gradients,
  :class:`FusedNeuronFunction`, :class:`NeuronConfig`;
* :mod:`hwsnn.backend.fused_synapse`: the synapse filter, :class:`FusedSynapseFunction`;
* :mod:`hwsnn.backend.blocks`: the CPU blocking of the neuron dimension (:data:`CPU_BLOCK`);
* :mod:`hwsnn.backend.hostpool`: the caching allocator of the ``[T, N]`` CPU streams
  (:class:`HostPool`, :data:`host_pool`, :func:`empty_buffer`).

The tuning constants (``CPU_BLOCK``, ``TILED_MAX_BYTES``, ``TILE_BYTES``) and the pool are read
from the module that defines them: patch them there, not here.
"""

from __future__ import annotations

from .blocks import CPU_BLOCK
from .fused_neuron import FusedNeuronFunction, NeuronConfig, Threshold, neuron_backward_torch, neuron_forward_torch
from .fused_synapse import FusedSynapseFunction, synapse_backward_torch, synapse_forward_torch
from .hostpool import HostPool, empty_buffer, host_pool

__all__ = [
    "CPU_BLOCK",
    "HostPool",
    "host_pool",
    "empty_buffer",
    "Threshold",
    "NeuronConfig",
    "neuron_forward_torch",
    "neuron_backward_torch",
    "synapse_forward_torch",
    "synapse_backward_torch",
    "FusedNeuronFunction",
    "FusedSynapseFunction",
]
