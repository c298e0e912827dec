"""Network-wide state and step-mode control: :func:`reset_net`, :func:`set_step_mode`, :func:`detach_net`,
and SpikingJelly 2.0's reset-cache helpers (:func:`invalidate_reset_cache` and friends; hwsnn keeps
no cache)."""

from __future__ import annotations

from typing import Iterable

import torch.nn as nn

from ..base import MemoryModule, StepModule, check_step_mode

__all__ = [
    "reset_net",
    "set_step_mode",
    "detach_net",
    "invalidate_reset_cache",
    "collect_reset_modules",
    "reset_collected_modules",
]


def _require_module(net: object, who: str) -> None:
    if not isinstance(net, nn.Module):
        raise TypeError(f"{who}: net must be a torch.nn.Module; got {type(net).__name__}")


def reset_net(net: nn.Module) -> None:
    """Call ``reset()`` on every module of ``net`` that has one.

    The module tree is walked on every call (nothing cached), so modules added or replaced after
    a first call are reset too.
    """
    reset_collected_modules(collect_reset_modules(net))


def collect_reset_modules(net: nn.Module) -> tuple[nn.Module, ...]:
    """Every module of ``net`` (``net`` included, in ``net.modules()`` order) with a callable ``reset``."""
    _require_module(net, "collect_reset_modules")
    return tuple(m for m in net.modules() if callable(getattr(m, "reset", None)))


def reset_collected_modules(modules: Iterable[nn.Module]) -> None:
    """Call ``reset()`` on each of ``modules`` (as returned by :func:`collect_reset_modules`)."""
    for m in modules:
        reset = getattr(m, "reset", None)
        if not callable(reset):
            raise TypeError(f"reset_collected_modules: {type(m).__name__} has no reset() method")
        reset()


def invalidate_reset_cache(net: nn.Module) -> None:
    """No-op kept for SpikingJelly 2.0 code, which calls it after swapping modules of ``net``.

    SpikingJelly caches the modules :func:`reset_net` visits; hwsnn walks the tree on every call,
    so there is nothing to invalidate (``net`` is only checked to be a module).
    """
    _require_module(net, "invalidate_reset_cache")


def set_step_mode(net: nn.Module, step_mode: str) -> None:
    """Set ``step_mode`` on every :class:`~hwsnn.base.StepModule` in ``net`` that supports it.

    Containers that fix their children's mode (``MultiStepContainer``, ``SeqToANNContainer``,
    ``StepModeContainer``, ``RecurrentContainer``) are not descended into; a ``StepModeContainer``
    itself takes the new mode, the two sequence containers always stay multi-step (they support
    ``'m'`` only, as SpikingJelly's ``MultiStepModule`` does). Like SpikingJelly, a module that is
    not a ``StepModule`` but has a ``step_mode`` attribute gets it set too.
    """
    _require_module(net, "set_step_mode")
    check_step_mode(step_mode, who="set_step_mode")
    stack = [net]
    while stack:
        m = stack.pop()
        if isinstance(m, StepModule):
            if step_mode in m.supported_step_mode():
                m.step_mode = step_mode
        elif hasattr(m, "step_mode"):
            m.step_mode = step_mode
        if not getattr(m, "fixes_child_step_mode", False):
            stack.extend(m.children())


def detach_net(net: nn.Module) -> None:
    """Detach every memory of every :class:`~hwsnn.base.MemoryModule` in ``net`` (truncated BPTT)."""
    _require_module(net, "detach_net")
    for m in net.modules():
        if isinstance(m, MemoryModule):
            m.detach()
