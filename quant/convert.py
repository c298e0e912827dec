r"""Float network -> integer twin network, layer by layer with chained exponents.

``convert(model, target)`` walks an :class:`torch.nn.Sequential` of hwsnn float layers and
converts each with its registered converter (:func:`hwsnn.fixed.to_fixed`), choosing the scales
so that every layer hands the next one integers it can take:

* a neuron is converted first (its state exponent puts the threshold near the top of the
  membrane width, :func:`hwsnn.fixed.neuron.choose_state_exponent`), and the dense/conv layer
  feeding it gets ``output_exponent`` = the neuron's input exponent;
* a dropout's :math:`1/(1-p)` is folded into the next synaptic layer's weights
  (:func:`hwsnn.fixed.fold_rescale`), its mask seed is ``seed + layer index``;
* every other layer keeps the exponent of what flows in (synapse filters: their own grid);
* the first synaptic layer is the input projection (``first_layer``: Xylo's latency 0 and
  input-event cap), the last neuron layer is the readout.

This is the plain post-training conversion; quantization-aware training and calibrated scales
(``quant.prepare``) refine it in the next release.
"""

from __future__ import annotations

import copy
from typing import Optional, Union

import torch
import torch.nn as nn

from hwsnn.fixed import fold_rescale, to_fixed
from hwsnn.functional import set_step_mode
from hwsnn.layer import Dropout, Dropout2d, SynapseFilter
from hwsnn.neuron import BaseNode
from targets import Target

__all__ = ["convert"]


def _is_synaptic(m: nn.Module) -> bool:
    return isinstance(m, (nn.Linear, nn.Conv2d))


def convert(
    model: nn.Sequential,
    target: Union[str, Target],
    *,
    seed: int = 0,
    clip: bool = False,
    input_exponent: int = 0,
    names: Optional[list[str]] = None,
) -> nn.Sequential:
    """The twin network of the float ``model`` on ``target`` (module docstring).

    :param model: an :class:`torch.nn.Sequential` of hwsnn float layers (not modified)
    :param target: target name, YAML path or :class:`~targets.Target`
    :param seed: base seed of the dropout masks
    :param clip: clip parameters that do not fit (counted in each twin's ``clipped``) instead of
        raising :class:`~hwsnn.fixed.FitError`
    :param input_exponent: exponent of the network input (0 for spikes)
    :param names: layer names (default ``<class name lowercased><index>``)
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"convert: expected an nn.Sequential of hwsnn layers; got {type(model).__name__}")
    layers = list(model)
    if names is None:
        names = [f"{type(m).__name__.lower()}{i}" for i, m in enumerate(layers)]
    if len(names) != len(layers):
        raise ValueError(f"convert: {len(names)} names for {len(layers)} layers")
    neuron_idx = [i for i, m in enumerate(layers) if isinstance(m, BaseNode)]
    last_neuron = neuron_idx[-1] if neuron_idx else None
    twins: list[Optional[nn.Module]] = [None] * len(layers)
    # neurons first: their input exponents fix the output exponents of the layers feeding them
    for i in neuron_idx:
        twins[i] = to_fixed(layers[i], target, name=names[i], clip=clip, readout=(i == last_neuron))
    e_x = int(input_exponent)
    first_synaptic = True
    fold_p: Optional[float] = None
    for i, m in enumerate(layers):
        if isinstance(m, BaseNode):
            e_x = 0
            continue
        if _is_synaptic(m):
            j = next((j for j in range(i + 1, len(layers)) if isinstance(layers[j], BaseNode) or _is_synaptic(layers[j])), None)
            e_out = twins[j].input_exponent if j is not None and isinstance(layers[j], BaseNode) else None
            layer = m
            if fold_p is not None:
                layer = copy.deepcopy(m)
                with torch.no_grad():
                    layer.weight.copy_(fold_rescale(m.weight, fold_p))
                fold_p = None
            twins[i] = to_fixed(layer, target, name=names[i], clip=clip, input_exponent=e_x, output_exponent=e_out,
                                first_layer=first_synaptic)
            first_synaptic = False
            e_x = twins[i].output_exponent
        elif isinstance(m, SynapseFilter):
            twins[i] = to_fixed(m, target, name=names[i])
            e_x = twins[i].exponents["out_i"]
        elif isinstance(m, (Dropout, Dropout2d)):
            twins[i] = to_fixed(m, target, name=names[i], seed=seed + i)
            fold_p = m.p
        else:
            twins[i] = to_fixed(m, target, name=names[i], input_exponent=e_x)  # delay, pooling, flatten, voting
            e_out = getattr(twins[i], "output_exponent", None)
            if callable(e_out):
                e_out = e_out(e_x)
            if e_out is not None:
                e_x = e_out
    net = nn.Sequential(*twins)
    set_step_mode(net, getattr(layers[0], "step_mode", "m") if layers else "m")
    net.train(model.training)
    return net
