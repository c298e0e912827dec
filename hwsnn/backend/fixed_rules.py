"""The integer arithmetic of a twin as plain data for the fused kernels: widths, decays, the neuron
and synapse-filter rules and the per-event input (see :mod:`hwsnn.backend.fixed`, which runs them;
the kernels in :mod:`.fixed_kernels` and :mod:`.fixed_triton` read them)."""


from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

__all__ = ["Width", "Decay", "NeuronRules", "SynapseRules", "EventInput", "OVERFLOW_MODES", "ROUNDINGS", "MECHANISMS"]

#: overflow mode codes of the kernels
OVERFLOW_MODES = {"saturate": 0, "wrap": 1, "fold_once": 2}
#: rounding codes of the kernels (``xylo_min1``: shift decays only)
ROUNDINGS = {"floor": 0, "toward_zero": 1, "xylo_min1": 2}
#: decay mechanism codes
MECHANISMS = {"shift": 0, "mul12": 1}

_MAX_BITS = 62  # widths the kernels handle (2^bits and 2^(bits-1) fit int64)
_MAX_CAP = 127  # spike counts are stored as int8


@dataclass(frozen=True)
class Width:
    """An integer width with its overflow mode, as the kernels take it (see :func:`hwsnn.fixed.arith.overflow`)."""

    bits: int
    signed: bool
    lo: int
    hi: int
    mode: str

    def __post_init__(self) -> None:
        if self.mode not in OVERFLOW_MODES:
            raise ValueError(f"Width: overflow mode must be one of {', '.join(OVERFLOW_MODES)}; got {self.mode!r}")

    def with_mode(self, mode: str) -> "Width":
        """The same width with another overflow mode."""
        return Width(self.bits, self.signed, self.lo, self.hi, mode)

    def params(self) -> tuple[int, int, int, int, int, int, int]:
        """``(mode, lo, hi, mask, full, half, signed)`` as int64 kernel arguments."""
        return (OVERFLOW_MODES[self.mode], self.lo, self.hi, (1 << self.bits) - 1, 1 << self.bits,
                1 << (self.bits - 1), int(self.signed))


@dataclass(frozen=True)
class Decay:
    r"""One decay: ``mechanism`` ``'shift'`` (``param`` = :math:`k`, amount :math:`D(x, k)` by ``rounding``)
    or ``'mul12'`` (``param`` = the factor :math:`d`, amount :math:`x - \mathrm{rnd}(x (4096 - d) \gg 12)`)."""

    mechanism: str
    param: int
    rounding: str

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS or self.rounding not in ROUNDINGS:
            raise ValueError(f"Decay: unknown mechanism/rounding {self.mechanism!r}/{self.rounding!r}")

    def params(self) -> tuple[int, int, int]:
        return (MECHANISMS[self.mechanism], self.param, ROUNDINGS[self.rounding])


