r"""Blocking of the neuron dimension for the fused torch kernels.

CPU execution
-------------
The neuron dimension is processed in blocks of :data:`CPU_BLOCK` elements; each block runs all its
time steps before the next block starts, so the per-step temporaries (membrane, charge, surrogate
pieces) stay in cache and only the ``[T, N]`` streams (input, spikes, saved :math:`H`, output
gradient, input gradient) go to main memory. Those streams come from :class:`~.hostpool.HostPool` (fresh
large allocations are page-faulted on first touch, which costs more than the neuron itself). On
other devices one block spans the whole tensor and PyTorch's own allocator is used.
"""

from __future__ import annotations

from typing import Optional

import torch

__all__ = ["CPU_BLOCK", "row_views", "blocks"]


#: neurons per block on CPU (temporaries of 1 MiB each: they stay in L2/L3 while the ``[T, N]``
#: streams go to memory; larger blocks amortise the per-op dispatch cost)
CPU_BLOCK = 1 << 18


def row_views(a: torch.Tensor, c0: int, c1: int) -> tuple:
    """The ``T`` rows ``a[t, c0:c1]`` as views, in one call."""
    return (a if (c0 == 0 and c1 == a.shape[1]) else a[:, c0:c1]).unbind(0)


def blocks(n: int, device: torch.device, block: Optional[int]):
    """The column ranges ``(c0, c1)`` covering ``n`` neurons: :data:`CPU_BLOCK` wide on CPU (or ``block``), one range elsewhere."""
    if block is None:
        block = CPU_BLOCK if device.type == "cpu" else n
    block = max(1, min(block, n))
    for c0 in range(0, n, block):
        yield c0, min(n, c0 + block)
