"""lava-dl netx HDF5 both ways (quant.to_netx / the `netx` view, quant.from_netx).

Lava and lava-dl do not install on Python 3.11, so the files are checked against lava-dl 0.6.0's
writer field by field (dtypes and shapes), hand-built slayer-style files, and an independent NumPy
model of what netx builds (its weight optimisation, DelayDense per-slot shift, Lava's LIF bit-acc,
written here from ../shared/targets/loihi.md) against hwsnn's simulator, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn import cli
from tests.lava_cuba import cuba_step, wrap
from hwsnn.fixed import FixedCubaLIFNode, FixedIFNode, FixedLIFNode, FixedLinear
from hwsnn.functional import set_step_mode
from quant.netx import NetxFormatError, netx_layers, read_netx
from quant.views import add_view, available_views
from targets.bundle import load_bundle

h5py = pytest.importorskip("h5py")  # the netx extra: pip install -e ".[netx]"
TG = targets.load("loihi")


# -- an independent model of netx + Lava (not hwsnn code) -------------------------------------------------
def _optimize_weight_bits(w: np.ndarray) -> tuple[np.ndarray, int, int]:
    """lava-dl netx utils.optimize_weight_bits (0.6.0): (weights, num_weight_bits, weight_exponent)."""
    hi, lo = float(w.max()), float(w.min())
    if hi < 0:
        signed, scale = 0, -256 / lo
    elif lo >= 0:
        signed, scale = 0, 255 / hi
    else:
        signed, scale = 1, min(127 / hi if hi else math.inf, -128 / lo)  # (numpy: 127 / 0 = inf)
    bits = int(np.floor(np.log2(scale))) + signed
    n = 8
    while n > 0 and np.sum(np.abs(w / 2**n - np.round(w / 2**n))) != 0:
        n -= 1
    n -= signed
    return np.left_shift(w.astype(np.int32), bits).astype(np.int64), 8 - bits - n, -bits


def _lava_weights(w: np.ndarray, nwb: int) -> np.ndarray:
    """Lava weightutils: sign mode from the weights, 8-bit clip, truncation."""
    mode = "exc" if w.min() >= 0 else ("inh" if w.max() <= 0 else "mix")
    k = 8 - nwb + (mode == "mix")
    if mode == "inh":
        return -((np.clip(-w, 0, 255) >> k) << k)
    return (np.clip(w, -256 if mode == "mix" else 0, 255) >> k) << k


def _wrap32(a: np.ndarray) -> np.ndarray:
    return wrap(a, 32)


class _LavaLayer:
    """A netx dense layer as Lava runs it: DelayDense ring (int32) + LIF bit-accurate."""

    def __init__(self, g: h5py.Group, n_in: int):
        w = np.asarray(g["weight"]).astype(np.int64).reshape(int(np.prod(g["shape"][()])), -1)
        w, nwb, self.exp = _optimize_weight_bits(w)
        self.w = _lava_weights(w, nwb)
        n_out = w.shape[0]
        d = np.zeros((n_out, n_in), np.int64)
        if "delay" in g:
            dv = np.clip(np.asarray(g["delay"][()]), 0, 62).astype(np.int64)
            d = np.repeat(dv.reshape(-1, 1), n_in, 1) if dv.size == n_out else np.repeat(dv.reshape(1, -1), n_out, 0)
        self.d = d
        self.buf = None
        nr = g["neuron"]
        self.du, self.dv, self.vth = int(nr["iDecay"][()]) - 1, int(nr["vDecay"][()]), int(nr["vThMant"][()])
        self.bias = (np.asarray(g["bias"][()]).astype(np.int64) << 6) if "bias" in g else np.zeros(n_out, np.int64)
        self.u = self.v = None

    def step(self, s: np.ndarray) -> np.ndarray:
        n = s.shape[0]
        if self.buf is None:
            self.buf = np.zeros((n, self.w.shape[0], 64), np.int64)
            self.u = np.zeros((n, self.w.shape[0]), np.int64)
            self.v = np.zeros_like(self.u)
        a_in = self.buf[..., 0].copy()
        self.buf = np.roll(self.buf, -1, axis=-1)
        self.buf[..., -1] = 0
        for k in np.unique(self.d):
            a = s.astype(np.int64) @ np.where(self.d == k, self.w, 0).T
            a = a << self.exp if self.exp >= 0 else a >> -self.exp
            self.buf[..., k] = _wrap32(self.buf[..., k] + a)
        self.u, self.v, spikes = cuba_step(self.u, self.v, a_in, self.du, self.dv, self.bias, self.vth)
        return spikes


def lava_model(path, x: np.ndarray) -> list[np.ndarray]:
    """Spikes of every dense layer of the netx file ``path`` for inputs ``x`` [T, N, n_in]; the input
    layer must be a pass-through (iDecay 4096, vThMant 0)."""
    with h5py.File(path, "r") as f:
        n = len(f["layer"])
        nr = f["layer/0/neuron"]
        assert int(nr["iDecay"][()]) == 4096 and int(nr["vThMant"][()]) == 0
        layers, n_in = [], int(np.prod(f["layer/0/shape"][()]))
        for i in range(1, n):
            g = f[f"layer/{i}"]
            if g["type"][0] == b"dense":
                layers.append(_LavaLayer(g, n_in))
                n_in = layers[-1].w.shape[0]
    out: list[list[np.ndarray]] = [[] for _ in layers]
    for t in range(x.shape[0]):
        s = x[t].reshape(x.shape[1], -1)
        for j, layer in enumerate(layers):
            s = layer.step(s)
            out[j].append(s)
    return [np.stack(o) for o in out]


# -- networks -------------------------------------------------------------------------------------------
def _net(seed: int) -> torch.nn.Sequential:
    """Random netx-expressible Loihi networks: file weights in 8 bits, shifts <= 0 on divisible weights or
    small positive shifts, per-row/per-column delays, biases in multiples of 64, all three neuron kinds."""
    g = np.random.default_rng(seed)
    n_in, h, n_out = 7, 11, 5

    def weights(shape, mode):
        if mode == "excitatory":
            w = g.integers(0, 64, shape)
        elif mode == "inhibitory":
            w = -g.integers(0, 64, shape)
        else:
            w = g.integers(-32, 32, shape) * 2
            w.flat[0], w.flat[1] = -64, 62
        w.flat[2] = 0 if mode != "excitatory" else 63
        return torch.from_numpy(w)

    def neuron(kind, n, name, ths=(1, 3, 12, 40)):
        th = int(g.choice(ths))  # (thresholds up to 2^17 - 1: tests/test_loihi_random.py)
        bias = torch.from_numpy(g.integers(-60, 60, n) * (g.random(n) < 0.6))
        kw = dict(state_exponent=-6, bias=bias, bias_exp=6, name=name)
        if kind == "if":
            return FixedIFNode(TG, th, **kw)
        dv = int(g.choice([0, 1, 300, 4096]))
        if kind == "lif":
            return FixedLIFNode(TG, th, dv, **kw)
        return FixedCubaLIFNode(TG, th, int(g.choice([-1, 0, 1000, 4095])), dv, **kw)

    modes = ["mixed", "excitatory", "inhibitory"]
    kinds = ["cuba", "lif", "if"]
    rows = torch.from_numpy(np.repeat(g.integers(0, 63, (h, 1)), n_in, 1))
    cols = torch.from_numpy(np.repeat(g.integers(0, 5, (1, h)), n_out, 0))
    w1 = weights((h, n_in), modes[seed % 3])
    s1 = int(g.choice([0, 1, 2]))  # W << s stays inside 8 bits
    w2 = weights((n_out, h), ["mixed", "excitatory"][seed % 2]) * 4  # (inhibitory: the first layer)
    net = torch.nn.Sequential(
        FixedLinear(w1, TG, weight_shift=s1, delays=rows if seed % 2 == 0 else None, name="fc1"),
        neuron(kinds[seed % 3], h, "n1"),
        FixedLinear(w2, TG, weight_shift=-2, delays=cols if seed % 2 else None, name="fc2"),
        neuron(kinds[(seed + 1) % 3], n_out, "n2", (1, 2)),
    )
    set_step_mode(net, "m")
    return net


def _spikes(seed: int, shape) -> np.ndarray:
    return (np.random.default_rng(100 + seed).random(shape) < 0.35).astype(np.int8)


# -- round trips --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_export_netx_import_same_integers_and_spikes(seed, tmp_path):
    net = _net(seed)
    path = quant.export(net, tmp_path / "export")
    quant.to_netx(path, tmp_path / "net.h5")
    imp = quant.from_netx(tmp_path / "net.h5", tmp_path / "imported")
    x = _spikes(seed, (90, 3, 7))
    a = sim.run(path, x, record="states")
    b = sim.run(imp.export, x, record="states")
    assert np.array_equal(a.output, b.output)
    for la, lb in zip(a.traces, b.traces):  # every layer in order: dense outputs, v (and u) of the neurons
        assert set(a.traces[la]) <= set(b.traces[lb]) | {"i"}, (la, lb)
        for key in set(a.traces[la]) & set(b.traces[lb]):
            assert np.array_equal(a.traces[la][key], b.traces[lb][key]), (la, key)
    # the same file again from the imported export: the same layers, field for field
    again = netx_layers(load_bundle(imp.export))
    first = netx_layers(load_bundle(path))
    assert len(again) == len(first)
    for la, lb in zip(first, again):
        assert la.keys() == lb.keys()
        for k in la:
            va, vb = la[k], lb[k]
            assert (va == vb) if isinstance(va, dict) else np.array_equal(va, vb), k
    # and the independent model of netx + Lava computes the same spikes as the simulator
    model = lava_model(tmp_path / "net.h5", x)
    assert np.array_equal(model[0], a.traces["n1"]["output"]) and np.array_equal(model[1], a.output)
    assert a.traces["n1"]["output"].any() and a.output.any()


def test_twin_of_the_import_equals_its_simulation(tmp_path):
    path = quant.export(_net(4), tmp_path / "export")
    quant.to_netx(path, tmp_path / "n.h5")
    imp = quant.from_netx(tmp_path / "n.h5", tmp_path / "imp")
    x = _spikes(4, (40, 2, 7))
    twin_out = imp.twin(torch.from_numpy(x)).numpy()
    assert np.array_equal(twin_out, sim.run(imp.export, x).output)
    assert imp.input_shape == (7,)


def test_the_file_is_written_as_lava_dl_writes_it(tmp_path):
    path = quant.export(_net(0), tmp_path / "export")
    quant.to_netx(path, tmp_path / "n.h5")
    with h5py.File(tmp_path / "n.h5", "r") as f:
        assert sorted(f["layer"].keys()) == ["0", "1", "2"]
        t = f["layer/0/type"]
        assert t.dtype == np.dtype("S10") and t.shape == (1,) and t[0] == b"input"
        assert f["layer/0/shape"][()].tolist() == [7] and f["layer/0/shape"].dtype == np.int64
        d = f["layer/1"]
        assert d["type"][0] == b"dense" and d["shape"][()].tolist() == [11]
        assert d["inFeatures"][()] == 7 and d["outFeatures"][()] == 11 and d["inFeatures"].shape == ()
        assert d["weight"].dtype == np.float32 and d["weight"].shape == (11, 7)
        assert d["delay"].dtype == np.float32 and d["delay"].shape == (11,)
        assert d["neuron/type"][()] in (b"CUBA", "CUBA")
        for key in ("iDecay", "vDecay", "vThMant", "refDelay"):
            assert d[f"neuron/{key}"].shape == () and d[f"neuron/{key}"].dtype.kind == "i", key
        assert d["neuron/gradedSpike"][()] == False  # noqa: E712 (numpy bool)
        assert d["neuron/refDelay"][()] == 1
        if "bias" in d:
            assert d["bias"].dtype == np.float32 and d["bias"].shape == (11,)
    # the weights are W * 2^weight_shift, the neuron parameters netx's
    b = load_bundle(path)
    dense, neuron = b.ops[0], b.ops[1]
    layers = read_netx(tmp_path / "n.h5")
    assert np.array_equal(layers[1]["weight"], dense.weight * 2**dense.weight_shift)
    assert layers[1]["neuron"]["iDecay"] == neuron.decay_syn + 1 and layers[1]["neuron"]["vDecay"] == neuron.decay_mem
    assert layers[1]["neuron"]["vThMant"] == neuron.threshold


# -- a hand-written slayer-style file -----------------------------------------------------------------------
def _slayer_file(path, *, delay=None, bias=None, weight=None, input_neuron=None, extra=None):
    w = np.array([[3, -1, 0, 5], [-7, 2, 9, 1], [0, 0, 4, -3]], np.float32) if weight is None else weight
    with h5py.File(path, "w") as f:
        l0 = f.create_group("layer/0")
        l0.create_dataset("type", (1,), "S10", [b"input"])
        l0.create_dataset("shape", data=np.array([w.shape[1]]))
        for k, v in (input_neuron or {"type": "CUBA", "iDecay": 4096, "vDecay": 4096, "vThMant": 0, "refDelay": 1,
                                      "gradedSpike": False}).items():
            l0.create_dataset(f"neuron/{k}", data=v)
        l1 = f.create_group("layer/1")
        l1.create_dataset("type", (1,), "S10", [b"dense"])
        l1.create_dataset("shape", data=np.array([w.shape[0]]))
        l1.create_dataset("inFeatures", data=w.shape[1])
        l1.create_dataset("outFeatures", data=w.shape[0])
        l1.create_dataset("weight", data=w)
        if bias is not None:
            l1.create_dataset("bias", data=np.asarray(bias, np.float32))
        if delay is not None:
            l1.create_dataset("delay", data=np.asarray(delay, np.float32))
        for k, v in {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80, "refDelay": 1,
                     "gradedSpike": False}.items():
            l1.create_dataset(f"neuron/{k}", data=v)
        for k, v in (extra or {}).items():
            l1.create_dataset(k, data=v)


def test_hand_written_slayer_file_with_delays_and_biases(tmp_path):
    p = tmp_path / "slayer.h5"
    _slayer_file(p, delay=[2.0, 0.0, 70.0], bias=[10, -3, 1])  # 70 is clamped to 62, as netx does
    imp = quant.from_netx(p, tmp_path / "exp")
    dense, neuron = imp.twin[0], imp.twin[1]
    # netx: mixed, scale min(127/9, 128/7) = 14.1 -> b = 3 + 1 = 4; weights << 4, weight_exp -4
    assert dense.weight_shift == -4
    assert dense.weight.tolist() == (np.array([[3, -1, 0, 5], [-7, 2, 9, 1], [0, 0, 4, -3]]) * 16).tolist()
    assert dense.delays[:, 0].tolist() == [2, 0, 62] and (dense.delays == dense.delays[:, :1]).all()
    assert (neuron.decay_syn, neuron.decay_mem, neuron.threshold) == (1023, 128, 80)
    assert neuron.bias.tolist() == [10, -3, 1] and neuron.bias_exp == 6
    x = _spikes(1, (120, 4, 4))
    res = sim.run(imp.export, x, record="states")
    assert np.array_equal(res.output, lava_model(p, x)[0])
    assert res.output.any()
    b = load_bundle(imp.export)  # the file is inside the bundle, under its digest
    assert b.manifest["views"]["netx"]["files"] == ["netx.h5"] and b.member("netx.h5") == p.read_bytes()


def test_input_layer_with_a_real_neuron_becomes_a_cuba_op(tmp_path):
    p = tmp_path / "in.h5"
    _slayer_file(p, input_neuron={"type": "CUBA", "iDecay": 2048, "vDecay": 4096, "vThMant": 1, "refDelay": 1,
                                  "gradedSpike": False})
    imp = quant.from_netx(p)
    first = imp.twin[0]
    assert isinstance(first, FixedCubaLIFNode) and (first.decay_syn, first.threshold) == (2047, 1)
    assert imp.export is None


@pytest.mark.parametrize("delay, rows", [(3.0, [3, 3, 3]), ([1, 2, 3, 4], None)])
def test_scalar_and_per_input_delays(delay, rows, tmp_path):
    p = tmp_path / "d.h5"
    _slayer_file(p, delay=np.asarray(delay, np.float32))
    d = quant.from_netx(p).twin[0].delays
    if rows is not None:
        assert d[:, 0].tolist() == rows
    else:
        assert d.tolist() == [[1, 2, 3, 4]] * 3
    x = _spikes(2, (80, 2, 4))
    imp = quant.from_netx(p, tmp_path / "e")
    assert np.array_equal(sim.run(imp.export, x).output, lava_model(p, x)[0])


# -- refusals -----------------------------------------------------------------------------------------------
def _bundle(tmp_path, *layers, name="b"):
    net = torch.nn.Sequential(*layers)
    set_step_mode(net, "m")
    return quant.export(net, tmp_path / name)


@pytest.mark.parametrize("make, match", [
    (lambda: (FixedLinear(torch.tensor([[3, 5]]), TG, weight_shift=-1), FixedIFNode(TG, 5, state_exponent=-6)),
     "weight_shift -1 floors"),
    (lambda: (FixedLinear(torch.tensor([[100, 50]]), TG, weight_shift=2), FixedIFNode(TG, 5, state_exponent=-6)),
     "no positive weight exponent"),
    (lambda: (FixedLinear(torch.tensor([[2, 4], [6, 8]]), TG, delays=torch.tensor([[0, 1], [2, 3]])),
              FixedIFNode(TG, 5, state_exponent=-6)), "vary along both axes"),
    (lambda: (FixedLinear(torch.tensor([[2, 4]]), TG),
              FixedIFNode(TG, 5, state_exponent=-6, bias=torch.tensor([5]), bias_exp=3)), "multiples of 64"),
    (lambda: (FixedLinear(torch.tensor([[0, 0]]), TG), FixedIFNode(TG, 5, state_exponent=-6)), "all zero"),
    (lambda: (FixedLinear(torch.tensor([[2, 4]]), TG),), "not followed by an if/lif/cuba"),
])
def test_writer_refuses_what_netx_would_change(make, match, tmp_path):
    path = _bundle(tmp_path, *make())
    with pytest.raises(NetxFormatError, match=match):
        quant.to_netx(path, tmp_path / "n.h5")
    assert not (tmp_path / "n.h5").exists()


def test_writer_refuses_other_targets_and_ops(tmp_path):
    path = _bundle(tmp_path, FixedLinear(torch.tensor([[2, 4]]), "generic_int8"),
                   FixedIFNode("generic_int8", 5, state_exponent=-6))
    with pytest.raises(NetxFormatError, match="target 'generic_int8'"):
        quant.to_netx(path, tmp_path / "n.h5")


@pytest.mark.parametrize("edit, match", [
    (dict(weight=np.array([[1.5, 2.0]], np.float32)), "non-integer"),
    (dict(extra={"weight_rec": np.zeros((3, 3), np.float32)}), None),  # ignored on a dense layer, as netx does
    (dict(delay=np.array([1, 2], np.float32)), "fits neither"),
    (dict(delay=np.array([-1, 0, 0], np.float32)), "negative delay"),
    (dict(bias=[1, 2]), "2 values for 3 neurons"),
])
def test_reader_errors_name_the_field(edit, match, tmp_path):
    p = tmp_path / "bad.h5"
    _slayer_file(p, **edit)
    if match is None:
        quant.from_netx(p)
        return
    with pytest.raises(NetxFormatError, match=match) as err:
        quant.from_netx(p)
    assert str(p) in str(err.value) and "layer/1" in str(err.value)


def test_reader_refuses_unsupported_files(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(NetxFormatError, match="not an HDF5 file"):
        quant.from_netx(junk)
    with pytest.raises(FileNotFoundError):
        quant.from_netx(tmp_path / "missing.h5")
    empty = tmp_path / "empty.h5"
    h5py.File(empty, "w").close()
    with pytest.raises(NetxFormatError, match="no group 'layer'"):
        quant.from_netx(empty)
    conv = tmp_path / "conv.h5"
    _slayer_file(conv)
    with h5py.File(conv, "a") as f:
        f["layer/2/type"] = np.array([b"pool"], "S10")
    with pytest.raises(NetxFormatError, match=r"layer/2/type: 'pool'"):
        quant.from_netx(conv)
    graded = tmp_path / "graded.h5"
    _slayer_file(graded)
    with h5py.File(graded, "a") as f:
        f["layer/1/neuron/messageBits"] = 3
    with pytest.raises(NetxFormatError, match="messageBits"):
        quant.from_netx(graded)
    no_neuron = tmp_path / "nn.h5"
    _slayer_file(no_neuron)
    with h5py.File(no_neuron, "a") as f:
        del f["layer/1/neuron"]
    with pytest.raises(NetxFormatError, match="neuron: missing"):
        quant.from_netx(no_neuron)


# -- the view ---------------------------------------------------------------------------------------------
def test_netx_is_a_registered_view_and_signed_into_the_bundle(tmp_path):
    assert "netx" in available_views()
    path = quant.export(_net(1), tmp_path / "export")
    bundle = add_view(path, "netx")
    assert bundle.manifest["views"]["netx"] == {"format": "netx", "files": ["netx.h5"]}
    assert load_bundle(path).digest == bundle.digest
    (tmp_path / "copy.h5").write_bytes(bundle.member("netx.h5"))
    imp = quant.from_netx(tmp_path / "copy.h5")
    assert [type(m).__name__ for m in imp.twin] == ["FixedLinear", "FixedCubaLIFNode"] * 2


def test_cli_formats_lists_netx(capsys):
    assert cli.main(["formats"]) == 0
    assert "netx" in capsys.readouterr().out


def test_cli_export_with_a_network_netx_cannot_build_exits_2(tmp_path, capsys):
    code = cli.main(["export", str(tmp_path / "e"), "--target", "loihi", "--format", "netx", "--epochs", "1",
                     "--qat-epochs", "0", "--train-samples", "64", "--test-samples", "16", "--no-progress"])
    assert code == 2
    assert "netx cannot build" in capsys.readouterr().err


# -- dense_rec ------------------------------------------------------------------------------------------------
def _rec_net(seed: int) -> torch.nn.Sequential:
    from hwsnn.fixed.recurrent import FixedRecurrent

    g = np.random.default_rng(seed)
    n_in, h = 6, 9
    w_in = torch.from_numpy(g.integers(-30, 31, (h, n_in)) * 2)
    w_rec = torch.from_numpy(g.integers(-20, 21, (h, h)) * 2 * (g.random((h, h)) < 0.5))
    neuron = FixedCubaLIFNode(TG, int(g.choice([2, 10])), int(g.choice([-1, 2000, 4095])), int(g.choice([0, 400])),
                              state_exponent=-6, bias=torch.from_numpy(g.integers(-20, 20, h)), bias_exp=6, name="pop")
    net = torch.nn.Sequential(FixedLinear(w_in, TG, weight_shift=1, name="fc"),
                              FixedRecurrent(neuron, w_rec, 0, name="pop"))
    set_step_mode(net, "m")
    return net


@pytest.mark.parametrize("seed", range(3))
def test_dense_rec_round_trip(seed, tmp_path):
    path = quant.export(_rec_net(seed), tmp_path / "export")
    quant.to_netx(path, tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5", "r") as f:
        assert f["layer/1/type"][0] == b"dense_rec"
        assert f["layer/1/weight_rec"].dtype == np.float32 and f["layer/1/weight_rec"].shape == (9, 9)
    imp = quant.from_netx(tmp_path / "r.h5", tmp_path / "imported")
    assert [type(m).__name__ for m in imp.twin] == ["FixedLinear", "FixedRecurrent"]
    x = _spikes(seed, (60, 3, 6))
    a, b = sim.run(path, x, record="states"), sim.run(imp.export, x, record="states")
    assert np.array_equal(a.output, b.output) and a.output.any()
    assert np.array_equal(a.traces["pop"]["v"], b.traces["layer1_rec"]["v"])
    # netx's joint optimisation: one shift for both matrices
    assert imp.twin[0].weight_shift == imp.twin[1].projection.weight_shift


def test_dense_rec_refusals(tmp_path):
    from hwsnn.fixed.recurrent import FixedRecurrent

    neuron = FixedCubaLIFNode(TG, 2, 100, 100, state_exponent=-6, name="pop")
    path = _bundle(tmp_path, FixedLinear(torch.tensor([[2, 4], [6, 8]]), TG, delays=torch.tensor([[1, 1], [2, 2]])),
                   FixedRecurrent(neuron, torch.tensor([[0, 2], [2, 0]]), 0))
    with pytest.raises(NetxFormatError, match="delayed dense_rec"):
        quant.to_netx(path, tmp_path / "n.h5")
    p = tmp_path / "rec.h5"
    _slayer_file(p, extra={"weight_rec": np.zeros((2, 2), np.float32)})
    with h5py.File(p, "a") as f:
        del f["layer/1/type"]
        f["layer/1/type"] = np.array([b"dense_rec"], "S10")
    with pytest.raises(NetxFormatError, match="weight_rec: 2 rows; shape says 3 neurons"):
        quant.from_netx(p)


def test_cli_import_netx_then_report_is_bit_exact(tmp_path, capsys):
    p = tmp_path / "slayer.h5"
    _slayer_file(p, delay=[1.0, 0.0, 3.0], bias=[10, -3, 1])
    assert cli.main(["import-netx", str(p), str(tmp_path / "exp")]) == 0
    assert cli.main(["verify", str(tmp_path / "exp")]) == 0
    np.save(tmp_path / "x.npy", _spikes(3, (50, 4, 4)))
    assert cli.main(["report", str(tmp_path / "exp"), "--inputs", str(tmp_path / "x.npy"), "--out",
                     str(tmp_path / "rep"), "--no-plots", "--no-progress"]) == 0
    assert "BIT-EXACT: yes" in (tmp_path / "rep" / "report.md").read_text()
    bad = tmp_path / "bad.h5"
    _slayer_file(bad, weight=np.array([[1.5, 2.0]], np.float32))
    assert cli.main(["import-netx", str(bad), str(tmp_path / "exp2")]) == 2
    assert "non-integer" in capsys.readouterr().err
    assert not (tmp_path / "exp2").exists()


def test_a_first_neuron_op_becomes_the_input_layers_neuron(tmp_path):
    net = torch.nn.Sequential(FixedLIFNode(TG, 1, 700, state_exponent=-6, name="inp"),
                              FixedLinear(torch.tensor([[6, -2, 4], [2, 8, 0]]), TG, name="fc"),
                              FixedCubaLIFNode(TG, 2, 1000, 100, state_exponent=-6, name="out"))
    set_step_mode(net, "m")
    path = quant.export(net, tmp_path / "export", input_shape=(3,))
    quant.to_netx(path, tmp_path / "n.h5")
    layers = read_netx(tmp_path / "n.h5")
    assert layers[0]["neuron"]["iDecay"] == 4096 and layers[0]["neuron"]["vDecay"] == 700
    assert layers[0]["neuron"]["vThMant"] == 1
    imp = quant.from_netx(tmp_path / "n.h5", tmp_path / "imported")
    assert [type(m).__name__ for m in imp.twin] == ["FixedCubaLIFNode", "FixedLinear", "FixedCubaLIFNode"]
    x = _spikes(5, (50, 2, 3))
    a, b = sim.run(path, x), sim.run(imp.export, x)
    assert np.array_equal(a.output, b.output) and a.output.any()
