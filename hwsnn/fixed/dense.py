r"""Integer twin of the dense (fully connected) layer: :class:`FixedLinear`.

Exponents. A real weight is :math:`w = W\,2^{e_w}`, a real input :math:`x = X\,2^{e_x}` (spikes:
:math:`e_x = 0`). The exact integer sum :math:`A = W X` has exponent :math:`e_w + e_x`. A weight
shift :math:`s` (``target.synapse.weight_shift_min .. weight_shift_max``) gives the output

.. math::
    Y = A \cdot 2^{s} \quad (\text{left shift for } s \ge 0,\ \text{floor right shift for } s < 0),
    \qquad e_{out} = e_w + e_x - s,

so a converter given ``output_exponent`` uses :math:`s = e_w + e_x - e_{out}` (default
:math:`s = 0`). A bias is an integer in output units (exponent :math:`e_{out}`, the target's bias
width).

Two accumulation rules (``target.synapse.accumulation``):

* ``sum`` (generic_int8, ideal, loihi; weight shift ``on_sum``):
  :math:`A = \mathrm{ovf}(W X)`, :math:`Y = \mathrm{ovf}(\mathrm{shift}(A, s) + B)`, where
  :math:`\mathrm{ovf}` is the accumulator width and overflow mode, applied to the raw sum and again
  after the shift and bias (both counted in ``saturations['accumulator']``). :math:`W X` is exact:
  a float64 matmul while :math:`\max|W|\,\max|X|\,N_{in} < 2^{53}`, an int64 matmul otherwise.
* ``per_event_saturate`` (Xylo; weight shift ``per_synapse``): the layer does not sum. It returns
  :class:`~hwsnn.fixed.events.SynapticEvents` with the capped event counts and the effective weights
  :math:`\mathrm{wrap}_{16}(W \ll s)`; the neuron adds them one event at a time, saturating after
  each (:func:`~hwsnn.fixed.events.accumulate_events`). Counts are capped at
  ``synapse.max_input_events`` (first layer) or ``neuron.max_spikes_per_step``.

``synapse.sum_overflow: shifted`` (Loihi, as Lava: the int64 sum is shifted, then held in the
int32 buffer and channel): :math:`Y = \mathrm{ovf}(\mathrm{shift}(W X, s) + B)`, one overflow.

Latency :math:`L` (``synapse.first_latency`` for the first layer, else ``synapse.latency``): the
output of step :math:`t` is the output computed from the input of step :math:`t - L` (zeros for the
first :math:`L` steps after :meth:`reset`), an integer FIFO in both step modes. Per-synapse delays
(Loihi 2 ``DelayDense``): a spike at step :math:`t` through delay :math:`d_{ij}` is summed at step
:math:`t + L + d_{ij}` (:mod:`hwsnn.fixed.delaydense`: ``on_arrival`` shifts the sum of everything
arriving in one step; Loihi's ``per_slot`` shifts each source step's sum per delay slot before it
accumulates in the int32 buffer).

Sign modes (``synapse.sign_modes``, Loihi; :mod:`targets.bundle.signmode`): a dense twin holds its
weights as Lava uses them. The mode is the matrix's own (excitatory: all >= 0, 0..255;
inhibitory: all <= 0, -255..0; mixed: the even grid in [-256, 254]); a value outside it is what
Lava would clip (a :class:`~hwsnn.fixed.arith.FitError`, or clipped and counted with ``clip``:
an all-negative matrix holding -256 becomes inhibitory and -256 becomes -255), and
:attr:`FixedLinear.sign_mode` is exported with the table.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
import torch.nn as nn

from targets import Target
from targets import bundle as fmt

from . import arith
from .arith import FitError
from .base import spec_tensor, spec_twin
from .convert import register
from .delaydense import DelayBuffer
from .events import SynapticEvents
from .synaptic import (
    I64_LIMIT, FixedSynapticLayer, check_fan, exact_int_matmul, latency_fifo, max_abs, quantize_synaptic, unsigned_width,
)

__all__ = ["FixedLinear", "linear_to_fixed", "exact_int_matmul"]

@spec_twin("dense")
class FixedLinear(FixedSynapticLayer):
    r"""Integer twin of :class:`torch.nn.Linear` / :class:`hwsnn.layer.Linear` (see the module docstring).

    ==============================  ==========================================================
    float                           integer twin (``sum`` targets)
    ==============================  ==========================================================
    :math:`y = w x + b`             :math:`Y = \mathrm{ovf}(\mathrm{shift}(\mathrm{ovf}(W X), s) + B)`
    :math:`w = W 2^{e_w}`           :math:`e_{out} = e_w + e_x - s`, :math:`b \approx B\,2^{e_{out}}`
    ==============================  ==========================================================

    Rounding: the shift floors (:math:`s < 0`); overflow: the accumulator width and mode
    (generic_int8/ideal: saturate, loihi: int32 wrap), counted in ``saturations['accumulator']``.
    Xylo (``per_event_saturate``): returns :class:`~hwsnn.fixed.events.SynapticEvents` with the
    counts capped (``FitError`` above the cap unless ``clip``; clipped counts in
    ``clipped['input_events']``) and weights :math:`\mathrm{wrap}_{16}(W \ll s)`; no bias.

    :param weight_int: integer weights ``[out, in]`` (checked against the weight width and grid)
    :param target: a :class:`~targets.Target` or its name
    :param bias_int: integer bias ``[out]`` in output units (bias width), or ``None``
    :param weight_shift: :math:`s`, within the target's ``weight_shift_min .. max``
    :param latency: steps of synaptic latency (default: the target's ``first_latency`` or ``latency``)
    :param delays: per-synapse delays ``[out, in]`` in ``0 .. max_delay`` (targets with
        ``per_synapse_delay`` only); a spike at step :math:`t` arrives at :math:`t + L + d`
    :param first_layer: the input projection (Xylo: latency 0 and the 15-event input cap)
    :param name: layer name in error messages
    :param input_exponent: :math:`e_x` (0 for spikes)
    :param weight_exponent: :math:`e_w`
    :param clip: clip parameters (and input counts on Xylo) that do not fit, counting them
    """

    def __init__(
        self,
        weight_int: torch.Tensor,
        target: Union[str, Target],
        bias_int: Optional[torch.Tensor] = None,
        weight_shift: int = 0,
        latency: Optional[int] = None,
        delays: Optional[torch.Tensor] = None,
        first_layer: bool = False,
        name: Optional[str] = None,
        *,
        input_exponent: int = 0,
        weight_exponent: int = 0,
        clip: bool = False,
    ) -> None:
        super().__init__(
            weight_int, target, bias_int, weight_shift, latency, first_layer, name,
            input_exponent=input_exponent, weight_exponent=weight_exponent, clip=clip,
        )
        tg, lname = self.target, self.layer_name
        if self.weight.dim() != 2:
            raise ValueError(f"{lname}: weight must be [out_features, in_features]; got shape {tuple(self.weight.shape)}")
        self.out_features, self.in_features = self.weight.shape
        if self.bias is not None and tuple(self.bias.shape) != (self.out_features,):
            raise ValueError(f"{lname}: bias must have shape ({self.out_features},); got {tuple(self.bias.shape)}")
        if tg.limits.max_fan_in is not None or tg.limits.max_fan_out is not None:
            nz = self.weight != 0
            # on a Xylo core the input and readout weights are dense tables: only hidden -> hidden
            # projections use the fan-out memory (the core's fit check counts them per hidden neuron)
            dense_table = tg.limits.layout == "xylo_core" and self.first_layer
            check_fan(lname, tg, nz.sum(1), nz.sum(0)[:0] if dense_table else nz.sum(0))
        self.register_buffer("delays", None)
        if delays is not None:
            self._set_delays(delays)
        self.register_memory("pending", None)

    has_sign_mode = True

    def _set_delays(self, delays: torch.Tensor) -> None:
        tg, lname = self.target, self.layer_name
        d = arith.require_integer(torch.as_tensor(delays), f"{lname} delays")
        if tuple(d.shape) != tuple(self.weight.shape):
            raise ValueError(f"{lname}: delays must have the weight's shape {tuple(self.weight.shape)}; got {tuple(d.shape)}")
        if not tg.synapse.per_synapse_delay:
            raise FitError(lname, "delays", "per-synapse delays", "this target has no per-synapse delays", tg.name)
        if self.per_event:  # pragma: no cover - no per-event target has delays
            raise FitError(lname, "delays", "per-synapse delays", "not supported with per-event accumulation", tg.name)
        d, n = arith.fit(d, unsigned_width(tg.synapse.max_delay), layer=lname, parameter="delays",
                         target=tg.name, clip=self.clip, lo=0, hi=tg.synapse.max_delay)
        self.count_clipped("delays", n)
        self.delays = d.to(torch.int64)
        # one masked weight matrix per distinct delay (only the delays in use)
        self._delay_values = [int(v) for v in torch.unique(d)]
        self.max_delay_used = max(self._delay_values)
        tg = self.target
        self._buffer = DelayBuffer(self._delay_values, tg.synapse.delay_shift, self.weight_shift,
                                   tg.widths.accumulator, tg.overflow.accumulator)

    # -- sum path --------------------------------------------------------------------------
    def _raw_sum(self, x_seq: torch.Tensor) -> torch.Tensor:
        return exact_int_matmul(x_seq, self.weight.to(torch.int64).T, max_abs(x_seq), self.layer_name)

    def _arriving(self, x_seq: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if self.delays is None:
            return self._raw_sum(x_seq), False
        x_max = max_abs(x_seq)
        w = self.weight.to(torch.int64)
        if x_seq.shape[0] == 1 and len(self._delay_values) > 4:  # one step: scatter each synapse's product to its delay
            rows = self._scatter_by_delay(x_seq[0], w, x_max)
            sums = [(dv, rows[dv].unsqueeze(0)) for dv in self._delay_values]
        else:  # a sequence: one matmul per delay value in use
            sums = [(dv, exact_int_matmul(x_seq, torch.where(self.delays == dv, w, torch.zeros_like(w)).T, x_max,
                                          self.layer_name)) for dv in self._delay_values]
        y, self.pending, wraps = self._buffer.step(self.pending, sums, x_max * max_abs(w) * self.in_features,
                                                   self.layer_name)
        self.count_saturations("accumulator", wraps)
        return y, self._buffer.shifted

    def _scatter_by_delay(self, x: torch.Tensor, w: torch.Tensor, x_max: int) -> torch.Tensor:
        r"""``[dmax + 1, N, out]``: :math:`\sum_i W_{oi} X_{ni}` of the synapses with delay ``d`` at row ``d``,
        for one step ``x`` ``[N, in]`` (exact int64 products and sums)."""
        out, k = w.shape
        if x_max * max_abs(w) * max(k, 1) >= I64_LIMIT:
            raise OverflowError(f"{self.layer_name}: max|X| * max|W| * fan-in >= 2^63; the integer sum could overflow int64")
        n, rows = x.shape[0], self.max_delay_used + 1
        prod = (x.to(torch.int64)[:, None, :] * w[None]).reshape(n, -1)  # [N, out*in]
        idx = (self.delays * out + torch.arange(out, device=w.device)[:, None]).reshape(1, -1).expand(n, -1)
        acc = torch.zeros((n, rows * out), dtype=torch.int64, device=x.device).scatter_add_(1, idx, prod)
        return acc.view(n, rows, out).transpose(0, 1)

    # -- per-event path --------------------------------------------------------------------
    @property
    def event_cap(self) -> Optional[int]:
        """Per-event targets: the largest event count per source and step this layer passes on (the
        input cap for the input projection, else the hidden spike cap); ``None`` on ``sum`` targets."""
        return fmt.event_cap_of(self.target, self.first_layer) if self.per_event else None

    def _cap_counts(self, x_seq: torch.Tensor) -> torch.Tensor:
        tg = self.target
        cap = self.event_cap
        c = x_seq.to(torch.int64)
        bad = (c < 0) | (c > cap)
        n_bad = int(bad.sum())
        if n_bad:
            if not self.clip:
                worst = int(c[bad].flatten()[0])
                which = "input channel (synapse.max_input_events)" if self.first_layer else "source neuron (neuron.max_spikes_per_step)"
                raise FitError(self.layer_name, "input events per step", worst,
                               f"allowed [0, {cap}] per {which} ({n_bad} value(s) outside)", tg.name)
            self.count_clipped("input_events", n_bad)
            c = c.clamp(0, cap)
        return c.to(torch.int16 if cap < (1 << 15) else torch.int64)

    def _run(self, x_seq: torch.Tensor) -> Any:
        if x_seq.shape[-1] != self.in_features:
            raise ValueError(f"{self.layer_name}: expected {self.in_features} input features; got shape {tuple(x_seq.shape)}")
        if self.per_event:
            counts, self.fifo = latency_fifo(self.fifo, self._cap_counts(x_seq), self.latency, self.layer_name)
            return SynapticEvents(counts=counts, weight=self.effective_weight)
        return self._sum_sequence(x_seq)

    # -- the export format ---------------------------------------------------------------------
    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Dense":
        per_event = self.per_event
        return fmt.Dense(
            **self._ports(name, input_shape, input_kind, (self.out_features,), "counts" if per_event else "values",
                          None if per_event else self.output_exponent),
            in_features=int(self.in_features), out_features=int(self.out_features), latency=self.latency,
            first_layer=self.first_layer, accumulation=self.target.synapse.accumulation, event_cap=self.event_cap,
            clip_events=self.clip, weight_shift=self.weight_shift, input_exponent=self.input_exponent,
            weight_exponent=self.weight_exponent, sign_mode=self.sign_mode, weight=self.weight, bias=self.bias,
            delays=self.delays,
        )

    @classmethod
    def from_spec(cls, spec: "fmt.Dense", target: Target) -> "FixedLinear":
        t = spec_tensor
        return cls(t(spec.weight), target, t(spec.bias), spec.weight_shift, latency=spec.latency, delays=t(spec.delays),
                   first_layer=spec.first_layer, name=spec.name, input_exponent=spec.input_exponent,
                   weight_exponent=spec.weight_exponent, clip=spec.clip_events)

    def extra_repr(self) -> str:
        d = "" if self.delays is None else f", max_delay={self.max_delay_used}"
        return f"in_features={self.in_features}, out_features={self.out_features}, {super().extra_repr()}{d}"


@register(nn.Linear)
def linear_to_fixed(
    layer: nn.Linear,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_exponent: int = 0,
    weight_exponent: Optional[int] = None,
    output_exponent: Optional[int] = None,
    latency: Optional[int] = None,
    delays: Optional[torch.Tensor] = None,
    first_layer: bool = False,
    weight_int: Optional[torch.Tensor] = None,
) -> FixedLinear:
    r"""Convert a float :class:`torch.nn.Linear` (or :class:`hwsnn.layer.Linear`) to :class:`FixedLinear`.

    :math:`W = \mathrm{round}(w\,2^{-e_w})` on the target's weight grid (``weight_exponent=None``:
    the smallest :math:`e_w` whose grid holds :math:`\max|w|`), :math:`B = \mathrm{round}(b\,2^{-e_{out}})`,
    :math:`s = e_w + e_x - e_{out}` (``output_exponent=None``: :math:`s = 0`); :math:`s` outside the
    target's range raises :class:`~hwsnn.fixed.arith.FitError`. ``weight_int``: the integers
    :math:`W` when the caller has them already (exactly :math:`w\,2^{-e_w}`, with ``weight_exponent``;
    a quantization-aware layer's quantized weights), used instead of quantizing ``layer.weight``.
    """
    lname = name or "Linear"
    q = quantize_synaptic(layer, target, lname, clip, input_exponent, weight_exponent, output_exponent,
                          weight_int=weight_int)
    twin = FixedLinear(
        q["weight"], target, q["bias"], q["shift"], latency=latency, delays=delays, first_layer=first_layer,
        name=lname, input_exponent=q["e_x"], weight_exponent=q["e_w"], clip=clip,
    )
    twin.count_clipped("weight", q["clipped_w"])
    twin.count_clipped("bias", q["clipped_b"])
    return twin
