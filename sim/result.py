"""What :func:`sim.run` returns: outputs, recorded traces, per-step counters, costs and the fit check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

__all__ = ["SimResult", "LayerCounters"]


@dataclass
class LayerCounters:
    """Per-step counts of one layer, summed over the batch.

    ``synaptic_events``, ``neuron_updates``, ``words_read``: ``[T, n_blocks]`` (``cores[b]`` is the
    core of block ``b``, ``None`` for routing layers); ``saturations``: ``[T]``; ``saturations_by_state``:
    totals per state name (the twins' names: ``v``, ``i``, ``dv``, ``out_i``, ``accumulator``)."""

    layer: str
    op: str
    cores: list[Optional[int]]
    synaptic_events: np.ndarray
    neuron_updates: np.ndarray
    words_read: np.ndarray
    saturations: np.ndarray
    saturations_by_state: dict[str, int] = field(default_factory=dict)
    #: further per-step counters of the op (``[T, 1]``), e.g. the Xylo core's ``input_active``,
    #: ``hidden_active``, ``output_active`` read by its cycle model (:mod:`sim.xylo_cycles`)
    activity: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class SimResult:
    """The result of :func:`sim.run` on inputs ``[T, N, ...]``.

    :ivar output: the last layer's output ``[T, N, ...]`` (``None`` with ``record='none'``)
    :ivar output_sum: the last layer's output summed over time ``[N, ...]`` (always kept)
    :ivar traces: ``{layer: {"output": [T, N, ...], state: [T, N, ...]}}`` for recorded layers
    :ivar counters: ``{layer: LayerCounters}`` in layer order
    :ivar costs: cycles, latency, real-time factor and energy (see :func:`sim.costs.estimate`)
    :ivar fit: the fit check of the export against the target's limits (:func:`sim.fit.fit_check`)
    """

    export_path: str
    target: str
    steps: int
    batch: int
    layers: list[str]
    exponents: dict[str, Optional[int]]
    output: Optional[np.ndarray]
    output_sum: np.ndarray
    traces: dict[str, dict[str, np.ndarray]]
    counters: dict[str, LayerCounters]
    costs: dict
    fit: dict
    wall_seconds: float = 0.0

    @property
    def saturations(self) -> dict[str, dict[str, int]]:
        """Saturation totals per layer and state."""
        return {k: dict(c.saturations_by_state) for k, c in self.counters.items()}

    def predictions(self) -> np.ndarray:
        """Class per sample: argmax of the time-summed output over its last axis (ties: lowest index)."""
        s = self.output_sum.reshape(self.output_sum.shape[0], -1)
        return np.argmax(s, axis=1)
