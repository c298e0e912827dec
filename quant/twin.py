"""Rebuild the torch integer twin network from an export directory.

``load_twin(export_dir)`` reads the verified tables (:func:`quant.load_export`) and constructs
the :mod:`hwsnn.fixed` twins with exactly the exported integers, so that a report can compare
the simulator with the twin of *the shipped tables* (``hwsnn report``), and so that an export
round trip (twin -> export -> twin) can be checked output for output.
"""

from __future__ import annotations

import os
from typing import Union

import torch
import torch.nn as nn

from hwsnn.fixed import (
    FixedAvgPool2d,
    FixedConv2d,
    FixedCubaLIFNode,
    FixedDelay,
    FixedDropConnectLinear,
    FixedDropout,
    FixedDropout2d,
    FixedFlatten,
    FixedIFNode,
    FixedLIFNode,
    FixedLinear,
    FixedMaxPool2d,
    FixedSynapseFilter,
    FixedVotingLayer,
)
from hwsnn.fixed import rng
from hwsnn.fixed.recurrent import FixedRecurrent
from hwsnn.functional import set_step_mode
from sim.bundle import Export, load_export

__all__ = ["load_twin"]


def _t(export: Export, entry: dict, role: str):
    name = entry.get("tables", {}).get(role)
    return None if name is None else torch.from_numpy(export.tables[name].astype("int64"))


def _layer(ex: Export, e: dict) -> nn.Module:
    tg, p, name, op = ex.target, e["params"], e["name"], e["op"]
    if op == "dense":
        return FixedLinear(_t(ex, e, "weight"), tg, _t(ex, e, "bias"), p["weight_shift"], latency=p["latency"],
                           delays=_t(ex, e, "delays"), first_layer=p["first_layer"], name=name,
                           input_exponent=p["input_exponent"], weight_exponent=p["weight_exponent"],
                           clip=p.get("clip_events", False))
    if op == "conv2d":
        left, right, top, bottom = p["padding"]
        if left != right or top != bottom:
            raise ValueError(f"{name}: asymmetric padding {p['padding']} cannot be rebuilt as a FixedConv2d")
        return FixedConv2d(_t(ex, e, "weight"), tg, _t(ex, e, "bias"), p["weight_shift"], p["stride"], (top, left),
                           p["dilation"], p["groups"], latency=p["latency"], first_layer=p["first_layer"], name=name,
                           input_exponent=p["input_exponent"], weight_exponent=p["weight_exponent"])
    if op == "recurrent":
        neuron = _layer(ex, {**e, "op": p["neuron_op"]})
        return FixedRecurrent(neuron, _t(ex, e, "weight"), p["weight_shift"], p["latency"], name=name,
                              clip=p.get("clip_events", False))
    if op in ("if", "lif", "cuba"):
        kw = dict(state_exponent=p["state_exponent"], reset=p["reset"], v_reset=p["v_reset"], bias=_t(ex, e, "bias"),
                  bias_exp=p["bias_exp"], readout=p["readout"], name=name)
        if op == "if":
            return FixedIFNode(tg, p["threshold"], **kw)
        if op == "lif":
            return FixedLIFNode(tg, p["threshold"], p["decay_mem"], decay_input=p["decay_input"], **kw)
        return FixedCubaLIFNode(tg, p["threshold"], p["decay_syn"], p["decay_mem"], **kw)
    if op == "synapse_filter":
        return FixedSynapseFilter(p["k"], tg, state_exponent=p["state_exponent"], name=name)
    if op in ("dropout", "dropout2d"):
        cls = FixedDropout2d if op == "dropout2d" else FixedDropout
        m = cls(p["p"], p["seed"], tg, name=name)
        if rng.keep_threshold(m.p) != p["keep_threshold"]:
            raise ValueError(f"{name}: keep_threshold {p['keep_threshold']} does not match p = {p['p']}")
        m.draws = int(p["draw"])
        m.train(bool(p["active"]))
        return m
    if op == "dropconnect":
        m = FixedDropConnectLinear(_t(ex, e, "weight"), _t(ex, e, "bias"), p["p"], p["seed"], tg, invariant=p["invariant"],
                                   relu=p["relu"], input_exponent=p["input_exponent"], weight_exponent=p["weight_exponent"],
                                   weight_shift=p["weight_shift"], name=name)
        m.draws = int(p["draw"])
        m.train(bool(p["active"]))
        return m
    if op == "delay":
        return FixedDelay(p["delay_steps"], tg, name=name)
    if op == "voting":
        return FixedVotingLayer(p["voting_size"], tg, shift=p["shift"], name=name)
    if op == "avgpool2d":
        divisor = p["divisor"]
        area = p["kernel_size"][0] * p["kernel_size"][1]
        return FixedAvgPool2d(p["kernel_size"], tg, p["stride"], p["padding"],
                              divisor_override=None if divisor == area else divisor, shift=p["shift"], name=name)
    if op == "maxpool2d":
        return FixedMaxPool2d(p["kernel_size"], tg, p["stride"], p["padding"], p["dilation"], p["ceil_mode"], name=name)
    if op == "flatten":
        return FixedFlatten(p["start_dim"], p["end_dim"], tg, name=name)
    raise ValueError(f"{name}: op {op!r} has no torch twin")


def load_twin(export: Union[str, os.PathLike, Export], step_mode: str = "m") -> nn.Sequential:
    """The :class:`torch.nn.Sequential` of twins holding the export's integers (verified on load).

    Dropout layers come back in the exported mode (``active``: training, masks drawn from the
    exported ``draw``); everything else is stateless between runs (call
    :func:`hwsnn.functional.reset_net` between samples, as for any twin).
    """
    ex = export if isinstance(export, Export) else load_export(export)
    net = nn.Sequential(*[_layer(ex, e) for e in ex.layers])
    set_step_mode(net, step_mode)
    return net
