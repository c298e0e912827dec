"""lava-dl netx HDF5 ``conv`` layers both ways (quant.to_netx / quant.from_netx, quant/netx/conv.py).

Lava does not install on Python 3.11: the files are checked against lava-dl 0.6.0's slayer conv
writer field by field (dtypes and shapes), a hand-written slayer-style file, and an independent
NumPy model of what netx and Lava build, written here from their sources' behaviour: netx flips
the kernel in both spatial axes and transposes it to ``[C_out, kx, ky, C_in/groups]`` in WHC
order; Lava's ``Conv`` computes a true convolution (``scipy.signal.convolve2d``) of the padded
input with the dilated kernel, takes every ``stride``-th output, wraps the sum to 24 signed bits
and sends it one step later; Lava's LIF (bit-accurate) integrates it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn.fixed import FixedConv2d, FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedLinear
from hwsnn.fixed.flatten import FixedFlatten
from hwsnn.functional import set_step_mode
from quant.netx import NetxFormatError, netx_layers, read_netx
from targets.bundle import load_bundle
from tests.lava_cuba import cuba_step, wrap

h5py = pytest.importorskip("h5py")  # the netx extra
signal = pytest.importorskip("scipy.signal")  # Lava's own convolution routine


# -- an independent model of netx + Lava (not hwsnn code) ----------------------------------------------
_wrap = wrap


def _xy(value) -> tuple[int, int]:
    """netx's expand: a scalar twice, else the [h, w] pair reversed to (x, y)."""
    v = np.asarray(value)
    return (int(v), int(v)) if v.ndim == 0 else (int(v[::-1][0]), int(v[::-1][-1]))


class _LavaConvLayer:
    """netx create_conv + Lava Conv (fixed point) + LIF bit-acc, all in WHC order."""

    def __init__(self, g, in_whc: tuple[int, int, int]):
        w = np.asarray(g["weight"][()]).astype(np.int64)  # NetDict: astype(int)
        w = w[:, :, ::-1, ::-1]
        self.kernel = w.reshape(w.shape[:4]).transpose(0, 3, 2, 1)  # [C_out, kx, ky, C_in/groups]
        self.stride, self.pad, self.dil = _xy(g["stride"][()]), _xy(g["padding"][()]), _xy(g["dilation"][()])
        self.groups = int(g["groups"][()])
        self.shape = tuple(int(s) for s in g["shape"][()][::-1])  # WHC
        self.in_whc = in_whc
        nr = g["neuron"]
        self.du, self.dv, self.vth = int(nr["iDecay"][()]) - 1, int(nr["vDecay"][()]), int(nr["vThMant"][()])
        bias = np.zeros(self.shape, np.int64)
        if "bias" in g:
            b = np.asarray(g["bias"][()]).astype(np.int32).astype(np.int64)
            bias[...] = b  # [C] broadcasts over (x, y); [W, H, C] is per neuron
        self.bias = bias << 6
        self.a_buf = None
        self.u = self.v = None

    def conv(self, s: np.ndarray) -> np.ndarray:
        """One sample ``s`` [X, Y, C_in] -> [X', Y', C_out] as Lava's conv_scipy computes it."""
        k_out, kx, ky, c_grp = self.kernel.shape
        (sx, sy), (px, py), (dx, dy) = self.stride, self.pad, self.dil
        dil = np.zeros((k_out, dx * (kx - 1) + 1, dy * (ky - 1) + 1, c_grp), np.int64)
        dil[:, ::dx, ::dy, :] = self.kernel
        padded = np.pad(s.astype(np.int64), ((px, px), (py, py), (0, 0)))
        out = np.zeros(self.shape, np.int64)
        k_grp = k_out // self.groups
        for g in range(self.groups):
            for k in range(k_grp):
                for c in range(c_grp):
                    full = signal.convolve2d(padded[:, :, c + g * c_grp], dil[k + g * k_grp, :, :, c], mode="valid")
                    out[:, :, k + g * k_grp] += np.rint(full[::sx, ::sy]).astype(np.int64)[:self.shape[0], :self.shape[1]]
        return _wrap(out, 24)

    def step(self, s: np.ndarray) -> np.ndarray:
        n = s.shape[0]
        if self.a_buf is None:
            self.a_buf = np.zeros((n, *self.shape), np.int64)
            self.u = np.zeros_like(self.a_buf)
            self.v = np.zeros_like(self.a_buf)
        a_in = self.a_buf  # sent first (the previous step's sum)
        self.a_buf = np.stack([self.conv(s[i]) for i in range(n)])
        self.u, self.v, spikes = cuba_step(self.u, self.v, a_in, self.du, self.dv, self.bias, self.vth)
        return spikes


