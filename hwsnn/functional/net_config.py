"""Network-wide state and step-mode control: :func:`reset_net`, :func:`set_step_mode`, :func:`detach_net`."""

from __future__ import annotations

import torch.nn as nn

from ..base import MemoryModule, StepModule, check_step_mode

__all__ = ["reset_net", "set_step_mode", "detach_net"]


def reset_net(net: nn.Module) -> None:
    """Call ``reset()`` on every module of ``net`` that has one.

    The module tree is walked on every call (nothing cached), so modules added or replaced after
    a first call are reset too.
    """
    for m in net.modules():
        reset = getattr(m, "reset", None)
        if callable(reset):
            reset()


def set_step_mode(net: nn.Module, step_mode: str) -> None:
    """Set ``step_mode`` on every :class:`~hwsnn.base.StepModule` in ``net``.

    Containers that fix their children's mode (``MultiStepContainer``, ``SeqToANNContainer``,
    ``StepModeContainer``) are not descended into; a ``StepModeContainer`` itself takes the new
    mode, the two sequence containers always stay multi-step.
    """
    check_step_mode(step_mode, who="set_step_mode")
    stack = [net]
    while stack:
        m = stack.pop()
        if isinstance(m, StepModule) and step_mode in m.supported_step_modes():
            m.step_mode = step_mode
        if not getattr(m, "fixes_child_step_mode", False):
            stack.extend(m.children())


def detach_net(net: nn.Module) -> None:
    """Detach every memory of every :class:`~hwsnn.base.MemoryModule` in ``net`` (truncated BPTT)."""
    for m in net.modules():
        if isinstance(m, MemoryModule):
            m.detach()
