"""NIR -> hwsnn: the conventions, checked against forward Euler written here from NIR's equations,
and every refusal naming its node (needs nir; skipped without it).

The references are plain NumPy loops over the continuous-time equations of the NIR nodes
(``tau dv/dt = (v_leak - v) + r I``, ``tau_syn dI/dt = -I + w_in S``, ``dv/dt = r I``) stepped with
forward Euler at ``dt``, fired on ``v >= v_threshold`` (hwsnn's compare; on random real inputs it
never differs from NIR's ``>``) and reset to ``v_reset`` or by subtracting the threshold.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

import hwsnn.nir as hn  # noqa: E402

T, N = 50, 5
RNG = np.random.default_rng(2024)


def chain(*nodes, shape=(6,), out=(8,), names=None) -> "nir.NIRGraph":
    """Input (``shape``) -> nodes... -> Output (``out``), named ``n0, n1, ...`` unless ``names``."""
    names = list(names or [f"n{i}" for i in range(len(nodes))])
    out_shape = np.array(out)
    d = {"input": nir.Input(input_type=np.array(shape)), **dict(zip(names, nodes)),
         "output": nir.Output(output_type=out_shape)}
    seq = ["input", *names, "output"]
    return nir.NIRGraph(nodes=d, edges=list(zip(seq[:-1], seq[1:])), type_check=False)


def euler(x: np.ndarray, w: np.ndarray, b: np.ndarray, node, dt: float, reset: str, r_read: bool = True) -> np.ndarray:
    """Spikes of ``Affine(w, b) -> node`` (LIF, IF or CubaLIF) on ``x`` [T, N, in] by forward Euler."""
    kind = type(node).__name__
    th = np.asarray(node.v_threshold, np.float64)
    vr = np.asarray(node.v_reset, np.float64)
    r = np.asarray(node.r, np.float64) if r_read else np.ones_like(th)
    v = np.zeros((x.shape[1], w.shape[0])) + (vr if reset == "zero" else 0.0)
    cur = np.zeros_like(v)
    out = []
    for t in range(x.shape[0]):
        inp = x[t] @ w.T + b
        if kind == "IF":
            v = v + dt * r * inp
        elif kind == "LIF":
            tau = np.asarray(node.tau, np.float64)
            v = v + dt / tau * (np.asarray(node.v_leak) - v + r * inp)
        else:
            ts, tm = np.asarray(node.tau_syn, np.float64), np.asarray(node.tau_mem, np.float64)
            cur = cur + dt / ts * (-cur + np.asarray(node.w_in) * inp)
            v = v + dt / tm * (np.asarray(node.v_leak) - v + r * cur)
        s = (v >= th).astype(np.float64)
        v = np.where(s > 0, vr, v) if reset == "zero" else v - s * th
        out.append(s)
    return np.stack(out)


def run(net: torch.nn.Sequential, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def affine(n_in: int = 6, n_out: int = 8, gain: float = 2.5) -> "nir.Affine":
    return nir.Affine(weight=RNG.normal(0, gain, (n_out, n_in)), bias=RNG.normal(0.1, 0.2, n_out))


def inputs(n_in: int = 6, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((T, N, n_in)) < 0.3).astype(np.float64)


def _lif(dt: float, n: int = 8, r=None, v_reset=0.0, v_leak=None) -> "nir.LIF":
    tau = RNG.uniform(2.0, 12.0, n) * dt
    return nir.LIF(tau=tau, r=tau / dt if r is None else np.full(n, float(r)),
                   v_leak=np.full(n, v_reset if v_leak is None else v_leak), v_threshold=RNG.uniform(0.5, 1.5, n),
                   v_reset=np.full(n, v_reset))


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("kind", ["LIF", "IF", "CubaLIF"])
def test_nodes_follow_forward_euler(kind, reset):
    dt, n = 1e-3, 8
    if kind == "LIF":
        node = _lif(dt)
    elif kind == "IF":
        node = nir.IF(r=np.full(n, 0.7 / dt), v_threshold=RNG.uniform(0.5, 1.5, n), v_reset=np.zeros(n))
    else:
        ts, tm = RNG.uniform(2, 6, n) * dt, RNG.uniform(3, 10, n) * dt
        node = nir.CubaLIF(tau_syn=ts, tau_mem=tm, r=tm / dt, v_leak=np.zeros(n), v_threshold=RNG.uniform(0.5, 1.5, n),
                           v_reset=np.zeros(n), w_in=ts / dt)
    a = affine()
    net = hn.import_from_nir(chain(a, node), dt=dt, reset=reset, dtype=torch.float64)
    x = inputs()
    ref = euler(x, a.weight, a.bias, node, dt, reset)
    assert 20 < ref.sum() < ref.size - 20
    assert np.array_equal(run(net, x), ref)
    assert net.nir_import.resets == {"n1": reset}


def _written(tmp_path, graph, version: str):
    path = tmp_path / f"g{version}.nir"
    nir.write(path, graph)
    with h5py.File(path, "r+") as f:
        del f["version"]
        f["version"] = version.encode()
    return path


def test_the_reset_follows_the_nir_version_of_the_file(tmp_path):
    """NIR 1.0.4 documented a subtractive reset, 1.0.6 and later a reset to v_reset."""
    dt = 1e-3
    a, node = affine(), _lif(dt)
    g = chain(a, node)
    x = inputs(seed=1)
    old = hn.import_from_nir(_written(tmp_path, g, "1.0.4"), dt=dt, dtype=torch.float64)
    new = hn.import_from_nir(_written(tmp_path, g, "1.0.8"), dt=dt, dtype=torch.float64)
    assert old.nir_import.nir_version == "1.0.4" and old.nir_import.resets == {"n1": "subtract"}
    assert new.nir_import.resets == {"n1": "zero"}
    sub, zero = euler(x, a.weight, a.bias, node, dt, "subtract"), euler(x, a.weight, a.bias, node, dt, "zero")
    assert not np.array_equal(sub, zero)
    assert np.array_equal(run(old, x), sub) and np.array_equal(run(new, x), zero)


def test_norse_ignores_r():
    dt = 1e-3
    a, node = affine(gain=8.0), _lif(dt, r=3.0)
    x = inputs(seed=2)
    nir_net = hn.import_from_nir(chain(a, node), dt=dt, dtype=torch.float64)
    norse_net = hn.import_from_nir(chain(a, node), source="norse", dtype=torch.float64)
    assert norse_net.nir_import.dt == 1e-3
    with_r, without = euler(x, a.weight, a.bias, node, dt, "zero"), euler(x, a.weight, a.bias, node, dt, "zero", r_read=False)
    assert not np.array_equal(with_r, without) and without.sum() > 10
    assert np.array_equal(run(nir_net, x), with_r) and np.array_equal(run(norse_net, x), without)


def test_dt_is_never_guessed():
    g = chain(affine(), _lif(1e-4))
    with pytest.raises(ValueError, match="dt is not part of a NIR graph"):
        hn.import_from_nir(g)
    with pytest.raises(ValueError, match=r"dt: the time step must be a finite number of seconds > 0; got -1"):
        hn.import_from_nir(g, dt=-1)
    assert hn.import_from_nir(g, source="spikingjelly").nir_import.dt == 1e-4
    # at dt = 1e-2 the same taus are below one step: refused, naming the node and the dt
    with pytest.raises(hn.NIRError, match=r"node 'n1' \(LIF\): tau/dt = .* steps at dt = 0.01 s"):
        hn.import_from_nir(g, dt=1e-2)


def test_shift_time_constants_survive_float32():
    """tau = dt 2^k written as float32 is exactly 2^k steps, and r = tau/dt exactly a gain of 1."""
    dt, n = 1e-4, 4
    tau = np.array([2.0, 4.0, 16.0, 64.0], np.float32) * np.float32(dt)
    node = nir.LIF(tau=tau, r=(tau / np.float32(dt)).astype(np.float32), v_leak=np.zeros(n, np.float32),
                   v_threshold=np.ones(n, np.float32), v_reset=np.zeros(n, np.float32))
    net = hn.import_from_nir(chain(nir.Linear(weight=np.eye(n)), node, shape=(n,), out=(n,)), dt=dt)
    assert [type(m).__name__ for m in net] == ["Linear", "LIFNode"]  # no Scale: the gain is exactly 1
    assert net[1].tau.tolist() == [2.0, 4.0, 16.0, 64.0] and net[1].decay_input is False


def test_conv1d_and_gains():
    """Conv1d against torch's conv1d; an IF gain r dt != 1 as a Scale, folded into the convolution with fold=True."""
    dt, shape = 1e-4, (2, 10)
    w = RNG.normal(0, 1.5, (3, 2, 3))
    conv = nir.Conv1d(input_shape=10, weight=w, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3))
    node = nir.IF(r=np.full((3, 10), 0.5 / dt), v_threshold=np.ones((3, 10)), v_reset=np.zeros((3, 10)))
    g = chain(conv, node, shape=shape, out=(3, 10))
    x = (np.random.default_rng(3).random((T, N, *shape)) < 0.4).astype(np.float64)
    cur = torch.nn.functional.conv1d(torch.from_numpy(x).flatten(0, 1), torch.from_numpy(w), padding=1)
    cur = cur.reshape(T, N, 3, 10).numpy() * 0.5
    v, ref = np.zeros((N, 3, 10)), []
    for t in range(T):
        v = v + cur[t]
        s = v >= 1.0
        v = np.where(s, 0.0, v)
        ref.append(s)
    ref = np.stack(ref).astype(np.float64)
    assert 10 < ref.sum() < ref.size - 10
    plain = hn.import_from_nir(g, dt=dt, dtype=torch.float64)
    folded = hn.import_from_nir(g, dt=dt, dtype=torch.float64, fold=True)
    assert [type(m).__name__ for m in plain] == ["Conv1d", "Scale", "IFNode"]
    assert [type(m).__name__ for m in folded] == ["Conv1d", "IFNode"]
    assert np.array_equal(run(plain, x), ref) and np.array_equal(run(folded, x), ref)