def lava_conv_model(path, x: np.ndarray) -> list[np.ndarray]:
    """Spikes [T, N, C, H, W] of every conv layer of the netx file ``path`` (a pass-through input layer,
    then conv layers only) for input spikes ``x`` [T, N, C, H, W]."""
    with h5py.File(path, "r") as f:
        nr = f["layer/0/neuron"]
        assert int(nr["iDecay"][()]) == 4096 and int(nr["vThMant"][()]) == 0
        whc = tuple(int(s) for s in f["layer/0/shape"][()][::-1])
        layers = []
        for i in range(1, len(f["layer"])):
            g = f[f"layer/{i}"]
            assert g["type"][0] == b"conv"
            layers.append(_LavaConvLayer(g, whc))
            whc = layers[-1].shape
    out: list[list[np.ndarray]] = [[] for _ in layers]
    for t in range(x.shape[0]):
        s = x[t].transpose(0, 3, 2, 1)  # NCHW -> N, X, Y, C
        for j, layer in enumerate(layers):
            s = layer.step(s)
            out[j].append(s.transpose(0, 3, 2, 1))
    return [np.stack(o) for o in out]


# -- networks -------------------------------------------------------------------------------------------
def _conv_net(seed: int, target: str, dense: bool = False) -> tuple[torch.nn.Sequential, tuple[int, int, int]]:
    """Random netx-expressible conv networks: non-square inputs and kernels, stride, padding, dilation,
    groups, per-channel and per-neuron biases, all three neuron kinds; shifts the file can carry."""
    tg = targets.load(target)
    g = np.random.default_rng(seed)
    c, h, w = 2, 7, 6
    shift = 0 if target == "loihi_netx" else [1, -1, 0][seed % 3]
    w1 = g.integers(-30, 31, (4, c, 3, 2)) * 2 * (2 if shift < 0 else 1)
    w1[0, 0, 0, 0] = 0
    if seed % 3 == 1:
        w1 = np.abs(w1)  # one-signed kernels (no sign mode applies to a conv)
    w2 = g.integers(-60, 61, (6, 2, 2, 3)) * 2
    c1 = FixedConv2d(torch.from_numpy(w1), tg, None, shift, stride=(1, 2), padding=(1, 0), name="c1")
    ho, wo = (h + 2 - 3) // 1 + 1, (w - 2) // 2 + 1
    c2 = FixedConv2d(torch.from_numpy(w2), tg, None, 0, stride=1, padding=(0, 1), dilation=(2, 1), groups=2,
                     name="c2")
    ho2, wo2 = ho - 2, wo + 2 - 3 + 1

    def neuron(kind, shape, name):
        per_channel = len(shape) == 3 and g.random() < 0.5
        b = g.integers(-40, 41, (shape[0], 1, 1) if per_channel else shape) * (g.random(shape) < 0.7 if not per_channel else 1)
        kw = dict(state_exponent=-6, bias=torch.from_numpy(np.broadcast_to(b, shape).copy()), bias_exp=6, name=name)
        th = int(g.choice([2, 5, 30, 200]))
        if kind == "if":
            return FixedIFNode(tg, th, **kw)
        dv = int(g.choice([0, 1, 300, 4096]))
        if kind == "lif":
            return FixedLIFNode(tg, th, dv, **kw)
        return FixedCubaLIFNode(tg, th, int(g.choice([-1, 0, 1000, 4095])), dv, **kw)

    kinds = ["cuba", "lif", "if"]
    mods = [c1, neuron(kinds[seed % 3], (4, ho, wo), "n1"), c2, neuron(kinds[(seed + 1) % 3], (6, ho2, wo2), "n2")]
    if dense:
        mods += [FixedFlatten(1, -1, tg, name="fl", step_mode="m"),
                 FixedLinear(torch.from_numpy(g.integers(-30, 31, (5, 6 * ho2 * wo2)) * 2), tg, name="fc"),
                 neuron("cuba", (5,), "n3")]
    net = torch.nn.Sequential(*mods)
    set_step_mode(net, "m")
    return net, (c, h, w)


