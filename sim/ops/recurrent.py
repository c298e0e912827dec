r"""Recurrent neuron populations of the simulator: manifest op ``recurrent``.

Written from ``docs/EXPORT_FORMAT.md`` (the twin it must match bit for bit is
``hwsnn.fixed.recurrent.FixedRecurrent``; no code is shared with it). A population of :math:`M`
neurons (``params.neuron_op``: ``if``, ``lif`` or ``cuba``, with the neuron op's params and
``bias`` table) receives, at step :math:`t`, its input :math:`X_t` and its own spikes of step
:math:`t - L` (``params.latency`` :math:`L \ge 1`, zeros for the first :math:`L` steps after a
reset) through the recurrent matrix :math:`W` (table ``weight`` ``[M, M]``, row = target):

* ``sum`` targets: :math:`R_t = \mathrm{ovf}(\mathrm{shift}(\mathrm{ovf}(W Y_{t-L}), s))` with the
  accumulator width and mode (overflows counted under ``accumulator``; ``sum_overflow: shifted``,
  Loihi: only the outer one); the neuron's input of the step is the sum :math:`X_t + R_t` (its
  input rule wraps it where the target's input is fixed-width, Lava's int32 ``a_in``).
* ``per_event_saturate`` (Xylo): :math:`X_t` are :class:`~sim.ops.base.Events`; the neuron adds the
  input events, then :math:`\min(Y_{t-L,j}, \mathit{cap})` events of each source
  :math:`j = 0..M-1` in order with weights :math:`\mathrm{wrap}(W \ll s)`, saturating after every
  event (``cap`` = ``params.event_cap``; counts above it are an error unless
  ``params.clip_events``). Sources without events are skipped: they add nothing.

Counters: the neuron op's (updates, state words) plus, per step and block of target neurons, one
synaptic event and one word read per nonzero recurrent synapse reached, times the source's count.
"""

from __future__ import annotations

import numpy as np

from .. import arith as A
from .. import fast
from .base import Events, Op, build_op, register_op
from .synaptic import effective_weight
from .neuron import NeuronOp
from .signmode import lava_weights

__all__ = ["RecurrentOp"]


