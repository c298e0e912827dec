"""Step modes and stateful modules (the SpikingJelly ``activation_based.base`` API).

A *step module* runs either one time step at a time (``step_mode='s'``, input ``[N, ...]``) or a
whole sequence at once (``step_mode='m'``, input ``[T, N, ...]``, time is dim 0).

A *memory module* additionally carries state between calls (membrane potential, FIFO contents,
dropout masks, ...). Memories are declared with :meth:`MemoryModule.register_memory`; they

* are read and written like attributes (``self.v``),
* go back to their declared initial value on :meth:`MemoryModule.reset`,
* are cut from the autograd graph by :meth:`MemoryModule.detach`,
* follow ``.to()``, ``.cuda()``, ``.double()`` like buffers do,
* are **not** part of ``state_dict`` (a trained model loads into a fresh one unchanged).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Iterator, Optional

import torch
import torch.nn as nn

__all__ = [
    "StepModule",
    "SingleStepModule",
    "MultiStepModule",
    "MemoryModule",
    "SUPPORTED_STEP_MODES",
    "check_step_mode",
    "require_time_axis",
]

#: the float -> twin converter, installed by :mod:`hwsnn.fixed` (float layers never import their twins)
_TWIN_CONVERTER: Optional[Callable[..., nn.Module]] = None


def set_twin_converter(convert: Callable[..., nn.Module]) -> None:
    """Install ``convert(layer, target, **options)`` as :meth:`StepModule.to_fixed` (called once by
    :mod:`hwsnn.fixed` when it is imported)."""
    global _TWIN_CONVERTER
    _TWIN_CONVERTER = convert


SUPPORTED_STEP_MODES: tuple[str, ...] = ("s", "m")


def check_step_mode(
    step_mode: object, allowed: tuple[str, ...] = SUPPORTED_STEP_MODES, who: str = ""
) -> str:
    """Return ``step_mode`` if it is one of ``allowed``, else raise ``ValueError`` naming them."""
    if not isinstance(step_mode, str) or step_mode not in allowed:
        prefix = f"{who}: " if who else ""
        raise ValueError(
            f"{prefix}step_mode must be one of {', '.join(repr(a) for a in allowed)} "
            f"('s' = single step [N, ...], 'm' = multi step [T, N, ...]); got {step_mode!r}"
        )
    return step_mode


class StepModule:
    """Mixin giving a module a validated ``step_mode`` attribute.

    Subclasses narrow :meth:`supported_step_mode` (SpikingJelly's name) when they only make
    sense in one mode. hwsnn's earlier name :meth:`supported_step_modes` is kept as an alias: a
    subclass may override either one, and both then answer the same.
    """

    def supported_step_mode(self) -> tuple[str, ...]:
        """The step modes this module accepts (``('s', 'm')`` unless a subclass narrows it)."""
        if type(self).supported_step_modes is not StepModule.supported_step_modes:
            return self.supported_step_modes()  # a subclass overrides hwsnn's earlier name
        return SUPPORTED_STEP_MODES

    def supported_step_modes(self) -> tuple[str, ...]:
        """Alias of :meth:`supported_step_mode` (hwsnn's earlier name)."""
        if type(self).supported_step_mode is not StepModule.supported_step_mode:
            return self.supported_step_mode()
        return SUPPORTED_STEP_MODES

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, value: str) -> None:
        self._step_mode = check_step_mode(value, tuple(self.supported_step_mode()), type(self).__name__)

    def to_fixed(self, target: Any, **options: Any) -> nn.Module:
        """The integer twin of this layer on ``target`` (see :func:`hwsnn.fixed.to_fixed`, which
        installs itself here when :mod:`hwsnn.fixed` is imported; ``import hwsnn`` does that)."""
        if _TWIN_CONVERTER is None:
            raise RuntimeError("no integer twins are loaded: import hwsnn.fixed (import hwsnn does it)")
        return _TWIN_CONVERTER(self, target, **options)


class SingleStepModule(StepModule):
    """A step module that only runs one step per call (``supported_step_mode() == ('s',)``)."""

    def supported_step_mode(self) -> tuple[str, ...]:
        return ("s",)


class MultiStepModule(StepModule):
    """A step module that only takes whole sequences ``[T, N, ...]`` (``supported_step_mode() == ('m',)``)."""

    def supported_step_mode(self) -> tuple[str, ...]:
        return ("m",)


def _map_tensors(value: Any, fn: Any) -> Any:
    """``fn`` applied to a tensor, or to each tensor of a list/tuple (other values unchanged)."""
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in value):
        return type(value)(fn(v) if isinstance(v, torch.Tensor) else v for v in value)
    return value


