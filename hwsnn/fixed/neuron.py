r"""Integer twins of the spiking neurons: :class:`FixedIFNode`, :class:`FixedLIFNode`, :class:`FixedCubaLIFNode`.

States are integers with the exponent ``state_exponent`` (real value :math:`q\,2^{e}`): ``v``
(membrane width) and, for CUBA, ``i`` (current width). The input is an integer tensor in *input
units*, exponent :math:`e + s` with :math:`s` = ``target.neuron.input_shift`` (the twin applies
:math:`x \ll s`, Loihi's ``a_in << 6``), or a :class:`~hwsnn.fixed.events.SynapticEvents` (Xylo:
saturation after every event). Spikes come out as int8: 0/1, or counts ``0..max_spikes``.

===================================================  ===========================================================
float                                                integer twin (:math:`\mathrm{ovf}` = the target's overflow)
===================================================  ===========================================================
:math:`I \leftarrow I - I/\tau_s + X` (CUBA)         ``decay_then_add``: :math:`I = \mathrm{ovf}(I - D_s(I) + (X \ll s))`;
                                                     ``add_then_decay`` (Xylo): :math:`I = \mathrm{sat}(I + \text{events})`, :math:`I \mathrel{-}= D_s(I)`
:math:`H = V - (V - V_r)/\tau + I + b`               ``direct``: :math:`V = \mathrm{ovf}(V - D_m(V - V_r) + I + B)`;
                                                     ``saturated_delta`` (Xylo): :math:`\delta = \mathrm{wrap}(-D_m(V))`,
                                                     :math:`\delta = \mathrm{sat}(\mathrm{sat}(\delta + I) + B)`, :math:`V = \mathrm{sat}(V + \delta)`
:math:`S = \Theta(H - V_{th})`                       :math:`n = [V \mathbin{\mathrm{cmp}} TH]`, :math:`TH = \mathit{mant} \ll` ``threshold_shift``;
                                                     subtract: ``while V cmp TH and n < cap: n += 1; V -= TH``
hard / soft reset                                    ``zero``: :math:`V = V_r` where :math:`n > 0`; ``subtract`` as above
===================================================  ===========================================================

Decay amounts :math:`D(x)` by ``decay.mechanism``: ``shift``, :math:`D(x, k)` of
:func:`~hwsnn.fixed.arith.decay_amount` with ``decay.rounding`` (floor, toward_zero, xylo_min1:
:math:`25 \to 13`, :math:`-25 \to -12`, :math:`\pm1 \to 0` for :math:`k = 1`), :math:`\tau = 2^k`;
``mul12`` (Loihi), :math:`x - \mathrm{tz}(x (4096 - d) / 4096)` with :math:`d = du + 1` for the
current and :math:`d = dv` for the membrane (:math:`\tau = 4096/d`). For IF/LIF the input current
:math:`X \ll s` replaces :math:`I` (brought into the current width, ``saturations['i']``).
A tensor input is added in one go (one overflow); only :class:`SynapticEvents` replay Xylo's
per-event saturation. Overflow counts: ``saturations['i']``, ``['v']``, ``['dv']`` (Xylo delta,
wraps included).
Threshold and decays are one value per layer, or (Xylo cores only, :mod:`hwsnn.fixed.per_neuron`) one per neuron.
Loihi: zero reset, ``u`` (the current) is never reset; bias :math:`B = \mathit{mant} \ll \mathit{exp}`
(floor :math:`\gg` for a negative exponent), the exponent shared or one per neuron (``bias_exp`` a tensor).
Where the target computes the input in fixed-width integers (``neuron.input_wrap_bits`` :math:`w`,
Lava's int32) the input is :math:`\mathrm{wrap}_w(X)`, then :math:`\mathrm{wrap}_w(X \ll s)`, then
:math:`\mathrm{wrap}_w(I + (X \ll s))`, each before the current's overflow and each wrap counted in
``saturations['i']``.
"""

from __future__ import annotations

import math
import operator
from typing import Optional, Union

import torch

from targets import Target, Width
from targets import bundle as fmt

