r"""The default network of the main job on a Xylo chip (XyloAudio 2, XyloAudio 3, XyloIMU): one that fits.

A Xylo chip runs one population of CUBA neurons (no neuron without a synaptic current), at most 8
readout neurons on XyloAudio 2, and a fan-out of 64 per neuron there (``../shared/targets/xylo.md``).
Ten digit classes on eight readouts: every class owns a **codeword** over the readouts and the
class is the nearest codeword to the readout spike counts (:class:`~hwsnn.layer.OutputCode`, decoded
off the chip)::

    [Linear(·, hidden) → CubaLIFNode(tau_syn[i], tau_mem[i])] for each hidden layer i → Dropout
      → Linear(hidden, readouts) → CubaLIFNode(tau_syn_out, tau_mem_out) → OutputCode(classes, readouts)

* no biases, no synapse filter, no delay (none on Xylo); soft (subtractive) reset, Xylo's;
* time constants powers of two (exact :math:`2^k` decays: ``dash = k``);
* ``hidden`` ≤ 64: the input channels' and hidden neurons' fan-out stays within XyloAudio 2's 64;
  two layers of them (128 hidden neurons of the chip's 1000 / 992 / 496; one hidden -> hidden
  matrix, so one ``weight_shift_rec``);
* the same 8-readout code on all three variants (XyloIMU has 16 readouts, XyloAudio 3 32: the
  network fits them as it is). With the default codebook (10 words of weight 4, pairwise Hamming
  distance 4) one wrong readout still decodes to the right class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence, Union

import torch.nn as nn

from . import functional, layer, neuron, surrogate

if TYPE_CHECKING:
    from targets import Target

__all__ = ["is_xylo", "xylo_network", "XYLO_DEFAULTS"]

#: the measured settings (benchmarks/bench_accuracy.py; docs/xylo.md): one entry of ``tau_syn`` /
#: ``tau_mem`` per hidden layer
XYLO_DEFAULTS = dict(hidden=64, tau_syn=(2.0, 4.0), tau_mem=(2.0, 2.0), readouts=8, tau_syn_out=2.0, tau_mem_out=2.0,
                     dropout=0.25, alpha=2.0)


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
    tau_syn: Sequence[float] = XYLO_DEFAULTS["tau_syn"],
    tau_mem: Sequence[float] = XYLO_DEFAULTS["tau_mem"],
    readouts: int = XYLO_DEFAULTS["readouts"],
    tau_syn_out: float = XYLO_DEFAULTS["tau_syn_out"],
    tau_mem_out: float = XYLO_DEFAULTS["tau_mem_out"],
    dropout: float = XYLO_DEFAULTS["dropout"],
    alpha: float = XYLO_DEFAULTS["alpha"],
) -> nn.Sequential:
    r"""The Xylo network (module docstring), multi-step: spikes ``[T, N, channels]`` in, class scores
    ``[T, N, classes]`` out (the per-step scores :math:`(2C - 1)\,s` of the readout spikes :math:`s`;
    the class is the argmax of their sum over time = the nearest codeword to the readout counts).

    One hidden CUBA layer of ``hidden`` neurons per entry of ``tau_syn`` / ``tau_mem``; on the chip
    they are blocks of the one hidden population (``w_rec``), each hop one step late, as the twins
    compute it. All hidden -> hidden matrices share Xylo's one ``weight_shift_rec``, so more than
    two layers need a joint shift (two have one such matrix). On Xylo the current takes the input
    before it decays (gain :math:`1 - 1/\tau_{syn}`): the converter folds that into the weights
    (:mod:`hwsnn.fixed.current_gain`), so the twin follows the float network. Every neuron's
    surrogate gradient is :class:`~hwsnn.surrogate.Sigmoid` with ``alpha`` (2: gentler than the
    default 4; measured better here).
    """
    tau_syn, tau_mem = tuple(tau_syn), tuple(tau_mem)
    if not tau_syn or len(tau_syn) != len(tau_mem):
        raise ValueError(f"xylo_network: one tau_syn and one tau_mem per hidden layer; got {tau_syn} and {tau_mem}")
    mods: list[nn.Module] = []
    width = channels
    for ts, tm in zip(tau_syn, tau_mem):
        mods += [layer.Linear(width, hidden, bias=False),
                 neuron.CubaLIFNode(tau_syn=ts, tau_mem=tm, v_reset=None, detach_reset=True,
                                    surrogate_function=surrogate.Sigmoid(alpha=alpha))]
        width = hidden
    mods += [
        layer.Dropout(dropout),
        layer.Linear(hidden, readouts, bias=False),
        neuron.CubaLIFNode(tau_syn=tau_syn_out, tau_mem=tau_mem_out, v_reset=None, detach_reset=True,
                           surrogate_function=surrogate.Sigmoid(alpha=alpha)),
        layer.OutputCode(classes, readouts),
    ]
    net = nn.Sequential(*mods)
    functional.set_step_mode(net, "m")
    return net
