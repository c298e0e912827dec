r"""Fused multi-step *integer* sequences: the twins' neuron and synapse-filter arithmetic in one kernel.

The integer twins (:mod:`hwsnn.fixed.neuron`, :mod:`hwsnn.fixed.synapse`) step one time step at a
time in eager torch (~30 small ops and a host sync per saturation count per step). Here a whole
``[T, N]`` sequence runs in one compiled kernel: ``numba`` on CPU (:mod:`hwsnn.backend.fixed_kernels`),
Triton on CUDA (:mod:`hwsnn.backend.fixed_triton`). Results are **bit-identical** to the twin's step
function: spikes, every state after every step, and every saturation count.

The kernels know nothing about targets or twins: a twin describes its arithmetic as plain
integers (:class:`NeuronRules`, :class:`SynapseRules`, built in :mod:`hwsnn.fixed.fused`) and each
rule maps to one small kernel function that mirrors one twin method:

==========================  =====================================================  ===========================
rule                         kernel function (numba / Triton)                       twin method
==========================  =====================================================  ===========================
:class:`Width` overflow      ``_ovf``: saturate / wrap / fold_once, +1 per value     ``arith.overflow``
:class:`Decay`               ``_decay_amount``: shift (floor, toward_zero,           ``neuron.decay_amount``,
                             xylo_min1) or mul12 :math:`x - \mathrm{rnd}(x(4096-d) \gg 12)`  ``FixedSynapseFilter._decayed``
input term                   ``_input_add``: :math:`\mathrm{ovf}(i + (x \ll s))`     ``_FixedNeuron._add_input``
per-event input (Xylo)       ``_events_add``: saturate after every event             ``events.accumulate_events``
current                      ``_current``: IF/LIF input, or CUBA decay/add order     ``_current``
membrane                     ``_membrane``: ``direct`` / ``saturated_delta``          ``_membrane``
fire and reset               ``_fire_reset``: closed-form multi-spike loop           ``neuron.fire_and_reset``
==========================  =====================================================  ===========================

A change of a target's arithmetic in the twin (e.g. a new wrap of the input term) must be made in
the matching kernel function too; ``tests/test_fixed_fused.py`` runs the kernels against the twin's
own ``single_step_forward`` on every target, so a drift fails there.

Backend choice (:func:`fixed_kernel_kind`): numba for CPU tensors when installed and
``HWSNN_NUMBA`` is not ``0``; Triton for CUDA tensors when installed (or CPU tensors under
``TRITON_INTERPRET=1`` when asked for explicitly); otherwise ``None`` and the caller steps the twin.
Widths above 62 bits, shifts above 62 and spike caps above 127 are left to the step loop.
"""

from __future__ import annotations

from typing import Optional

import torch

from .fixed_rules import (MECHANISMS, OVERFLOW_MODES, ROUNDINGS, Decay, EventInput, NeuronRules, SynapseRules,
                          Width)

__all__ = [
    "Width",
    "Decay",
    "NeuronRules",
    "SynapseRules",
    "EventInput",
    "fixed_kernel_kind",
    "neuron_sequence",
    "synapse_sequence",
    "OVERFLOW_MODES",
    "ROUNDINGS",
    "MECHANISMS",
]


def fixed_kernel_kind(device: torch.device, backend: str = "auto") -> Optional[str]:
    """``'numba'``, ``'triton'`` or ``None`` (no kernel: step the twin) for tensors on ``device``.

    The choice of :func:`hwsnn.backend.resolve_backend`: ``'auto'`` is numba on CPU (installed,
    ``HWSNN_NUMBA`` not ``0``) and Triton on CUDA (installed); ``'triton'`` on CPU tensors needs
    ``TRITON_INTERPRET=1`` (the tests); ``'torch'`` (and any other device) gives ``None``.
    """
    from . import resolve_backend

    kind = resolve_backend(backend, device, "fixed sequence")
    if kind == "triton" and device.type not in ("cuda", "cpu"):
        return None
    return kind if kind in ("numba", "triton") else None


def neuron_sequence(
    x: Optional[torch.Tensor],
    events: Optional[EventInput],
    i0: torch.Tensor,
    v0: torch.Tensor,
    bias: torch.Tensor,
    rules: NeuronRules,
    *,
    store: bool,
    kind: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """Run ``T`` steps of a neuron twin on ``N`` neurons.

    :param x: input ``[T, N]`` int64 in input units (or ``None`` with ``events``)
    :param events: per-event input (Xylo) instead of ``x``
    :param i0: current entering the sequence ``[N]`` int64 (IF/LIF: ignored)
    :param v0: membrane entering the sequence ``[N]`` int64
    :param bias: integer bias ``[N]`` int64 (already shifted by its exponent)
    :param store: return every step's states (``[T, N]``), else only the last (``[1, N]``)
    :returns: ``(spikes [T, N] int8, v [T|1, N] int64, i [T|1, N] int64, [n_i, n_v, n_dv])``
    """
    if kind == "numba":
        from .fixed_kernels import neuron_sequence_numba as run
    elif kind == "triton":
        from .fixed_triton import neuron_sequence_triton as run
    else:
        raise ValueError(f"neuron_sequence: kind must be 'numba' or 'triton'; got {kind!r}")
    return run(x, events, i0, v0, bias, rules, store)


def synapse_sequence(
    s: torch.Tensor, i0: torch.Tensor, rules: SynapseRules, *, kind: str
) -> tuple[torch.Tensor, int, int]:
    """Run ``T`` steps of the integer synapse filter: ``(out [T, N] int64, saturation count, number of
    non-binary inputs)``; with non-binary inputs the outputs are meaningless (the twin refuses them).

    ``s`` are spikes ``[T, N]`` (any integer or bool dtype), ``i0`` the entering state ``[N]``.
    """
    if kind == "numba":
        from .fixed_kernels import synapse_sequence_numba as run
    elif kind == "triton":
        from .fixed_triton import synapse_sequence_triton as run
    else:
        raise ValueError(f"synapse_sequence: kind must be 'numba' or 'triton'; got {kind!r}")
    return run(s, i0, rules)