@register_op("recurrent")
class RecurrentOp(Op):
    """``recurrent`` (module docstring): a neuron op stepped with its own delayed spikes."""

    kind = "recurrent"

    def __init__(self, spec, target, batch: int) -> None:
        super().__init__(spec, target, batch)
        self.neuron: NeuronOp = build_op(spec.neuron, self.target, batch)
        self.state_names = self.neuron.state_names
        self.features, self.latency = spec.features, spec.latency
        self.per_event = spec.accumulation == "per_event_saturate"
        self.weight_shift, self.weight = spec.weight_shift, spec.weight
        if target.synapse.sign_modes:  # the table must be what Lava uses (sim.ops.signmode)
            used, mode = lava_weights(self.weight, target.widths.weight.bits, target.synapse.weight_step)
            if mode != spec.sign_mode or not np.array_equal(used, self.weight):
                raise self.error(f"params.sign_mode is {spec.sign_mode!r}; Lava picks {mode!r} for the recurrent weights "
                                 f"and changes {int(np.count_nonzero(used != self.weight))} of them")
        if self.per_event:
            self.event_cap, self.clip_events = spec.event_cap, spec.clip_events
        self._joined: tuple = (None, None)
        self.clipped: dict[str, int] = {}
        self.saturations = self.neuron.saturations  # one dict: the neuron op adds to it in place
        self.reset()

    def set_blocks(self, blocks: list[tuple[int, int]]) -> None:
        super().set_blocks(blocks)
        self.neuron.set_blocks(blocks)

    # -- tables derived once per loaded export ----------------------------------------------------
    @property
    def nnz_blocks(self) -> np.ndarray:
        """``[M, n_blocks]``: nonzero recurrent synapses from each source into each block."""
        nz = self.derived("nnz", lambda: (self.weight != 0).astype(np.int64))
        return self.derived(f"nnz_blocks{self.blocks}",
                            lambda: np.stack([nz[a:b].sum(axis=0) for a, b in self.blocks], axis=1))

    def reset(self) -> None:
        self.neuron.reset()
        # ring buffer: slot (step mod L) holds the spikes of step - L until step overwrites it
        self._history = np.zeros((self.latency, self.batch, self.features), np.int64)

    def states(self) -> dict[str, np.ndarray]:
        return self.neuron.states()

    # -- one step ----------------------------------------------------------------------------
    def _fed_back(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        """Spike counts of step t-L as recurrent events (capped on per-event targets)."""
        if not self.per_event:
            return y, 0
        bad = y > self.event_cap
        n = int(np.count_nonzero(bad))
        if n:
            if not self.clip_events:
                raise self.error(f"a neuron fed back {int(y[bad].flat[0])} spikes in one step; the event cap is "
                                 f"{self.event_cap} (params.event_cap; export with clip_events to clip)")
            self.clipped["input_events"] = self.clipped.get("input_events", 0) + n
            y = np.minimum(y, self.event_cap)
        return y, n

    def _joined_weight(self, w_in: np.ndarray) -> np.ndarray:
        """``[M, K + M]``: the input projection's effective weights, then the recurrent ones (cached)."""
        if self._joined[0] is not w_in:
            self._joined = (w_in, np.concatenate([w_in.astype(np.int64), effective_weight(self)], axis=1))
        return self._joined[1]

    def _input(self, xt, y_back: np.ndarray, w_joined):
        """The neuron's input of one step: the exact sum (``sum``) or the joined events (per event)."""
        if self.per_event:
            counts = np.concatenate([xt, y_back], axis=1)
            used = np.flatnonzero(counts.any(axis=0))  # sources without events add nothing
            return counts[:, used], w_joined[:, used]
        width, mode = self.target.widths.accumulator, self.target.overflow.accumulator
        w_t = self.derived("weight_t", lambda: A.MatmulWeight(self.weight.T))
        acc = A.exact_matmul(y_back, w_t, self.name)
        n1 = 0
        if self.target.synapse.sum_overflow == "raw_and_shifted":  # Loihi ('shifted'): the exact sum is shifted
            acc, n1 = A.overflow(acc, width, mode)
        r, n2 = A.overflow(A.shift(acc, self.weight_shift), width, mode)
        if n1 + n2:
            self.count_saturations("accumulator", n1 + n2)
            self.neuron._step_sat += n1 + n2
        return xt + r

    def _run(self, x, t0: int, record_states: bool):
        """Step the chunk: ``(spikes, recorded states, fed-back counts per step and source)``."""
        if self.per_event and not isinstance(x, Events):
            raise self.error(f"on target {self.target.name!r} (per-event accumulation) the input must be synaptic "
                             "events from a dense layer (the chip's input projection)")
        if not self.per_event and isinstance(x, Events):
            raise self.error("expects an integer array [Tc, N, M], not synaptic events")
        tc, xs = self.neuron._check_input(x)
        neuron = self.neuron
        neuron.jit = self.jit
        neuron.new_counters(tc)
        self.new_counters(tc)
        if self.per_event and fast.applicable(neuron, events=True):  # compiled per-event stepping (sim.fast)
            csc = self.derived("csc", lambda: fast.csc(effective_weight(self)))
            rec_part = dict(csc=csc, history=self._history, cap=self.event_cap, clip=self.clip_events)
            y, step_sat, fed, rec, n_clip = fast.step_population(neuron, xs[0], x.weight, rec_part, record_states, t0)
            if n_clip:
                self.clipped["input_events"] = self.clipped.get("input_events", 0) + n_clip
            self.counters["saturations"][:] = step_sat
            return y, rec, fed
        w_joined = self._joined_weight(x.weight) if self.per_event else None
        full = (self.batch, self.features)
        y = np.zeros((tc, *full), neuron.spike_dtype)
        rec = {s: np.zeros((tc, *full), np.int64) for s in self.state_names} if record_states else {}
        fed = np.zeros((tc, self.features), np.int64)
        for t in range(tc):
            neuron._step_sat = 0
            slot = (t0 + t) % self.latency
            y_back, n_clip = self._fed_back(self._history[slot])
            fed[t] = y_back.sum(axis=0)
            xt = xs[0][t] if self.per_event else xs[t]
            y[t] = neuron._step(self._input(xt, y_back, w_joined))
            self._history[slot] = y[t]
            self.counters["saturations"][t] = neuron._step_sat + n_clip
            for s in rec:
                rec[s][t] = getattr(neuron, s)
        return y, rec, fed

    def run(self, x, t0: int, record_states: bool = False):
        y, rec, fed = self._run(x, t0, record_states)
        events = fed @ self.nnz_blocks
        self.count_updates(self.neuron.words)
        self.counters["synaptic_events"] += events
        self.counters["words_read"] += events
        return y, rec
