r"""A layered Xylo twin network as the one Xylo core the chip runs: :func:`fuse`.

The layered twins of a Xylo target already compute the chip's timing (the input projection has
latency 0, every later projection and every recurrent matrix latency 1: the recurrent buffer
:math:`R` holds step :math:`t-1`'s spikes). Fusing lays the same integers out as the chip holds them
(``../shared/targets/xylo.md``):

==============================================  ===============================================
layered twin                                    ``xylo_core``
==============================================  ===============================================
input ``FixedLinear`` ``W0`` ``[H0, Nin]``       ``w_in[:, :H0, 0] = W0.T`` (first ``H0`` neurons)
hidden layer ``k`` (CUBA, or ``FixedRecurrent``  neurons ``blocks[k] .. blocks[k+1]-1``, its
with a CUBA neuron)                              threshold, decays, bias per neuron
``FixedLinear`` ``Wk`` between hidden layers     block ``w_rec[b_{k-1}.., b_k.., 0] = Wk.T``
recurrent matrix of layer ``k``                  diagonal block ``w_rec[b_k.., b_k.., 0]``
readout ``FixedLinear`` + CUBA ``readout``       ``w_out = W.T`` (rows: the last hidden layer)
==============================================  ===============================================

Per-event saturation order is kept: a neuron of layer ``k`` receives events from layer ``k-1``
(lower indices) before its own layer's, as the layered recurrent twin adds the input events before
the fed-back ones; zero weights add nothing. Every hidden -> hidden weight shares ``weight_shift_rec``
on the chip: layers with different shifts are refused, naming them. ``FixedVotingLayer`` (and other
routing twins) after the readout stay outside the core. The fused core is tested equal to the
layered twins on every state.
"""

from __future__ import annotations

import torch
from torch import nn

from hwsnn.fixed import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedLinear, FixedRecurrent, FixedXyloCore

__all__ = ["fuse", "FuseError"]


class FuseError(ValueError):
    """A layered network that one Xylo core cannot hold as it is (the message names the layer)."""


def _neuron(layer: nn.Module):
    return layer.neuron if isinstance(layer, FixedRecurrent) else layer


def _check_neuron(layer: nn.Module, readout: bool) -> None:
    n = _neuron(layer)
    name = layer.layer_name
    if isinstance(n, (FixedLIFNode, FixedIFNode)) and not isinstance(n, FixedCubaLIFNode):
        raise FuseError(f"{name}: {type(n).__name__} does not exist on Xylo: every Xylo neuron has a decaying synaptic "
                        "current (dash_syn = 0 erases the input before the membrane sees it); use CubaLIFNode")
    if not isinstance(n, FixedCubaLIFNode):
        raise FuseError(f"{name}: expected a CUBA neuron twin (FixedCubaLIFNode); got {type(n).__name__}")
    if n.reset_kind != "subtract":
        raise FuseError(f"{name}: reset {n.reset_kind!r}; the Xylo core resets by subtraction")
    if bool(n.readout) != readout:
        raise FuseError(f"{name}: {'a hidden' if not readout else 'the readout'} layer must be built with readout="
                        f"{readout} (Xylo's {'readout' if readout else 'hidden'} spike cap)")


def _per_neuron(value, n: int) -> torch.Tensor:
    t = torch.as_tensor(value).to(torch.int64)
    return t.expand(n).clone() if t.dim() == 0 or t.numel() == 1 else t.reshape(n).clone()


