"""Random Xylo cores (as Rockpool specifications and as twins) for the xylo_core tests."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

VARIANT_TARGET = {"syns61201": "xylo", "syns65302": "xylo_audio3", "syns63300": "xylo_imu"}


def random_spec(seed: int, variant: str = "syns61201", *, n: int = 40, m: int = 6, nin: int = 16,
                synapses: Optional[int] = None, aliases: int = 6, density: float = 0.3, low_threshold: bool = False,
                bias: bool = True) -> dict:
    """A Rockpool Xylo specification with random integers: sparse int8 weights, per-neuron decays,
    thresholds and biases, weight shifts, aliases (some chained, some onto themselves), synapse 2
    where the variant has it. ``low_threshold``: thresholds small enough for 31-spike bursts."""
    g = np.random.default_rng(seed)
    s = synapses if synapses is not None else (1 if variant == "syns63300" else 2)
    nien = n if variant == "syns61201" else min(n, 128, max(1, n // 2 + 3))
    noen = n if variant == "syns61201" else min(n, 128, max(1, n // 2 + 5))

    def w(*shape):
        return (g.integers(-128, 128, shape) * (g.random(shape) < density)).astype(np.int64)

    hi = 300 if low_threshold else 4000
    spec = dict(
        weights_in=w(nin, nien, s), weights_rec=w(n, n, s), weights_out=w(noen, m),
        dash_mem=g.integers(0, 16, n), dash_syn=g.integers(0, 16, n), dash_mem_out=g.integers(0, 16, m),
        dash_syn_out=g.integers(0, 16, m), threshold=g.integers(1, hi, n), threshold_out=g.integers(1, 4000, m),
        bias=g.integers(-128, 128, n) if bias else np.zeros(n, np.int64),
        bias_out=g.integers(-128, 128, m) if bias else np.zeros(m, np.int64),
        weight_shift_in=int(g.integers(0, 7)), weight_shift_rec=int(g.integers(0, 6)),
        weight_shift_out=int(g.integers(0, 6)),
    )
    if s == 2:
        spec["dash_syn_2"] = g.integers(0, 16, n)
    al = [[] for _ in range(n)]
    for j in g.choice(n, min(aliases, n), replace=False):
        al[int(j)] = [int(g.integers(0, n))]
    if aliases >= 3:  # a chain j -> a -> b, and a self-alias
        al[0], al[1], al[2] = [1], [2], [2]
    spec["aliases"] = al
    return spec


def random_inputs(seed: int, steps: int, batch: int = 1, channels: int = 16, p: float = 0.4, top: int = 20) -> np.ndarray:
    """Input event counts ``[T, N, C]``: sparse, some above Xylo's 15 (clipped by the chip)."""
    g = np.random.default_rng(seed + 1000)
    return ((g.random((steps, batch, channels)) < p) * g.integers(0, top, (steps, batch, channels))).astype(np.int64)


def random_core(seed: int, variant: str = "syns61201", **kw):
    """The twin (:class:`~hwsnn.fixed.FixedXyloCore`) of :func:`random_spec`."""
    from quant.xylo import from_rockpool_xylo

    return from_rockpool_xylo(random_spec(seed, variant, **kw), variant).twin


def need_xylosim() -> None:
    """Skip the calling test where Rockpool or xylosim is missing (CI installs both: the ``xylo`` extra)."""
    import pytest

    pytest.importorskip("rockpool")
    pytest.importorskip("xylosim")


def xylosim_run(kw: dict, variant: str, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """Rockpool's ``XyloSim.from_specification(**kw)`` on one sample ``x`` ``[T, C]``: readout spikes and every
    recorded state (``Isyn2`` read from the engine where the variant's recording leaves it out)."""
    from quant.xylo import xylo_sim_class

    need_xylosim()
    xs = xylo_sim_class(variant).from_specification(**kw)
    out, _, rec = xs.evolve(np.asarray(x), record=True)
    rec = dict(rec)
    rec.setdefault("Isyn2", np.array(xs._xylo_layer.rec_i_syn2).T)
    return np.asarray(out), {k: np.asarray(v) for k, v in rec.items()}


def layered(target: str, seed: int, sizes=(12, 10), recurrent=(False, True), readout: int = 6, shift_rec=(2, 2),
            hidden_neuron=None, vote: bool = True) -> torch.nn.Sequential:
    """A layered Xylo twin network: input projection (shift 3, clipping counts above 15), CUBA hidden
    layers of ``sizes`` (recurrent where ``recurrent``), hidden projections with ``shift_rec``, a CUBA
    readout of ``readout`` neurons and a vote of 2; ``hidden_neuron=FixedLIFNode`` for LIF hidden layers."""
    import targets
    from hwsnn.fixed import FixedCubaLIFNode, FixedLIFNode, FixedLinear, FixedRecurrent, FixedVotingLayer
    from hwsnn.functional import set_step_mode

    tg = targets.load(target)
    g = torch.Generator().manual_seed(seed)

    def w(o, i, dens=0.5):
        return torch.randint(-128, 128, (o, i), generator=g) * (torch.rand(o, i, generator=g) < dens)

    def cuba(name, n, ro=False):
        th = int(torch.randint(40, 600, (1,), generator=g))
        bias = torch.randint(-20, 20, (n,), generator=g)
        if hidden_neuron is FixedLIFNode and not ro:
            return FixedLIFNode(tg, th, 2, bias=bias, name=name)
        return FixedCubaLIFNode(tg, th, int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(0, 6, (1,), generator=g)),
                                bias=bias, readout=ro, name=name)

    mods = [FixedLinear(w(sizes[0], 16), tg, None, 3, first_layer=True, name="fc0", clip=True)]
    prev = sizes[0]
    for k, s in enumerate(sizes):
        if k:
            mods.append(FixedLinear(w(s, prev), tg, None, shift_rec[k - 1], name=f"fc{k}"))
        nrn = cuba(f"h{k}", s)
        if recurrent[k]:
            nrn = FixedRecurrent(nrn, w(s, s, 0.3), shift_rec[-1], name=f"h{k}")
        mods.append(nrn)
        prev = s
    mods += [FixedLinear(w(readout, prev), tg, None, 4, name="fc_out"), cuba("out", readout, True)]
    if vote:
        mods.append(FixedVotingLayer(2, tg, name="vote"))
    net = torch.nn.Sequential(*mods)
    set_step_mode(net, "m")
    return net


def as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))