def _spikes(seed: int, shape) -> np.ndarray:
    return (np.random.default_rng(200 + seed).random(shape) < 0.3).astype(np.int8)


def _same_layers(first: list[dict], again: list[dict]) -> None:
    assert len(again) == len(first)
    for la, lb in zip(first, again):
        assert la.keys() == lb.keys()
        for k in la:
            va, vb = la[k], lb[k]
            assert (va == vb) if isinstance(va, dict) else np.array_equal(va, vb), k


# -- (a) round trips --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed, target", [(0, "loihi"), (1, "loihi"), (2, "loihi"), (3, "loihi_netx"),
                                          (4, "loihi_netx"), (5, "loihi")])
def test_conv_export_netx_import_same_integers_and_spikes(seed, target, tmp_path):
    net, shape = _conv_net(seed, target)
    path = quant.export(net, tmp_path / "export", input_shape=shape, input_kind="spikes")
    quant.to_netx(path, tmp_path / "net.h5")
    imp = quant.from_netx(tmp_path / "net.h5", tmp_path / "imported")
    assert imp.input_shape == shape
    x = _spikes(seed, (40, 2, *shape))
    a = sim.run(path, x, record="states")
    b = sim.run(imp.export, x, record="states")
    assert np.array_equal(a.output, b.output)
    for la, lb in zip(a.traces, b.traces):  # conv sums, u and v of the neurons, layer by layer
        for key in set(a.traces[la]) & set(b.traces[lb]):
            assert np.array_equal(a.traces[la][key], b.traces[lb][key]), (la, key)
    _same_layers(netx_layers(load_bundle(path)), netx_layers(load_bundle(imp.export)))
    # the independent NumPy model of netx + Lava gives the simulator's spikes
    model = lava_conv_model(tmp_path / "net.h5", x)
    assert np.array_equal(model[0], a.traces["n1"]["output"]) and np.array_equal(model[1], a.output)
    assert a.traces["n1"]["output"].any() and a.output.any()
    assert np.array_equal(imp.twin(torch.from_numpy(x)).numpy(), b.output)


def test_conv_flatten_dense_round_trip(tmp_path):
    net, shape = _conv_net(7, "loihi", dense=True)
    path = quant.export(net, tmp_path / "export", input_shape=shape, input_kind="spikes")
    quant.to_netx(path, tmp_path / "net.h5")
    assert [lay["type"] for lay in read_netx(tmp_path / "net.h5")] == [b"input", b"conv", b"conv", b"flatten",
                                                                        b"dense"]
    imp = quant.from_netx(tmp_path / "net.h5", tmp_path / "imported")
    x = _spikes(7, (50, 3, *shape))
    a, b = sim.run(path, x, record="states"), sim.run(imp.export, x, record="states")
    assert np.array_equal(a.output, b.output) and a.traces["n2"]["output"].any()
    _same_layers(netx_layers(load_bundle(path)), netx_layers(load_bundle(imp.export)))


def test_the_conv_layer_is_written_as_slayer_writes_it(tmp_path):
    net, shape = _conv_net(0, "loihi")
    path = quant.export(net, tmp_path / "export", input_shape=shape, input_kind="spikes")
    quant.to_netx(path, tmp_path / "n.h5")
    b = load_bundle(path)
    with h5py.File(tmp_path / "n.h5", "r") as f:
        assert f["layer/0/shape"][()].tolist() == list(shape) and f["layer/0/shape"].dtype == np.int64
        for i, conv in ((1, b.ops[0]), (2, b.ops[2])):
            d = f[f"layer/{i}"]
            assert d["type"].dtype == np.dtype("S10") and d["type"].shape == (1,) and d["type"][0] == b"conv"
            assert d["shape"][()].tolist() == list(conv.output_shape) and d["shape"].dtype == np.int64
            for key, want in (("inChannels", conv.in_channels), ("outChannels", conv.out_channels),
                              ("groups", conv.groups)):
                assert d[key].shape == () and d[key].dtype == np.int64 and d[key][()] == want, key
            for key, want in (("kernelSize", conv.kernel_size), ("stride", conv.stride),
                              ("padding", (conv.padding[2], conv.padding[0])), ("dilation", conv.dilation)):
                assert d[key].shape == (2,) and d[key].dtype == np.int64 and d[key][()].tolist() == list(want), key
            assert d["weight"].dtype == np.float32 and d["weight"].shape == conv.weight.shape
            assert np.array_equal(d["weight"][()], conv.weight * 2.0**conv.weight_shift)
            if "bias" in d:
                assert d["bias"].dtype == np.float32 and d["bias"].shape in ((conv.out_channels,),
                                                                            tuple(conv.output_shape[::-1]))
            assert d["neuron/type"][()] in (b"CUBA", "CUBA") and d["neuron/refDelay"][()] == 1
            assert "delay" not in d


