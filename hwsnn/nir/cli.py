"""What ``hwsnn run --model FILE.nir`` needs from :mod:`hwsnn.nir`: the imported, chip-ready model.

The model is imported with :func:`hwsnn.nir.import_from_nir` and ``fold=True`` (scales and input
gains multiplied into the weights before them, so that every layer has an integer twin), in
multi-step mode, with the conventions of the graph's hwsnn metadata or of the NIR version that
wrote it (``--dt``, ``--reset`` override them). Float training is skipped: the model arrives
trained; ``--epochs N`` trains it N more epochs in float before calibration and QAT.
"""

from __future__ import annotations

from typing import Any, Optional

import torch.nn as nn

from .conventions import NIRError
from .import_ import import_from_nir

__all__ = ["load_job_model"]


def load_job_model(path: str, dt: Optional[float] = None, reset: Optional[str] = None,
                   target: Any = None) -> tuple[nn.Sequential, float, str]:
    """``(model, dt, summary)``: the graph of ``path`` as a chip-ready float network, its time step
    and a one-paragraph account of the conventions used. With ``target`` (a name, path or
    :class:`targets.Target`) a reset the chip does not have is refused here, naming the node and
    the ``--reset`` that imports it with the chip's reset."""
    net = import_from_nir(path, dt=dt, reset=reset, fold=True, step_mode="m")
    info = net.nir_import
    if target is not None and reset is None:
        import targets

        allowed = targets.load(target).neuron.reset
        for node, kind in info.resets.items():
            if kind not in allowed:
                what = "to v_reset ('zero', NIR >= 1.0.6)" if kind == "zero" else "by subtraction ('subtract')"
                raise NIRError(f"{path}: node {node!r} resets {what}, which target {targets.load(target).name!r} does "
                               f"not have (it has: {', '.join(allowed)}); pass --reset {allowed[0]} to import the "
                               "neurons with the chip's reset (QAT then trains for it)", node)
    kinds = " -> ".join(type(m).__name__ for m in net)
    return net, info.dt, f"model {path}: {kinds}\n" + "\n".join(f"    {line}" for line in info.summary().splitlines())
