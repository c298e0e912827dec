r"""Integer twin of a whole Xylo core: :class:`FixedXyloCore` (export op ``xylo_core``).

What the chip computes for a network placed on it (``../shared/targets/xylo.md``): one hidden
population of :math:`N` CUBA neurons with per-neuron parameters and one readout population of
:math:`M`, connected by ``w_in`` ``[Nin, Nien, S]`` (to the first ``Nien`` hidden neurons),
``w_rec`` ``[N, N, S]`` (row = source; a stack of hidden layers is a chain of blocks) and ``w_out``
``[Noen, M]`` (from the last ``Noen``), one weight shift per matrix. Per step:

=====================================================  ================================================================
stage                                                  integer rule (:math:`\mathrm{sat}`: int16, :math:`w' = \mathrm{wrap}_{16}(w \ll s)`)
=====================================================  ================================================================
input events (channel order, :math:`c \le 15`)        :math:`I_s \leftarrow \mathrm{sat}(I_s + c\,w'_{in})`, per event
recurrent / readout events (step :math:`t-1`'s R)      the same with ``w_rec`` (all N sources, in order), then ``w_out``
hidden neurons :math:`j = 0..N-1`                      :math:`I_s \mathrel{-}= D(I_s, k_s)`; :math:`\delta = \mathrm{wrap}(-D(V, k_m))`,
                                                       :math:`\delta = \mathrm{sat}(\mathrm{sat}(\delta + I_1 + I_2) + b)`, :math:`V = \mathrm{sat}(V + \delta)`;
                                                       :math:`n = R_j`; ``while V >= th and n < 31: n += 1; V -= th``;
                                                       alias :math:`a`: :math:`R_a = \min(R_a + n, 31)`
readout neurons                                        the same, one synapse, at most 1 spike, no alias
=====================================================  ================================================================

The twin is built from an export op (``from_spec``): the op of a bundle, the layered ops of a
converted network laid out as one core (``targets.bundle.xylo_fuse``, used by ``quant.xylo.fuse``;
tested equal to the layers), or a Rockpool specification (``quant.from_rockpool_xylo``). Its states (``i``, ``i2``, ``v``,
``spikes``, ``i_out``, ``v_out``) are the ones the simulator records (``record_states``).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from targets import Target, Width
from targets import bundle as fmt

from ..base import require_time_axis
from . import arith
from .base import FixedModule, spec_tensor, spec_twin
from .events import SynapticEvents, accumulate_events

__all__ = ["FixedXyloCore", "CORE_STATES"]

#: the integer states of the core, in the order a step computes them
CORE_STATES = ("i", "i2", "v", "spikes", "i_out", "v_out")
_INT16 = Width(bits=16, signed=True)


def _width16() -> Width:
    return _INT16


def _decay(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Xylo's :math:`D(x, k)`: :math:`x \\gg k`, 1 when that is 0 and :math:`x > 0` (``k`` per neuron)."""
    return arith.decay_amount(x, k, "xylo_min1")


