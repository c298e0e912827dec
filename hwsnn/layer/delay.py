r"""``Delay``: a delay line, :math:`y[t] = x[t - d]` (zeros for :math:`t < d`)."""

from __future__ import annotations

from typing import Optional

import torch

from ..base import MemoryModule, require_time_axis
from ..functional.layer import delay_multi_step, delay_step
from ..functional.misc import check_delay_steps

__all__ = ["Delay"]


class Delay(MemoryModule):
    r"""Delay line: :math:`y[t] = x[t - d]`, with :math:`y[t] = 0` for :math:`t < d`.

    The last inputs (at most :math:`d`, oldest first) are kept in the memory ``queue``, a list of
    tensors shaped like one step (SpikingJelly 2.0's memory: empty after :meth:`reset`, filled by
    :func:`hwsnn.functional.delay_step`). The queue carries over between calls in **both** step
    modes, so a sequence fed in chunks (``'m'``) or step by step (``'s'``) gives the same stream
    as feeding it whole. A step of another shape than the queued ones restarts from an empty
    queue (zeros); queued steps follow the input's dtype and device. ``d = 0`` is the identity.
    ``fifo`` (hwsnn's earlier memory) is kept as a read-only view: the queue as one tensor
    ``[d, *step_shape]``, zero-padded in front while it fills, ``None`` when empty.

    :param delay_steps: :math:`d`, an int >= 0
    :param step_mode: ``'s'`` (input ``[N, ...]``) or ``'m'`` (input ``[T, N, ...]``)
    """

    def __init__(self, delay_steps: int, step_mode: str = "s") -> None:
        super().__init__()
        self._delay_steps = check_delay_steps(delay_steps, "Delay")
        self.step_mode = step_mode
        self.register_memory("queue", [])

    @property
    def delay_steps(self) -> int:
        """The delay :math:`d` in steps (read-only)."""
        return self._delay_steps

    @property
    def fifo(self) -> Optional[torch.Tensor]:
        """The queue as one tensor ``[d, *step_shape]`` (zeros in front while it fills); ``None`` when empty."""
        queue = list(self.queue)
        if not queue:
            return None
        fifo = torch.stack(queue)
        missing = self._delay_steps - len(queue)
        if missing > 0:
            fifo = torch.cat((fifo.new_zeros((missing, *fifo.shape[1:])), fifo))
        return fifo

    def _queue_for(self, x: torch.Tensor) -> list[torch.Tensor]:
        queue = self.queue
        if not isinstance(queue, (list, tuple)):
            raise TypeError(f"Delay: the memory 'queue' must be a list of tensors; got {type(queue).__name__}")
        if len(queue) > self._delay_steps:
            raise ValueError(
                f"Delay: the memory 'queue' holds {len(queue)} inputs, more than delay_steps = {self._delay_steps}"
            )
        if any(not isinstance(q, torch.Tensor) or q.shape != x.shape for q in queue):
            return []  # a new step shape: start again from zeros
        return [q.to(device=x.device, dtype=x.dtype) for q in queue]

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"Delay expects a tensor; got {type(x).__name__}")
        y, queue = delay_step(x, self._queue_for(x), self._delay_steps)
        self.queue = list(queue)
        return y

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, "Delay")
        y_seq, queue = delay_multi_step(x_seq, self._queue_for(x_seq[0]), self._delay_steps)
        self.queue = list(queue)
        return y_seq

    def extra_repr(self) -> str:
        return f"delay_steps={self._delay_steps}, step_mode={self.step_mode}"
