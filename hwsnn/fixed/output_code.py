r"""Integer twin of :class:`~hwsnn.layer.OutputCode`: the class scores of an output code.

* float layer: :math:`s_k = \sum_j (2C_{kj} - 1)\, x_j`;
* integer twin: :math:`s_k = \mathrm{ovf}\big(\sum_j (2C_{kj} - 1)\, x_{q,j}\big)`, exact in
  ``int64`` before ``ovf`` (the target's accumulator overflow, counted in
  ``saturations["accumulator"]``), output exponent = input exponent.

The argmax over classes of the time-summed scores is the nearest codeword to the readout counts
(proof in :mod:`targets.bundle.output_code`); the decoding runs off the chip, after the readout.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np
import torch

from targets import Target
from targets import bundle as fmt
from targets.bundle.output_code import check_codebook

from ..base import require_time_axis
from ..layer.output_code import OutputCode
from . import arith
from .base import FixedModule, spec_twin
from .convert import register

__all__ = ["FixedOutputCode"]


@spec_twin("output_code")
class FixedOutputCode(FixedModule):
    r"""Integer twin of :class:`~hwsnn.layer.OutputCode` (``[..., M] -> [..., K]``; module docstring).

    :param codebook: ``[classes, readouts]`` 0/1 codewords of equal weight, distinct
    :param target: target or its name
    :param input_exponent: :math:`e_{in}` (the scores keep it)
    :param name: layer name
    :param step_mode: ``'s'`` (``[N, M]``) or ``'m'`` (``[T, N, M]``)

    Output dtype: the accumulator's storage dtype. Integer inputs only.
    """

    def __init__(self, codebook: object, target: Union[str, Target], *, input_exponent: int = 0,
                 name: Optional[str] = None, step_mode: str = "s") -> None:
        super().__init__(target, name)
        if isinstance(codebook, torch.Tensor):
            codebook = codebook.detach().cpu().numpy()
        cb = check_codebook(np.asarray(codebook), self.layer_name)
        self.register_buffer("codebook", torch.as_tensor(np.array(cb, dtype=np.uint8)))
        self.classes, self.readouts = int(cb.shape[0]), int(cb.shape[1])
        self.input_exponent = int(input_exponent)
        self.step_mode = step_mode

    @property
    def weight(self) -> int:
        return int(self.codebook[0].sum())

    def output_exponent(self, input_exponent: Optional[int] = None) -> int:
        """The scores' exponent: the input's (the op only adds and subtracts)."""
        return self.input_exponent if input_exponent is None else int(input_exponent)

    def dequantize_output(self, y: torch.Tensor, input_exponent: Optional[int] = None) -> torch.Tensor:
        r""":math:`y\,2^{e_{in}}` (float64)."""
        return y.to(torch.float64) * 2.0 ** self.output_exponent(input_exponent)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        x = arith.require_integer(x, self.layer_name)
        if x.dim() < 1 or x.shape[-1] != self.readouts:
            raise ValueError(f"{self.layer_name}: the last dim must be readouts = {self.readouts}; got input shape "
                             f"{tuple(x.shape)}")
        x = x.to(torch.int64)
        if x.numel() and int(x.abs().max()) * self.readouts >= 2**62:
            raise ValueError(f"{self.layer_name}: inputs up to {int(x.abs().max())} summed over {self.readouts} "
                             "readouts would overflow int64")
        signs = 2 * self.codebook.to(device=x.device, dtype=torch.int64) - 1
        # integer matmul is not implemented on every device: sum the products explicitly
        s = (x.unsqueeze(-2) * signs).sum(dim=-1)
        s, n = arith.overflow(s, self.target.widths.accumulator, self.target.overflow.accumulator)
        self.count_saturations("accumulator", n)
        return s.to(arith.storage_dtype(self.target.widths.accumulator))

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        require_time_axis(x_seq, self.layer_name, min_dim=2)
        return self.single_step_forward(x_seq)

    def to_spec(self, name: str, input_shape, input_kind: str, input_exponent: Optional[int]) -> "fmt.OutputCode":
        out = (*input_shape[:-1], self.classes) if input_shape else ()
        return fmt.OutputCode(**self._ports(name, input_shape, input_kind, out, "values", input_exponent),
                              classes=self.classes, readouts=self.readouts, weight=self.weight,
                              codebook=self.codebook.cpu().numpy())

    @classmethod
    def from_spec(cls, spec: "fmt.OutputCode", target: Target) -> "FixedOutputCode":
        e = spec.output_exponent if spec.output_exponent is not None else 0
        return cls(spec.codebook, target, input_exponent=e, name=spec.name)

    def fixed_report(self) -> dict:
        """Base report plus the code: classes, readouts, weight, minimum Hamming distance, where it runs."""
        rep = super().fixed_report()
        cb = self.codebook.to(torch.int64)
        dist = (cb.unsqueeze(0) != cb.unsqueeze(1)).sum(-1)
        off = dist[~torch.eye(self.classes, dtype=torch.bool)]
        rep.update(classes=self.classes, readouts=self.readouts, weight=self.weight,
                   min_distance=int(off.min()) if off.numel() else None, input_exponent=self.input_exponent,
                   output_exponent=self.output_exponent(), runs="off chip (after the readout)",
                   rule="scores (2C - 1) x; class = argmax of the time-summed scores = nearest codeword")
        return rep

    def extra_repr(self) -> str:
        return f"classes={self.classes}, readouts={self.readouts}, weight={self.weight}, {super().extra_repr()}"


@register(OutputCode)
def _output_code_to_fixed(layer: OutputCode, target: Target, *, clip: bool = False, name: Optional[str] = None,
                          input_exponent: int = 0) -> FixedOutputCode:
    """:class:`FixedOutputCode` with the layer's codebook (``clip``: nothing to clip)."""
    return FixedOutputCode(layer.codebook, target, input_exponent=input_exponent, name=name)