def fuse(twin: nn.Module, name: str = "xylo_core") -> nn.Sequential:
    """``Sequential(core, *routing)``: the layered Xylo twin network ``twin`` (a ``Sequential`` of
    ``FixedLinear(first_layer) -> hidden -> [FixedLinear -> hidden]* -> FixedLinear -> readout
    CUBA`` then routing layers such as voting; ``hidden``: ``FixedCubaLIFNode`` or
    ``FixedRecurrent`` of one) as one :class:`~hwsnn.fixed.FixedXyloCore` (module table).

    :raises FuseError: a layer the core cannot hold (LIF/IF neurons, biases on projections,
        latencies other than the chip's, different hidden weight shifts, a shape mismatch), named
    """
    layers = list(twin) if isinstance(twin, nn.Sequential) else [twin]
    if not layers or not isinstance(layers[0], FixedLinear):
        raise FuseError("fuse: the network must start with the input projection (FixedLinear); got "
                        f"{[type(m).__name__ for m in layers[:1]]}")
    tg = layers[0].target
    if tg.limits.layout != "xylo_core":
        raise FuseError(f"fuse: target {tg.name!r} has no Xylo core (limits.layout: {tg.limits.layout})")
    # split: projections and neuron layers alternate; the rest is routing
    pairs: list[tuple[FixedLinear, nn.Module]] = []
    i = 0
    while i + 1 < len(layers) and isinstance(layers[i], FixedLinear):
        pairs.append((layers[i], layers[i + 1]))
        i += 2
    routing = layers[i:]
    if len(pairs) < 2:
        raise FuseError("fuse: a Xylo core needs an input projection, at least one hidden layer and a readout "
                        f"(projection + CUBA readout); got {[type(m).__name__ for m in layers]}")
    for m in routing:
        if isinstance(m, (FixedLinear, FixedRecurrent, FixedLIFNode, FixedIFNode)):
            raise FuseError(f"{m.layer_name}: after the readout only routing layers (voting, flatten) may follow")
    for k, (lin, nrn) in enumerate(pairs):
        readout = k == len(pairs) - 1
        _check_neuron(nrn, readout)
        if lin.bias is not None:
            raise FuseError(f"{lin.layer_name}: a projection bias has no place on Xylo (put it on the neurons' bias)")
        want = 0 if k == 0 else 1
        if lin.latency != want:
            raise FuseError(f"{lin.layer_name}: latency {lin.latency}; on the Xylo core it is {want}")
        if bool(lin.first_layer) != (k == 0):
            raise FuseError(f"{lin.layer_name}: {'only the first' if k else 'the first'} projection is the input "
                            "projection (first_layer)")
        if isinstance(nrn, FixedRecurrent) and (readout or nrn.latency != 1):
            raise FuseError(f"{nrn.layer_name}: a recurrent population must be hidden with latency 1")
    hidden = pairs[:-1]
    sizes = [int(lin.out_features) for lin, _ in hidden]
    blocks = [0]
    for s in sizes:
        blocks.append(blocks[-1] + s)
    n, nin = blocks[-1], int(pairs[0][0].in_features)
    ro_lin, ro = pairs[-1]
    m = int(ro_lin.out_features)
    # one shift for every hidden -> hidden matrix
    rec_shifts = {lin.layer_name: int(lin.weight_shift) for lin, _ in hidden[1:]}
    rec_shifts.update({nrn.layer_name + " (recurrent)": int(nrn.projection.weight_shift)
                       for _, nrn in hidden if isinstance(nrn, FixedRecurrent)})
    if len(set(rec_shifts.values())) > 1:
        raise FuseError(f"fuse: Xylo has one weight_shift_rec for all hidden -> hidden weights; the layers have "
                        f"{rec_shifts} (convert with one shared shift)")
    w_in = torch.zeros((nin, sizes[0], 1), dtype=torch.int64)
    w_in[:, :, 0] = pairs[0][0].weight.to(torch.int64).T
    w_rec = torch.zeros((n, n, 1), dtype=torch.int64)
    for k, (lin, nrn) in enumerate(hidden):
        a, b = blocks[k], blocks[k + 1]
        if k > 0:
            w_rec[blocks[k - 1]:a, a:b, 0] = lin.weight.to(torch.int64).T
        if isinstance(nrn, FixedRecurrent):
            w_rec[a:b, a:b, 0] = nrn.projection.weight.to(torch.int64).T
    if int(ro_lin.in_features) != sizes[-1]:
        raise FuseError(f"{ro_lin.layer_name}: reads {ro_lin.in_features} features; the last hidden layer has {sizes[-1]}")
    w_out = ro_lin.weight.to(torch.int64).T.contiguous()
    per = {"dash_syn": [], "dash_mem": [], "threshold": [], "bias": []}
    for (lin, layer), s in zip(hidden, sizes):
        nr = _neuron(layer)
        per["dash_syn"].append(_per_neuron(nr.decay_syn, s))
        per["dash_mem"].append(_per_neuron(nr.decay_mem, s))
        per["threshold"].append(_per_neuron(nr.threshold_int, s))
        per["bias"].append(_per_neuron(nr.bias_int, s))
    hid = {k: torch.cat(v) for k, v in per.items()}
    hid["alias"] = torch.full((n,), -1, dtype=torch.int64)
    hid["dash_syn2"] = None
    out = {"dash_syn_out": _per_neuron(ro.decay_syn, m), "dash_mem_out": _per_neuron(ro.decay_mem, m),
           "threshold_out": _per_neuron(ro.threshold_int, m), "bias_out": _per_neuron(ro.bias_int, m)}
    shift_rec = next(iter(rec_shifts.values()), 0)
    core = FixedXyloCore(
        tg, w_in, w_rec, w_out, (int(pairs[0][0].weight_shift), shift_rec, int(ro_lin.weight_shift)), hid, out,
        blocks=blocks, block_names=[layer.layer_name for _, layer in hidden],
        state_exponents=[int(_neuron(layer).state_exponent) for _, layer in hidden],
        readout_exponent=int(ro.state_exponent), clip_events=bool(pairs[0][0].clip), name=name,
        step_mode=getattr(pairs[0][0], "step_mode", "s"))
    return nn.Sequential(core, *routing)

