r"""The :class:`Target` dataclass: what a chip computes, as plain frozen dataclasses.

One YAML file per chip (``targets/<name>.yaml``) fills one :class:`Target`. Every field has a
type and, where it matters, the allowed values or range in its ``metadata``; the loader
(:mod:`targets.loader`) validates a file against exactly these declarations, so this module is
the schema.

Integer conventions shared by the twins (``hwsnn.fixed``) and the simulator (``sim``):

* a fixed-point value is an integer :math:`q` with a power-of-two exponent :math:`e`, real value
  :math:`q\,2^{e}`;
* a state of :class:`Width` ``bits``/``signed`` lives in :math:`[-2^{b-1}, 2^{b-1}-1]` (signed)
  or :math:`[0, 2^b-1]` (unsigned) and is brought back into range by its :data:`OVERFLOW` mode;
* shift decay with time constant :math:`\tau = 2^k` is :math:`x \leftarrow x - D(x, k)`, with
  :math:`D` given by the :data:`ROUNDING` rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

__all__ = [
    "ROUNDING",
    "OVERFLOW",
    "COMPARE",
    "RESET",
    "LAYOUTS",
    "CYCLE_MODELS",
    "Width",
    "Widths",
    "Decay",
    "Overflow",
    "Neuron",
    "Synapse",
    "Spikes",
    "Limits",
    "Figure",
    "Costs",
    "Target",
]

#: Shift decay rules :math:`D(x, k)` (``x - D`` is the decayed value):
#: ``floor``: :math:`x \gg k` (arithmetic, toward :math:`-\infty`);
#: ``toward_zero``: :math:`\mathrm{sign}(x)\,(|x| \gg k)`;
#: ``xylo_min1``: :math:`x \gg k`, but 1 when that is 0 and :math:`x > 0` (Xylo's minimum decrement).
ROUNDING = ("floor", "toward_zero", "xylo_min1")
#: Overflow modes: ``saturate`` (clip to the width's range, counted), ``wrap`` (two's complement),
#: ``fold_once`` (Loihi's current: one conditional :math:`\pm 2^{b}` into :math:`(-2^{b-1}, 2^{b-1}]`).
OVERFLOW = ("saturate", "wrap", "fold_once")
#: Threshold comparison of the membrane with the threshold.
COMPARE = (">", ">=")
#: Reset after a spike: ``zero`` (to the reset value), ``subtract`` (the threshold).
RESET = ("zero", "subtract")
#: How a network maps onto the chip (:attr:`Limits.layout`).
LAYOUTS = ("layers", "xylo_core")
#: Cycle models (:attr:`Costs.cycle_model`): the per-core counters, or SynSense's models of Xylo
#: (``syns61201``: XyloAudio 2; ``syns63300``: XyloIMU, also XyloAudio 3's in Rockpool).
CYCLE_MODELS = ("per_core", "syns61201", "syns63300")


def _choices(*values: str, doc: str = "") -> dict:
    return {"choices": tuple(values), "doc": doc}


def _range(lo: Optional[float] = None, hi: Optional[float] = None, doc: str = "") -> dict:
    return {"min": lo, "max": hi, "doc": doc}


@dataclass(frozen=True)
class Width:
    """Bit width and signedness of one kind of integer."""

    bits: int = field(metadata=_range(1, 64, "number of bits"))
    signed: bool = field(default=True, metadata={"doc": "two's complement when true"})
    symmetric: bool = field(default=False, metadata={"doc": "signed range [-(2^(b-1)-1), 2^(b-1)-1] (Loihi's v)"})

    @property
    def lo(self) -> int:
        """Smallest allowed value (``-hi`` when ``symmetric``)."""
        if not self.signed:
            return 0
        return -((1 << (self.bits - 1)) - 1) if self.symmetric else -(1 << (self.bits - 1))

    @property
    def hi(self) -> int:
        """Largest representable value."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def fits(self, value: int) -> bool:
        return self.lo <= value <= self.hi

    def __str__(self) -> str:
        return f"{'int' if self.signed else 'uint'}{self.bits} [{self.lo}, {self.hi}]"


@dataclass(frozen=True)
class Widths:
    """Bit widths of every integer the chip stores."""

    weight: Width = field(metadata={"doc": "synaptic weights (before any weight shift)"})
    bias: Width = field(metadata={"doc": "neuron bias (mantissa where the chip has a bias exponent)"})
    current: Width = field(metadata={"doc": "synaptic current (CUBA neurons, synapse filter)"})
    membrane: Width = field(metadata={"doc": "membrane potential"})
    threshold: Width = field(metadata={"doc": "firing threshold (mantissa where shifted, see neuron.threshold_shift)"})
    trace: Width = field(metadata={"doc": "eligibility / presynaptic traces"})
    accumulator: Width = field(metadata={"doc": "dense/conv sum of one step before it reaches a state"})


