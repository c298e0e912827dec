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

Latency :math:`L` (``synapse.first_latency`` for the first layer, else ``synapse.latency``): the
output of step :math:`t` is the output computed from the input of step :math:`t - L` (zeros for the
first :math:`L` steps after :meth:`reset`), an integer FIFO in both step modes. Per-synapse delays
(Loihi 2 ``DelayDense``): a spike at step :math:`t` through delay :math:`d_{ij}` is summed at step
:math:`t + L + d_{ij}` (a ring buffer of future raw sums; the overflow, shift and bias apply to the
sum of everything arriving in one step).
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
import torch.nn as nn

from targets import Target, Width
from targets import bundle as fmt

from . import arith
from .arith import FitError
from .base import FixedModule, resolve_target, spec_tensor, spec_twin
from .convert import register
from .events import SynapticEvents

__all__ = ["FixedLinear", "linear_to_fixed", "exact_int_matmul"]

_F64_EXACT = 1 << 53
_I64_LIMIT = 1 << 63


def _max_abs(x: torch.Tensor) -> int:
    """max |x| as a Python int (0 for an empty tensor), without int8/int16 overflow of ``abs``."""
    if x.numel() == 0:
        return 0
    if x.dtype == torch.bool:
        return int(bool(x.any()))
    return max(abs(int(x.max())), abs(int(x.min())))


#: products of at most this many multiply-adds take the int64 path (see :func:`exact_int_matmul`)
_SMALL_MATMUL = 1 << 16


def exact_int_matmul(x: torch.Tensor, w_t: torch.Tensor, x_max: Optional[int] = None, who: str = "matmul") -> torch.Tensor:
    r"""Exact :math:`X W^T` of integer tensors ``x`` ``[..., K]`` and ``w_t`` ``[K, M]`` as int64.

    Float64 when :math:`\max|X|\,\max|W|\,K < 2^{53}` (every partial sum is then an integer that
    float64 holds exactly; float32 below :math:`2^{24}` on the CPU, where no TF32 applies), else an
    int64 matmul (on the CPU: torch has no integer matmul on CUDA).
    Raises ``OverflowError`` when even int64 could overflow (:math:`\ge 2^{63}`).
    """
    k = w_t.shape[0]
    xm = _max_abs(x) if x_max is None else x_max
    bound = xm * _max_abs(w_t) * max(k, 1)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, k)  # one 2-D matmul
    # small products run as an exact int64 matmul (torch's own loop): a float BLAS call costs far more
    # than the product itself there, and on a busy machine a threaded BLAS call can stall for milliseconds
    small = x2.shape[0] * k * w_t.shape[1] <= _SMALL_MATMUL and x.device.type == "cpu"
    if bound < _F64_EXACT and not small:
        dt = torch.float32 if bound < (1 << 24) and x.device.type == "cpu" else torch.float64
        return torch.matmul(x2.to(dt), w_t.to(dt)).to(torch.int64).reshape(*lead, -1)
    if bound >= _I64_LIMIT:
        raise OverflowError(
            f"{who}: max|X| * max|W| * fan-in = {bound} >= 2^63; the integer sum could overflow int64"
        )
    dev = x.device
    out = torch.matmul(x2.to("cpu", torch.int64), w_t.to("cpu", torch.int64))
    return out.to(dev).reshape(*lead, -1)


