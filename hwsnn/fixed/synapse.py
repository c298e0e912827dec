r"""Integer twin of the synapse filter: :class:`FixedSynapseFilter`.

==================================================  ==================================================
float (:class:`hwsnn.layer.SynapseFilter`)           integer twin, :math:`\tau = 2^k`
==================================================  ==================================================
:math:`I \leftarrow I - (1 - S)\,I/\tau + S`        :math:`I \leftarrow \mathrm{ovf}(I - (1 - S)\,D(I, k) + S\cdot\mathit{one})`
real current :math:`I`                              :math:`I_{int}\,2^{e}`, :math:`\mathit{one} = 2^{-e}`
==================================================  ==================================================

:math:`S` must be 0/1 spikes. The decay amount :math:`D` follows the target:

* ``shift`` targets: :math:`D(I, k)` of :func:`~hwsnn.fixed.arith.decay_amount` with the target's
  ``decay.rounding`` (generic_int8/ideal: floor, :math:`I \gg k`; Xylo: ``xylo_min1``);
* ``mul12`` targets (Loihi): the 12-bit factor :math:`d = \mathrm{round}(4096/\tau) = 4096 \gg k`
  and :math:`I - D = \mathrm{sign}(p)\,(|p| \gg 12)`, :math:`p = I\,(4096 - d)` (toward zero), as
  Loihi decays its current (:func:`~hwsnn.fixed.arith.mul12_decay`).

Overflow: the target's current width and mode (``saturations['out_i']``). The default state
exponent :math:`e = -(b - 8)` for a :math:`b`-bit current leaves 7 bits of integer headroom
(real currents up to about 127 spikes' worth) and :math:`b - 8` fraction bits.
"""

from __future__ import annotations

import math
from typing import Optional, Union

import torch

from targets import Target
from targets import bundle as fmt

from . import arith
from .arith import FitError
from .base import FixedModule, spec_twin
from .convert import register
from .fused import FusedSynapseSequence
from ..layer.synapse import SynapseFilter

__all__ = ["FixedSynapseFilter", "synapse_filter_to_fixed", "default_state_exponent"]


def default_state_exponent(target: Target) -> int:
    r""":math:`-(\min(b, 32) - 8)` for the target's :math:`b`-bit current: 7 integer bits plus the sign
    (see module), and at most 24 fraction bits, so that a downstream dense layer's integer sum of
    such values times wide weights stays within int64 even on the wide ``ideal`` target."""
    return -(min(target.widths.current.bits, 32) - 8)