# -- (b) a hand-written slayer-style conv file -------------------------------------------------------------
def _slayer_conv_file(path, *, edit=None, drop=(), neuron=None):
    """input [2, 6, 5] -> conv (kernel [3, 2], stride [1, 2], padding [1, 0], dilation [2, 1], groups 2,
    odd weights, per-channel float bias) -> conv 1x1, as lava-dl slayer writes them."""
    g = np.random.default_rng(5)
    w1 = g.integers(-90, 91, (4, 1, 3, 2)).astype(np.float32)
    w1[0, 0, :, :] = [[3, 0], [-1, 7], [5, -9]]  # asymmetric: a missed flip or transpose shows
    layers = {
        "0": {"type": "input", "shape": np.array([2, 6, 5])},
        "1": {"type": "conv", "shape": np.array([4, 4, 2]), "inChannels": 2, "outChannels": 4,
              "kernelSize": np.array([3, 2]), "stride": np.array([1, 2]), "padding": np.array([1, 0]),
              "dilation": np.array([2, 1]), "groups": 2, "weight": w1,
              "bias": np.array([1.7, -2.2, 0.0, 3.0], np.float32)},
        "2": {"type": "conv", "shape": np.array([3, 4, 2]), "inChannels": 4, "outChannels": 3,
              "kernelSize": np.array([1, 1]), "stride": np.array([1, 1]), "padding": np.array([0, 0]),
              "dilation": np.array([1, 1]), "groups": 1,
              "weight": g.integers(-100, 101, (3, 4, 1, 1)).astype(np.float32)},
    }
    neurons = {"0": {"type": b"CUBA", "iDecay": 4096, "vDecay": 4096, "vThMant": 0, "refDelay": 1, "gradedSpike": False},
               "1": neuron or {"type": b"CUBA", "iDecay": 1025, "vDecay": 128, "vThMant": 40, "refDelay": 1,
                               "gradedSpike": False},
               "2": {"type": b"CUBA", "iDecay": 4096, "vDecay": 0, "vThMant": 60, "refDelay": 1, "gradedSpike": False}}
    for (i, key), value in (edit or {}).items():
        layers[i][key] = value
    with h5py.File(path, "w") as f:
        for i, layer in layers.items():
            grp = f.create_group(f"layer/{i}")
            for key, value in layer.items():
                if (i, key) in drop:
                    continue
                if key == "type":
                    grp.create_dataset("type", (1,), "S10", [value.encode("ascii")])
                else:
                    grp.create_dataset(key, data=value)
            for key, value in neurons[i].items():
                grp.create_dataset(f"neuron/{key}", data=value)


def test_hand_written_slayer_conv_file_simulates_as_lava_computes(tmp_path):
    p = tmp_path / "slayer.h5"
    _slayer_conv_file(p)
    imp = quant.from_netx(p, tmp_path / "imported")
    assert imp.input_shape == (2, 6, 5)
    x = _spikes(11, (60, 3, 2, 6, 5))
    r = sim.run(imp.export, x, record="states")
    model = lava_conv_model(p, x)
    assert np.array_equal(model[-1], r.output)
    assert np.array_equal(model[0], r.traces["layer1_cuba"]["output"])
    assert model[0].any() and r.output.any()
    assert np.array_equal(imp.twin(torch.from_numpy(x)).numpy(), r.output)
    # odd file weights: the twin holds 2F with a weight shift of -1, i.e. exactly F
    b = load_bundle(imp.export)
    conv = b.ops[0]
    with h5py.File(p, "r") as f:
        assert np.array_equal(conv.weight, f["layer/1/weight"][()].astype(np.int64) * 2) and conv.weight_shift == -1
    assert np.array_equal(b.ops[1].bias[:, 0, 0], [1, -2, 0, 3])  # netx: astype(int32) truncates toward zero


