r"""Integer twins of :class:`~hwsnn.layer.Dropout`, :class:`~hwsnn.layer.Dropout2d` and
:class:`~hwsnn.layer.DropConnectLinear`.

Masks come from the counter-based generator of :mod:`hwsnn.fixed.rng`
(``keep = (bits(seed, draw, index) >> 8) < keep_threshold``), are drawn on the first step after
:meth:`reset`, kept for all steps of the sample, stored **packed** (``numpy.packbits`` order,
``bitorder='little'``, over the C-order flattened mask) and redrawn after the next
:meth:`reset` with ``draw + 1``. The simulator regenerates them from ``(seed, draw,
keep_threshold, shape)`` or loads the packed tables.

**No float multiply in a twin.** The float dropout scales kept values by :math:`1/(1-p)`; the twin
outputs the plain integer :math:`x \odot B`. The converter of the *next* layer folds the factor
into that layer's weights, :func:`fold_rescale` (``w / (1 - p)``), before quantizing them; when
:math:`1/(1-p)` is a power of two :math:`2^{r}` (``rescale_exponent = r``, e.g. ``p = 0.5`` gives
``r = 1``) the fold is an exact exponent change.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch
import torch.nn as nn

from targets import Target
from targets import bundle as fmt

from ..base import require_time_axis
from ..layer.dropout import DropConnectLinear, Dropout, Dropout2d, check_p
from . import arith, rng
from .base import FixedModule, spec_tensor, spec_twin
from .convert import register

__all__ = [
    "fold_rescale",
    "rescale_exponent",
    "FixedDropout",
    "FixedDropout2d",
    "FixedDropConnectLinear",
]


def _check_seed(seed: object, who: str) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"{who}: seed must be an int; got {seed!r}")
    return seed


def fold_rescale(weight: torch.Tensor, p: float) -> torch.Tensor:
    r"""The weight of the layer after a dropout twin: :math:`w / (1 - p)` (float, before quantizing).

    A dropout twin outputs :math:`x \odot B` without the float layer's :math:`1/(1-p)`; a
    converter of the following layer calls this on its float weight so that the product is the
    float layer's.
    """
    p = check_p(p, "fold_rescale")
    return weight / (1.0 - p)


def rescale_exponent(p: float) -> Optional[int]:
    r""":math:`r` with :math:`1/(1-p) = 2^r` exactly, or ``None`` when it is not a power of two."""
    p = check_p(p, "rescale_exponent")
    scale = 1.0 / (1.0 - p)
    mant, exp = math.frexp(scale)
    return exp - 1 if mant == 0.5 else None


@spec_twin("dropout")
class FixedDropout(FixedModule):
    r"""Integer twin of :class:`~hwsnn.layer.Dropout` (one mask per sample).

    * float layer: :math:`M = B/(1-p)`, :math:`B \sim \mathrm{Bernoulli}(1-p)` from ``torch.rand``;
      :math:`y[t] = x[t] \odot M`; eval :math:`y = x`.
    * integer twin: :math:`B_i = [\,(\mathrm{bits}(\mathit{seed}, \mathit{draw}, i) \gg 8) <
      \mathrm{round}((1-p)\,2^{24})\,]` (:mod:`~.rng`); :math:`y_q[t] = x_q[t] \odot B` (same
      dtype); eval :math:`y_q = x_q`.

    so :math:`y = y_q\,2^{e}\,/(1-p)` with ``e`` the input exponent: the :math:`1/(1-p)`
    (:attr:`rescale`, :math:`2^{r}` with :attr:`rescale_exponent` when a power of two) is folded
    into the next layer's weight scale by the converter (:func:`fold_rescale`), never multiplied
    here. No rounding or overflow can occur (values are only zeroed); every target alike.

    The mask (shape :meth:`mask_shape` of one step ``[N, ...]``) is drawn at the first training
    step after :meth:`reset` with ``draw = draws`` (the number of masks drawn before), kept for
    all steps, stored packed in the memory ``mask_packed`` (``uint8``, :func:`~.rng.pack_mask`)
    with its shape in ``mask_shape_drawn`` and its draw number in ``mask_draw``. Single- and
    multi-step runs draw the same mask. A step of another shape before :meth:`reset` raises
    ``ValueError``.

    :param p: drop probability in :math:`[0, 1)`
    :param seed: generator seed (int; low 32 bits used)
    :param target: :class:`~targets.Target` or its name
    :param name: layer name for reports and errors
    :param step_mode: ``'s'`` (``[N, ...]``) or ``'m'`` (``[T, N, ...]``)
    """

    def __init__(
        self,
        p: float,
        seed: int,
        target: Union[str, Target],
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        self.p = check_p(p, type(self).__name__)
        self.seed = _check_seed(seed, type(self).__name__)
        self.keep_threshold = rng.keep_threshold(self.p)
        #: Masks drawn since construction; the next mask uses ``draw = draws``.
        self.draws = 0
        self.step_mode = step_mode
        self.register_memory("mask_packed", None)
        self.register_memory("mask_shape_drawn", None)
        self.register_memory("mask_draw", None)

    # -- scale ----------------------------------------------------------------------------------
    @property
    def rescale(self) -> float:
        r""":math:`1/(1-p)`, the float layer's factor on kept values (folded into the next layer)."""
        return 1.0 / (1.0 - self.p)

    @property
    def rescale_exponent(self) -> Optional[int]:
        r""":math:`r` with :attr:`rescale` :math:`= 2^r`, or ``None`` when not a power of two."""
        return rescale_exponent(self.p)

    # -- mask ---------------------------------------------------------------------------------
    def mask_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        """Shape of the mask for one step ``x`` (element-wise: the shape of ``x``)."""
        return tuple(x.shape)

    def draw_mask(self, shape: tuple[int, ...], device: Union[str, torch.device, None] = None) -> torch.Tensor:
        """Draw a new mask of ``shape`` (``draw = draws``, then ``draws += 1``), store it packed,
        and return it unpacked (``bool``)."""
        mask = rng.keep_mask(self.seed, self.draws, shape, self.p, device)
        self.mask_packed = rng.pack_mask(mask)
        self.mask_shape_drawn = tuple(shape)
        self.mask_draw = self.draws
        self.draws += 1
        return mask

    def mask(self) -> Optional[torch.Tensor]:
        """The current mask unpacked (``bool``), or ``None`` before the first step after reset."""
        if self.mask_packed is None:
            return None
        return rng.unpack_mask(self.mask_packed, self.mask_shape_drawn)

    def _mask_for(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.mask_shape(x)
        if self.mask_packed is None:
            return self.draw_mask(expected, x.device)
        if tuple(self.mask_shape_drawn) != expected:
            raise ValueError(
                f"{self.layer_name}: got a step of shape {tuple(x.shape)}, but the mask drawn since "
                f"the last reset() has shape {tuple(self.mask_shape_drawn)} (this step needs {expected}); "
                "call reset() (e.g. hwsnn.functional.reset_net) between samples"
            )
        return self.mask().to(x.device)

    def mask_tables(self) -> dict[str, torch.Tensor]:
        """The packed mask for export (``{"mask": uint8}``; empty before the first draw)."""
        return {} if self.mask_packed is None else {"mask": self.mask_packed}

    # -- stepping -----------------------------------------------------------------------------
    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = arith.require_integer(x, self.layer_name)
        if not self.training:
            return x
        return torch.where(self._mask_for(x), x, torch.zeros((), dtype=x.dtype, device=x.device))

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, self.layer_name)
        x_seq = arith.require_integer(x_seq, self.layer_name)
        if not self.training:
            return x_seq
        mask = self._mask_for(x_seq[0])
        return torch.where(mask, x_seq, torch.zeros((), dtype=x_seq.dtype, device=x_seq.device))

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Dropout":
        cls = fmt.Dropout2d if isinstance(self, FixedDropout2d) else fmt.Dropout
        return cls(**self._ports(name, input_shape, input_kind, input_shape, input_kind, input_exponent),
                   p=self.p, seed=self.seed, keep_threshold=self.keep_threshold, active=self.training,
                   draw=self.mask_draw if self.mask_draw is not None else self.draws,
                   mask_shape=self.mask_shape_drawn, mask=self.mask_packed)

    @classmethod
    def from_spec(cls, spec: "fmt.Dropout", target: Target) -> "FixedDropout":
        m = cls(spec.p, spec.seed, target, name=spec.name)
        if m.keep_threshold != spec.keep_threshold:
            raise ValueError(f"{spec.name}: keep_threshold {spec.keep_threshold} does not match p = {spec.p}")
        m.draws = spec.draw
        m.train(spec.active)
        return m

    def fixed_report(self) -> dict:
        """Base report plus ``p``, ``seed``, ``keep_threshold``, ``draws`` and the rescale."""
        rep = super().fixed_report()
        rep.update(
            p=self.p,
            seed=self.seed,
            keep_threshold=self.keep_threshold,
            draws=self.draws,
            rescale=self.rescale,
            rescale_exponent=self.rescale_exponent,
            note="output x*B without 1/(1-p): fold the rescale into the next layer's weight scale",
        )
        return rep

    def extra_repr(self) -> str:
        return f"p={self.p}, seed={self.seed}, {super().extra_repr()}"