from ..base import require_time_axis
from . import arith
from .arith import FitError
from .base import FixedModule, spec_tensor, spec_twin
from .decay import decay_amount, decay_limits, tau_of, tau_to_decay  # noqa: F401  (tau_to_decay: public here too)
from .events import SynapticEvents, accumulate_events
from .fused import FusedNeuronSequence, register_fused_neuron
from .per_neuron import first_value, fits_step, per_neuron_value, report_value as _plain

__all__ = ["FixedNeuron", "FixedIFNode", "FixedLIFNode", "FixedCubaLIFNode", "choose_state_exponent", "tau_to_decay",
           "fire_and_reset"]

Input = Union[torch.Tensor, SynapticEvents]
IntOrTensor = Union[int, torch.Tensor]


# -- helpers ---------------------------------------------------------------------------------------
def _as_int(owner: str, name: str, value: object) -> int:
    """``value`` as a Python int (numpy/torch integers accepted), else ``TypeError`` naming it."""
    if isinstance(value, bool):
        raise TypeError(f"{owner}: {name} must be an integer; got {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{owner}: {name} must be an integer; got {value!r}") from None


def fire_and_reset(
    v: torch.Tensor, th: IntOrTensor, compare: str, reset: str, v_reset: int, cap: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spike counts and the reset membrane (int64): ``n = [v cmp th]``, zero reset to ``v_reset``, or the
    subtractive loop ``while v cmp th and n < cap: n += 1; v -= th`` in closed form (``th``: one
    threshold, or a tensor of per-neuron thresholds broadcastable to ``v``)."""
    fired = v >= th if compare == ">=" else v > th
    if reset == "zero":
        return fired.to(torch.int64), torch.where(fired, torch.full_like(v, v_reset), v)
    if cap == 1:
        n = fired.to(torch.int64)
    elif isinstance(th, torch.Tensor):  # per neuron: the closed form where th > 0, the cap elsewhere
        turns = torch.div(v if compare == ">=" else v - 1, th.clamp(min=1), rounding_mode="floor").clamp(0, cap)
        n = torch.where(th > 0, turns, fired.to(torch.int64) * cap)
    elif th > 0:  # number of loop turns: floor(v/th) for '>=', ceil(v/th) - 1 for '>'
        n = torch.div(v if compare == ">=" else v - 1, th, rounding_mode="floor").clamp(0, cap)
    else:  # th <= 0: subtracting keeps the comparison true, the cap ends the loop
        n = fired.to(torch.int64) * cap
    return n, v - n * th


def _spike_dtype(cap: int) -> torch.dtype:
    """Smallest signed dtype holding spike counts ``0..cap`` (int8 for every shipped target)."""
    return torch.int8 if cap <= 127 else torch.int16 if cap <= 32767 else torch.int32


# -- the twins -------------------------------------------------------------------------------------
class FixedNeuron(FusedNeuronSequence, FixedModule):
    """Parameters, fire/reset and stepping shared by the neuron twins (see the module docstring).

    :param threshold: threshold mantissa (``widths.threshold``); effective ``mant << threshold_shift``
    :param state_exponent: exponent of ``v`` (and ``i``); inputs have ``state_exponent + input_shift``
    :param reset: ``'subtract'`` or ``'zero'`` (must be one of ``target.neuron.reset``; default the first)
    :param v_reset: integer reset value of the zero reset (state units); 0 on ``mul12`` targets
    :param bias: bias (mantissa on ``bias_exponent`` targets), int or per-neuron tensor, ``widths.bias``
    :param bias_exp: bias exponent (``bias_exponent_min..max``; must be 0 elsewhere): an int, or one per
        neuron (an integer tensor of the neuron shape)
    :param readout: a readout neuron (``readout_max_spikes_per_step``)
    :param clip: clip parameters that do not fit (counted in ``clipped``) instead of raising
    """

    _states: tuple[str, ...] = ("v",)

    def __init__(
        self,
        target: Union[str, Target],
        threshold: int,
        *,
        state_exponent: int = 0,
        reset: Optional[str] = None,
        v_reset: int = 0,
        bias: IntOrTensor = 0,
        bias_exp: IntOrTensor = 0,
        readout: bool = False,
        clip: bool = False,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        t, nn_ = self.target, self.target.neuron
        self.clip = bool(clip)
        self.state_exponent = _as_int(self.layer_name, "state_exponent", state_exponent)
        self.input_shift = nn_.input_shift
        self.input_exponent = self.state_exponent + self.input_shift
        self.reset_kind = t.default_reset if reset is None else reset
        if self.reset_kind not in nn_.reset:
            raise ValueError(
                f"{self.layer_name}: reset {self.reset_kind!r} is not available on target {t.name!r}; "
                f"allowed reset kinds: {', '.join(nn_.reset)}"
            )
        self.readout = bool(readout)
        cap = nn_.readout_max_spikes_per_step if self.readout else nn_.max_spikes_per_step
        self.max_spikes = cap if self.reset_kind == "subtract" else 1
        threshold = per_neuron_value(threshold, t, self.layer_name, "threshold")
        self.threshold = self._fit_threshold(threshold if isinstance(threshold, torch.Tensor)
                                             else _as_int(self.layer_name, "threshold", threshold))
        self.threshold_int = self.threshold << nn_.threshold_shift
        self.v_reset = self._fit_v_reset(_as_int(self.layer_name, "v_reset", v_reset))
        self.bias, self.bias_exp = self._fit_bias(bias, bias_exp)
        self.bias_int = self._bias_value()
        self.tau_requested: dict[str, float] = {}
        for s in self._states:
            self.exponents[s] = self.state_exponent
        self.saturations = {"i": 0, "v": 0, **({"dv": 0} if nn_.membrane_update == "saturated_delta" else {})}
        self.register_memory("v", self.v_reset if self.reset_kind == "zero" else 0)
        self.step_mode = step_mode

    # -- parameter checks ----------------------------------------------------------------------
    def _fit(self, value: IntOrTensor, width: Width, parameter: str, **kw: int) -> torch.Tensor:
        """:func:`arith.fit` with this layer's name, target and ``clip``; clipped values are counted."""
        q, n = arith.fit(torch.as_tensor(value), width, layer=self.layer_name, parameter=parameter,
                         target=self.target.name, clip=self.clip, **kw)
        self.count_clipped(parameter, n)
        return q

    def _fit_threshold(self, th: IntOrTensor) -> IntOrTensor:
        """Threshold mantissa in ``widths.threshold``, and > 0 where ``threshold_positive`` (one per neuron
        where a tensor is given, :mod:`hwsnn.fixed.per_neuron`)."""
        if isinstance(th, torch.Tensor):
            th = self._fit(th, self.target.widths.threshold, "threshold").to(torch.int64)
            bad = th <= 0
            if self.target.neuron.threshold_positive and bool(bad.any()):
                if not self.clip:
                    raise FitError(self.layer_name, "threshold", int(th.min()), "must be > 0 (threshold_positive)",
                                   self.target.name)
                self.count_clipped("threshold", int(bad.sum()))
                th = th.clamp(min=1)
            return th
        th = int(self._fit(th, self.target.widths.threshold, "threshold"))
        if self.target.neuron.threshold_positive and th <= 0:
            if not self.clip:
                raise FitError(self.layer_name, "threshold", th, "must be > 0 (threshold_positive)", self.target.name)
            self.count_clipped("threshold", 1)
            th = 1
        return th

    def _fit_v_reset(self, v_reset: int) -> int:
        """Integer reset value of the zero reset (0 for subtract; only 0 where the chip resets to 0)."""
        if self.reset_kind != "zero":
            return 0
        if v_reset != 0 and (self.target.decay.mechanism == "mul12" or self.target.neuron.membrane_update != "direct"):
            raise ValueError(f"{self.layer_name}: target {self.target.name!r} resets the membrane to 0; got v_reset = {v_reset}")
        return int(self._fit(v_reset, self.target.widths.membrane, "v_reset"))

    def _fit_bias(self, bias: IntOrTensor, bias_exp: IntOrTensor) -> tuple[torch.Tensor, IntOrTensor]:
        """Bias (mantissa) in ``widths.bias`` and its exponent(s) in the target's range (0 without one); a
        per-neuron exponent tensor stays a tensor (int64), a single value becomes an int."""
        nn_ = self.target.neuron
        lo, hi = (nn_.bias_exponent_min, nn_.bias_exponent_max) if nn_.bias_exponent else (0, 0)
        if isinstance(bias_exp, torch.Tensor) and bias_exp.numel() != 1:
            e = arith.require_integer(bias_exp, f"{self.layer_name} bias_exp").to(torch.int64)
            if e.numel() and (int(e.min()) < lo or int(e.max()) > hi):
                worst = int(e[(e < lo) | (e > hi)].flatten()[0])
                raise FitError(self.layer_name, "bias_exp", worst, f"allowed [{lo}, {hi}]", self.target.name)
        else:
            e = _as_int(self.layer_name, "bias_exp", bias_exp.reshape(()).item() if isinstance(bias_exp, torch.Tensor)
                        else bias_exp)
            if not lo <= e <= hi:
                raise FitError(self.layer_name, "bias_exp", e, f"allowed [{lo}, {hi}]", self.target.name)
        return self._fit(bias, self.target.widths.bias, "bias"), e

    def _bias_value(self) -> torch.Tensor:
        r"""The bias added each step, :math:`B = \mathit{mant} \ll e` (floor :math:`\gg` for :math:`e < 0`),
        per neuron where the exponents are."""
        e = self.bias_exp
        if not isinstance(e, torch.Tensor):
            return arith.shift(self.bias, e, "floor")
        b = torch.broadcast_to(self.bias.to(torch.int64), e.shape)
        return torch.where(e >= 0, b << e.clamp(min=0), b >> (-e).clamp(min=0))

    def _fit_decay(self, value: IntOrTensor, which: str) -> IntOrTensor:
        """Decay parameter (``k`` or ``du``/``dv``) in :func:`decay_limits`; a tensor: one per neuron."""
        lo, hi, pname = decay_limits(self.target, which)
        value = per_neuron_value(value, self.target, self.layer_name, pname)
        if isinstance(value, torch.Tensor):
            return self._fit(value, Width(64), pname, lo=lo, hi=hi).to(torch.int64)
        value = _as_int(self.layer_name, pname, value)
        return int(self._fit(value, Width(64), pname, lo=lo, hi=hi))

    @property
    def per_neuron(self) -> bool:
        """Whether the threshold or a decay is held per neuron (:mod:`hwsnn.fixed.per_neuron`)."""
        return any(isinstance(getattr(self, k, None), torch.Tensor) for k in ("threshold", "decay_mem", "decay_syn"))

    # -- one step --------------------------------------------------------------------------------
    def _ovf(self, x: torch.Tensor, state: str, width: Width, mode: str) -> torch.Tensor:
        """:func:`arith.overflow` counted in ``saturations[state]``."""
        y, n = arith.overflow(x, width, mode)
        self.count_saturations(state, n)
        return y

    def _as_input(self, x: Input) -> Input:
        """Check one step's input: integer tensor (as int64) or :class:`SynapticEvents`; float: ``TypeError``."""
        if isinstance(x, SynapticEvents):
            if self.input_shift != 0 or self.target.overflow.current != "saturate":
                raise ValueError(f"{self.layer_name}: SynapticEvents need input_shift 0 and a saturating current "
                                 f"(target {self.target.name!r} has {self.input_shift}, {self.target.overflow.current!r})")
            return x
        if not isinstance(x, torch.Tensor) or x.is_floating_point() or x.is_complex():
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise TypeError(f"{self.layer_name}: the integer twin takes an integer tensor in input units "
                            f"(exponent {self.input_exponent}: q = round(x * 2**{-self.input_exponent})) or SynapticEvents; got {got}")
        return x.to(torch.int64)

    def _add_input(self, i: torch.Tensor, x: Input) -> torch.Tensor:
        """``i`` plus this step's input, brought into the current width (per event for SynapticEvents)."""
        width = self.target.widths.current
        if isinstance(x, SynapticEvents):
            i, n = accumulate_events(i, x, width)
            self.count_saturations("i", n)
            return i
        bits = self.target.neuron.input_wrap_bits
        if bits is None:
            return self._ovf(i + (x << self.input_shift), "i", width, self.target.overflow.current)
        w = Width(bits)  # Lava: a_in arrives in int32, a_in << 6 and u + (a_in << 6) are int32
        x = self._ovf(x, "i", w, "wrap")
        x = self._ovf(x << self.input_shift, "i", w, "wrap")
        return self._ovf(self._ovf(i + x, "i", w, "wrap"), "i", width, self.target.overflow.current)

    def _ensure_state(self, shape: torch.Size, device: torch.device) -> None:
        """Make every state a tensor of ``shape`` (reset values) on first use or a shape/device change."""
        for s in self._states:
            cur = getattr(self, s)
            if not isinstance(cur, torch.Tensor) or cur.shape != shape or cur.device != device:
                for k in ("threshold", "decay_syn", "decay_mem"):  # per-neuron values must fit one step's neurons
                    p = getattr(self, k, None)
                    if isinstance(p, torch.Tensor) and not fits_step(p.shape, shape):
                        raise ValueError(f"{self.layer_name}: per-neuron {k} of shape {tuple(p.shape)} does not fit "
                                         f"the input step of shape {tuple(shape)}")
                init = self.v_reset if (s == "v" and self.reset_kind == "zero") else 0
                width = self.target.widths.membrane if s == "v" else self.target.widths.current
                setattr(self, s, torch.full(shape, init, dtype=arith.storage_dtype(width), device=device))

    def _mem_decay(self, v: torch.Tensor) -> torch.Tensor:
        """What the membrane leak removes this step (IF: nothing)."""
        return torch.zeros_like(v)

    def _membrane(self, v: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """The membrane update of ``target.neuron.membrane_update`` with current ``i`` and the bias."""
        t = self.target
        w, mode, b = t.widths.membrane, t.overflow.membrane, self.bias_int.to(v.device)
        if t.neuron.membrane_update == "direct":
            return self._ovf(v - self._mem_decay(v) + i + b, "v", w, mode)
        dv = self._ovf(-self._mem_decay(v), "dv", w, "wrap")
        dv = self._ovf(dv + i, "dv", w, mode)
        dv = self._ovf(dv + b, "dv", w, mode)
        return self._ovf(v + dv, "v", w, mode)

    def _current(self, x: Input, shape: torch.Size, device: torch.device) -> torch.Tensor:
        """This step's current entering the membrane (IF/LIF: the input alone)."""
        return self._add_input(torch.zeros(shape, dtype=torch.int64, device=device), x)

    def single_step_forward(self, x: Input) -> torch.Tensor:
        """One step: current, membrane update, fire and reset; returns the spike counts (int8)."""
        x = self._as_input(x)
        device = x.counts.device if isinstance(x, SynapticEvents) else x.device
        self._ensure_state(x.shape, device)
        i = self._current(x, x.shape, device)
        v = self._membrane(self.v.to(torch.int64), i)
        th = self.threshold_int.to(v.device) if isinstance(self.threshold_int, torch.Tensor) else self.threshold_int
        n, v = fire_and_reset(v, th, self.target.neuron.compare, self.reset_kind, self.v_reset, self.max_spikes)
        v = self._ovf(v, "v", self.target.widths.membrane, self.target.overflow.membrane)
        self.v = v.to(self.v.dtype)
        return n.to(_spike_dtype(self.max_spikes))

    def multi_step_forward(self, x_seq: Input) -> torch.Tensor:
        """``[T, ...]`` integer inputs or sequence :class:`SynapticEvents`: one fused kernel
        (:mod:`hwsnn.fixed.fused`, bit-identical) where available, else the single step over ``t``."""
        if not isinstance(x_seq, SynapticEvents):
            require_time_axis(x_seq, self.layer_name)
        fused = self.fused_sequence(x_seq)
        if fused is not None:
            return fused[0]
        return torch.stack([self.single_step_forward(x_seq[t]) for t in range(len(x_seq))])

    # -- report ----------------------------------------------------------------------------------
    def _decay_params(self) -> dict[str, int]:
        """Decay parameters by their chip names (``k_syn``/``k_mem`` or ``du``/``dv``)."""
        return {}

    @property
    def tau_used(self) -> dict[str, float]:
        """Time constants actually computed, keyed like the float layer's (``tau``, ``tau_syn``, ``tau_mem``)."""
        return {}

    def fixed_report(self) -> dict:
        """Base report plus decay parameters, tau requested vs used, thresholds, exponents, reset, bias."""
        rep = super().fixed_report()
        rep.update(self._decay_params())
        rep.update(tau_requested=dict(self.tau_requested), tau_used=self.tau_used, threshold=_plain(self.threshold),
                   threshold_int=_plain(self.threshold_int), state_exponent=self.state_exponent,
                   input_exponent=self.input_exponent, input_shift=self.input_shift, reset=self.reset_kind,
                   v_reset=self.v_reset, max_spikes=self.max_spikes,
                   bias_exp=self.bias_exp.tolist() if isinstance(self.bias_exp, torch.Tensor) else self.bias_exp,
                   bias=self.bias.tolist(), readout=self.readout)
        return rep

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, threshold_int={self.threshold_int}, state_exponent={self.state_exponent}, "
                f"reset={self.reset_kind}, {self._decay_params()}")

    # -- the export format -------------------------------------------------------------------------
    def spec_fields(self) -> dict:
        """The neuron's fields of its op description (:mod:`targets.bundle.neuron`); one shared bias is a scalar table;
        a per-neuron threshold or decay is a ``*_per_neuron`` table, its parameter the first neuron's value."""
        per_neuron = isinstance(self.bias_exp, torch.Tensor)
        d = dict(threshold=first_value(self.threshold), threshold_int=first_value(self.threshold_int),
                 threshold_per_neuron=self.threshold if isinstance(self.threshold, torch.Tensor) else None,
                 reset=self.reset_kind, v_reset=self.v_reset,
                 max_spikes=self.max_spikes, readout=self.readout, bias_exp=0 if per_neuron else self.bias_exp,
                 state_exponent=self.state_exponent, input_shift=self.input_shift,
                 bias=self.bias.reshape(()) if self.bias.numel() == 1 and not per_neuron else self.bias,
                 bias_exp_per_neuron=self.bias_exp if per_neuron else None)
        for key in ("decay_mem", "decay_input", "decay_syn"):
            if hasattr(self, key):
                v = getattr(self, key)
                d[key] = first_value(v) if key != "decay_input" else v
                if key != "decay_input":
                    d[f"{key}_per_neuron"] = v if isinstance(v, torch.Tensor) else None
        return d

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Neuron":
        kind = "spikes" if self.max_spikes == 1 else "counts"
        fields = self.spec_fields()
        for key, v in fields.items():  # per-neuron tables: the neuron shape
            if key.endswith("_per_neuron") and key != "bias_exp_per_neuron" and v is not None:
                fields[key] = torch.broadcast_to(v, tuple(input_shape)).contiguous()
        return fmt.NEURON_OPS[self.spec_kind](**self._ports(name, input_shape, input_kind, input_shape, kind, 0),
                                               **fields)

    @staticmethod
    def _spec_kwargs(spec: "fmt.Neuron") -> dict:
        per = spec_tensor(spec.bias_exp_per_neuron)
        return dict(state_exponent=spec.state_exponent, reset=spec.reset, v_reset=spec.v_reset, bias=spec_tensor(spec.bias),
                    bias_exp=spec.bias_exp if per is None else per, readout=spec.readout, name=spec.name)

    @staticmethod
    def _spec_value(spec: "fmt.Neuron", key: str) -> IntOrTensor:
        """Parameter ``key`` of ``spec``: its per-neuron table where it has one."""
        tab = getattr(spec, f"{key}_per_neuron", None)
        return getattr(spec, key) if tab is None else spec_tensor(tab)


@spec_twin("if")
class FixedIFNode(FixedNeuron):
    r"""Integer IF neuron: float :math:`H = V + X` :math:`\leftrightarrow` twin ``direct``
    :math:`V = \mathrm{ovf}(V + (X \ll s) + B)` (``saturated_delta``: :math:`\delta = \mathrm{sat}(X + B)`).

    Rejected on ``xylo_min1`` targets: their membrane always leaks (minimum decrement 1), use
    :class:`FixedLIFNode`. Other parameters: see :class:`FixedNeuron`.
    """

    def __init__(self, target: Union[str, Target], threshold: int, **kw: object) -> None:
        super().__init__(target, threshold, **kw)  # type: ignore[arg-type]
        if self.target.decay.rounding == "xylo_min1":
            raise ValueError(f"{self.layer_name}: target {self.target.name!r} has no leak-free membrane "
                             "(xylo_min1 decay); convert an LIFNode with a large tau instead of an IFNode")

    spec_kind = "if"

    @classmethod
    def from_spec(cls, spec: "fmt.IF", target: Target) -> "FixedIFNode":
        return cls(target, cls._spec_value(spec, "threshold"), **cls._spec_kwargs(spec))


@spec_twin("lif")
class FixedLIFNode(FixedNeuron):
    r"""Integer LIF neuron, membrane decay ``decay_mem`` (:math:`k`, or ``dv`` on ``mul12`` targets).

    float ``decay_input=False``: :math:`H = V - (V - V_r)/\tau + X`  :math:`\leftrightarrow`
    ``direct``: :math:`V = \mathrm{ovf}(V - D(V - V_r, k) + (X \ll s) + B)`; ``saturated_delta``
    (Xylo; the input is taken as the already-filtered current): :math:`\delta = \mathrm{wrap}(-D(V, k))`,
    :math:`\delta = \mathrm{sat}(\mathrm{sat}(\delta + X) + B)`, :math:`V = \mathrm{sat}(V + \delta)`.

    float ``decay_input=True``: :math:`H = V + (X - (V - V_r))/\tau`  :math:`\leftrightarrow` the input
    term becomes :math:`X \gg k` (floor, or toward zero on toward_zero targets; ``mul12``:
    :math:`(X\,dv) \gg 12`). Only on ``direct`` targets without input shift: elsewhere use
    ``decay_input=False`` and fold :math:`1/\tau` into the weights.
    """

    def __init__(self, target: Union[str, Target], threshold: int, decay_mem: int, *, decay_input: bool = False,
                 **kw: object) -> None:
        super().__init__(target, threshold, **kw)  # type: ignore[arg-type]
        self.decay_mem = self._fit_decay(decay_mem, "mem")
        self.decay_input = bool(decay_input)
        if self.decay_input and (self.target.neuron.membrane_update != "direct" or self.input_shift > 0):
            raise ValueError(f"{self.layer_name}: decay_input=True cannot be computed on target {self.target.name!r}; "
                             "use decay_input=False and fold 1/tau into the weights")

    spec_kind = "lif"

    @classmethod
    def from_spec(cls, spec: "fmt.LIF", target: Target) -> "FixedLIFNode":
        return cls(target, cls._spec_value(spec, "threshold"), cls._spec_value(spec, "decay_mem"),
                   decay_input=spec.decay_input, **cls._spec_kwargs(spec))

    def _mem_decay(self, v: torch.Tensor) -> torch.Tensor:
        return decay_amount(v - self.v_reset, self.decay_mem, self.target, "mem")

    def _current(self, x: Input, shape: torch.Size, device: torch.device) -> torch.Tensor:
        c = super()._current(x, shape, device)
        if not self.decay_input:
            return c
        rnd = "toward_zero" if self.target.decay.rounding == "toward_zero" else "floor"
        if self.target.decay.mechanism == "mul12":
            return arith.shift_right(c * self.decay_mem, 12, rnd)
        return arith.shift_right(c, self.decay_mem, rnd)

    def _decay_params(self) -> dict[str, int]:
        return {decay_limits(self.target, "mem")[2]: _plain(self.decay_mem)}

    @property
    def tau_used(self) -> dict[str, float]:
        return {"tau": _tau_used(self.decay_mem, self.target, "mem")}


@spec_twin("cuba")
class FixedCubaLIFNode(FixedLIFNode):
    r"""Integer CUBA LIF neuron: current decay ``decay_syn`` (:math:`k_s`, or ``du``), membrane ``decay_mem``.

    float :math:`I = I - I/\tau_s + X` :math:`\leftrightarrow` ``decay_then_add`` (Loihi):
    :math:`I = \mathrm{ovf}(I - D(I, k_s) + (X \ll s))` (Loihi: ``fold_once``, toward-zero mul12 with
    factor ``du + 1``); ``add_then_decay`` (Xylo): :math:`I = \mathrm{sat}(I + \text{events})` per event,
    then :math:`I \mathrel{-}= D(I, k_s)` (the input decays in its own step: the current is the float
    one times :math:`1 - 2^{-k_s}`, ``current_gain`` in the report). The membrane is
    :class:`FixedLIFNode`'s with :math:`I` as input; the current is never reset by a spike.
    """

    _states = ("i", "v")

    def __init__(self, target: Union[str, Target], threshold: int, decay_syn: int, decay_mem: int,
                 **kw: object) -> None:
        super().__init__(target, threshold, decay_mem, **kw)  # type: ignore[arg-type]
        if self.decay_input:
            raise ValueError(f"{self.layer_name}: a CUBA neuron has no decay_input form")
        self.decay_syn = self._fit_decay(decay_syn, "syn")
        self.register_memory("i", 0)

    spec_kind = "cuba"

    @classmethod
    def from_spec(cls, spec: "fmt.Cuba", target: Target) -> "FixedCubaLIFNode":
        return cls(target, cls._spec_value(spec, "threshold"), cls._spec_value(spec, "decay_syn"),
                   cls._spec_value(spec, "decay_mem"), **cls._spec_kwargs(spec))

    def _current(self, x: Input, shape: torch.Size, device: torch.device) -> torch.Tensor:
        i = self.i.to(torch.int64)
        if self.target.decay.current_order == "decay_then_add":
            i = self._add_input(i - decay_amount(i, self.decay_syn, self.target, "syn"), x)
        else:
            i = self._add_input(i, x)
            i = i - decay_amount(i, self.decay_syn, self.target, "syn")
        self.i = i.to(self.i.dtype)
        return i

    def _decay_params(self) -> dict[str, int]:
        return {decay_limits(self.target, "syn")[2]: _plain(self.decay_syn), **super()._decay_params()}

    @property
    def tau_used(self) -> dict[str, float]:
        return {"tau_syn": _tau_used(self.decay_syn, self.target, "syn"), "tau_mem": _tau_used(self.decay_mem, self.target, "mem")}

    def fixed_report(self) -> dict:
        rep = super().fixed_report()
        if self.target.decay.current_order == "add_then_decay":  # (per neuron: a list)
            gain = lambda k: 1.0 - 1.0 / tau_of(int(k), self.target, "syn")  # noqa: E731
            ks = self.decay_syn
            rep["current_gain"] = [gain(k) for k in ks.reshape(-1)] if isinstance(ks, torch.Tensor) else gain(ks)
        return rep


register_fused_neuron(FixedIFNode, "if")
register_fused_neuron(FixedLIFNode, "lif")
register_fused_neuron(FixedCubaLIFNode, "cuba")


def _tau_used(param: IntOrTensor, target: Target, which: str) -> Union[float, tuple[float, float]]:
    """The time constant a decay parameter implements; per neuron: ``(shortest, longest)``."""
    if not isinstance(param, torch.Tensor):
        return tau_of(param, target, which)
    taus = sorted(tau_of(int(p), target, which) for p in param.unique())
    return (taus[0], taus[-1])


# -- converters ------------------------------------------------------------------------------------
def choose_state_exponent(v_threshold: float, target: Target) -> int:
    r"""Exponent :math:`e` putting the threshold integer near :math:`2^{f}`, :math:`f = \min(b - 3, 24)`
    (:math:`b` = membrane bits): the membrane keeps at least 2 bits of headroom above the threshold,
    and a wide target (``ideal``) spends its extra bits on headroom rather than on more than 24
    fraction bits; coarser if the mantissa would not fit the threshold width."""
    m = abs(v_threshold) or 1.0
    e = math.ceil(math.log2(m)) - min(target.widths.membrane.bits - 3, 24)
    while round(m * 2.0 ** -(e + target.neuron.threshold_shift)) > target.widths.threshold.hi:
        e += 1
    return e
