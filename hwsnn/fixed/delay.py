r"""Integer twin of :class:`~hwsnn.layer.Delay`: a per-neuron ring buffer."""

from __future__ import annotations

from typing import Optional, Union

import torch

from targets import Target
from targets import bundle as fmt

from ..base import require_time_axis
from ..functional.misc import check_delay_steps
from ..layer.delay import Delay
from . import arith
from .base import FixedModule, spec_twin
from .convert import register

__all__ = ["FixedDelay"]


@spec_twin("delay")
class FixedDelay(FixedModule):
    r"""Integer twin of :class:`~hwsnn.layer.Delay`: a FIFO of depth :math:`d` per neuron.

    * float layer: :math:`y[t] = x[t-d]`, :math:`y[t] = 0` for :math:`t < d`;
    * integer twin: :math:`y_q[t] = x_q[t-d]`, :math:`y_q[t] = 0` for :math:`t < d`.

    Hardware form: a ring buffer ``fifo`` (``[d, *step_shape]``, zeros after :meth:`reset`) with a
    head pointer ``head``; each step reads ``y = fifo[head]``, writes ``fifo[head] = x`` and
    advances ``head = (head + 1) mod d``. Values are copied, never computed: no rounding, no
    overflow, the same on every target; the exponent is the input's. ``d = 0`` is the identity.
    The FIFO carries over between calls in both step modes (as the float layer's); a step of
    another shape before :meth:`reset` raises ``ValueError`` (the float layer silently restarts
    from zeros). The FIFO's dtype is the first input's integer dtype (promoted if a later input
    needs a wider one).

    :param delay_steps: :math:`d \ge 0`, at most ``target.synapse.max_delay`` (else
        :class:`~.arith.FitError`; with ``clip=True`` it is clipped to the limit and recorded)
    :param target: target or its name
    :param clip: clip a too deep delay instead of raising
    :param name: layer name
    :param step_mode: ``'s'`` (``[N, ...]``) or ``'m'`` (``[T, N, ...]``)
    """

    def __init__(
        self,
        delay_steps: int,
        target: Union[str, Target],
        *,
        clip: bool = False,
        name: Optional[str] = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(target, name)
        d = check_delay_steps(delay_steps, self.layer_name)
        limit = self.target.synapse.max_delay
        if d > limit:
            if not clip:
                raise arith.FitError(
                    self.layer_name, "delay_steps", d, f"allowed [0, {limit}] (target.synapse.max_delay)", self.target.name
                )
            self.count_clipped("delay_steps", 1)
            d = limit
        self._delay_steps = d
        self.step_mode = step_mode
        self.register_memory("fifo", None)
        self.register_memory("head", 0)

    @property
    def delay_steps(self) -> int:
        """The delay :math:`d` in steps (read-only)."""
        return self._delay_steps

    def _check(self, x: object) -> torch.Tensor:
        return arith.require_integer(x, self.layer_name)

    def _fifo_for(self, x: torch.Tensor) -> torch.Tensor:
        shape = (self._delay_steps,) + tuple(x.shape)
        fifo = self.fifo
        if fifo is None:
            return torch.zeros(shape, dtype=x.dtype, device=x.device)
        if tuple(fifo.shape) != shape:
            raise ValueError(
                f"{self.layer_name}: got a step of shape {tuple(x.shape)}, but the FIFO filled since the last "
                f"reset() holds steps of shape {tuple(fifo.shape[1:])}; call reset() between samples"
            )
        dtype = torch.promote_types(fifo.dtype, x.dtype)
        return fifo.to(device=x.device, dtype=dtype)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._check(x)
        if self._delay_steps == 0:
            return x
        fifo = self._fifo_for(x)
        h = self.head
        y = fifo[h].clone()
        fifo[h] = x
        self.fifo = fifo
        self.head = (h + 1) % self._delay_steps
        return y.to(torch.promote_types(x.dtype, fifo.dtype))

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, self.layer_name)
        x_seq = self._check(x_seq)
        d = self._delay_steps
        if d == 0:
            return x_seq
        fifo = self._fifo_for(x_seq[0])
        # Oldest entry first: the ring read from the head.
        stream = torch.cat((fifo.roll(-self.head, 0), x_seq.to(fifo.dtype)))
        T = x_seq.shape[0]
        self.fifo = stream[T:].clone()
        self.head = 0
        return stream[:T]

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.Delay":
        return fmt.Delay(**self._ports(name, input_shape, input_kind, input_shape, input_kind, input_exponent),
                         delay_steps=self._delay_steps)

    @classmethod
    def from_spec(cls, spec: "fmt.Delay", target: Target) -> "FixedDelay":
        return cls(spec.delay_steps, target, name=spec.name)

    def fixed_report(self) -> dict:
        """Base report plus ``delay_steps`` and the target's ``max_delay``."""
        rep = super().fixed_report()
        rep.update(delay_steps=self._delay_steps, max_delay=self.target.synapse.max_delay)
        return rep

    def extra_repr(self) -> str:
        return f"delay_steps={self._delay_steps}, {super().extra_repr()}"


@register(Delay)
def _delay_to_fixed(
    layer: Delay,
    target: Target,
    *,
    clip: bool = False,
    name: Optional[str] = None,
    input_exponent: Optional[int] = None,
) -> FixedDelay:
    """:class:`FixedDelay` with the layer's ``delay_steps`` (``input_exponent`` accepted, unused:
    a delay keeps the grid)."""
    return FixedDelay(layer.delay_steps, target, clip=clip, name=name)