class MemoryModule(nn.Module, StepModule):
    """Base of every stateful layer.

    ``forward`` dispatches on ``step_mode``: ``'s'`` calls :meth:`single_step_forward`, ``'m'``
    calls :meth:`multi_step_forward`, whose default loops the single step over dim 0:
    ``y[t] = single_step_forward(x[t])`` for ``t = 0 .. T-1``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._memories: dict[str, Any] = {}
        self._memories_rv: dict[str, Any] = {}
        self.step_mode = "s"

    # -- memories -------------------------------------------------------------------------
    def register_memory(self, name: str, value: Any) -> None:
        """Declare a state variable ``name`` whose reset value is ``value`` (deep-copied)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"memory name must be a Python identifier; got {name!r}")
        if name in self._memories:
            raise ValueError(f"memory {name!r} is already registered in {type(self).__name__}")
        if hasattr(self, name) and name not in self._memories:
            raise ValueError(
                f"cannot register memory {name!r}: {type(self).__name__} already has an attribute of that name"
            )
        self._memories[name] = value
        self._memories_rv[name] = copy.deepcopy(value)

    def reset(self) -> None:
        """Put every memory back to its registered initial value."""
        for name, value in self._memories_rv.items():
            self._memories[name] = copy.deepcopy(value)

    def detach(self) -> None:
        """Cut every tensor memory (and every tensor in a list/tuple memory) from the autograd graph."""
        for name, value in self._memories.items():
            self._memories[name] = _map_tensors(value, torch.Tensor.detach)

    def memories(self) -> Iterator[Any]:
        yield from self._memories.values()

    def named_memories(self) -> Iterator[tuple[str, Any]]:
        yield from self._memories.items()

    def __getattr__(self, name: str) -> Any:
        memories = self.__dict__.get("_memories")
        if memories is not None and name in memories:
            return memories[name]
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        memories = self.__dict__.get("_memories")
        if memories is not None and name in memories:
            memories[name] = value
        else:
            super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        memories = self.__dict__.get("_memories")
        if memories is not None and name in memories:
            del memories[name]
            del self._memories_rv[name]
        else:
            super().__delattr__(name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._memories))

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        # Tensor memories follow .to()/.cuda()/.double() like buffers do.
        for store in (self._memories, self._memories_rv):
            for name, value in store.items():
                store[name] = _map_tensors(value, fn)
        return super()._apply(fn, recurse)

    # -- stepping -------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def multi_step_forward(self, x_seq: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        require_time_axis(x_seq, type(self).__name__)
        y_seq = [self.single_step_forward(x_seq[t], *args, **kwargs) for t in range(x_seq.shape[0])]
        return torch.stack(y_seq)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self.step_mode == "s":
            return self.single_step_forward(*args, **kwargs)
        return self.multi_step_forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode}"


def require_time_axis(x_seq: object, who: str, min_dim: int = 1) -> None:
    """Raise a clear error when a multi-step input is not a tensor ``[T, ...]`` with ``T >= 1``."""
    if not isinstance(x_seq, torch.Tensor):
        raise TypeError(f"{who} in multi-step mode expects a tensor [T, N, ...]; got {type(x_seq).__name__}")
    if x_seq.dim() < min_dim or x_seq.shape[0] == 0:
        raise ValueError(
            f"{who} in multi-step mode expects a time axis first ([T, N, ...] with T >= 1, at least "
            f"{min_dim} dims); got shape {tuple(x_seq.shape)}"
        )
