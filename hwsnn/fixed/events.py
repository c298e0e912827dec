r"""Synaptic events that saturate one by one (Xylo), as a value passed from a dense twin to a neuron.

On a target with ``synapse.accumulation: per_event_saturate`` the dense twin does not sum: it
hands the neuron the step's event counts and its effective weights, and the neuron adds them to its
current *in source order, saturating after every event*:

.. math::
    \text{for } i = 0..N_{in}-1:\quad I \leftarrow \mathrm{sat}(I + c_i\,w_{:,i})

(``c`` repeated adds of one source equal one saturating add of ``c w``, since every add from one
source has the same sign.) The plain sum :math:`\mathrm{sat}(I + \sum_i c_i w_{:,i})` is the same
whenever neither :math:`I + \sum_{w>0}` nor :math:`I + \sum_{w<0}` leaves the range, because then no
running partial sum can; only the (batch, neuron) rows that can cross are replayed in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from targets import Width

__all__ = ["SynapticEvents", "accumulate_events"]


@dataclass
class SynapticEvents:
    """One step's (or, with a leading time axis, a sequence's) events for a neuron twin.

    :param counts: event counts per source, ``[..., N_in]`` (already capped by the target)
    :param weight: effective integer weights ``[N_out, N_in]`` (after the target's weight shift)
    """

    counts: torch.Tensor
    weight: torch.Tensor

    def __getitem__(self, t: int) -> "SynapticEvents":
        """The events of time step ``t`` of a multi-step sequence."""
        return SynapticEvents(self.counts[t], self.weight)

    @property
    def shape(self) -> torch.Size:
        """Shape of the result of accumulation (``counts`` with ``N_out`` as the last dim)."""
        return torch.Size((*self.counts.shape[:-1], self.weight.shape[0]))

    def __len__(self) -> int:
        return self.counts.shape[0]


def accumulate_events(current: torch.Tensor, events: SynapticEvents, width: Width) -> tuple[torch.Tensor, int]:
    """Add ``events`` into ``current`` ``[..., N_out]`` with saturation after every event.

    Returns ``(new current as int64, number of saturating adds)``. Exact for any inputs; the replay
    runs only for the rows whose positive or negative partial sums can leave ``width``.
    """
    w = events.weight.to(torch.int64)
    c = events.counts.to(torch.int64)
    i0 = current.to(torch.int64).expand(events.shape).reshape(-1, w.shape[0])
    c2 = c.reshape(-1, w.shape[1])
    pos = c2 @ w.clamp(min=0).T
    neg = c2 @ w.clamp(max=0).T
    risky = (i0 + pos > width.hi) | (i0 + neg < width.lo)
    out = i0 + pos + neg
    n_sat = 0
    if bool(risky.any()):
        rows, cols = risky.nonzero(as_tuple=True)
        acc = i0[rows, cols]
        cnt = c2[rows]
        wt = w[cols]
        for src in range(w.shape[1]):
            step = cnt[:, src] * wt[:, src]
            raw = acc + step
            clipped = raw.clamp(width.lo, width.hi)
            n_sat += int((clipped != raw).sum())
            acc = clipped
        out[rows, cols] = acc
    return out.reshape(events.shape), n_sat
