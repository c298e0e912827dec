r"""``OutputCode``: class scores of an output code over the readouts (decoded by nearest codeword).

With codebook :math:`C \in \{0,1\}^{K \times M}` (one codeword of equal weight :math:`w` per class)
the layer maps readout activity :math:`x` ``[..., M]`` to class scores ``[..., K]``

.. math::
    s_k = \sum_{j<M} (2 C_{kj} - 1)\, x_j ,

so the class with the largest time-summed score is the codeword nearest (Euclidean; Hamming for
0/1 counts) to the readout counts: :math:`\lVert n - c_k\rVert^2 = \lVert n\rVert^2 + w - 2 c_k\cdot n`
and :math:`\sum_t s_k = 2 c_k\cdot n - \mathbf 1\cdot n` depend on :math:`k` only through
:math:`c_k\cdot n` (proof in :mod:`targets.bundle.output_code`). The score is linear in ``x``, so
training takes the usual cross-entropy of the (gained) mean score; per step it lies in
:math:`[-(M - w), w]` for 0/1 spikes. It lets a chip with fewer readouts than classes classify
(XyloAudio 2: 10 digits on 8 readouts); the decoding runs off the chip.
"""

from __future__ import annotations

import numbers
from typing import Optional

import numpy as np
import torch
import torch.nn as nn

from targets.bundle.output_code import check_codebook, default_codebook

from ..base import StepModule, require_time_axis

__all__ = ["OutputCode"]


class OutputCode(nn.Module, StepModule):
    r"""Class scores :math:`s = (2C - 1)\,x` of an output code (module docstring).

    :param classes: number of classes :math:`K` (rows of the codebook)
    :param readouts: number of readouts :math:`M` (the last input dim)
    :param codebook: ``[classes, readouts]`` 0/1 codewords of equal weight, distinct; default
        :func:`targets.bundle.default_codebook` (for 10 classes on 8 readouts: weight-4 words of the
        extended Hamming code, pairwise distance :math:`\ge 4`)
    :param step_mode: ``'s'`` (input ``[N, M]``) or ``'m'`` (input ``[T, N, M]``)

    The codebook is a buffer (``state_dict`` key ``codebook``; not trained).
    """

    def __init__(self, classes: int, readouts: int, codebook: Optional[object] = None, step_mode: str = "s") -> None:
        super().__init__()
        for what, v in (("classes", classes), ("readouts", readouts)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"OutputCode: {what} must be an int >= 1; got {v!r}")
        self.classes, self.readouts = int(classes), int(readouts)
        if codebook is None:
            cb = default_codebook(self.classes, self.readouts)
        else:
            if isinstance(codebook, torch.Tensor):
                codebook = codebook.detach().cpu().numpy()
            cb = np.asarray(codebook)
            if cb.shape != (self.classes, self.readouts):
                raise ValueError(f"OutputCode: codebook has shape {list(cb.shape)}; expected [classes, readouts] = "
                                 f"[{self.classes}, {self.readouts}]")
            cb = check_codebook(cb, "OutputCode")
        self.register_buffer("codebook", torch.as_tensor(np.array(cb, dtype=np.uint8)))
        self.step_mode = step_mode

    @property
    def weight(self) -> int:
        """:math:`w`, the number of ones in every codeword."""
        return int(self.codebook[0].sum())

    def signs(self) -> torch.Tensor:
        """The score matrix :math:`2C - 1` ``[classes, readouts]`` (default float dtype)."""
        return 2.0 * self.codebook.to(torch.get_default_dtype()) - 1.0

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"OutputCode expects a tensor [..., readouts]; got {type(x).__name__}")
        if x.dim() < 1 or x.shape[-1] != self.readouts:
            raise ValueError(f"OutputCode: the last dim must be readouts = {self.readouts}; got input shape "
                             f"{tuple(x.shape)}")
        if not x.is_floating_point():
            x = x.to(torch.get_default_dtype())
        return x @ self.signs().to(device=x.device, dtype=x.dtype).T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.step_mode == "m":
            require_time_axis(x, "OutputCode", min_dim=2)
        return self.single_step_forward(x)

    def extra_repr(self) -> str:
        return f"classes={self.classes}, readouts={self.readouts}, weight={self.weight}, step_mode={self.step_mode}"
