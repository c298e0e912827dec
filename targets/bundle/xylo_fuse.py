r"""A layered network for a Xylo target as the one core the chip runs: :func:`fuse_ops` (torch-free;
the twin-level :func:`quant.xylo.fuse`, the fit check of :mod:`sim.mapping` and the Rockpool
hand-off all use it).

The layered ops of a Xylo target already compute the chip's timing (the input projection has
latency 0, every later projection and every recurrent matrix latency 1). Fusing lays the same
integers out as the chip holds them (``../shared/targets/xylo.md``):

==============================================  ===============================================
layered ops                                     ``xylo_core``
==============================================  ===============================================
input ``dense`` ``W0`` ``[H0, Nin]``              ``w_in[:, :H0, 0] = W0.T`` (the first ``H0`` neurons)
hidden layer ``k``: ``cuba``, or ``recurrent``    neurons ``blocks[k] .. blocks[k+1]-1``; threshold,
with a ``cuba`` neuron                            decays and bias per neuron
``dense`` ``Wk`` between hidden layers            block ``w_rec[b_{k-1}.., b_k.., 0] = Wk.T``
recurrent matrix of layer ``k``                   diagonal block ``w_rec[b_k.., b_k.., 0]``
readout ``dense`` + ``cuba`` (readout)            ``w_out = W.T`` (rows: the last hidden layer)
==============================================  ===============================================

The per-event saturation order is kept: a neuron of layer ``k`` receives layer ``k-1``'s events
(lower indices) before its own layer's, as the layered recurrent op adds the input events before
the fed-back ones, and zero weights add nothing. Every hidden -> hidden matrix shares
``weight_shift_rec`` on the chip: different shifts are refused, naming the layers. Routing ops after
the readout (``voting``, the ``output_code`` decoder...) run off the chip and are returned apart.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..target import Target
from .base import OpSpec
from .xylo_core import XyloCore, rule_problems

__all__ = ["fuse_ops", "FuseError", "OFF_CHIP"]

#: ops that may follow the readout (they run off the chip)
OFF_CHIP = ("voting", "output_code", "flatten", "dropout", "dropout2d")


class FuseError(ValueError):
    """A layered network that one Xylo core cannot hold as it is (the message names the layer)."""


def _neuron(op: OpSpec) -> OpSpec:
    return op.neuron if op.kind == "recurrent" else op


def _check_neuron(op: OpSpec, readout: bool) -> None:
    n = _neuron(op)
    if n.kind in ("lif", "if"):
        raise FuseError(f"{op.name}: {n.kind} neurons do not exist on Xylo: every Xylo neuron has a decaying synaptic "
                        "current (dash_syn = 0 erases the input before the membrane sees it); use CubaLIFNode")
    if n.kind != "cuba":
        raise FuseError(f"{op.name}: expected a CUBA neuron layer after the projection; got op {op.kind!r}")
    if n.reset != "subtract":
        raise FuseError(f"{op.name}: reset {n.reset!r}; the Xylo core resets by subtraction")
    if bool(n.readout) != readout:
        raise FuseError(f"{op.name}: {'the readout' if readout else 'a hidden'} layer must have readout = {readout} "
                        f"(Xylo's {'readout' if readout else 'hidden'} spike cap)")
    if n.input_shift != 0:
        raise FuseError(f"{op.name}: input_shift {n.input_shift}; the Xylo core has none")


def _per_neuron(op: OpSpec, n: int) -> dict[str, np.ndarray]:
    nr = _neuron(op)
    bias = np.asarray(nr.bias, np.int64)
    bias = (bias << nr.bias_exp) if nr.bias_exp >= 0 else (bias >> -nr.bias_exp)
    full = lambda v: np.broadcast_to(np.asarray(v, np.int64), (n,)).copy()  # noqa: E731
    each = lambda k: full(nr.per_neuron(k).reshape(-1))  # noqa: E731  (per-neuron tables where the op has them)
    return {"dash_syn": each("decay_syn"), "dash_mem": each("decay_mem"), "threshold": each("threshold_int"),
            "bias": full(bias.reshape(-1) if bias.size == n else bias.reshape(()))}


def _without_inactive_dropout(ops: list[OpSpec]) -> list[OpSpec]:
    """``ops`` less the inactive (inference) dropouts before the readout: there they are the identity,
    and the core has no place for them. An active one (training masks) is refused, named."""
    last = max((i for i, op in enumerate(ops) if _neuron(op).kind == "cuba"), default=-1)
    kept = []
    for i, op in enumerate(ops):
        if i < last and op.kind in ("dropout", "dropout2d"):
            if op.active:
                raise FuseError(f"{op.name}: an active {op.kind} (training masks) has no place on the Xylo core; "
                                "export the network in eval mode")
            continue
        kept.append(op)
    return kept


def fuse_ops(ops: Sequence[OpSpec], target: Target, name: str = "xylo_core") -> tuple[XyloCore, tuple[OpSpec, ...]]:
    """``(core, off_chip)``: the layered ``ops`` (``dense(first) -> hidden -> [dense -> hidden]* ->
    dense -> cuba(readout)``, then routing ops) as one :class:`XyloCore` for ``target``, and the ops
    after the readout (module docstring). A ``xylo_core`` op already (an imported specification, a
    two-synapse network converted by ``quant.convert``) followed by routing ops is returned as it is.
    Inactive (inference) dropouts before the readout are the identity and are left out.

    :raises FuseError: an op the core cannot hold (LIF/IF neurons, projection biases or delays,
        latencies other than the chip's, different hidden weight shifts), named
    """
    ops = list(ops)
    if target.limits.layout != "xylo_core":
        raise FuseError(f"target {target.name!r} has no Xylo core (limits.layout: {target.limits.layout})")
    if rule_problems(target):
        raise FuseError("; ".join(rule_problems(target)))
    if ops and ops[0].kind == "xylo_core":  # a core already (an import, a two-synapse network), routing after it
        for op in ops[1:]:
            if op.kind not in OFF_CHIP:
                raise FuseError(f"{op.name}: after the Xylo core only routing ops ({', '.join(OFF_CHIP)}) may follow; got "
                                f"{op.kind!r}")
        return ops[0], tuple(ops[1:])
    ops = _without_inactive_dropout(ops)
    for op in ops:  # the most common reason first
        if _neuron(op).kind in ("lif", "if"):
            _check_neuron(op, False)
    pairs: list[tuple[OpSpec, OpSpec]] = []
    i = 0
    while i + 1 < len(ops) and ops[i].kind == "dense":
        pairs.append((ops[i], ops[i + 1]))
        i += 2
    rest = tuple(ops[i:])
    if len(pairs) < 2:
        raise FuseError("a Xylo core needs an input projection (dense), at least one hidden layer and a readout "
                        f"(dense + CUBA readout); the network has {[f'{op.name} ({op.kind})' for op in ops]}")
    for op in rest:
        if op.kind not in OFF_CHIP:
            raise FuseError(f"{op.name}: after the readout only routing ops ({', '.join(OFF_CHIP)}) may follow; got "
                            f"{op.kind!r}")
    for k, (lin, nrn) in enumerate(pairs):
        readout = k == len(pairs) - 1
        _check_neuron(nrn, readout)
        if lin.bias is not None and np.any(lin.bias):
            raise FuseError(f"{lin.name}: a projection bias has no place on Xylo (use the neurons' bias)")
        if lin.delays is not None and np.any(lin.delays):
            raise FuseError(f"{lin.name}: per-synapse delays do not exist on Xylo")
        want = 0 if k == 0 else 1
        if lin.latency != want:
            raise FuseError(f"{lin.name}: latency {lin.latency}; on the Xylo core it is {want}")
        if bool(lin.first_layer) != (k == 0):
            raise FuseError(f"{lin.name}: {'only the first' if k else 'the first'} projection is the input projection "
                            "(first_layer)")
        if nrn.kind == "recurrent" and (readout or nrn.latency != 1):
            raise FuseError(f"{nrn.name}: a recurrent population must be hidden, with latency 1")
    hidden = pairs[:-1]
    sizes = [int(lin.out_features) for lin, _ in hidden]
    blocks = [0]
    for s in sizes:
        blocks.append(blocks[-1] + s)
    n, nin = blocks[-1], int(pairs[0][0].in_features)
    ro_lin, ro = pairs[-1]
    m = int(ro_lin.out_features)
    if int(ro_lin.in_features) != sizes[-1]:
        raise FuseError(f"{ro_lin.name}: reads {ro_lin.in_features} features; the last hidden layer has {sizes[-1]}")
    rec_shifts = {lin.name: int(lin.weight_shift) for lin, _ in hidden[1:]}
    rec_shifts.update({f"{nrn.name} (recurrent)": int(nrn.weight_shift) for _, nrn in hidden if nrn.kind == "recurrent"})
    if len(set(rec_shifts.values())) > 1:
        raise FuseError(f"Xylo has one weight_shift_rec for all hidden -> hidden weights; the layers have {rec_shifts} "
                        "(convert with one shared shift)")
    w_in = np.zeros((nin, sizes[0], 1), np.int64)
    w_in[:, :, 0] = np.asarray(pairs[0][0].weight, np.int64).T
    w_rec = np.zeros((n, n, 1), np.int64)
    for k, (lin, nrn) in enumerate(hidden):
        a, b = blocks[k], blocks[k + 1]
        if k > 0:
            w_rec[blocks[k - 1]:a, a:b, 0] = np.asarray(lin.weight, np.int64).T
        if nrn.kind == "recurrent":
            w_rec[a:b, a:b, 0] = np.asarray(nrn.weight, np.int64).T
    per = [_per_neuron(nrn, s) for (_, nrn), s in zip(hidden, sizes)]
    hid = {k: np.concatenate([p[k] for p in per]) for k in per[0]}
    out = _per_neuron(ro, m)
    first = pairs[0][0]
    core = XyloCore(
        name=name, input_shape=tuple(first.input_shape), input_kind=first.input_kind,
        output_shape=(m,), output_kind="spikes" if ro.max_spikes == 1 else "counts", output_exponent=0,
        inputs=nin, hidden=n, readout=m, synapses=1, input_expansion=sizes[0], output_expansion=sizes[-1],
        weight_shift_in=int(first.weight_shift), weight_shift_rec=next(iter(rec_shifts.values()), 0),
        weight_shift_out=int(ro_lin.weight_shift), input_cap=int(first.event_cap or target.synapse.max_input_events),
        spike_cap=int(target.neuron.max_spikes_per_step), readout_cap=int(ro.max_spikes),
        clip_events=bool(first.clip_events), blocks=tuple(blocks), block_names=",".join(nrn.name for _, nrn in hidden),
        state_exponents=tuple(int(_neuron(nrn).state_exponent) for _, nrn in hidden),
        readout_exponent=int(ro.state_exponent), w_in=w_in, w_rec=w_rec,
        w_out=np.ascontiguousarray(np.asarray(ro_lin.weight, np.int64).T), dash_syn=hid["dash_syn"], dash_syn2=None,
        dash_mem=hid["dash_mem"], threshold=hid["threshold"], bias=hid["bias"], alias=np.full(n, -1, np.int64),
        dash_syn_out=out["dash_syn"], dash_mem_out=out["dash_mem"], threshold_out=out["threshold"], bias_out=out["bias"])
    return core, rest
