"""The fixed whitelists of a run file: the layer ``type`` names and the surrogate names (no name
is ever imported or evaluated), and the constructor arguments a run file cannot set."""

from __future__ import annotations

__all__ = ["LAYER_TYPES", "SURROGATES", "NOT_SETTABLE"]


def _layer_types() -> dict[str, type]:
    from .. import layer, neuron

    names = ("Linear", "Conv2d", "AvgPool2d", "MaxPool2d", "Flatten", "SynapseFilter", "Delay", "Dropout", "Dropout2d",
             "VotingLayer", "OutputCode", "RecurrentContainer")
    table = {n: getattr(layer, n) for n in names}
    table.update({n: getattr(neuron, n) for n in ("IFNode", "LIFNode", "CubaLIFNode")})
    return dict(sorted(table.items()))


def _surrogates() -> dict[str, type]:
    from .. import surrogate

    return {n: getattr(surrogate, n) for n in ("ATan", "PiecewiseQuadratic", "Sigmoid")}


#: layer ``type`` names allowed in ``network`` and the classes they build
LAYER_TYPES: dict[str, type] = _layer_types()
#: ``surrogate_function`` names allowed for the neurons
SURROGATES: dict[str, type] = _surrogates()
#: constructor arguments a run file cannot set
NOT_SETTABLE = frozenset({"self", "step_mode", "device", "dtype"})