@dataclass(frozen=True)
class Decay:
    r"""How states leak."""

    mechanism: str = field(metadata=_choices("shift", "mul12", doc="x -= D(x, k) with tau = 2^k, or Loihi's 12-bit factors"))
    rounding: str = field(metadata=_choices(*ROUNDING, doc="rule of D(x, k), or of the >> 12 after a mul12 product"))
    max_shift: int = field(metadata=_range(0, 62, "largest decay shift k (tau = 2^k)"))
    current_order: str = field(
        default="decay_then_add",
        metadata=_choices(
            "decay_then_add",
            "add_then_decay",
            doc="CUBA current: i = decay(i) + x (Loihi), or i = decay(i + x) (Xylo: the input decays in its own step)",
        ),
    )


@dataclass(frozen=True)
class Overflow:
    """Overflow mode per state (see :data:`OVERFLOW`)."""

    current: str = field(metadata=_choices(*OVERFLOW))
    membrane: str = field(metadata=_choices(*OVERFLOW))
    trace: str = field(metadata=_choices(*OVERFLOW))
    accumulator: str = field(metadata=_choices(*OVERFLOW))


@dataclass(frozen=True)
class Neuron:
    """Neuron update rules."""

    compare: str = field(metadata=_choices(*COMPARE, doc="spike when v > th or v >= th"))
    reset: tuple = field(metadata={"choices": RESET, "doc": "reset kinds the chip has (list, first = default)"})
    max_spikes_per_step: int = field(metadata=_range(1, 1 << 16, "spikes one neuron may emit per step (subtractive loop)"))
    readout_max_spikes_per_step: int = field(metadata=_range(1, 1 << 16, "the same for readout (output) neurons"))
    membrane_update: str = field(
        metadata=_choices(
            "direct",
            "saturated_delta",
            doc="v = ovf(decay(v) + i + b), or Xylo: dv = sat(sat(-D(v) + i) + b), v = sat(v + dv)",
        )
    )
    threshold_positive: bool = field(metadata={"doc": "reject thresholds <= 0 (Xylo)"})
    threshold_shift: int = field(metadata=_range(0, 32, "effective threshold = mantissa << shift (Loihi: 6)"))
    input_shift: int = field(metadata=_range(0, 32, "synaptic input enters the current as x << shift (Loihi: 6)"))
    bias_exponent: bool = field(metadata={"doc": "bias = mant << exp (floor >> for exp < 0) with a per-neuron exponent (Loihi)"})
    bias_exponent_min: int = field(default=0, metadata=_range(-64, 64, "smallest bias exponent"))
    bias_exponent_max: int = field(default=0, metadata=_range(-64, 64, "largest bias exponent"))
    mul12_min: int = field(default=0, metadata=_range(-1, 4096, "smallest du/dv of a mul12 decay (Loihi du: -1)"))
    mul12_max: int = field(default=4096, metadata=_range(0, 4096, "largest du/dv of a mul12 decay"))
    input_wrap_bits: Optional[int] = field(
        default=None,
        metadata=_range(2, 63, "the synaptic input, x << input_shift and its add into the current are two's "
                        "complement at this width before the current's overflow (Lava: int32); null: exact"),
    )


@dataclass(frozen=True)
class Synapse:
    """Synaptic accumulation, weight shifts, latency and delays."""

    accumulation: str = field(
        metadata=_choices(
            "sum",
            "per_event_saturate",
            doc="integer sum then overflow, or Xylo: saturate the current after every single event, in source order",
        )
    )
    weight_step: int = field(metadata=_range(1, 1 << 16, "weights must be multiples of this (Loihi MIXED: 2)"))
    weight_shift: str = field(
        metadata=_choices(
            "on_sum",
            "per_synapse",
            doc="exponent applied to the summed input (floor >> when negative), or per synapse as wrap(w << s) (Xylo)",
        )
    )
    weight_shift_min: int = field(metadata=_range(-64, 64, "smallest weight shift"))
    weight_shift_max: int = field(metadata=_range(-64, 64, "largest weight shift"))
    latency: int = field(metadata=_range(0, 16, "steps from a presynaptic spike to the neuron, every projection"))
    first_latency: int = field(metadata=_range(0, 16, "the same for the input projection (Xylo: 0, recurrent/readout 1)"))
    max_delay: int = field(metadata=_range(0, 1 << 16, "deepest delay FIFO (steps)"))
    per_synapse_delay: bool = field(metadata={"doc": "one delay per synapse (Loihi 2 DelayDense)"})
    max_input_events: Optional[int] = field(default=None, metadata=_range(1, 1 << 16, "events per input channel per step (Xylo: 15)"))
    sum_overflow: str = field(
        default="raw_and_shifted",
        metadata=_choices(
            "raw_and_shifted",
            "shifted",
            doc="the accumulator overflow applies to the raw sum and again after shift and bias, or only after "
                "(Lava: the exact sum is shifted, then held in int32)",
        ),
    )
    delay_shift: str = field(
        default="on_arrival",
        metadata=_choices(
            "on_arrival",
            "per_slot",
            doc="per-synapse delays: the weight shift applies to everything arriving in a step, or to each source "
                "step's sum per delay slot before it accumulates (Lava's DelayDense)",
        ),
    )
    sign_modes: bool = field(
        default=False,
        metadata={"doc": "weights carry Lava's sign mode, chosen from the matrix: all >= 0 excitatory [0, 255], "
                         "all <= 0 inhibitory [-255, 0], else mixed (the weight width and step)"},
    )