@spec_twin("synapse_filter")
class FixedSynapseFilter(FusedSynapseSequence, FixedModule):
    r"""Integer synapse filter with :math:`\tau = 2^k` (see the module docstring for the equations).

    The state ``out_i`` (exponent ``state_exponent``) is returned every step as int64.

    :param k: decay shift, :math:`\tau = 2^k`, in ``0 .. target.decay.max_shift``
    :param target: a :class:`~targets.Target` or its name
    :param state_exponent: exponent :math:`e \le 0` of the current; one spike adds :math:`2^{-e}`
        (default :func:`default_state_exponent`)
    :param name: layer name in error messages
    """

    def __init__(self, k: int, target: Union[str, Target], state_exponent: Optional[int] = None, name: Optional[str] = None) -> None:
        super().__init__(target, name)
        tg = self.target
        k = int(k)
        if not 0 <= k <= tg.decay.max_shift:
            raise FitError(self.layer_name, "decay shift k (tau = 2^k)", k, f"allowed [0, {tg.decay.max_shift}]", tg.name)
        self.k = k
        e = default_state_exponent(tg) if state_exponent is None else int(state_exponent)
        if e > 0:
            raise ValueError(f"{self.layer_name}: state_exponent must be <= 0 so that one spike is an integer; got {e}")
        self.state_exponent = e
        self.one = 1 << (-e)
        width = tg.widths.current
        if self.one > width.hi:
            raise FitError(self.layer_name, "one spike (2^-state_exponent)", self.one, f"the current width {width}", tg.name)
        self.mul12 = tg.decay.mechanism == "mul12"
        self.decay_factor = (4096 >> k) if self.mul12 else None  # = round(4096 / 2^k) for k <= 12
        self.exponents["out_i"] = e
        self._dtype = arith.storage_dtype(width)
        self.register_memory("out_i", None)
        # filled by the converter
        self.tau_requested: Optional[float] = None

    @property
    def tau_used(self) -> int:
        """The time constant actually used, :math:`2^k`."""
        return 1 << self.k

    def _decayed(self, i: torch.Tensor) -> torch.Tensor:
        """:math:`I - D(I, k)` by the target's rule."""
        rounding = self.target.decay.rounding
        if self.mul12:
            return arith.mul12_decay(i, self.decay_factor, rounding)
        return arith.shift_decay(i, self.k, rounding)

    def single_step_forward(self, s: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(s) or s.is_floating_point() or s.is_complex():
            got = s.dtype if torch.is_tensor(s) else type(s).__name__
            raise TypeError(f"{self.layer_name}: expects 0/1 integer (or bool) spikes; got {got}")
        if s.dtype != torch.bool:
            bad = (s != 0) & (s != 1)
            if bool(bad.any()):
                raise ValueError(
                    f"{self.layer_name}: the synapse filter takes binary spikes (0/1); got value "
                    f"{int(s[bad].flatten()[0])} ({int(bad.sum())} non-binary value(s))"
                )
        spk = s.to(torch.bool)
        if self.out_i is None or self.out_i.shape != s.shape:
            if self.out_i is not None:
                raise ValueError(
                    f"{self.layer_name}: input shape changed from {tuple(self.out_i.shape)} to {tuple(s.shape)}; call reset()"
                )
            i = torch.zeros(s.shape, dtype=torch.int64, device=s.device)
        else:
            i = self.out_i.to(torch.int64)
        new = torch.where(spk, i + self.one, self._decayed(i))
        new, n = arith.overflow(new, self.target.widths.current, self.target.overflow.current)
        self.count_saturations("out_i", n)
        self.out_i = new.to(self._dtype)
        return new

    def multi_step_forward(self, s_seq: torch.Tensor) -> torch.Tensor:
        """``[T, ...]`` spikes: one fused kernel (:mod:`hwsnn.fixed.fused`, bit-identical) where
        available, else the single step over ``t``."""
        out = self.fused_sequence(s_seq)
        return super().multi_step_forward(s_seq) if out is None else out

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.SynapseFilter":
        return fmt.SynapseFilter(**self._ports(name, input_shape, input_kind, input_shape, "values", self.state_exponent),
                                 k=self.k, state_exponent=self.state_exponent, one=self.one, decay_factor=self.decay_factor)

    @classmethod
    def from_spec(cls, spec: "fmt.SynapseFilter", target: Target) -> "FixedSynapseFilter":
        return cls(spec.k, target, state_exponent=spec.state_exponent, name=spec.name)

    def fixed_report(self) -> dict:
        """Base report plus ``k``, ``tau_requested``, ``tau_used`` and their relative difference."""
        rep = super().fixed_report()
        rep.update(k=self.k, tau_used=self.tau_used, tau_requested=self.tau_requested,
                   tau_relative_difference=self.tau_relative_difference, state_exponent=self.state_exponent)
        if self.mul12:
            rep["decay_factor"] = self.decay_factor
        return rep

    @property
    def tau_relative_difference(self) -> Optional[float]:
        r""":math:`(\tau_{used} - \tau_{requested}) / \tau_{requested}` (``None`` if not converted)."""
        if self.tau_requested is None:
            return None
        return (self.tau_used - self.tau_requested) / self.tau_requested

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, k={self.k} (tau={self.tau_used}), state_exponent={self.state_exponent}"


@register(SynapseFilter)
def synapse_filter_to_fixed(
    layer: SynapseFilter,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    state_exponent: Optional[int] = None,
) -> FixedSynapseFilter:
    r"""Convert a float :class:`~hwsnn.layer.SynapseFilter` to :class:`FixedSynapseFilter`.

    :math:`k = \mathrm{round}(\log_2 \tau)` (the nearest power of two in log scale; a learnable
    :math:`\tau` uses its current value); ``tau_requested``, ``tau_used`` and
    ``tau_relative_difference`` are reported. :math:`k` outside ``0 .. decay.max_shift`` raises
    :class:`~hwsnn.fixed.arith.FitError` unless ``clip`` (then clamped, ``clipped['tau'] = 1``).
    """
    lname = name or "SynapseFilter"
    tau = float(layer.tau_value)
    k = int(round(math.log2(tau)))
    kmax = target.decay.max_shift
    if not 0 <= k <= kmax:
        if not clip:
            raise FitError(lname, "tau", tau, f"tau = 2^k with k in [0, {kmax}] (nearest k = {k})", target.name)
        k = min(max(k, 0), kmax)
        clipped = 1
    else:
        clipped = 0
    twin = FixedSynapseFilter(k, target, state_exponent, name=lname)
    twin.tau_requested = tau
    twin.count_clipped("tau", clipped)
    return twin
