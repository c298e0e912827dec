r"""Pure step functions of the stateful layers (state in, state out; SpikingJelly 2.0 signatures)."""

from __future__ import annotations

from typing import Sequence, Union

import torch

from .misc import check_delay_steps

__all__ = ["synapse_filter_step", "delay_step", "delay_multi_step"]


def synapse_filter_step(
    x: torch.Tensor, out_i: torch.Tensor, reciprocal_tau: Union[float, torch.Tensor]
) -> torch.Tensor:
    r"""Synapse filter :math:`I \leftarrow I - (1 - S)\,I/\tau + S` with input spikes :math:`S`.

    :param x: this step's input :math:`S`
    :param out_i: the current :math:`I` before the step (a tensor shaped like ``x``)
    :param reciprocal_tau: :math:`1/\tau` (a number, or a tensor such as ``sigmoid(w)``)
    :return: the current after the step
    """
    return out_i - (1.0 - x) * out_i * reciprocal_tau + x


def delay_step(
    x: torch.Tensor, queue: Sequence[torch.Tensor], delay_steps: int
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    r"""One step of a delay line :math:`y[t] = x[t - d]` (zeros for :math:`t < d`).

    ``queue`` holds the last inputs, oldest first (at most ``d`` of them; empty at the start).
    ``x`` joins the back; when the queue then holds more than ``d`` inputs the oldest leaves as
    ``y``, else ``y`` is zeros. Returns ``(y, queue_next)``; ``queue`` itself is not modified.

    :param x: this step's input
    :param queue: the queue before the step (a tuple or list of tensors shaped like ``x``)
    :param delay_steps: :math:`d`, an int >= 0 (``TypeError``/``ValueError`` otherwise)
    """
    d = check_delay_steps(delay_steps, "delay_step")
    stream = (*queue, x)
    if len(stream) > d:
        return stream[0], stream[1:]
    return torch.zeros_like(x), stream


def delay_multi_step(
    x_seq: torch.Tensor, queue: Sequence[torch.Tensor], delay_steps: int
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    r""":func:`delay_step` over a sequence ``x_seq`` (``[T, ...]``) in one concatenation.

    Equals looping :func:`delay_step` over ``t = 0 .. T-1`` (values, gradients and the queue
    after the last step): with :math:`q` the queue, the stream ``zeros(d - |q|), q, x_seq`` is cut
    into the first ``T`` entries (``y_seq``) and the last :math:`\min(d, |q| + T)` inputs (the
    queue that stays).
    """
    d = check_delay_steps(delay_steps, "delay_multi_step")
    T = x_seq.shape[0]
    queue = tuple(queue)
    if d == 0:
        return x_seq, ()
    if len(queue) > d:
        raise ValueError(f"delay_multi_step: the queue holds {len(queue)} inputs, more than delay_steps = {d}")
    step_shape = tuple(x_seq.shape[1:])
    bad = [tuple(q.shape) for q in queue if tuple(q.shape) != step_shape]
    if bad:
        raise ValueError(
            f"delay_multi_step: queue entries must have the step shape {step_shape} of x_seq [T, ...]; got {bad[0]}"
        )
    parts = [x_seq]
    if queue:
        parts.insert(0, torch.stack(queue).to(x_seq.dtype))
    missing = d - len(queue)
    if missing:
        parts.insert(0, x_seq.new_zeros((missing, *x_seq.shape[1:])))
    stream = torch.cat(parts)
    kept = min(d, len(queue) + T)
    # clone: the kept inputs must not hold the whole stream's storage alive between calls
    return stream[:T], tuple(stream[stream.shape[0] - kept :].clone().unbind(0))