@dataclass(frozen=True)
class Spikes:
    """What a spike carries."""

    kind: str = field(metadata=_choices("binary", "graded", doc="0/1 events, or events with an integer payload"))
    bits: int = field(metadata=_range(1, 32, "payload bits (1 for binary)"))


@dataclass(frozen=True)
class Limits:
    """Sizes and connectivity limits (``None``: not limited / not stated)."""

    max_fan_in: Optional[int] = field(default=None, metadata=_range(1, None, "nonzero synapses into one neuron"))
    max_fan_out: Optional[int] = field(default=None, metadata=_range(
        1, None, "nonzero synapses out of one neuron (xylo_core: hidden -> hidden targets of one hidden neuron)"))
    cores: Optional[int] = field(default=None, metadata=_range(1, None, "neuro cores"))
    neurons_per_core: Optional[int] = field(default=None, metadata=_range(1, None, "neurons (compartments) per core"))
    synapses_per_core: Optional[int] = field(default=None, metadata=_range(1, None, "synapse words per core"))
    input_channels: Optional[int] = field(default=None, metadata=_range(1, None, "input channels of the chip"))
    hidden_neurons: Optional[int] = field(default=None, metadata=_range(1, None, "hidden neurons of the chip"))
    readout_neurons: Optional[int] = field(default=None, metadata=_range(1, None, "readout neurons of the chip"))
    layout: str = field(default="layers", metadata=_choices(
        *LAYOUTS, doc="layers: each neuron layer on cores of its own (sim/mapping.py); xylo_core: the whole network is "
                      "one Xylo core (one hidden population, w_in / w_rec / w_out, one weight shift per matrix)"))
    hidden_synapses: int = field(default=1, metadata=_range(1, 2, "synaptic currents per hidden neuron (xylo_core: 2 with synapse 2)"))
    input_expansion: Optional[int] = field(default=None, metadata=_range(
        1, None, "xylo_core: the input projection reaches the first this many hidden neurons (null: all)"))
    output_expansion: Optional[int] = field(default=None, metadata=_range(
        1, None, "xylo_core: the readout reads the last this many hidden neurons (null: all)"))
    readout_neurons_warn: Optional[int] = field(default=None, metadata=_range(
        1, None, "more readout neurons than this are allowed but warned about (XyloAudio 3: 16)"))
    aliases: bool = field(default=False, metadata={"doc": "xylo_core: a hidden neuron may copy its spikes to one alias target"})
    recurrent_synapses: Optional[int] = field(default=None, metadata=_range(
        1, None, "xylo_core: hidden -> hidden synapses the chip stores in all (its fan-out memory; null: not stated)"))


@dataclass(frozen=True)
class Figure:
    """A number with its source (a citation, or ``unverified``)."""

    value: float = field(metadata=_range(0, None, "non-negative"))
    source: str = field(metadata={"doc": "where the figure comes from, or 'unverified'"})

    @property
    def verified(self) -> bool:
        return self.source.strip().lower() != "unverified"


@dataclass(frozen=True)
class Costs:
    """Clock, cycles and energy (used by the simulator's cost model)."""

    clock_hz: Figure = field(metadata={"doc": "core clock (Hz)"})
    cycles_per_synaptic_event: Figure = field(metadata={"doc": "clock cycles per synaptic event"})
    cycles_per_neuron_update: Figure = field(metadata={"doc": "clock cycles per neuron update"})
    energy_per_synaptic_event: Figure = field(metadata={"doc": "joules per synaptic event"})
    energy_per_neuron_update: Figure = field(metadata={"doc": "joules per neuron update"})
    cycle_model: str = field(default="per_core", metadata=_choices(
        *CYCLE_MODELS, doc="per_core: c_syn * events + c_upd * updates per core; syns61201 / syns63300: SynSense's "
                           "cycle model of the Xylo core (Rockpool's power_cycles_model), sim/xylo_cycles.py"))


@dataclass(frozen=True)
class Target:
    """A chip: integer semantics, limits and costs. Build with :func:`targets.load`."""

    name: str = field(metadata={"doc": "target name"})
    description: str = field(metadata={"doc": "one line"})
    semantics_source: str = field(metadata={"doc": "the reference whose integers this target reproduces"})
    widths: Widths
    decay: Decay
    overflow: Overflow
    neuron: Neuron
    synapse: Synapse
    spikes: Spikes
    limits: Limits
    costs: Costs

    @property
    def default_reset(self) -> str:
        return self.neuron.reset[0]
