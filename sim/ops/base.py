r"""The interface of a simulator op: one exported layer, stepped over chunks of time.

An op is built from its typed description (:class:`targets.bundle.OpSpec`: the parameters and
tables of one layer, validated by the export format) and the target, for a batch of ``batch``
samples. The engine (:mod:`sim.engine`) feeds it the network's activity in
chunks of ``Tc`` steps, ``x`` of shape ``[Tc, N, *input_shape]`` (or :class:`Events` from a
per-event dense layer), and the op returns ``[Tc, N, *output_shape]``. State carries from one
chunk to the next, so memory is O(state + chunk), never O(T). Each call also fills
:attr:`Op.counters` for the chunk: per-step counts per core block (see :meth:`Op.set_blocks`).

Counters (``np.int64`` arrays ``[Tc, n_blocks]``, summed over the batch):

* ``synaptic_events``: weight reads caused by input events (one per nonzero synapse reached,
  times the event count for multi-spike/count inputs);
* ``neuron_updates``: per-element state updates (neurons, synapse filters, delay FIFOs);
* ``words_read``: memory words read (weights per event, states per update);
* ``saturations``: values brought back into range (shape ``[Tc]``, the layer total per step).

and :attr:`Op.saturations` accumulates the totals per state name, as the twins do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

import targets as _targets
from targets import Target
from targets.bundle import OpSpec, from_dict

__all__ = ["Op", "Events", "OPS", "register_op", "build_op", "op_from_entry", "table"]

OPS: dict[str, type] = {}


def register_op(*kinds: str):
    """Class decorator: the op class implements manifest ops ``kinds``."""

    def deco(cls):
        for k in kinds:
            OPS[k] = cls
        return cls

    return deco


@dataclass
class Events:
    """A chunk of synaptic events for a per-event (Xylo) neuron: ``counts`` ``[Tc, N, in]`` and
    the effective weights ``weight`` ``[out, in]`` (int64, already shifted and wrapped)."""

    counts: np.ndarray
    weight: np.ndarray

    @property
    def shape(self) -> tuple:
        return (*self.counts.shape[:-1], self.weight.shape[0])


class Op:
    """Base class (see the module docstring). Subclasses set :attr:`output_shape` and implement
    :meth:`run` and, when stateful, :meth:`reset` and :meth:`states`."""

    kind: str = ""
    #: names of the integer states recorded by ``record=('states',)`` (e.g. ``('v',)``)
    state_names: tuple[str, ...] = ()
    #: ops with a compiled path (:mod:`sim.fast`) use it when this is True and numba is installed
    jit: bool = True

    def __init__(self, spec: OpSpec, target: Target, batch: int) -> None:
        if isinstance(target, str):
            target = _targets.load(target)
        spec.check(target)  # the format's rules for this chip (widths, ranges, caps)
        self.spec = spec
        self.name: str = spec.name
        self.params: dict = spec.params()
        self.tables: dict[str, np.ndarray] = spec.tables()
        self.target = target
        self.batch = int(batch)
        self.input_shape = tuple(spec.input_shape)
        self.output_shape = tuple(spec.output_shape)
        self.saturations: dict[str, int] = {}
        self.counters: dict[str, np.ndarray] = {}
        self.blocks: list[tuple[int, int]] = [(0, int(np.prod(self.output_shape, dtype=np.int64)))]

    # -- engine interface ---------------------------------------------------------------------
    def set_blocks(self, blocks: list[tuple[int, int]]) -> None:
        """Core blocks of this layer's *output* elements (flat C-order ranges per sample); counters
        are reported per block. Called by the engine after construction."""
        self.blocks = list(blocks)

    def reset(self) -> None:
        """Zero the state (start of a new run)."""

    def states(self) -> dict[str, np.ndarray]:
        """The current integer states by name (``[N, *shape]``), for recording."""
        return {}

    def run(self, x, t0: int, record_states: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Step the chunk ``x`` (first step has global index ``t0``); return ``(y, recorded)`` where
        ``recorded`` maps state names to ``[Tc, N, *shape]`` arrays when ``record_states``."""
        raise NotImplementedError

    # -- helpers ------------------------------------------------------------------------------
    #: derived tables kept across runs of one loaded export (set by the engine; else per op)
    cache: Optional[dict] = None

    def derived(self, key: str, make):
        """``make()`` computed once per loaded export (e.g. a sparse copy of a weight table)."""
        if self.cache is None:
            self.cache = {}
        if key not in self.cache:
            self.cache[key] = make()
        return self.cache[key]

    def count_saturations(self, name: str, n: int) -> None:
        self.saturations[name] = self.saturations.get(name, 0) + int(n)

    def new_counters(self, tc: int) -> None:
        """Zeroed counters for a chunk of ``tc`` steps."""
        nb = len(self.blocks)
        self.counters = {
            "synaptic_events": np.zeros((tc, nb), np.int64),
            "neuron_updates": np.zeros((tc, nb), np.int64),
            "words_read": np.zeros((tc, nb), np.int64),
            "saturations": np.zeros(tc, np.int64),
        }

    def count_updates(self, words: int) -> None:
        """Every element updates once per step: ``N * block size`` updates, ``words`` state words each."""
        sizes = np.array([b - a for a, b in self.blocks], np.int64) * self.batch
        self.counters["neuron_updates"][:] = sizes
        self.counters["words_read"][:] = sizes * words

    def block_sums(self, per_element: np.ndarray) -> np.ndarray:
        """``[Tc, n_blocks]`` sums of ``per_element`` ``[Tc, E]`` (E = flat output elements) over each block."""
        return np.stack([per_element[:, a:b].sum(axis=1) for a, b in self.blocks], axis=1)

    def error(self, msg: str) -> ValueError:
        return ValueError(f"{self.name} ({self.kind}): {msg}")


def table(op: Op, role: str, required: bool = True) -> Optional[np.ndarray]:
    """The table of ``role`` for ``op`` (read-only int64), or ``None`` if optional and absent."""
    arr = op.tables.get(role)
    if arr is None and required:  # pragma: no cover - the op description requires its tables
        raise op.error(f"the export has no {role!r} table for this layer")
    return arr


def op_from_entry(entry: dict, tables: dict[str, np.ndarray], target: Target, batch: int) -> Op:
    """The op of a manifest layer ``entry`` and its ``tables`` (by the names the entry gives them),
    validated as the export format says (:func:`targets.bundle.from_dict`)."""
    return build_op(from_dict(entry, tables), target, batch)


def build_op(spec: OpSpec, target: Target, batch: int) -> Op:
    """The simulator op of the op description ``spec`` for ``batch`` samples."""
    cls = OPS.get(spec.kind)
    if cls is None:
        raise ValueError(f"layer {spec.name!r}: op {spec.kind!r} is not known to this simulator; known: {sorted(OPS)}")
    return cls(spec, target, batch)