def _latency_fifo(fifo: Optional[torch.Tensor], y_seq: torch.Tensor, latency: int, who: str) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Delay ``y_seq`` ``[T, ...]`` by ``latency`` steps through ``fifo`` ``[L, ...]`` (None: zeros).

    Returns ``(delayed sequence, new fifo)``: :math:`y'[t] = y[t - L]`, across calls.
    """
    if latency == 0:
        return y_seq, fifo
    if fifo is None:
        fifo = torch.zeros((latency, *y_seq.shape[1:]), dtype=y_seq.dtype, device=y_seq.device)
    elif fifo.shape[1:] != y_seq.shape[1:]:
        raise ValueError(
            f"{who}: input shape changed from {tuple(fifo.shape[1:])} to {tuple(y_seq.shape[1:])} while the "
            "latency FIFO holds earlier outputs; call reset() between sequences of different shapes"
        )
    full = torch.cat([fifo.to(y_seq.dtype), y_seq], dim=0)
    t = y_seq.shape[0]
    return full[:t], full[t:].clone()


class _FixedSynapticLayer(FixedModule):
    """Shared part of the dense and conv twins: parameter checks, weight shift, bias, overflow, latency.

    Subclasses implement :meth:`_raw_sum` (exact int64 :math:`W X` of an input with a time axis).
    """

    def __init__(
        self,
        weight_int: torch.Tensor,
        target: Union[str, Target],
        bias_int: Optional[torch.Tensor] = None,
        weight_shift: int = 0,
        latency: Optional[int] = None,
        first_layer: bool = False,
        name: Optional[str] = None,
        *,
        input_exponent: int = 0,
        weight_exponent: int = 0,
        clip: bool = False,
    ) -> None:
        super().__init__(target, name)
        tg = self.target
        syn = tg.synapse
        self.clip = bool(clip)
        self.first_layer = bool(first_layer)
        lname = self.layer_name
        weight_int = arith.require_integer(torch.as_tensor(weight_int), f"{lname} weight")
        w, n = arith.fit(
            weight_int, tg.widths.weight, layer=lname, parameter="weight", target=tg.name, clip=clip, step=syn.weight_step
        )
        self.count_clipped("weight", n)
        s = int(weight_shift)
        if not syn.weight_shift_min <= s <= syn.weight_shift_max:
            raise FitError(
                lname, "weight_shift", s, f"allowed [{syn.weight_shift_min}, {syn.weight_shift_max}] "
                f"(output exponent = weight exponent + input exponent - shift)", tg.name
            )
        self.weight_shift = s
        self.per_event = syn.accumulation == "per_event_saturate"
        if bias_int is not None:
            bias_int = arith.require_integer(torch.as_tensor(bias_int), f"{lname} bias")
            if self.per_event and bool((bias_int != 0).any()):
                raise FitError(
                    lname, "bias", "a nonzero bias",
                    "this target adds synaptic events straight into the neuron's current and has no dense "
                    "bias; fold the bias into the neuron's bias (build the layer with bias=False)", tg.name,
                )
            if self.per_event:
                bias_int = None
        if bias_int is not None:
            b, n = arith.fit(bias_int, tg.widths.bias, layer=lname, parameter="bias", target=tg.name, clip=clip)
            self.count_clipped("bias", n)
            self.register_buffer("bias", b.to(arith.storage_dtype(tg.widths.bias)))
        else:
            self.register_buffer("bias", None)
        self.register_buffer("weight", w.to(arith.storage_dtype(tg.widths.weight)))
        if self.per_event:
            eff = arith.wrap(arith.shift(w, s), tg.widths.current)
            self.register_buffer("effective_weight", eff.to(arith.storage_dtype(tg.widths.current)))
        self.latency = int((syn.first_latency if first_layer else syn.latency) if latency is None else latency)
        if self.latency < 0:
            raise ValueError(f"{lname}: latency must be >= 0; got {self.latency}")
        self.input_exponent = int(input_exponent)
        self.weight_exponent = int(weight_exponent)
        self.output_exponent = self.weight_exponent + self.input_exponent - s
        self.exponents.update({"weight": self.weight_exponent, "output": self.output_exponent})
        if self.bias is not None:
            self.exponents["bias"] = self.output_exponent
        self.register_memory("fifo", None)
        self.register_memory("output", None)

    # -- helpers ---------------------------------------------------------------------------
    def dequantize_weight(self) -> torch.Tensor:
        r"""The real weights :math:`W\,2^{e_w}` (float64)."""
        return self.weight.to(torch.float64) * 2.0 ** self.weight_exponent

    def dequantize_bias(self) -> Optional[torch.Tensor]:
        r"""The real bias :math:`B\,2^{e_{out}}` (float64), or ``None``."""
        return None if self.bias is None else self.bias.to(torch.float64) * 2.0 ** self.output_exponent

    def _raw_sum(self, x_seq: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _bias_view(self, y: torch.Tensor) -> torch.Tensor:
        """The bias broadcast against a raw-sum tensor ``y``."""
        return self.bias.to(torch.int64)

    def _finish(self, acc: torch.Tensor) -> torch.Tensor:
        """Accumulator overflow, weight shift, bias and overflow again (int64 in, int64 out)."""
        width, mode = self.target.widths.accumulator, self.target.overflow.accumulator
        acc, n1 = arith.overflow(acc, width, mode)
        y = arith.shift(acc, self.weight_shift, "floor")
        if self.bias is not None:
            y = y + self._bias_view(y)
        y, n2 = arith.overflow(y, width, mode)
        self.count_saturations("accumulator", n1 + n2)
        return y

    def _sum_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The ``sum`` rule on ``[T, ...]`` inputs, then the latency FIFO."""
        y = self._finish(self._raw_sum(x_seq))
        y = y.to(arith.storage_dtype(self.target.widths.accumulator))
        out, self.fifo = _latency_fifo(self.fifo, y, self.latency, self.layer_name)
        return out.to(torch.int64)

    def _run(self, x_seq: torch.Tensor) -> Any:
        raise NotImplementedError  # pragma: no cover

    def single_step_forward(self, x: torch.Tensor) -> Any:
        x = arith.require_integer(x, self.layer_name)
        out = self._run(x.unsqueeze(0))
        out = out[0]  # SynapticEvents.__getitem__ drops the time axis of the counts too
        self.output = out if torch.is_tensor(out) else None
        return out

    def multi_step_forward(self, x_seq: torch.Tensor) -> Any:
        x_seq = arith.require_integer(x_seq, self.layer_name)
        if x_seq.dim() < 2 or x_seq.shape[0] == 0:
            raise ValueError(f"{self.layer_name} in multi-step mode expects [T, N, ...] with T >= 1; got {tuple(x_seq.shape)}")
        out = self._run(x_seq)
        self.output = out if torch.is_tensor(out) else None
        return out

    def fixed_report(self) -> dict:
        """Base report plus the weight shift, latency and exponents of the layer."""
        rep = super().fixed_report()
        rep.update(
            weight_shift=self.weight_shift,
            latency=self.latency,
            input_exponent=self.input_exponent,
            weight_exponent=self.weight_exponent,
            output_exponent=self.output_exponent,
            accumulation=self.target.synapse.accumulation,
        )
        return rep

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, weight_shift={self.weight_shift}, latency={self.latency}, "
            f"exponents(in={self.input_exponent}, w={self.weight_exponent}, out={self.output_exponent})"
        )


