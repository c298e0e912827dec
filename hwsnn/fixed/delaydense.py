r"""Per-synapse delays of the dense twin (Loihi 2 ``DelayDense``): the ring buffer of future sums.

A spike at step :math:`t` through a synapse of delay :math:`d` reaches the output at
:math:`t + L + d` (:math:`L` the layer's latency, applied after this buffer). For each delay value
:math:`k` in use, :math:`R_k[t] = \sum_{i:\,d_{oi} = k} W_{oi} X_i[t]` (exact int64) is the sum
source step :math:`t` sends through delay :math:`k`. Two rules (``target.synapse.delay_shift``):

* ``on_arrival``: the buffer holds raw sums; everything arriving in one step is added exactly,
  :math:`A[\tau] = \sum_k R_k[\tau - k]`, and the layer then applies its overflow, shift and bias to
  :math:`A[\tau]` as without delays.
* ``per_slot`` (Lava's ``DelayDense``): each source step's sum per delay slot is shifted *before*
  it accumulates, :math:`c_k[t] = \mathrm{shift}(R_k[t], s)` (floor), and added into the slot of
  step :math:`t + k` of a buffer held at the accumulator width (int32 on Loihi, two's complement).
  Lava adds, at each source step, one value into every slot; a slot therefore receives its values
  in source-step order, and every add whose result leaves the width is one wrap
  (``saturations['accumulator']``). So :math:`\lfloor 2/4 \rfloor + \lfloor 2/4 \rfloor = 0`, where
  ``on_arrival`` gives :math:`\lfloor 4/4 \rfloor = 1`.

When no add can leave the width (:math:`\max|\text{pending}| + \lceil B\,2^{s} \rceil + K` inside it,
with :math:`B = \max|X|\,\max|W|\,\mathit{in}` and :math:`K` delay values: a slot's values come from
disjoint synapses) the adds are done at once; otherwise step by step.
"""

from __future__ import annotations

from typing import Optional

import torch

from targets import Width

from . import arith

__all__ = ["DelayBuffer"]


class DelayBuffer:
    """The delay rule of one dense twin (module docstring); the pending future sums are the twin's memory.

    :param delay_values: the delay values in use (ascending)
    :param rule: ``'on_arrival'`` or ``'per_slot'``
    :param shift: the weight shift :math:`s` (``per_slot`` applies it per slot)
    :param width: the accumulator width, and ``mode`` its overflow mode (``per_slot``)
    """

    def __init__(self, delay_values: list[int], rule: str, shift: int, width: Width, mode: str) -> None:
        if rule not in ("on_arrival", "per_slot"):
            raise ValueError(f"delay rule must be 'on_arrival' or 'per_slot'; got {rule!r}")
        self.values, self.rule, self.shift, self.width, self.mode = list(delay_values), rule, int(shift), width, mode
        self.dmax = max(self.values) if self.values else 0

    @property
    def shifted(self) -> bool:
        """Whether :meth:`step` returns sums already shifted (``per_slot``)."""
        return self.rule == "per_slot"

    def step(self, pending: Optional[torch.Tensor], sums: list[tuple[int, torch.Tensor]], bound: int,
             who: str) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Add this chunk's per-delay sums ``R_k`` ``[T, N, out]`` to ``pending`` (``[dmax, N, out]``, the sums of
        the coming steps, or None after a reset); returns ``(what arrives at each of the T steps, the new
        pending sums, number of wraps)``: raw sums (``on_arrival``) or shifted, wrapped sums (``per_slot``).
        ``bound`` is :math:`\\max|X|\\,\\max|W|\\,\\mathit{in}` for this chunk."""
        t = sums[0][1].shape[0]
        tail = sums[0][1].shape[1:]
        buf = torch.zeros((t + self.dmax, *tail), dtype=torch.int64, device=sums[0][1].device)
        if pending is not None:
            if tuple(pending.shape[1:]) != tuple(tail):
                raise ValueError(f"{who}: input shape changed while the delay buffer holds spikes; call reset()")
            buf[:self.dmax] += pending
        wraps = 0
        if self.rule == "on_arrival":
            for k, r in sums:
                buf[k:k + t] += r
        else:
            c = [(k, arith.shift(r, self.shift, "floor")) for k, r in sums]
            reach = (bound << self.shift if self.shift >= 0 else -(-bound >> -self.shift)) + len(c)
            held = 0 if pending is None or pending.numel() == 0 else int(pending.abs().max())
            if held + reach <= min(self.width.hi, -self.width.lo):
                for k, ck in c:  # no add can leave the width: all at once
                    buf[k:k + t] += ck
            else:  # Lava's order: at each source step one add into every slot, counting each wrap
                for step in range(t):
                    for k, ck in c:
                        buf[step + k], n = arith.overflow(buf[step + k] + ck[step], self.width, self.mode)
                        wraps += n
        return buf[:t], buf[t:].clone(), wraps