@spec_twin("dropout2d")
class FixedDropout2d(FixedDropout):
    r"""Integer twin of :class:`~hwsnn.layer.Dropout2d`: one mask bit per (sample, channel).

    As :class:`FixedDropout` with the mask shape ``[N, C, 1, ..., 1]`` for a step ``[N, C, ...]``
    (the flat index of bit ``(n, c)`` is ``n*C + c``): :math:`y_q[t] = x_q[t] \odot B` with ``B``
    broadcast over the spatial dims; the float layer's :math:`1/(1-p)` is folded into the next
    layer. No rounding or overflow.
    """

    def mask_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        if x.dim() < 2:
            raise ValueError(
                f"{self.layer_name} expects steps shaped [N, C, ...] (rank >= 2; [T, N, C, ...] in step_mode "
                f"'m'); got a step of shape {tuple(x.shape)}"
            )
        return tuple(x.shape[:2]) + (1,) * (x.dim() - 2)


@spec_twin("dropconnect")
class FixedDropConnectLinear(FixedModule):
    r"""Integer twin of :class:`~hwsnn.layer.DropConnectLinear` (training/masked path).

    * float layer (training): unscaled masks :math:`M_n, m_n \sim \mathrm{Bernoulli}(1-p)`,
      :math:`y_n = a\big((W\odot M_n)x_n + b\odot m_n\big)`;
    * integer twin (training): masks :math:`M_n, m_n` from :mod:`~.rng`,
      :math:`A_n = \mathrm{ovf}\big(\sum_i M_{n,oi} W_{q,oi}\,x_{q,ni}\big)`,
      :math:`Y_n = \mathrm{ovf}\big(\mathrm{shift}(A_n, s) + m_{n,o} B_o\big)`,
      :math:`y_{q,n} = a(Y_n)`,

    as the dense twin (:mod:`hwsnn.fixed.dense`, rule ``sum``): :math:`W = W_q 2^{e_w}`,
    :math:`x = x_q 2^{e_x}`, weight shift :math:`s` (:math:`2^s`: a left shift for :math:`s\ge0`,
    a floor right shift for :math:`s<0`; ``target.synapse.weight_shift_min .. max``), output
    exponent :math:`e_{out} = e_w + e_x - s` (``exponents["output"]``), bias :math:`b = B\,2^{e_{out}}`
    (bias width); ``ovf`` is the target's accumulator overflow (``saturate``/``wrap``/``fold_once``
    into the accumulator width) after the sum and again after shift and bias, counted in
    ``saturations["accumulator"]``. The sum is the exact integer sum of the step on every target
    (no per-event saturation, no synaptic latency: DropConnect is a training-time layer). The
    activation :math:`a` is the identity or ReLU (:math:`\max(Y, 0)`, exact).

    **Masks.** One draw covers the whole batch: for sample ``n`` with ``S = out*in (+ out with a
    bias)`` bits, weight bit ``(n, o, i)`` has index ``n*S + o*in + i`` and bias bit ``(n, o)``
    has index ``n*S + out*in + o``. ``invariant=False`` draws on every step (``draw`` +1 per
    step, like the float layer's per-call masks); ``invariant=True`` draws on the first step after
    :meth:`reset` and keeps the masks (a batch of another size raises ``ValueError``). The last
    masks are kept packed in the memories ``mask_w_packed`` (``[N, out, in]``) and
    ``mask_b_packed`` (``[N, out]``), exported by :meth:`mask_tables`.

    **Eval** (``self.training`` false): a plain integer dense layer without masks,
    :math:`y_q = a(\mathrm{ovf}(W_q x_q + b_q))`. The float layer's eval is a Monte-Carlo Gaussian
    moment match whose mean pre-activation is :math:`(1-p)(Wx+b)`: the twin's pre-activation is
    that mean divided by :math:`1-p` (``eval_scale = 1 - p``; fold it into the next layer as
    :func:`fold_rescale` does for dropout); the Gaussian noise has no integer twin.

    :param weight: integer weights ``[out, in]`` (fit to the target's weight width)
    :param bias: integer bias ``[out]`` at the output exponent, or ``None``
    :param p: drop probability in :math:`[0, 1)`
    :param seed: generator seed
    :param target: target or its name
    :param invariant: keep the masks until :meth:`reset`
    :param relu: apply ReLU (the float layer's default activation)
    :param input_exponent: :math:`e_x`
    :param weight_exponent: :math:`e_w`
    :param weight_shift: :math:`s` (output exponent :math:`e_w + e_x - s`)
    :param clip: clip weights/bias that do not fit instead of raising
    :param name: layer name
    :param step_mode: ``'s'`` (``[N, in]``) or ``'m'`` (``[T, N, in]``)
    """

    def __init__(
        self,
        weight: torch.Tensor,
        bias: Optional[torch.Tensor],
        p: float,
        seed: int,
        target: Union[str, Target],
        *,
        invariant: bool = False,
        relu: bool = True,
        input_exponent: int = 0,
        weight_exponent: int = 0,
        weight_shift: int = 0,
        clip: bool = False,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        who = self.layer_name
        syn = self.target.synapse
        s = int(weight_shift)
        if not syn.weight_shift_min <= s <= syn.weight_shift_max:
            raise arith.FitError(
                who, "weight_shift", s, f"allowed [{syn.weight_shift_min}, {syn.weight_shift_max}] "
                "(output exponent = weight exponent + input exponent - shift)", self.target.name,
            )
        self.weight_shift = s
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError(f"{who}: weight must be an integer tensor [out, in]")
        w, n = arith.fit(
            arith.require_integer(weight, who),
            self.target.widths.weight,
            layer=who,
            parameter="weight",
            target=self.target.name,
            clip=clip,
            step=self.target.synapse.weight_step,
        )
        self.count_clipped("weight", n)
        self.register_buffer("weight", w.to(arith.storage_dtype(self.target.widths.weight)))
        self.out_features, self.in_features = (int(s) for s in w.shape)
        if bias is not None:
            if not isinstance(bias, torch.Tensor) or tuple(bias.shape) != (self.out_features,):
                raise ValueError(f"{who}: bias must be an integer tensor [out] = [{self.out_features}]")
            b, n = arith.fit(
                arith.require_integer(bias, who),
                self.target.widths.bias,
                layer=who,
                parameter="bias",
                target=self.target.name,
                clip=clip,
            )
            self.count_clipped("bias", n)
            self.register_buffer("bias", b.to(arith.storage_dtype(self.target.widths.bias)))
        else:
            self.register_buffer("bias", None)
        self.p = check_p(p, type(self).__name__)
        self.seed = _check_seed(seed, type(self).__name__)
        self.keep_threshold = rng.keep_threshold(self.p)
        self.invariant = bool(invariant)
        self.relu = bool(relu)
        self.input_exponent = int(input_exponent)
        self.weight_exponent = int(weight_exponent)
        self.output_exponent = self.weight_exponent + self.input_exponent - s
        self.exponents["weight"] = self.weight_exponent
        self.exponents["output"] = self.output_exponent
        if self.bias is not None:
            self.exponents["bias"] = self.output_exponent
        #: Masks drawn since construction; the next draw uses ``draw = draws``.
        self.draws = 0
        self.step_mode = step_mode
        self.register_memory("mask_w_packed", None)
        self.register_memory("mask_b_packed", None)
        self.register_memory("mask_batch", None)
        self.register_memory("mask_draw", None)
        self.register_memory("output", None)

    @property
    def eval_scale(self) -> float:
        r""":math:`1-p`: the float eval mean pre-activation is ``eval_scale`` times the twin's."""
        return 1.0 - self.p

    @property
    def bits_per_sample(self) -> int:
        """``S``: mask bits per sample (``out*in``, plus ``out`` with a bias)."""
        return self.out_features * self.in_features + (self.out_features if self.bias is not None else 0)

    # -- masks --------------------------------------------------------------------------------
    def draw_masks(self, batch_size: int, device: Union[str, torch.device, None] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Draw masks for ``batch_size`` samples (``draw = draws``, then ``draws += 1``); store them
        packed; return ``(mask_w [N, out, in], mask_b [N, out] or None)`` as ``bool``."""
        o, i = self.out_features, self.in_features
        flat = rng.keep_mask(self.seed, self.draws, (batch_size, self.bits_per_sample), self.p, device)
        mask_w = flat[:, : o * i].reshape(batch_size, o, i)
        mask_b = flat[:, o * i :] if self.bias is not None else None
        self.mask_w_packed = rng.pack_mask(mask_w)
        self.mask_b_packed = None if mask_b is None else rng.pack_mask(mask_b)
        self.mask_batch = int(batch_size)
        self.mask_draw = self.draws
        self.draws += 1
        return mask_w, mask_b

    def masks(self) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """The last masks unpacked ``(mask_w, mask_b)`` (``bool``), ``(None, None)`` before any."""
        if self.mask_w_packed is None:
            return None, None
        n, o, i = self.mask_batch, self.out_features, self.in_features
        mask_w = rng.unpack_mask(self.mask_w_packed, (n, o, i))
        mask_b = None if self.mask_b_packed is None else rng.unpack_mask(self.mask_b_packed, (n, o))
        return mask_w, mask_b

    def mask_tables(self) -> dict[str, torch.Tensor]:
        """The last sampled masks, packed (``{"mask_w": uint8, "mask_b": uint8}``; empty before any)."""
        tables: dict[str, torch.Tensor] = {}
        if self.mask_w_packed is not None:
            tables["mask_w"] = self.mask_w_packed
        if self.mask_b_packed is not None:
            tables["mask_b"] = self.mask_b_packed
        return tables

    # -- stepping -----------------------------------------------------------------------------
    def _check_step(self, x: object) -> torch.Tensor:
        x = arith.require_integer(x, self.layer_name)
        if x.dim() != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self.layer_name} expects a step of shape [N, in_features] = [N, {self.in_features}]; got "
                f"{tuple(x.shape)}"
            )
        return x

    def _masks_for(self, n: int, device: torch.device) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        if not self.invariant or self.mask_w_packed is None:
            return self.draw_masks(n, device)
        if self.mask_batch != n:
            raise ValueError(
                f"{self.layer_name} (invariant=True): got a batch of {n} samples, but the masks drawn since "
                f"the last reset() are for {self.mask_batch}; call reset() between samples"
            )
        mask_w, mask_b = self.masks()
        return mask_w.to(device), None if mask_b is None else mask_b.to(device)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check_step(x).to(torch.int64)
        w = self.weight.to(torch.int64)
        width, mode = self.target.widths.accumulator, self.target.overflow.accumulator
        bias = None if self.bias is None else self.bias.to(torch.int64)
        if self.training:
            mask_w, mask_b = self._masks_for(x.shape[0], x.device)
            acc = (torch.where(mask_w, w, 0) * x.unsqueeze(1)).sum(dim=-1)  # [N, out], exact int64
            if bias is not None:
                bias = torch.where(mask_b, bias, 0)
        else:
            acc = (w.unsqueeze(0) * x.unsqueeze(1)).sum(dim=-1)
        acc, n_ovf = arith.overflow(acc, width, mode)
        self.count_saturations("accumulator", n_ovf)
        if self.weight_shift or bias is not None:
            acc = arith.shift(acc, self.weight_shift, "floor")
            if bias is not None:
                acc = acc + bias
            acc, n_ovf = arith.overflow(acc, width, mode)
            self.count_saturations("accumulator", n_ovf)
        if self.relu:
            acc = acc.clamp_min(0)
        self.output = acc.to(arith.storage_dtype(self.target.widths.accumulator))
        return self.output

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.DropConnect":
        # invariant masks held for the current sample are exported with their draw; per-step masks
        # are transient: a run starts from the next draw and no mask table is written
        held = self.mask_draw if (self.invariant and self.mask_draw is not None) else None
        masks = self.mask_tables() if held is not None else {}
        return fmt.DropConnect(
            **self._ports(name, input_shape, input_kind, (self.out_features,), "values", self.output_exponent),
            in_features=self.in_features, out_features=self.out_features, has_bias=self.bias is not None,
            relu=self.relu, invariant=self.invariant, p=self.p, seed=self.seed, keep_threshold=self.keep_threshold,
            active=self.training, draw=held if held is not None else self.draws,
            mask_batch=self.mask_batch if held is not None else None, weight_shift=self.weight_shift,
            input_exponent=self.input_exponent, weight_exponent=self.weight_exponent, weight=self.weight,
            bias=self.bias, mask_w=masks.get("mask_w"), mask_b=masks.get("mask_b"),
        )

    @classmethod
    def from_spec(cls, spec: "fmt.DropConnect", target: Target) -> "FixedDropConnectLinear":
        m = cls(spec_tensor(spec.weight), spec_tensor(spec.bias), spec.p, spec.seed, target, invariant=spec.invariant,
                relu=spec.relu, input_exponent=spec.input_exponent, weight_exponent=spec.weight_exponent,
                weight_shift=spec.weight_shift, name=spec.name)
        m.draws = spec.draw
        m.train(spec.active)
        return m

    def fixed_report(self) -> dict:
        """Base report plus ``p``, ``seed``, ``keep_threshold``, ``draws``, ``invariant``, ``relu``."""
        rep = super().fixed_report()
        rep.update(
            p=self.p,
            seed=self.seed,
            keep_threshold=self.keep_threshold,
            draws=self.draws,
            invariant=self.invariant,
            relu=self.relu,
            eval_scale=self.eval_scale,
            note="eval: plain integer dense without masks (float eval mean = (1-p) * twin pre-activation)",
        )
        return rep

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}, "
            f"p={self.p}, seed={self.seed}, invariant={self.invariant}, relu={self.relu}, {super().extra_repr()}"
        )


# -- converters ---------------------------------------------------------------------------------
def _no_scales(who: str, scales: dict) -> None:
    extra = set(scales) - {"input_exponent"}
    if extra:
        raise TypeError(f"{who}: unexpected conversion option(s) {sorted(extra)}; allowed: seed, clip, name, input_exponent")


@register(Dropout)
def _dropout_to_fixed(
    layer: Dropout, target: Target, *, clip: bool = False, name: Optional[str] = None, seed: int = 0, **scales: int
) -> FixedDropout:
    """:class:`FixedDropout` with the layer's ``p`` and training flag (``clip`` has nothing to clip;
    ``input_exponent`` is accepted and unused: dropout keeps the grid)."""
    _no_scales("to_fixed(Dropout)", scales)
    twin = FixedDropout(layer.p, seed, target, name=name)
    twin.train(layer.training)
    return twin


@register(Dropout2d)
def _dropout2d_to_fixed(
    layer: Dropout2d, target: Target, *, clip: bool = False, name: Optional[str] = None, seed: int = 0, **scales: int
) -> FixedDropout2d:
    """:class:`FixedDropout2d` with the layer's ``p`` and training flag."""
    _no_scales("to_fixed(Dropout2d)", scales)
    twin = FixedDropout2d(layer.p, seed, target, name=name)
    twin.train(layer.training)
    return twin


@register(DropConnectLinear)
def _dropconnect_to_fixed(
    layer: DropConnectLinear,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    seed: int = 0,
    input_exponent: int = 0,
    weight_exponent: Optional[int] = None,
    output_exponent: Optional[int] = None,
) -> FixedDropConnectLinear:
    r""":class:`FixedDropConnectLinear`: :math:`W_q = \mathrm{round}(W 2^{-e_w})` (weight width,
    the target's weight step), ``e_w`` by default the smallest exponent that fits
    (:func:`~.arith.power_of_two_exponent` of :math:`\max|W|`); weight shift
    :math:`s = e_w + e_x - e_{out}` (``output_exponent=None``: :math:`s = 0`); :math:`B =
    \mathrm{round}(b\,2^{-e_{out}})` (bias width). The activation must be ``None`` or ``nn.ReLU``."""
    who = name or "DropConnectLinear"
    act = layer.activation
    if act is None:
        relu = False
    elif isinstance(act, nn.ReLU):
        relu = True
    else:
        raise TypeError(f"{who}: the integer twin supports activation None or nn.ReLU; got {act!r}")
    w = layer.weight.detach()
    if weight_exponent is None:
        weight_exponent = arith.power_of_two_exponent(
            float(w.abs().max()) if w.numel() else 0.0, target.widths.weight, target.synapse.weight_step
        )
    wq, n_w = arith.quantize(
        w, weight_exponent, target.widths.weight, layer=who, parameter="weight", target=target.name,
        clip=clip, step=target.synapse.weight_step,
    )
    if output_exponent is None:
        output_exponent = input_exponent + weight_exponent
    bq, n_b = None, 0
    if layer.bias is not None:
        bq, n_b = arith.quantize(
            layer.bias.detach(), output_exponent, target.widths.bias, layer=who,
            parameter="bias", target=target.name, clip=clip,
        )
    twin = FixedDropConnectLinear(
        wq, bq, layer.p, seed, target, invariant=layer.invariant, relu=relu, input_exponent=input_exponent,
        weight_exponent=weight_exponent, weight_shift=input_exponent + weight_exponent - output_exponent,
        clip=clip, name=name,
    )
    twin.count_clipped("weight", n_w)
    twin.count_clipped("bias", n_b)
    twin.train(layer.training)
    return twin
