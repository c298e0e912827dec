"""Twin networks that together hold every op kind of the export format, for the bundle tests."""

from __future__ import annotations

import torch

import targets
from hwsnn.fixed import FixedDropConnectLinear, FixedLIFNode
from hwsnn.functional import reset_net, set_step_mode
from tests.test_sim_network import _w, mlp, xylo_net
from tests.test_sim_recurrent import _net as recurrent_net


def conv_net() -> torch.nn.Sequential:
    """conv2d, lif, maxpool2d, dropout2d, conv2d (groups), if, avgpool2d, flatten, dense, lif, voting."""
    from hwsnn.fixed import (FixedAvgPool2d, FixedConv2d, FixedDropout2d, FixedFlatten, FixedIFNode, FixedLinear,
                             FixedMaxPool2d, FixedVotingLayer)

    tg = targets.load("generic_int8")
    g = torch.Generator().manual_seed(7)
    w = tg.widths
    net = torch.nn.Sequential(
        FixedConv2d(_w(g, (6, 2, 3, 3), w.weight), tg, _w(g, (6,), w.bias, 0.01), 0, padding=1, first_layer=True,
                    name="conv", weight_exponent=-8),
        FixedLIFNode(tg, 4000, 2, state_exponent=-8, reset="zero", name="lif_c"),
        FixedMaxPool2d(2, tg, name="maxp"),
        FixedDropout2d(0.5, 3, tg, name="drop2d"),
        FixedConv2d(_w(g, (4, 3, 3, 3), w.weight, 0.5), tg, None, 0, stride=2, padding=1, groups=2, name="conv2",
                    weight_exponent=-8),
        FixedIFNode(tg, 4000, state_exponent=-8, reset="zero", name="if_c"),
        FixedAvgPool2d(2, tg, name="avgp"),
        FixedFlatten(1, -1, tg, name="flat"),
        FixedLinear(_w(g, (10, 4), w.weight), tg, None, 0, name="fc", weight_exponent=-8),
        FixedLIFNode(tg, 60, 2, state_exponent=-8, reset="zero", readout=True, name="out"),
        FixedVotingLayer(5, tg, name="vote"),
    )
    set_step_mode(net, "m")
    return net


def dropconnect_net() -> torch.nn.Sequential:
    tg = targets.load("generic_int8")
    g = torch.Generator().manual_seed(3)
    net = torch.nn.Sequential(
        FixedDropConnectLinear(_w(g, (10, 8), tg.widths.weight), _w(g, (10,), tg.widths.bias, 0.01), 0.3, 9, tg,
                               invariant=True, name="dc"),
        FixedLIFNode(tg, 200, 1, name="lif"),
    )
    set_step_mode(net, "s")
    return net


def _with_masks(net: torch.nn.Sequential, x: torch.Tensor) -> torch.nn.Sequential:
    """Run once so that dropout and invariant drop-connect layers hold masks (exported as tables)."""
    with torch.no_grad():
        if net[0].step_mode == "s":
            for t in range(x.shape[0]):
                net(x[t])
        else:
            net(x)
    return net


def spikes(shape, seed: int = 0, p: float = 0.3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).to(torch.int8)


def xylo_core_net() -> torch.nn.Sequential:
    """One whole Xylo core (op xylo_core): synapse 2, aliases, per-neuron parameters."""
    from tests.xylo_nets import random_core

    return torch.nn.Sequential(random_core(4, "syns61201", n=24, m=5, low_threshold=True))


def xylo_code_net() -> torch.nn.Sequential:
    """A layered Xylo network with an inactive dropout inside the core and the output-code decoder after the
    readout (op output_code: 10 classes on the 8 readouts)."""
    from hwsnn.fixed import FixedDropout, FixedOutputCode
    from targets.bundle import default_codebook

    net = xylo_net(2)
    tg = net[0].target
    layers = list(net)
    net = torch.nn.Sequential(*layers[:2], FixedDropout(0.25, 11, tg, name="drop"), *layers[2:],
                              FixedOutputCode(default_codebook(10, 8), tg, name="code"))
    set_step_mode(net, "m")
    return net.eval()


#: name -> (builder, export keyword arguments, one sample's input shape, input kind)
NETS = {
    "mlp_loihi": (lambda: mlp("loihi", 0, "cuba"), {}, (12,), "spikes"),
    "mlp_lif": (lambda: mlp("generic_int8", 1, "lif"), {}, (12,), "spikes"),
    "mlp_if": (lambda: mlp("generic_int8", 0, "if"), {}, (12,), "spikes"),
    "conv": (conv_net, {"input_shape": (2, 8, 8)}, (2, 8, 8), "spikes"),
    "dropconnect": (dropconnect_net, {}, (8,), "spikes"),
    "recurrent": (lambda: recurrent_net("generic_int8", 0), {}, (8,), "spikes"),
    "xylo_recurrent": (lambda: recurrent_net("xylo", 1), {"input_kind": "counts"}, (8,), "counts"),
    "xylo": (lambda: xylo_net(0), {"input_kind": "counts"}, (16,), "counts"),
    "xylo_core": (xylo_core_net, {"input_kind": "counts"}, (16,), "counts"),
    "xylo_code": (xylo_code_net, {"input_kind": "counts"}, (16,), "counts"),
}


def build(name: str, out_dir, examples: bool = True, **extra):
    """``(twin, bundle path, inputs)``: the network ``name`` exported with test vectors."""
    import quant

    make, kw, shape, kind = NETS[name]
    net = make()
    x = spikes((12, 3, *shape), seed=len(name))
    if kind == "counts":
        x = x * torch.randint(1, 4, x.shape, generator=torch.Generator().manual_seed(1)).to(torch.int8)
    _with_masks(net, x)
    ex = {"inputs": x, "labels": torch.arange(3)} if examples else None
    path = quant.export(net, out_dir, examples=ex, **kw, **extra)
    return net, path, x
