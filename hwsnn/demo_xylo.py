r"""The default network of the main job on a Xylo chip (XyloAudio 2, XyloAudio 3, XyloIMU): one that fits.

A Xylo chip runs one population of CUBA neurons (no neuron without a synaptic current), at most 8
readout neurons on XyloAudio 2, and a fan-out of 64 per neuron there (``../shared/targets/xylo.md``).
Ten digit classes on eight readouts: every class owns a **codeword** over the readouts and the
class is the nearest codeword to the readout spike counts (:class:`~hwsnn.layer.OutputCode`, decoded
off the chip)::

    [Linear(·, hidden) → CubaLIFNode(tau_syn, tau_mem)] × depth → Dropout
      → Linear(hidden, readouts) → CubaLIFNode(tau_syn_out, tau_mem_out) → OutputCode(classes, readouts)

* no biases, no synapse filter, no delay (none on Xylo); soft (subtractive) reset, Xylo's;
* time constants powers of two (exact :math:`2^k` decays: ``dash = k``);
* ``hidden`` ≤ 64: the input channels' and hidden neurons' fan-out stays within XyloAudio 2's 64;
  ``depth`` (3) layers of them: 192 hidden neurons of the chip's 1000 / 992 / 496;
* the same 8-readout code on all three variants (XyloIMU has 16 readouts, XyloAudio 3 32: the
  network fits them as it is). With the default codebook (10 words of weight 4, pairwise Hamming
  distance 4) one wrong readout still decodes to the right class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Union

import torch.nn as nn

from . import functional, layer, neuron

if TYPE_CHECKING:
    from targets import Target

__all__ = ["is_xylo", "xylo_network", "XYLO_DEFAULTS"]

#: the measured settings (benchmarks/bench_accuracy.py; docs/xylo.md)
XYLO_DEFAULTS = dict(hidden=64, depth=3, readouts=8, tau_syn=2.0, tau_mem=2.0, tau_syn_out=2.0, tau_mem_out=2.0,
                     dropout=0.25)


def is_xylo(target: Union[str, "Target"]) -> bool:
    """Whether ``target`` is a Xylo chip (``limits.layout: xylo_core``: one hidden population)."""
    import targets

    t = targets.load(target) if isinstance(target, str) else target
    return t.limits.layout == "xylo_core"


def xylo_network(
    *,
    channels: int = 16,
    classes: int = 10,
    hidden: int = XYLO_DEFAULTS["hidden"],
    depth: int = XYLO_DEFAULTS["depth"],
    readouts: int = XYLO_DEFAULTS["readouts"],
    tau_syn: float = XYLO_DEFAULTS["tau_syn"],
    tau_mem: float = XYLO_DEFAULTS["tau_mem"],
    tau_syn_out: float = XYLO_DEFAULTS["tau_syn_out"],
    tau_mem_out: float = XYLO_DEFAULTS["tau_mem_out"],
    dropout: float = XYLO_DEFAULTS["dropout"],
) -> nn.Sequential:
    r"""The Xylo network (module docstring), multi-step: spikes ``[T, N, channels]`` in, class scores
    ``[T, N, classes]`` out (the per-step scores :math:`(2C - 1)\,s` of the readout spikes :math:`s`;
    the class is the argmax of their sum over time = the nearest codeword to the readout counts).

    ``depth`` hidden CUBA layers of ``hidden`` neurons each; on the chip they are blocks of the one
    hidden population (``w_rec``), each hop one step late, as the twins compute it. On Xylo the
    current takes the input before it decays (gain :math:`1 - 1/\tau_{syn}`): the converter folds
    that into the weights (:mod:`hwsnn.fixed.current_gain`), so the twin follows the float network.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"xylo_network: depth must be an int >= 1; got {depth!r}")
    mods: list[nn.Module] = []
    width = channels
    for _ in range(depth):
        mods += [layer.Linear(width, hidden, bias=False),
                 neuron.CubaLIFNode(tau_syn=tau_syn, tau_mem=tau_mem, v_reset=None, detach_reset=True)]
        width = hidden
    mods += [
        layer.Dropout(dropout),
        layer.Linear(hidden, readouts, bias=False),
        neuron.CubaLIFNode(tau_syn=tau_syn_out, tau_mem=tau_mem_out, v_reset=None, detach_reset=True),
        layer.OutputCode(classes, readouts),
    ]
    net = nn.Sequential(*mods)
    functional.set_step_mode(net, "m")
    return net
