"""Random Loihi networks: the twin and the simulator agree bit for bit on spikes, u, v and every counter.

Delays up to 62, weight_exp (weight_shift) from -8 to 7, all three sign modes, biases with per-neuron
exponents, du/dv at their extremes, thresholds up to 2^17 - 1, recurrent populations, and value inputs
large enough to wrap the int32 channel, a_in << 6 and u + (a_in << 6).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import quant
import targets
from hwsnn.fixed import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedLinear
from hwsnn.fixed.recurrent import FixedRecurrent
from hwsnn.functional import set_step_mode
from tests.test_sim_network import _compare

TG = targets.load("loihi")


def _weights(g: torch.Generator, shape, mode: str, density: float = 0.6) -> torch.Tensor:
    """Weights Lava keeps unchanged in ``mode`` (mixed: even values in [-256, 254])."""
    if mode == "excitatory":
        w = torch.randint(0, 256, shape, generator=g)
    elif mode == "inhibitory":
        w = -torch.randint(0, 256, shape, generator=g)
    else:
        w = torch.randint(-128, 128, shape, generator=g) * 2
    w = w * (torch.rand(shape, generator=g) < density)
    if mode == "mixed":  # make sure both signs are there
        w.view(-1)[0], w.view(-1)[1] = -256, 254
    return w


def _neuron(g: torch.Generator, kind: str, n: int, name: str):
    pick = lambda opts: opts[int(torch.randint(0, len(opts), (1,), generator=g))]  # noqa: E731
    th = pick([1, 7, 1000, (1 << 17) - 1, int(torch.randint(1, 1 << 17, (1,), generator=g))])
    bias = torch.randint(-4096, 4096, (n,), generator=g) * (torch.rand(n, generator=g) < 0.5)
    exps = torch.randint(-7, 8, (n,), generator=g)
    kw = dict(state_exponent=-6, bias=bias, bias_exp=exps, name=name)
    if kind == "if":
        return FixedIFNode(TG, th, **kw)
    dv = pick([0, 1, 4095, 4096, int(torch.randint(0, 4097, (1,), generator=g))])
    if kind == "lif":
        return FixedLIFNode(TG, th, dv, **kw)
    du = pick([-1, 0, 4095, int(torch.randint(-1, 4096, (1,), generator=g))])
    return FixedCubaLIFNode(TG, th, du, dv, **kw)


def _net(seed: int) -> torch.nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    modes = ["mixed", "excitatory", "inhibitory"]
    n_in, h1, h2, n_out = 10, 14, 9, 5
    kinds = ["cuba", "lif", "if"]
    shift = lambda: int(torch.randint(-8, 8, (1,), generator=g))  # noqa: E731
    delays = torch.randint(0, 63, (h1, n_in), generator=g)
    delays.view(-1)[0] = 62
    rec = FixedRecurrent(_neuron(g, kinds[seed % 3], h2, "rec"), _weights(g, (h2, h2), modes[(seed + 1) % 3]), shift())
    net = torch.nn.Sequential(
        FixedLinear(_weights(g, (h1, n_in), modes[seed % 3]), TG, weight_shift=shift(), delays=delays, name="fc1"),
        _neuron(g, "cuba", h1, "n1"),
        FixedLinear(_weights(g, (h2, h1), "mixed"), TG, weight_shift=shift(), name="fc2"),
        rec,
        FixedLinear(_weights(g, (n_out, h2), modes[(seed + 2) % 3]), TG, weight_shift=shift(),
                    delays=torch.randint(0, 4, (n_out, h2), generator=g), name="fc3"),
        _neuron(g, kinds[(seed + 1) % 3], n_out, "out"),
    )
    set_step_mode(net, "m")
    return net


def _saturations(net: torch.nn.Sequential) -> dict:
    return {m.layer_name: {k: v for k, v in m.saturations.items() if v} for m in net}


@pytest.mark.parametrize("seed", range(6))
def test_random_loihi_networks_twin_equals_sim(seed, tmp_path):
    net = _net(seed)
    g = torch.Generator().manual_seed(100 + seed)
    x = (torch.rand(90, 2, 10, generator=g) < 0.4).to(torch.int8)
    path = quant.export(net, tmp_path / "b")
    res = _compare(net, path, x, chunk=13)
    for m in net:
        m.reset()
        m.clear_counts()
    net(x)
    sim_sat = {k: {s: n for s, n in v.items() if n} for k, v in res.saturations.items()}
    assert sim_sat == _saturations(net)
    assert res.traces["n1"]["i"][62:].any()  # the delayed inputs reached the first population


@pytest.mark.parametrize("seed", range(3))
def test_large_value_inputs_wrap_alike(seed, tmp_path):
    """Values up to 2^24 into weights up to 254 with weight shifts up to 7: the int32 channel, the delay
    buffer, a_in << 6 and the add into u all wrap, and both implementations count the same wraps."""
    g = torch.Generator().manual_seed(seed)
    d = torch.randint(0, 5, (6, 4), generator=g)
    net = torch.nn.Sequential(
        FixedLinear(_weights(g, (6, 4), "mixed", 1.0), TG, weight_shift=int(torch.randint(0, 8, (1,), generator=g)),
                    delays=d, name="fc1"),
        FixedCubaLIFNode(TG, (1 << 17) - 1, -1, 0, state_exponent=-6, name="n1"),
        FixedLinear(_weights(g, (3, 6), "excitatory", 1.0), TG, weight_shift=7, name="fc2"),
        FixedCubaLIFNode(TG, 1, 4095, 4096, state_exponent=-6, name="n2"),
    )
    set_step_mode(net, "m")
    x = torch.randint(-(1 << 24), 1 << 24, (40, 2, 4), generator=g) * (torch.rand(40, 2, 4, generator=g) < 0.5)
    path = quant.export(net, tmp_path / "b", input_kind="values")
    res = _compare(net, path, x, chunk=9)
    for m in net:
        m.reset()
        m.clear_counts()
    net(x)
    sat = _saturations(net)
    assert sat["fc1"]["accumulator"] > 0 and sat["n1"]["i"] > 0
    assert {k: {s: n for s, n in v.items() if n} for k, v in res.saturations.items()} == sat
    assert np.abs(res.traces["n1"]["i"]).max() > (1 << 23)  # u beyond 24 bits after a single fold, as in Lava