def _two(a, b, c):
    return {"input": nir.Input(input_type=np.array([6])), "a": a, "b": b, "c": c,
            "output": nir.Output(output_type=np.array([8]))}


@pytest.mark.parametrize("make,match", [
    (lambda: chain(affine(), nir.I(r=np.ones(8))), r"node 'n1': NIR node type I has no hwsnn import"),
    (lambda: nir.NIRGraph(nodes=_two(affine(), _lif(1e-3), _lif(1e-3)), edges=[
        ("input", "a"), ("a", "b"), ("a", "c"), ("b", "output"), ("c", "output")], type_check=False),
     r"node 'a' \(Affine\) has 2 outputs \['b', 'c'\].*no branches"),
    (lambda: nir.NIRGraph(nodes=_two(affine(), affine(8, 8), _lif(1e-3)), edges=[
        ("input", "a"), ("a", "c"), ("c", "b"), ("b", "a"), ("c", "output")], type_check=False),
     r"node 'a' \(Affine\) has 2 inputs|node 'c' \(LIF\) has 2 outputs"),
    (lambda: nir.NIRGraph(nodes=_two(affine(), _lif(1e-3), affine(8, 8)), edges=[
        ("input", "a"), ("a", "b"), ("b", "output")], type_check=False),
     r"node 'c' \(Affine\) is not on the chain"),
    (lambda: nir.NIRGraph(nodes={**_two(affine(), _lif(1e-3), affine(8, 8)), "input2": nir.Input(input_type=np.array([6]))},
                          edges=[("input", "a"), ("input2", "a"), ("a", "b"), ("b", "output")], type_check=False),
     r"2 Input node\(s\) \['input', 'input2'\]"),
    (lambda: chain(affine(), _lif(1e-3, v_reset=0.0, v_leak=0.3)), r"node 'n1' \(LIF\): v_leak = .* differs from v_reset"),
    (lambda: chain(affine(), nir.LIF(tau=np.full(8, 4e-3), r=np.full(8, 4.0), v_leak=np.zeros(8), v_threshold=np.ones(8),
                                     v_reset=np.linspace(0, 0.5, 8))), r"node 'n1' \(LIF\): per-neuron v_reset"),
    (lambda: chain(affine(), nir.Delay(delay=np.linspace(1e-3, 4e-3, 8))), r"node 'n1' \(Delay\): delays .* steps"),
    (lambda: chain(nir.Affine(weight=np.ones((8, 6, 1)), bias=np.zeros(8)), _lif(1e-3)),
     r"node 'n0' \(Affine\): weight of shape \[8, 6, 1\]"),
])
def test_refusals_name_the_node(make, match):
    with pytest.raises(hn.NIRError, match=match) as err:
        hn.import_from_nir(make(), dt=1e-3)
    assert err.value.node is not None


