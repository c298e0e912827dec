r"""How far a twin is from its float layer: the quantization error, measured and reported.

:func:`compare` takes the float layer's output and the twin's integer output with its exponent and
returns a :class:`TwinError`: the maximum and RMS error of the dequantized output
:math:`|y_q 2^{e} - y|`, and for spike outputs the fraction of equal spikes. With the twin given,
its saturation and clip counters are carried along, so a narrow target's error comes with its cause.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

import torch

from .base import FixedModule

__all__ = ["TwinError", "compare"]


@dataclass(frozen=True)
class TwinError:
    """Error of a twin's output against its float layer's (see :func:`compare`)."""

    layer: str
    target: str
    values: int
    max_abs: float
    rmse: float
    spike_agreement: Optional[float] = None
    saturations: dict = field(default_factory=dict)
    clipped: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        agree = "" if self.spike_agreement is None else f", spikes equal {100 * self.spike_agreement:.2f} %"
        sat = sum(self.saturations.values())
        return (
            f"{self.layer} on {self.target}: max |error| {self.max_abs:.4g}, RMSE {self.rmse:.4g} over "
            f"{self.values} values{agree}, {sat} saturations, clipped {self.clipped or 'nothing'}"
        )


def compare(
    float_out: torch.Tensor,
    twin_out: torch.Tensor,
    output_exponent: int = 0,
    *,
    twin: Optional[FixedModule] = None,
    spikes: Optional[bool] = None,
    layer: str = "",
    target: str = "",
) -> TwinError:
    r"""Compare ``float_out`` with ``twin_out * 2**output_exponent``.

    :param float_out: the float layer's output
    :param twin_out: the twin's integer output (same shape)
    :param output_exponent: exponent of ``twin_out`` (0 for spikes)
    :param twin: the twin (its name, target, saturations and clip counts go into the result)
    :param spikes: report spike agreement; default: when the twin's output is 0/1 valued int8
    """
    if float_out.shape != twin_out.shape:
        raise ValueError(f"compare: float output {tuple(float_out.shape)} and twin output {tuple(twin_out.shape)} differ in shape")
    if twin_out.is_floating_point():
        raise TypeError(f"compare: the twin's output must be an integer tensor; got {twin_out.dtype}")
    y = float_out.detach().to(torch.float64)
    q = twin_out.to(torch.float64) * 2.0**output_exponent
    diff = q - y
    n = diff.numel()
    if spikes is None:
        spikes = twin_out.dtype == torch.int8 and bool(((twin_out == 0) | (twin_out == 1)).all())
    agreement = float((q == y).to(torch.float64).mean()) if spikes and n else None
    return TwinError(
        layer=layer or (twin.layer_name if twin is not None else ""),
        target=target or (twin.target.name if twin is not None else ""),
        values=n,
        max_abs=float(diff.abs().max()) if n else 0.0,
        rmse=float(diff.pow(2).mean().sqrt()) if n else 0.0,
        spike_agreement=agreement,
        saturations=dict(twin.saturations) if twin is not None else {},
        clipped=dict(twin.clipped) if twin is not None else {},
    )
