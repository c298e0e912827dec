r"""The shared part of the dense and conv twins (:class:`FixedSynapticLayer`): exact integer matmuls,
the latency FIFO, weight quantization with the weight shift, fan checks. The rules are stated in
:mod:`hwsnn.fixed.dense`."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
import torch.nn as nn

from targets import Target, Width
from targets import bundle as fmt

from . import arith
from .arith import FitError
from .base import FixedModule, resolve_target

__all__ = ["FixedSynapticLayer", "exact_int_matmul", "latency_fifo", "quantize_synaptic", "check_fan", "max_abs",
           "unsigned_width", "F64_EXACT", "I64_LIMIT"]

F64_EXACT = 1 << 53
I64_LIMIT = 1 << 63


def max_abs(x: torch.Tensor) -> int:
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
    xm = max_abs(x) if x_max is None else x_max
    bound = xm * max_abs(w_t) * max(k, 1)
    lead = x.shape[:-1]
    x2 = x.reshape(-1, k)  # one 2-D matmul
    # small products run as an exact int64 matmul (torch's own loop): a float BLAS call costs far more
    # than the product itself there, and on a busy machine a threaded BLAS call can stall for milliseconds
    small = x2.shape[0] * k * w_t.shape[1] <= _SMALL_MATMUL and x.device.type == "cpu"
    if bound < F64_EXACT and not small:
        dt = torch.float32 if bound < (1 << 24) and x.device.type == "cpu" else torch.float64
        return torch.matmul(x2.to(dt), w_t.to(dt)).to(torch.int64).reshape(*lead, -1)
    if bound >= I64_LIMIT:
        raise OverflowError(
            f"{who}: max|X| * max|W| * fan-in = {bound} >= 2^63; the integer sum could overflow int64"
        )
    dev = x.device
    out = torch.matmul(x2.to("cpu", torch.int64), w_t.to("cpu", torch.int64))
    return out.to(dev).reshape(*lead, -1)


def latency_fifo(fifo: Optional[torch.Tensor], y_seq: torch.Tensor, latency: int, who: str) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
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


class FixedSynapticLayer(FixedModule):
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
        #: Lava's sign mode of the weights (targets with sign modes, dense twins), else None
        self.sign_mode: Optional[str] = None
        if syn.sign_modes and self.has_sign_mode:
            w, n = self._fit_sign_mode(weight_int.to(torch.int64))
        else:
            w, n = arith.fit(weight_int, tg.widths.weight, layer=lname, parameter="weight", target=tg.name, clip=clip,
                             step=syn.weight_step)
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

    #: whether the target's sign modes apply to this layer's weights (Lava's Dense; its Conv has none)
    has_sign_mode = False

    def _fit_sign_mode(self, w: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The weights Lava uses (module docstring): fit to the grid of the matrix's own sign mode, again if
        clipping changed the mode (mixed [-256, 1] -> [-256, 0] -> inhibitory [-255, 0]); returns the
        weights and the number of values that differ from ``w``."""
        tg = self.target
        out = w
        for _ in range(3):
            mode = fmt.auto_sign_mode(out.cpu().numpy())
            lo, hi, step = fmt.sign_mode_grid(mode, tg)
            try:
                out, n = arith.fit(out, tg.widths.weight, layer=self.layer_name, parameter="weight", target=tg.name,
                                   clip=self.clip, step=step, lo=lo, hi=hi)
            except FitError as err:
                raise FitError(err.layer, err.parameter, err.value, f"{err.limit}; Lava picks the {mode} sign mode for "
                               "this matrix (min >= 0: excitatory, max <= 0: inhibitory, else mixed)", tg.name) from None
            if n == 0:
                self.sign_mode = mode
                return out, int((out != w).sum())
        raise AssertionError("sign mode did not settle")  # pragma: no cover - at most mixed -> inhibitory -> fixed

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

    def _finish(self, acc: torch.Tensor, shifted: bool = False) -> torch.Tensor:
        """Accumulator overflow (``sum_overflow: raw_and_shifted`` only), weight shift, bias and overflow again
        (int64 in, int64 out); ``shifted``: ``acc`` is already shifted (per-slot delays)."""
        width, mode = self.target.widths.accumulator, self.target.overflow.accumulator
        n1 = 0
        if not shifted:
            if self.target.synapse.sum_overflow == "raw_and_shifted":
                acc, n1 = arith.overflow(acc, width, mode)
            acc = arith.shift(acc, self.weight_shift, "floor")
        y = acc
        if self.bias is not None:
            y = y + self._bias_view(y)
        y, n2 = arith.overflow(y, width, mode)
        self.count_saturations("accumulator", n1 + n2)
        return y

    def _arriving(self, x_seq: torch.Tensor) -> tuple[torch.Tensor, bool]:
        """``(the sums arriving at each step, whether they are already shifted)``: :meth:`_raw_sum` here."""
        return self._raw_sum(x_seq), False

    def _sum_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """The ``sum`` rule on ``[T, ...]`` inputs, then the latency FIFO."""
        y = self._finish(*self._arriving(x_seq))
        y = y.to(arith.storage_dtype(self.target.widths.accumulator))
        out, self.fifo = latency_fifo(self.fifo, y, self.latency, self.layer_name)
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


def unsigned_width(hi: int) -> Width:
    """An unsigned width that holds ``0 .. hi`` (for the delay check)."""
    return Width(bits=max(int(hi).bit_length(), 1), signed=False)


def check_fan(lname: str, target: Target, fan_in: torch.Tensor, fan_out: torch.Tensor, note: str = "") -> None:
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


def quantize_synaptic(
    layer: nn.Module,
    target: Target,
    lname: str,
    clip: bool,
    input_exponent: int,
    weight_exponent: Optional[int],
    output_exponent: Optional[int],
    weight_int: Optional[torch.Tensor] = None,
) -> dict:
    r"""Weights and bias of a float dense/conv layer as integers + the weight shift (shared by converters).

    ``weight_int`` (with ``weight_exponent``): the weight integers already known (exactly
    :math:`w\,2^{-e_w}`), taken as they are instead of quantizing ``layer.weight`` (the twin's
    constructor checks and, with ``clip``, clips and counts them)."""
    tg = resolve_target(target)
    syn = tg.synapse
    if weight_int is not None and weight_exponent is None:
        raise ValueError(f"{lname}: weight_int needs its weight_exponent")
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
    if weight_int is not None:
        wq, n_w = arith.require_integer(weight_int, f"{lname} weight_int"), 0
    else:
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