@spec_twin("dense")
class FixedLinear(_FixedSynapticLayer):
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
        nz = self.weight != 0
        _check_fan(lname, tg, nz.sum(1), nz.sum(0))
        self.register_buffer("delays", None)
        if delays is not None:
            self._set_delays(delays)
        self.register_memory("pending", None)

    def _set_delays(self, delays: torch.Tensor) -> None:
        tg, lname = self.target, self.layer_name
        d = arith.require_integer(torch.as_tensor(delays), f"{lname} delays")
        if tuple(d.shape) != tuple(self.weight.shape):
            raise ValueError(f"{lname}: delays must have the weight's shape {tuple(self.weight.shape)}; got {tuple(d.shape)}")
        if not tg.synapse.per_synapse_delay:
            raise FitError(lname, "delays", "per-synapse delays", "this target has no per-synapse delays", tg.name)
        if self.per_event:  # pragma: no cover - no per-event target has delays
            raise FitError(lname, "delays", "per-synapse delays", "not supported with per-event accumulation", tg.name)
        d, n = arith.fit(d, _unsigned_width(tg.synapse.max_delay), layer=lname, parameter="delays",
                         target=tg.name, clip=self.clip, lo=0, hi=tg.synapse.max_delay)
        self.count_clipped("delays", n)
        self.delays = d.to(torch.int64)
        # one masked weight matrix per distinct delay (only the delays in use)
        self._delay_values = [int(v) for v in torch.unique(d)]
        self.max_delay_used = max(self._delay_values)

    # -- sum path --------------------------------------------------------------------------
    def _raw_sum(self, x_seq: torch.Tensor) -> torch.Tensor:
        x_max = _max_abs(x_seq)
        w = self.weight.to(torch.int64)
        if self.delays is None:
            return exact_int_matmul(x_seq, w.T, x_max, self.layer_name)
        t = x_seq.shape[0]
        dmax = self.max_delay_used
        out_shape = (*x_seq.shape[:-1], self.out_features)
        buf = torch.zeros((t + dmax, *out_shape[1:]), dtype=torch.int64, device=x_seq.device)
        if self.pending is not None:
            if self.pending.shape[1:] != buf.shape[1:]:
                raise ValueError(
                    f"{self.layer_name}: input shape changed while the delay buffer holds spikes; call reset()"
                )
            buf[:dmax] += self.pending
        if t == 1 and len(self._delay_values) > 4:  # one step: scatter each synapse's product to its delay
            buf[:dmax + 1] += self._scatter_by_delay(x_seq[0], w, x_max)
        else:  # a sequence: one matmul per delay value in use
            for dv in self._delay_values:
                wd = torch.where(self.delays == dv, w, torch.zeros_like(w))
                buf[dv:dv + t] += exact_int_matmul(x_seq, wd.T, x_max, self.layer_name)
        self.pending = buf[t:].clone()
        return buf[:t]

    def _scatter_by_delay(self, x: torch.Tensor, w: torch.Tensor, x_max: int) -> torch.Tensor:
        r"""``[dmax + 1, N, out]``: :math:`\sum_i W_{oi} X_{ni}` of the synapses with delay ``d`` at row ``d``,
        for one step ``x`` ``[N, in]`` (exact int64 products and sums)."""
        out, k = w.shape
        if x_max * _max_abs(w) * max(k, 1) >= _I64_LIMIT:
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
            counts, self.fifo = _latency_fifo(self.fifo, self._cap_counts(x_seq), self.latency, self.layer_name)
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
            weight_exponent=self.weight_exponent, weight=self.weight, bias=self.bias, delays=self.delays,
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