@dataclass(frozen=True)
class NeuronRules:
    r"""The integer arithmetic of one neuron twin (see :mod:`hwsnn.fixed.neuron` for the equations).

    :param input_shift: :math:`s` of the input term :math:`x \ll s`
    :param current: current width and overflow (``saturations['i']``)
    :param membrane: membrane width and overflow (``saturations['v']``; ``'dv'`` for Xylo's delta)
    :param syn_decay: the current's decay of a CUBA neuron, ``None`` for IF/LIF (the input is the current)
    :param add_then_decay: CUBA order: add the input then decay (Xylo), else decay then add
    :param mem_decay: the membrane leak, ``None`` for IF
    :param input_decay: LIF ``decay_input=True``: the input term scaled by this decay's shift (``rounding``
        floor or toward_zero; ``mul12``: :math:`(c\,d) \gg 12`), else ``None``
    :param saturated_delta: Xylo's membrane update (:math:`\delta` saturations), else ``direct``
    :param compare_ge: ``>=`` (else ``>``) against ``threshold``
    :param reset_zero: zero reset to ``v_reset`` (else subtract, up to ``cap`` spikes per step)
    :param v_storage_bits: bits of the twin's stored membrane (8, 16, 32 or 64): the state read by the
        next step is the step's value cast to that dtype (a wrap; it matters only for values a
        ``fold_once`` leaves out of range), while the step itself goes on with the uncast value
    :param i_storage_bits: the same for a CUBA current
    :param input_wrap_bits: the input is two's complement at this width (Loihi's int32 ``a_in``):
        :math:`\mathrm{wrap}(I + \mathrm{wrap}(\mathrm{wrap}(x) \ll s))` before the current's overflow,
        each wrap counted with it; 0: exact
    """

    input_shift: int
    current: Width
    membrane: Width
    syn_decay: Optional[Decay]
    add_then_decay: bool
    mem_decay: Optional[Decay]
    input_decay: Optional[Decay]
    saturated_delta: bool
    compare_ge: bool
    reset_zero: bool
    v_reset: int
    threshold: int
    cap: int
    v_storage_bits: int = 64
    i_storage_bits: int = 64
    input_wrap_bits: int = 0

    def supported(self) -> bool:
        """Whether the kernels compute these rules exactly (else the caller steps the twin)."""
        decays = [d for d in (self.syn_decay, self.mem_decay, self.input_decay) if d is not None]
        return (
            max(self.current.bits, self.membrane.bits) <= _MAX_BITS
            and 0 <= self.input_shift <= _MAX_BITS
            and all(0 <= d.param <= (4097 if d.mechanism == "mul12" else _MAX_BITS) for d in decays)
            and all(not (d.mechanism == "mul12" and d.rounding == "xylo_min1") for d in decays)
            and (self.input_decay is None or self.input_decay.rounding != "xylo_min1")
            and 1 <= self.cap <= _MAX_CAP
            and self.v_storage_bits in (8, 16, 32, 64)
            and self.i_storage_bits in (8, 16, 32, 64)
            and (self.input_wrap_bits == 0 or 2 <= self.input_wrap_bits + self.input_shift <= _MAX_BITS)
        )

    def params(self) -> list[int]:
        """The flat int64 parameter vector of the kernels (layout: :data:`hwsnn.backend.fixed_kernels.P_*`)."""
        none = (0, 0, 0)
        return [
            self.input_shift, *self.current.params(), *self.membrane.params(),
            int(self.syn_decay is not None), *(self.syn_decay.params() if self.syn_decay else none),
            int(self.add_then_decay),
            int(self.mem_decay is not None), *(self.mem_decay.params() if self.mem_decay else none),
            int(self.input_decay is not None), *(self.input_decay.params() if self.input_decay else none),
            int(self.saturated_delta), int(self.compare_ge), int(self.reset_zero), self.v_reset, self.threshold, self.cap,
            self.v_storage_bits, self.i_storage_bits, self.input_wrap_bits,
        ]


@dataclass(frozen=True)
class SynapseRules:
    r"""The integer synapse filter: :math:`I \leftarrow \mathrm{ovf}(S\,(I + \mathit{one}) + (1-S)(I - D(I)))`."""

    one: int
    decay: Decay
    current: Width
    storage_bits: int = 64  # the stored state (read by the next step) is cast to this many bits; the output is not

    def supported(self) -> bool:
        d = self.decay
        return self.current.bits <= _MAX_BITS and self.storage_bits in (8, 16, 32, 64) and 0 <= d.param <= (4097 if d.mechanism == "mul12" else _MAX_BITS) and not (
            d.mechanism == "mul12" and d.rounding == "xylo_min1")

    def params(self) -> list[int]:
        return [self.one, *self.decay.params(), *self.current.params(), self.storage_bits]


@dataclass
class EventInput:
    r"""A sequence of synaptic events for a per-event-saturating current (Xylo), flattened.

    :param counts: event counts ``[T, R, N_in]`` (int64; ``R`` rows of neurons)
    :param weight: effective weights ``[N_out, N_in]`` (int64); neuron ``j`` is row ``j // N_out``, column ``j % N_out``
    """

    counts: torch.Tensor
    weight: torch.Tensor

    def sums(self) -> tuple[torch.Tensor, torch.Tensor]:
        r"""The positive and negative parts of every step's sum, ``[T, R N_out]`` int64 each:
        :math:`P = c\,w_+^\top`, :math:`Q = c\,w_-^\top`, as one matmul with the stacked weights, in
        float32 when every partial sum is an integer below :math:`2^{24}` (exact in any order of
        summation), float64 below :math:`2^{53}`, else int64 on the CPU."""
        c, w = self.counts, self.weight
        T, R, n_in = c.shape
        n_out = w.shape[0]
        ws = torch.cat([w.clamp(min=0), w.clamp(max=0)])  # [2 N_out, N_in]
        bound = int(c.abs().max()) * int(ws.abs().sum(1).max()) if c.numel() and w.numel() else 0
        c2 = c.reshape(T * R, n_in)
        if bound < 2**53:  # (float32 on the CPU only: CUDA may run float32 matmuls in TF32)
            dt = torch.float32 if bound < 2**24 and c.device.type == "cpu" else torch.float64
            pq = (c2.to(dt) @ ws.to(dt).T).to(torch.int64)
        else:
            pq = (c2.cpu() @ ws.cpu().T).to(c.device)
        pq = pq.reshape(T, R, 2, n_out)
        return pq[:, :, 0].reshape(T, -1), pq[:, :, 1].reshape(T, -1)