def test_a_model_that_ignored_the_flip_would_differ(tmp_path):
    """The test can fail: the same file with the kernel flipped gives other spikes in the model."""
    p, q = tmp_path / "a.h5", tmp_path / "b.h5"
    _slayer_conv_file(p)
    with h5py.File(p, "r") as f:
        w = f["layer/1/weight"][()]
    _slayer_conv_file(q, edit={("1", "weight"): np.ascontiguousarray(w[:, :, ::-1, ::-1])})
    x = _spikes(12, (40, 2, 2, 6, 5))
    assert not np.array_equal(lava_conv_model(p, x)[0], lava_conv_model(q, x)[0])
    assert not np.array_equal(sim.run(quant.from_netx(p, tmp_path / "ia").export, x).output,
                              sim.run(quant.from_netx(q, tmp_path / "ib").export, x).output)


# -- (c) refusals -------------------------------------------------------------------------------------------
def _export(tmp_path, *mods, shape=(2, 5, 5)):
    net = torch.nn.Sequential(*mods)
    set_step_mode(net, "m")
    return quant.export(net, tmp_path / "e", input_shape=shape, input_kind="spikes")


TG = targets.load("loihi")
W = torch.full((2, 2, 3, 3), 4)


@pytest.mark.parametrize("make, match", [
    (lambda: (FixedConv2d(W, TG, torch.tensor([1, 2]), 0, name="cv"), FixedIFNode(TG, 5, state_exponent=-6)),
     r"op 'cv' \(conv2d\): tables.bias: Lava's Conv has no bias"),
    (lambda: (FixedConv2d(W, TG, None, 0, padding="same", dilation=2, name="cv"),
              FixedIFNode(TG, 5, state_exponent=-6)), None),  # symmetric 'same' padding is written
    (lambda: (FixedConv2d(torch.tensor([[[[2, 4], [6, 8]]]]).repeat(2, 2, 1, 1), TG, None, 0, padding="same",
                          name="cv"), FixedIFNode(TG, 5, state_exponent=-6)),
     r"op 'cv' \(conv2d\): params.padding \[0, 1, 0, 1\] is asymmetric"),
    (lambda: (FixedConv2d(W, TG, None, 0, latency=2, name="cv"), FixedIFNode(TG, 5, state_exponent=-6)),
     r"op 'cv' \(conv2d\): params.latency 2"),
    (lambda: (FixedConv2d(W + 2, TG, None, -2, name="cv"), FixedIFNode(TG, 5, state_exponent=-6)),
     r"op 'cv' \(conv2d\): params.weight_shift -2 floors"),
    (lambda: (FixedConv2d(W * 40, TG, None, 1, name="cv"), FixedIFNode(TG, 5, state_exponent=-6)),
     r"op 'cv' \(conv2d\): params.weight_shift 1"),
    (lambda: (FixedConv2d(W, TG, None, 0, name="cv"),), r"op 'cv' \(conv2d\): a netx conv layer is a synapse"),
    (lambda: (FixedConv2d(W, TG, None, 0, name="cv"),
              FixedIFNode(TG, 5, state_exponent=-6, bias=torch.full((2, 3, 3), 5), bias_exp=2, name="nn")),
     r"op 'nn' \(if\): tables.bias.*multiples of 64"),
])
def test_conv_writer_refusals_name_the_op_and_field(make, match, tmp_path):
    path = _export(tmp_path, *make())
    if match is None:
        quant.to_netx(path, tmp_path / "n.h5")
        return
    with pytest.raises(NetxFormatError, match=match):
        quant.to_netx(path, tmp_path / "n.h5")
    assert not (tmp_path / "n.h5").exists()


def test_conv_writer_refuses_sums_beyond_24_bits(tmp_path):
    w = torch.full((1, 2048, 4, 4), -256)  # 2^15 taps of -256: |sum| reaches 2^23
    path = _export(tmp_path, FixedConv2d(w, TG, None, 0, name="big"), FixedIFNode(TG, 5, state_exponent=-6),
                   shape=(2048, 4, 4))
    with pytest.raises(NetxFormatError, match=r"op 'big' \(conv2d\): tables.weight.*24 signed bits"):
        quant.to_netx(path, tmp_path / "n.h5")