def _unsigned_width(hi: int) -> Width:
    """An unsigned width that holds ``0 .. hi`` (for the delay check)."""
    return Width(bits=max(int(hi).bit_length(), 1), signed=False)


def _check_fan(lname: str, target: Target, fan_in: torch.Tensor, fan_out: torch.Tensor, note: str = "") -> None:
    """FitError when a neuron's nonzero fan-in or fan-out exceeds the target's limits (never clipped)."""
    lim = target.limits
    for kind, counts, limit in (("fan-in", fan_in, lim.max_fan_in), ("fan-out", fan_out, lim.max_fan_out)):
        if limit is None or counts.numel() == 0:
            continue
        worst = int(counts.max())
        if worst > limit:
            idx = int(torch.argmax(counts))
            raise FitError(
                lname, f"{kind} (nonzero synapses of {'neuron' if kind == 'fan-in' else 'input'} {idx}{note})",
                worst, f"at most {limit} (limits.max_{kind.replace('-', '_')}); prune the layer or split it",
                target.name,
            )


def _quantize_synaptic(
    layer: nn.Module,
    target: Target,
    lname: str,
    clip: bool,
    input_exponent: int,
    weight_exponent: Optional[int],
    output_exponent: Optional[int],
) -> dict:
    """Weights and bias of a float dense/conv layer as integers + the weight shift (shared by converters)."""
    tg = resolve_target(target)
    syn = tg.synapse
    w = layer.weight.detach()
    if weight_exponent is None:
        max_abs = float(w.abs().max()) if w.numel() else 0.0
        weight_exponent = arith.power_of_two_exponent(max_abs, tg.widths.weight, syn.weight_step)
    e_w, e_x = int(weight_exponent), int(input_exponent)
    e_out = e_w + e_x if output_exponent is None else int(output_exponent)
    s = e_w + e_x - e_out
    if not syn.weight_shift_min <= s <= syn.weight_shift_max:
        raise FitError(
            lname, "weight shift (weight exponent + input exponent - output exponent)", s,
            f"allowed [{syn.weight_shift_min}, {syn.weight_shift_max}] (e_w={e_w}, e_x={e_x}, e_out={e_out})", tg.name,
        )
    wq, n_w = arith.quantize(w, e_w, tg.widths.weight, layer=lname, parameter="weight", target=tg.name,
                             clip=clip, step=syn.weight_step)
    bias = getattr(layer, "bias", None)
    bq, n_b = None, 0
    if bias is not None:
        b = bias.detach()
        if syn.accumulation == "per_event_saturate":
            if bool((b != 0).any()):
                raise FitError(
                    lname, "bias", "a nonzero bias",
                    "this target adds synaptic events straight into the neuron's current and has no dense bias; "
                    "fold the bias into the following neuron's bias (and build the layer with bias=False)", tg.name,
                )
        else:
            bq, n_b = arith.quantize(b, e_out, tg.widths.bias, layer=lname, parameter="bias", target=tg.name, clip=clip)
    return dict(weight=wq, bias=bq, shift=s, e_w=e_w, e_x=e_x, clipped_w=n_w, clipped_b=n_b)


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
) -> FixedLinear:
    r"""Convert a float :class:`torch.nn.Linear` (or :class:`hwsnn.layer.Linear`) to :class:`FixedLinear`.

    :math:`W = \mathrm{round}(w\,2^{-e_w})` on the target's weight grid (``weight_exponent=None``:
    the smallest :math:`e_w` whose grid holds :math:`\max|w|`), :math:`B = \mathrm{round}(b\,2^{-e_{out}})`,
    :math:`s = e_w + e_x - e_{out}` (``output_exponent=None``: :math:`s = 0`); :math:`s` outside the
    target's range raises :class:`~hwsnn.fixed.arith.FitError`.
    """
    lname = name or "Linear"
    q = _quantize_synaptic(layer, target, lname, clip, input_exponent, weight_exponent, output_exponent)
    twin = FixedLinear(
        q["weight"], target, q["bias"], q["shift"], latency=latency, delays=delays, first_layer=first_layer,
        name=lname, input_exponent=q["e_x"], weight_exponent=q["e_w"], clip=clip,
    )
    twin.count_clipped("weight", q["clipped_w"])
    twin.count_clipped("bias", q["clipped_b"])
    return twin