def test_conventions_that_cannot_be_honoured_are_refused():
    g = chain(affine(), _lif(1e-3, v_reset=0.4))
    with pytest.raises(hn.NIRError, match=r"node 'n1' \(LIF\): v_reset = .* with the subtractive reset"):
        hn.import_from_nir(g, dt=1e-3, reset="subtract")
    with pytest.raises(hn.NIRError, match=r"node 'n0': its input gain/scale cannot be folded.*follows the input"):
        hn.import_from_nir(chain(nir.Scale(scale=np.full(6, 2.0)), affine()), dt=1e-3, fold=True)
    with pytest.raises(ValueError, match="source must be one of"):
        hn.import_from_nir(g, dt=1e-3, source="brian")
    with pytest.raises(hn.NIRError, match="source='hwsnn': the graph carries no hwsnn metadata"):
        hn.import_from_nir(g, source="hwsnn")


def test_bad_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nir: not found"):
        hn.import_from_nir(tmp_path / "missing.nir", dt=1e-3)
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(hn.NIRError, match=r"bad.nir: cannot be read as a NIR graph"):
        hn.import_from_nir(bad, dt=1e-3)
    with pytest.raises(TypeError, match="expected a nir.NIRGraph or the path"):
        hn.import_from_nir(42, dt=1e-3)


def test_without_nir_the_extra_is_named(monkeypatch, tmp_path):
    monkeypatch.setitem(__import__("sys").modules, "nir", None)  # `import nir` now fails as if not installed
    with pytest.raises(ImportError, match=r'pip install "hwsnn\[nir\]"'):
        hn.import_from_nir(tmp_path / "any.nir", dt=1e-3)
    with pytest.raises(ImportError, match=r'pip install "hwsnn\[nir\]"'):
        hn.export_to_nir(torch.nn.Sequential(torch.nn.Linear(2, 2)))