@pytest.mark.parametrize("edit, drop, match", [
    ({("1", "stride"): np.array([1, 2, 3])}, (), r"layer/1/stride: expected one or two"),
    ({}, (("1", "stride"),), r"layer/1/stride: missing"),
    ({("1", "groups"): np.array([2])}, (), r"layer/1/groups: Lava's Conv needs one integer"),
    ({("1", "groups"): 4}, (), r"layer/1/groups: 4 with weight"),
    ({("1", "shape"): np.array([4, 5, 2])}, (), r"layer/1/shape: \[4, 5, 2\]; the weights and the input give \[4, 4, 2\]"),
    ({("1", "kernelSize"): np.array([2, 3])}, (), r"layer/1/kernelSize"),
    ({("1", "bias"): np.zeros((4, 4, 2), np.float32)}, (), r"layer/1/bias: shape \[4, 4, 2\]"),
    ({("1", "delay"): np.array([1.0, 0, 0, 0], np.float32)}, (), r"layer/1/delay: lava-dl 0.6.0 builds conv layers"),
    ({("1", "weight"): np.full((4, 1, 3, 2), 201, np.float32)}, (), r"layer/1/weight: values in \[201, 201\]"),
    ({("1", "weight"): np.full((4, 1, 3, 2), 1.5, np.float32)}, (), r"layer/1/weight: holds non-integer"),
    ({("1", "padding"): np.array([-1, 0])}, (), r"layer/1/padding: \[-1, 0\] is outside"),
    ({("1", "dilation"): np.array([200, 1])}, (), r"layer/1/dilation: \[200, 1\] is outside"),
    ({("0", "shape"): np.array([10])}, (), r"layer/1: a conv layer needs a \[C, H, W\] input"),
    ({}, (("1", "weight"),), r"layer/1/weight: missing"),
])
def test_conv_reader_refusals_name_the_layer_and_field(edit, drop, match, tmp_path):
    p = tmp_path / "bad.h5"
    _slayer_conv_file(p, edit=edit, drop=drop)
    with pytest.raises(NetxFormatError, match=match) as err:
        quant.from_netx(p)
    assert str(p) in str(err.value)


def test_conv_reader_accepts_what_netx_accepts(tmp_path):
    """Scalar stride/padding/dilation, a zero delay, a per-neuron WHC bias, a 5-D slayer weight."""
    p = tmp_path / "ok.h5"
    g = np.random.default_rng(3)
    bias = g.integers(-5, 6, (2, 4, 3)).astype(np.float32)  # [W, H, C] of the [3, 4, 2] layer
    _slayer_conv_file(p, edit={("2", "stride"): 1, ("2", "padding"): 0, ("2", "dilation"): 1,
                               ("2", "delay"): np.zeros(3, np.float32), ("2", "bias"): bias})
    with h5py.File(p, "a") as f:
        w = f["layer/2/weight"][()]
        del f["layer/2/weight"]
        f["layer/2/weight"] = w[..., None]
    imp = quant.from_netx(p, tmp_path / "imp")
    b = load_bundle(imp.export)
    assert np.array_equal(b.ops[-1].bias, bias.astype(np.int64).transpose(2, 1, 0))
    x = _spikes(13, (40, 2, 2, 6, 5))
    assert np.array_equal(lava_conv_model(p, x)[-1], sim.run(imp.export, x).output)


def test_conv_reader_refuses_sums_beyond_24_bits(tmp_path):
    p = tmp_path / "big.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("layer/0/type", (1,), "S10", [b"input"])
        f["layer/0/shape"] = np.array([2048, 4, 4])
        g = f.create_group("layer/1")
        g.create_dataset("type", (1,), "S10", [b"conv"])
        for key, value in (("shape", np.array([1, 1, 1])), ("stride", np.array([1, 1])), ("padding", np.array([0, 0])),
                           ("dilation", np.array([1, 1])), ("groups", 1),
                           ("weight", np.full((1, 2048, 4, 4), 256.0, np.float32))):
            g[key] = value
        for key, value in (("type", b"CUBA"), ("iDecay", 4096), ("vDecay", 0), ("vThMant", 1)):
            g[f"neuron/{key}"] = value
    with pytest.raises(NetxFormatError, match=r"layer/1/weight: one filter's \|weights\| add up to 8388608"):
        quant.from_netx(p)
