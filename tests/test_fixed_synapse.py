"""Integer twin of the synapse filter (hwsnn.fixed.synapse) against hand-computed values."""

from __future__ import annotations

import pytest
import torch

import targets

from hwsnn.fixed import FitError, to_fixed
from hwsnn.fixed.synapse import FixedSynapseFilter, default_state_exponent
from hwsnn.layer import SynapseFilter


def run_from(twin: FixedSynapseFilter, i0: list[int], spikes: list[list[int]]) -> list[list[int]]:
    twin.reset()
    twin.out_i = torch.tensor(i0, dtype=torch.int64)
    return [twin(torch.tensor(s, dtype=torch.int8)).tolist() for s in spikes]


def test_hand_table_floor():
    tw = FixedSynapseFilter(2, "generic_int8", state_exponent=-8)
    assert tw.one == 256
    # k = 2, floor: 100 -> 75 -> 57 -> 43 -> 33; -100 -> -75 -> -56 (floor of -18.75 is -19)
    got = run_from(tw, [100, -100], [[0, 0]] * 4)
    assert got == [[75, -75], [57, -56], [43, -42], [33, -31]]
    # a spike: no decay, + one
    got = run_from(tw, [100, -100], [[1, 0], [0, 1], [1, 1]])
    assert got == [[356, -75], [267, 181], [523, 437]]


def test_hand_table_loihi_mul12_toward_zero():
    tw = FixedSynapseFilter(2, "loihi", state_exponent=0)
    assert tw.decay_factor == 1024
    # I (4096 - 1024) / 4096 toward zero: 100 -> 75 -> 56 (56.25) -> 42; -100 -> -75 -> -56 -> -42
    assert run_from(tw, [100, -100], [[0, 0]] * 3) == [[75, -75], [56, -56], [42, -42]]


def test_hand_table_xylo_min1():
    tw = FixedSynapseFilter(2, "xylo", state_exponent=0)
    # D(3, 2) = 0 -> raised to 1 for positive values; negative values keep the floor shift
    # (-3 >> 2 = -1: -3 -> -2 -> -1 -> 0, as xylo.md: -1 -> 0 for every k)
    assert run_from(tw, [3, -3, 100], [[0, 0, 0]] * 3) == [[2, -2, 75], [1, -1, 57], [0, 0, 43]]


def test_overflow_counted():
    tw = FixedSynapseFilter(3, "generic_int8", state_exponent=-8)
    assert run_from(tw, [32700, -5], [[1, 1], [1, 0]]) == [[32767, 251], [32767, 220]]
    assert tw.saturations["out_i"] == 2
    lo = FixedSynapseFilter(3, "loihi", state_exponent=-16)  # current folds once into (-2^23, 2^23]
    v = 2**23 - 10
    assert run_from(lo, [v], [[1]]) == [[v + 65536 - 2**24]]
    assert lo.saturations["out_i"] == 1
    with pytest.raises(FitError):
        FixedSynapseFilter(3, "generic_int8", state_exponent=-15)  # one = 2^15 does not fit int16
    with pytest.raises(FitError, match="decay shift"):
        FixedSynapseFilter(16, "generic_int8")


def test_tracks_float_on_ideal():
    torch.manual_seed(1)
    T, tau = 200, 16.0
    s = (torch.rand(T, 3, 5) < 0.2).to(torch.int8)
    flt = SynapseFilter(tau=tau, step_mode="m", backend="torch").double()
    ref = flt(s.double()).detach()
    tw = to_fixed(flt, "ideal")
    assert tw.step_mode == "m" and tw.k == 4 and tw.state_exponent == default_state_exponent(targets.load("ideal")) == -24
    y = tw(s).double() * 2.0 ** tw.state_exponent
    assert torch.equal(tw.dequantize("out_i"), y[-1])
    # each floor decay is at most one LSB off; errors shrink by (1 - 1/tau): total < tau LSB
    err = (y - ref).abs().max().item()
    assert err < tau * 2.0 ** tw.state_exponent
    assert err > 0  # floor rounding is visible, the comparison is not vacuous
    # a coarse state exponent stays within its (larger) bound too
    tw8 = to_fixed(flt, "ideal", state_exponent=-6)
    y8 = tw8(s).double() * 2.0**-6
    assert (y8 - ref).abs().max().item() < tau * 2.0**-6


def test_tau_reporting_and_range():
    tw = to_fixed(SynapseFilter(tau=100.0), "generic_int8")
    assert (tw.k, tw.tau_used, tw.tau_requested) == (7, 128, 100.0)
    assert tw.tau_relative_difference == pytest.approx(0.28)
    rep = tw.fixed_report()
    assert rep["tau_used"] == 128 and rep["tau_requested"] == 100.0
    assert to_fixed(SynapseFilter(tau=90.0), "generic_int8").tau_used == 64  # log2 90 = 6.49
    learn = SynapseFilter(tau=3.0, learnable=True)
    assert to_fixed(learn, "ideal").tau_used == 4
    assert to_fixed(SynapseFilter(tau=16.0), "loihi").fixed_report()["decay_factor"] == 256
    with pytest.raises(FitError, match="tau"):
        to_fixed(SynapseFilter(tau=2.0**20), "generic_int8")
    tc = to_fixed(SynapseFilter(tau=2.0**20), "generic_int8", clip=True)
    assert tc.k == 15 and tc.clipped == {"tau": 1}


def test_single_step_equals_multi_step():
    torch.manual_seed(2)
    s = (torch.rand(30, 2, 4) < 0.3).to(torch.bool)
    tw = FixedSynapseFilter(3, "generic_int8")
    tw.step_mode = "m"
    multi = torch.cat([tw(s[:11]), tw(s[11:])])
    tw.reset()
    tw.step_mode = "s"
    single = torch.stack([tw(s[t]) for t in range(30)])
    assert torch.equal(multi, single) and multi.dtype == torch.int64
    assert int(multi.max()) > 0


def test_input_checks():
    tw = FixedSynapseFilter(3, "generic_int8")
    with pytest.raises(ValueError, match="binary"):
        tw(torch.tensor([0, 2, 1]))
    with pytest.raises(ValueError, match="binary"):
        tw(torch.tensor([-1, 0]))
    with pytest.raises(TypeError, match="spikes"):
        tw(torch.tensor([0.0, 1.0]))