@spec_twin("xylo_core")
class FixedXyloCore(FixedModule):
    r"""A whole Xylo core (module docstring). Takes input event counts ``[N_batch, Nin]`` per step,
    returns the readout spikes ``[N_batch, M]`` (int8).

    :param w_in: ``[Nin, Nien, S]`` input weights (int8 range)
    :param w_rec: ``[N, N, S]`` hidden weights (row: source)
    :param w_out: ``[Noen, M]`` readout weights (rows: the last ``Noen`` hidden neurons)
    :param shifts: ``(weight_shift_in, weight_shift_rec, weight_shift_out)``
    :param hidden: per hidden neuron ``dash_syn``, ``dash_syn2`` (or ``None``), ``dash_mem``,
        ``threshold``, ``bias``, ``alias`` (``-1``: none), each ``[N]``
    :param readout: per readout neuron ``dash_syn_out``, ``dash_mem_out``, ``threshold_out``, ``bias_out``
    :param blocks: first hidden index of each hidden layer, then ``N``; ``block_names``, ``state_exponents``
        (one per block) and ``readout_exponent`` describe the layers the core came from
    :param clip_events: clip input counts above the chip's 15 (the chip's rule) instead of refusing them
    """

    record_states = CORE_STATES

    def __init__(
        self,
        target: Union[str, Target],
        w_in: torch.Tensor,
        w_rec: torch.Tensor,
        w_out: torch.Tensor,
        shifts: Sequence[int],
        hidden: dict,
        readout: dict,
        *,
        blocks: Optional[Sequence[int]] = None,
        block_names: Sequence[str] = (),
        state_exponents: Optional[Sequence[int]] = None,
        readout_exponent: int = 0,
        clip_events: bool = True,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name or "xylo_core")
        t64 = lambda a: torch.as_tensor(a).to(torch.int64)  # noqa: E731
        self.register_buffer("w_in", t64(w_in))
        self.register_buffer("w_rec", t64(w_rec))
        self.register_buffer("w_out", t64(w_out))
        self.inputs, self.input_expansion, self.synapses = (int(s) for s in self.w_in.shape)
        self.hidden = int(self.w_rec.shape[0])
        self.output_expansion, self.readout = (int(s) for s in self.w_out.shape)
        self.weight_shifts = tuple(int(s) for s in shifts)
        for key in ("dash_syn", "dash_mem", "threshold", "bias", "alias"):
            self.register_buffer(key, t64(hidden[key]))
        d2 = hidden.get("dash_syn2")
        self.register_buffer("dash_syn2", None if d2 is None else t64(d2))
        for key in ("dash_syn_out", "dash_mem_out", "threshold_out", "bias_out"):
            self.register_buffer(key, t64(readout[key]))
        self.blocks = tuple(int(b) for b in (blocks if blocks is not None else (0, self.hidden)))
        self.block_names = tuple(block_names)
        self.state_exponents = tuple(int(e) for e in (state_exponents or [0] * (len(self.blocks) - 1)))
        self.readout_exponent = int(readout_exponent)
        self.clip = bool(clip_events)
        self.exponents = {"i_out": self.readout_exponent, "v_out": self.readout_exponent}
        tg = self.target
        self.input_cap = int(tg.synapse.max_input_events or 15)
        self.spike_cap = int(tg.neuron.max_spikes_per_step)
        self.readout_cap = int(tg.neuron.readout_max_spikes_per_step)
        self.to_spec(self.layer_name, (self.inputs,), "counts", 0)  # refuse what the format refuses, now
        eff = lambda w, s: arith.wrap(arith.shift(w, s), _width16())  # noqa: E731
        sh_in, sh_rec, sh_out = self.weight_shifts
        # per synapse: effective weights [targets, sources]
        self._eff_in = [eff(self.w_in[:, :, s], sh_in).T.contiguous() for s in range(self.synapses)]
        self._eff_rec = [eff(self.w_rec[:, :, s], sh_rec).T.contiguous() for s in range(self.synapses)]
        self._eff_out = eff(self.w_out, sh_out).T.contiguous()
        src = torch.nonzero(self.alias >= 0).flatten()
        self._alias_order = [int(j) for j in torch.unique(torch.cat([src, self.alias[src]]))]
        plain = torch.ones(self.hidden, dtype=torch.bool)
        plain[self._alias_order] = False
        self._plain = plain
        self.saturations = {k: 0 for k in ("i", "i2", "dv", "v", "i_out", "dv_out", "v_out")}
        for s in CORE_STATES:
            self.register_memory(s, None)
        self.step_mode = step_mode

    # -- one step --------------------------------------------------------------------------------
    def _cap_inputs(self, x: torch.Tensor) -> torch.Tensor:
        x = arith.require_integer(x, self.layer_name).to(torch.int64)
        if x.dim() != 2 or x.shape[1] != self.inputs:
            raise ValueError(f"{self.layer_name}: expects one step of input events [N, {self.inputs}]; got {tuple(x.shape)}")
        if bool((x < 0).any()):
            raise ValueError(f"{self.layer_name}: input event counts must be >= 0; got {int(x.min())}")
        over = x > self.input_cap
        if bool(over.any()):
            if not self.clip:
                raise arith.FitError(self.layer_name, "input events per step", int(x.max()),
                                     f"at most {self.input_cap} per channel ({int(over.sum())} value(s) above)",
                                     self.target.name)
            self.count_clipped("input_events", int(over.sum()))
            x = x.clamp(max=self.input_cap)
        return x

    def _ensure(self, batch: int, device: torch.device) -> None:
        if not isinstance(self.v, torch.Tensor) or self.v.shape[0] != batch:
            z = lambda k: torch.zeros((batch, k), dtype=torch.int64, device=device)  # noqa: E731
            self.i, self.i2, self.v, self.spikes = z(self.hidden), z(self.hidden), z(self.hidden), z(self.hidden)
            self.i_out, self.v_out = z(self.readout), z(self.readout)

    def _add(self, cur: torch.Tensor, counts: torch.Tensor, weight: torch.Tensor, state: str) -> torch.Tensor:
        out, n = accumulate_events(cur, SynapticEvents(counts, weight), _width16())
        self.count_saturations(state, n)
        return out

    def _membrane(self, v: torch.Tensor, i: torch.Tensor, dash_mem: torch.Tensor, bias: torch.Tensor, sfx: str) -> torch.Tensor:
        w = _width16()
        dv, n0 = arith.overflow(-_decay(v, dash_mem), w, "wrap")
        dv, n1 = arith.overflow(dv + i, w, "saturate")
        dv, n2 = arith.overflow(dv + bias, w, "saturate")
        v, n3 = arith.overflow(v + dv, w, "saturate")
        self.count_saturations("dv" + sfx, n0 + n1 + n2)
        self.count_saturations("v" + sfx, n3)
        return v

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._cap_inputs(x)
        self._ensure(x.shape[0], x.device)
        r_prev = self.spikes
        cur = [self.i, self.i2]
        for s in range(self.synapses):
            head = self._add(cur[s][:, :self.input_expansion], x, self._eff_in[s], "i" if s == 0 else "i2")
            c = torch.cat([head, cur[s][:, self.input_expansion:]], dim=1)
            cur[s] = self._add(c, r_prev, self._eff_rec[s], "i" if s == 0 else "i2")
        i_out = self._add(self.i_out, r_prev[:, self.hidden - self.output_expansion:], self._eff_out, "i_out")
        # hidden neurons
        i1 = cur[0] - _decay(cur[0], self.dash_syn)
        i2 = cur[1] if self.dash_syn2 is None else cur[1] - _decay(cur[1], self.dash_syn2)
        v = self._membrane(self.v, i1 + i2, self.dash_mem, self.bias, "")
        th, cap = self.threshold, self.spike_cap
        n = torch.where(v >= th, torch.clamp(torch.div(v, th, rounding_mode="floor"), max=cap), torch.zeros_like(v))
        r = torch.where(self._plain, n, torch.zeros_like(n))
        v = v - r * th
        for j in self._alias_order:  # in index order, from the count the aliases deposited so far
            room = torch.clamp(cap - r[:, j], min=0)
            k = torch.where(v[:, j] >= th[j], torch.minimum(torch.div(v[:, j], th[j], rounding_mode="floor"), room), 0)
            v[:, j] = v[:, j] - k * th[j]
            r[:, j] = r[:, j] + k
            a = int(self.alias[j])
            if a >= 0:
                r[:, a] = torch.clamp(r[:, a] + r[:, j], max=cap)
        # readout neurons
        i_out = i_out - _decay(i_out, self.dash_syn_out)
        vo = self._membrane(self.v_out, i_out, self.dash_mem_out, self.bias_out, "_out")
        no = torch.where(vo >= self.threshold_out,
                         torch.clamp(torch.div(vo, self.threshold_out, rounding_mode="floor"), max=self.readout_cap), 0)
        self.i, self.i2, self.v, self.spikes = i1, i2, v, r
        self.i_out, self.v_out = i_out, vo - no * self.threshold_out
        return no.to(torch.int8)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, self.layer_name)
        return torch.stack([self.single_step_forward(x_seq[t]) for t in range(x_seq.shape[0])])

    # -- report and the export format ----------------------------------------------------------------
    def fixed_report(self) -> dict:
        rep = super().fixed_report()
        rep.update(weight_shift=list(self.weight_shifts), blocks=list(self.blocks), block_names=list(self.block_names),
                   state_exponents=list(self.state_exponents), hidden=self.hidden, readout=self.readout,
                   inputs=self.inputs, synapses=self.synapses, aliases=int((self.alias >= 0).sum()))
        return rep

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.XyloCore":
        return fmt.XyloCore(
            **self._ports(name, input_shape, input_kind, (self.readout,), "spikes" if self.readout_cap == 1 else "counts", 0),
            inputs=self.inputs, hidden=self.hidden, readout=self.readout, synapses=self.synapses,
            input_expansion=self.input_expansion, output_expansion=self.output_expansion,
            weight_shift_in=self.weight_shifts[0], weight_shift_rec=self.weight_shifts[1],
            weight_shift_out=self.weight_shifts[2], input_cap=self.input_cap, spike_cap=self.spike_cap,
            readout_cap=self.readout_cap, clip_events=self.clip, blocks=self.blocks,
            block_names=",".join(self.block_names), state_exponents=self.state_exponents,
            readout_exponent=self.readout_exponent, w_in=self.w_in, w_rec=self.w_rec, w_out=self.w_out,
            dash_syn=self.dash_syn, dash_syn2=self.dash_syn2, dash_mem=self.dash_mem, threshold=self.threshold,
            bias=self.bias, alias=self.alias, dash_syn_out=self.dash_syn_out, dash_mem_out=self.dash_mem_out,
            threshold_out=self.threshold_out, bias_out=self.bias_out)

    @classmethod
    def from_spec(cls, spec: "fmt.XyloCore", target: Target) -> "FixedXyloCore":
        t = spec_tensor
        hidden = {k: t(getattr(spec, k)) for k in ("dash_syn", "dash_syn2", "dash_mem", "threshold", "bias", "alias")}
        readout = {k: t(getattr(spec, k)) for k in ("dash_syn_out", "dash_mem_out", "threshold_out", "bias_out")}
        return cls(target, t(spec.w_in), t(spec.w_rec), t(spec.w_out),
                   (spec.weight_shift_in, spec.weight_shift_rec, spec.weight_shift_out), hidden, readout,
                   blocks=spec.blocks, block_names=[n for n in spec.block_names.split(",") if n],
                   state_exponents=spec.state_exponents, readout_exponent=spec.readout_exponent,
                   clip_events=spec.clip_events, name=spec.name)

    def extra_repr(self) -> str:
        return (f"inputs={self.inputs}, hidden={self.hidden}, readout={self.readout}, synapses={self.synapses}, "
                f"shifts={self.weight_shifts}, blocks={self.blocks}")
