"""The `loihi` target as Lava's bit-accurate models compute it (shared/targets/loihi.md): hand-computed rows.

Each case is worked out by hand from Lava's rules (lava-nc 0.10 PyDelayDenseModelBitAcc, PyDenseModelBitAcc,
PyLifModelBitAcc, weightutils) in the comments, and checked on the twin and on the simulator (through an
export): the delay rule (shift per source step and delay slot), every int32 wrap (dense channel, delay
buffer, a_in << 6, u + (a_in << 6)), each sign-mode case, per-neuron bias exponents.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn.fixed import FitError, FixedCubaLIFNode, FixedIFNode, FixedLinear
from hwsnn.functional import set_step_mode
from sim.ops.base import build_op
from targets import bundle as fmt

LOIHI = targets.load("loihi")


def _seq(*layers) -> torch.nn.Sequential:
    net = torch.nn.Sequential(*layers)
    set_step_mode(net, "m")
    return net


def _sim_run(net, x: torch.Tensor, tmp_path, kind: str = "spikes", **kw) -> sim.SimResult:
    path = quant.export(net, tmp_path / "b", input_kind=kind, **kw)
    return sim.run(path, x.numpy(), record="states")


# -- the delay rule ------------------------------------------------------------------------------


def test_smallest_delay_case_shifts_per_source_step_and_slot(tmp_path):
    # one IF neuron, weights [2, 2], delays [1, 0], weight_exp -2; input 0 spikes at t=0, input 1 at t=1.
    # Both arrive at step 2 (t + 1 + d): Lava adds floor(2/4) = 0 into the slot at t=0 and floor(2/4) = 0 at
    # t=1, so a_in = 0 (summing first would give floor(4/4) = 1).
    x = torch.tensor([[[1, 0]], [[0, 1]], [[0, 0]], [[0, 0]]], dtype=torch.int8)
    dense = FixedLinear(torch.tensor([[2, 2]]), "loihi", weight_shift=-2, delays=torch.tensor([[1, 0]]), name="fc")
    net = _seq(dense, FixedIFNode("loihi", 1, state_exponent=-6, name="if"))
    assert net[0](x).flatten().tolist() == [0, 0, 0, 0]
    net[0].reset()
    res = _sim_run(net, x, tmp_path)
    assert res.traces["fc"]["output"].flatten().tolist() == [0, 0, 0, 0]
    assert res.traces["if"]["v"].flatten().tolist() == [0, 0, 0, 0]
    # the same network on a target that shifts what arrives (ideal: on_arrival) gives floor(4/4) = 1 at step 2
    ideal = FixedLinear(torch.tensor([[2, 2]]), "ideal", weight_shift=-2, delays=torch.tensor([[1, 0]]), latency=1)
    ideal.step_mode = "m"
    assert ideal(x).flatten().tolist() == [0, 0, 1, 0]


def test_per_slot_rule_with_positive_shift_and_several_slots(tmp_path):
    # weights [3, 5, 7], delays [2, 0, 0], shift +1. Spikes: t=0 input 0; t=2 inputs 1 and 2.
    # Slot of step 3 (arrival t+1+d): from t=0 via d=2: 3 << 1 = 6; from t=2 via d=0: (5 + 7) << 1 = 24 -> 30.
    x = torch.zeros(5, 1, 3, dtype=torch.int8)
    x[0, 0, 0] = 1
    x[2, 0, 1:] = 1
    dense = FixedLinear(torch.tensor([[3, 5, 7]]), "loihi", weight_shift=1, delays=torch.tensor([[2, 0, 0]]), name="fc")
    net = _seq(dense, FixedIFNode("loihi", 1000, state_exponent=-6, name="if"))
    want = [0, 0, 0, 30, 0]
    assert net[0](x).flatten().tolist() == want
    net[0].reset()
    assert _sim_run(net, x, tmp_path).traces["fc"]["output"].flatten().tolist() == want


# -- int32 wraps ----------------------------------------------------------------------------------


def test_dense_channel_wraps_at_32_bits(tmp_path):
    # W = [[254]], input value 2^24, weight_exp 0: a = 254 * 2^24 = 4261412864 > 2^31 - 1; Lava sends it
    # through the int32 channel: 4261412864 - 2^32 = -33554432 (one wrap).
    x = torch.tensor([[[1 << 24]], [[0]]], dtype=torch.int64)
    dense = FixedLinear(torch.tensor([[254]]), "loihi", latency=0, name="fc")
    dense.step_mode = "m"
    assert dense(x).flatten().tolist() == [-33554432, 0]
    assert dense.saturations["accumulator"] == 1
    # right shift of an exact sum beyond int32 (Lava shifts the int64 sum, then holds it in int32):
    # 254 * 2^24 >> 1 = 2130706432 fits: no wrap (wrapping first would give -33554432 >> 1 = -16777216)
    d2 = FixedLinear(torch.tensor([[254]]), "loihi", latency=0, weight_shift=-1)
    assert d2(torch.tensor([[1 << 24]])).tolist() == [[2130706432]] and d2.saturations.get("accumulator", 0) == 0
    net = _seq(FixedLinear(torch.tensor([[254]]), "loihi", name="fc"), FixedIFNode("loihi", 1, state_exponent=-6, name="if"))
    res = _sim_run(net, x, tmp_path, kind="values")
    assert res.traces["fc"]["output"].flatten().tolist() == [0, -33554432]
    assert res.saturations["fc"] == {"accumulator": 1} and res.counters["fc"].saturations.tolist() == [1, 0]  # counted at the input step


def test_delay_buffer_wraps_per_add(tmp_path):
    # W = [[254, 254]], delays [1, 0]; values: t=0 input 0 = 2^23, t=1 input 1 = 2^23.
    # c = 254 * 2^23 = 2130706432 each (< 2^31). Slot of step 2: 0 + c fits; c + c = 4261412864 wraps
    # to -33554432: one wrap, on the second add.
    x = torch.tensor([[[1 << 23, 0]], [[0, 1 << 23]], [[0, 0]]], dtype=torch.int64)
    dense = FixedLinear(torch.tensor([[254, 254]]), "loihi", delays=torch.tensor([[1, 0]]), name="fc")
    dense.step_mode = "m"
    assert dense(x).flatten().tolist() == [0, 0, -33554432]
    assert dense.saturations["accumulator"] == 1
    dense.reset()
    net = _seq(dense, FixedIFNode("loihi", 1, state_exponent=-6, name="if"))
    res = _sim_run(net, x, tmp_path, kind="values")
    assert res.traces["fc"]["output"].flatten().tolist() == [0, 0, -33554432]
    assert res.saturations["fc"] == {"accumulator": 1}


def test_neuron_input_shift_and_current_add_wrap(tmp_path):
    # CUBA, du = -1 (u integrates exactly: 4096 - (du + 1) = 4096), dv = 4096, vth 1000, state exponent -6.
    # step 0: a_in = 2^25: a_in << 6 = 2^31 wraps to -2^31 (1); u = -2147483648 <= -2^23: u + 2^24 =
    #         -2130706432 (fold, 1); v = clip(u) = -(2^23 - 1) = -8388607.
    # step 1: a_in = 2^25 - 1: << 6 = 2147483584 (fits); u + 2147483584 = 16777152 > 2^23: fold, 16777152 - 2^24 = -64 (1).
    # step 2: a_in = 2^24: << 6 = 2^30; u = -64 + 2^30 = 1073741760 > 2^23: fold -> 1056964544 (1); v = 2^23 - 1: spike.
    # step 3: a_in = 2^24 again: u + 2^30 = 2130706368 (fits) -> fold 2113929152 (1);
    # step 4: a_in = 2^24: u + 2^30 = 3187671 ... = 2113929152 + 1073741824 = 3187670976 wraps to -1107296320 (1),
    #         <= -2^23: fold + 2^24 = -1090519104 (1); v = -8388607.
    a_in = [1 << 25, (1 << 25) - 1, 1 << 24, 1 << 24, 1 << 24]
    x = torch.tensor(a_in, dtype=torch.int64).reshape(5, 1, 1)
    cuba = FixedCubaLIFNode("loihi", 1000, -1, 4096, state_exponent=-6, name="cuba")
    cuba.step_mode = "m"
    us, vs, ss = [], [], []
    for t in range(5):
        ss.append(int(cuba.single_step_forward(x[t])))
        us.append(int(cuba.i))
        vs.append(int(cuba.v))
    assert us == [-2130706432, -64, 1056964544, 2113929152, -1090519104]
    assert vs == [-8388607, -64, 0, 0, -8388607]
    assert ss == [0, 0, 1, 1, 0]
    assert cuba.saturations["i"] == 1 + 1 + 1 + 1 + 1 + 1 + 1
    cuba.reset()
    res = _sim_run(_seq(cuba), x, tmp_path, kind="values", input_exponent=0, input_shape=(1,))
    assert res.traces["cuba"]["i"].flatten().tolist() == us
    assert res.traces["cuba"]["v"].flatten().tolist() == vs
    assert res.saturations["cuba"].get("i") == 7


def test_1100_inputs_of_254_at_weight_exp_7_do_not_spike(tmp_path):
    # the example: a = 1100 * 254 = 279400, << 7 = 35763200 (fits int32); a_in << 6 = 2288844800
    # wraps to 2288844800 - 2^32 = -2006122496; u folds once to -1989345280; v = -(2^23 - 1): no spike
    # (int64 arithmetic would give u = 2272067584 after its fold, v = 2^23 - 1 and a spike).
    w = torch.full((1, 1100), 254)
    x = torch.ones(3, 1, 1100, dtype=torch.int8)
    net = _seq(FixedLinear(w, "loihi", weight_shift=7, name="fc"),
               FixedCubaLIFNode("loihi", 1000, 4095, 4096, state_exponent=-6, name="cuba"))
    y = net(x)
    assert y.flatten().tolist() == [0, 0, 0]
    assert int(net[1].i.flatten()[0]) == -1989345280 and int(net[1].v.flatten()[0]) == -8388607
    net[0].reset()
    net[1].reset()
    res = _sim_run(net, x, tmp_path)
    assert res.traces["cuba"]["i"].flatten().tolist() == [0, -1989345280, -1989345280]
    assert res.traces["cuba"]["output"].sum() == 0 and res.saturations["cuba"] == {"i": 4, "v": 2}  # 2 wraps, 2 folds; v clipped twice


# -- sign modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("w,mode,used,clipped", [
    ([[0, 3, 255]], "excitatory", [[0, 3, 255]], 0),          # odd weights up to 255: excitatory holds them
    ([[256, 1]], "excitatory", [[255, 1]], 1),                # clip to [0, 255]
    ([[-255, -3, 0]], "inhibitory", [[-255, -3, 0]], 0),      # odd down to -255
    ([[-256, -2, 0]], "inhibitory", [[-255, -2, 0]], 1),      # the case: -256 becomes -255
    ([[-256, 3, 255]], "mixed", [[-256, 2, 254]], 2),         # mixed: the even grid, floored
    ([[-256, 1]], "inhibitory", [[-255, 0]], 2),              # mixed floors 1 to 0: now all <= 0 -> inhibitory
])
def test_sign_modes_by_hand(w, mode, used, clipped, tmp_path):
    tw = FixedLinear(torch.tensor(w), "loihi", clip=True, name="fc")
    assert tw.sign_mode == mode and tw.weight.tolist() == used and tw.clipped.get("weight", 0) == clipped
    if clipped:
        with pytest.raises(FitError, match="sign mode"):
            FixedLinear(torch.tensor(w), "loihi")
    spec = tw.to_spec("fc", (len(w[0]),), "spikes", 0)
    assert spec.sign_mode == mode
    spec.check(LOIHI)  # the exported table obeys the rule
    op = build_op(spec, LOIHI, 1)  # and the simulator, applying Lava's rule itself, accepts it unchanged
    assert op.weight.tolist() == used


def test_sign_mode_is_validated_in_the_export_and_by_the_simulator():
    spec = FixedLinear(torch.tensor([[-254, -2]]), "loihi").to_spec("fc", (2,), "spikes", 0)
    assert spec.sign_mode == "inhibitory"
    bad = spec.replace(weight=np.array([[-256, -2]]))  # a table Lava would change (-256 -> -255)
    with pytest.raises(fmt.SpecError, match="inhibitory sign mode changes"):
        bad.check(LOIHI)
    with pytest.raises(fmt.SpecError, match="inhibitory sign mode changes"):
        build_op(bad, LOIHI, 1)
    with pytest.raises(fmt.SpecError, match="picks 'inhibitory'"):
        spec.replace(sign_mode="mixed").check(LOIHI)
    with pytest.raises(fmt.SpecError, match="sign_mode: missing"):
        spec.replace(sign_mode=None).check(LOIHI)
    with pytest.raises(fmt.SpecError, match="no sign modes"):
        FixedLinear(torch.tensor([[-2, 2]]), "generic_int8").to_spec("fc", (2,), "spikes", 0).replace(
            sign_mode="mixed").check(targets.load("generic_int8"))
    with pytest.raises(fmt.SpecError, match="sign_mode.*not allowed"):
        spec.replace(sign_mode="positive")


@pytest.mark.parametrize("w,mode,used", [
    ([[0, 3, 256]], "excitatory", [[0, 3, 255]]),
    ([[-256, -3, 0]], "inhibitory", [[-255, -3, 0]]),
    ([[-257, -3, 255, 4]], "mixed", [[-256, -4, 254, 4]]),  # clip to [-256, 255], then (w >> 1) << 1
    ([[0, 0]], "excitatory", [[0, 0]]),
])
def test_simulator_applies_lavas_rule_itself(w, mode, used):
    from sim.ops.signmode import lava_weights

    got, m = lava_weights(np.array(w), 9, 2)
    assert m == mode and got.tolist() == used


# -- per-neuron bias exponents ------------------------------------------------------------------------


def test_per_neuron_bias_exponents(tmp_path):
    # B = mant << e, floor >> for e < 0: [3 << 2, -3 >> 1, 5 << 0, 4095 << 7] = [12, -2, 5, 524160]
    ifn = FixedIFNode("loihi", 100000, state_exponent=-6, bias=torch.tensor([3, -3, 5, 4095]),
                      bias_exp=torch.tensor([2, -1, 0, 7]), name="if")
    assert ifn.bias_int.tolist() == [12, -2, 5, 524160]
    x = torch.zeros(2, 1, 4, dtype=torch.int64)
    net = _seq(ifn)
    net(x)
    assert ifn.v.flatten().tolist() == [24, -4, 10, 1048320]
    spec = ifn.to_spec("if", (4,), "values", 0)
    assert spec.bias_exp == 0 and spec.bias_exp_per_neuron.tolist() == [2, -1, 0, 7]
    ifn.reset()
    res = _sim_run(net, x, tmp_path, kind="values", input_shape=(4,))
    assert res.traces["if"]["v"][:, 0].tolist() == [[12, -2, 5, 524160], [24, -4, 10, 1048320]]
    with pytest.raises(FitError, match="bias_exp"):
        FixedIFNode("loihi", 1, bias=torch.tensor([1, 1]), bias_exp=torch.tensor([0, 8]))
    with pytest.raises(fmt.SpecError, match="bias_exp_per_neuron"):
        spec.replace(bias_exp_per_neuron=np.array([0, 1])).check(LOIHI)


# -- the fused kernels wrap the input as the step function does -----------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: FixedCubaLIFNode("loihi", 5, -1, 0, state_exponent=-6, name="cuba_integrator"),
    lambda: FixedCubaLIFNode("loihi", 1000, 4095, 4096, state_exponent=-6, name="cuba_reset"),
    lambda: FixedIFNode("loihi", 7, state_exponent=-6, name="if"),
])
def test_fused_kernel_wraps_the_input_like_the_step_function(make):
    pytest.importorskip("numba")
    import copy

    # a_in itself beyond int32, a_in << 6 beyond int32, and u + (a_in << 6) beyond int32 after u grew
    col = [2**25 + 5, -(2**25) - 7, 2**30, 2**31 + 3, -(2**31) - 1, 123, 2**24, 2**24, 2**24, -5]
    x = torch.tensor(col, dtype=torch.int64).reshape(-1, 1) * torch.tensor([[1, -1, 3]])
    tw = make()
    ref = copy.deepcopy(tw)
    steps = torch.stack([ref.single_step_forward(x[t]) for t in range(len(col))])
    fused = copy.deepcopy(tw)
    fused.fused_backend = "numba"
    got = fused.fused_sequence(x, store_states=True)
    assert got is not None
    assert torch.equal(got[0], steps)
    assert torch.equal(fused.v, ref.v) and fused.saturations == ref.saturations
    if hasattr(ref, "i"):
        assert torch.equal(fused.i, ref.i)
    assert ref.saturations["i"] >= 6  # the wraps happened and were counted


@pytest.mark.parametrize("w, mode", [([[63, 255]], "excitatory"), ([[-255, -3]], "inhibitory"), ([[-256, 254]], "mixed")])
def test_fit_check_uses_the_sign_modes_grid(w, mode, tmp_path):
    # odd excitatory weights and -255 are what Lava keeps in those modes: they fit (the mixed grid would not)
    net = _seq(FixedLinear(torch.tensor(w), "loihi", name="fc"), FixedIFNode("loihi", 3, state_exponent=-6, name="n"))
    fit = sim.fit_check(quant.load_export(quant.export(net, tmp_path / "b")))
    checks = [c for c in fit["checks"] if c["layer"] == "fc" and "weights" in c["check"]]
    assert fit["fits"] and len(checks) == 1 and checks[0]["ok"] and mode in checks[0]["check"]
