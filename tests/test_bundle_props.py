"""Properties of the export format (hypothesis): every op round-trips through its plain-data form,
and no single-byte change anywhere in a bundle gets past the reader."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import quant
import targets
from hwsnn.fixed import FixedCubaLIFNode, FixedLIFNode, FixedLinear
from hwsnn.functional import set_step_mode
from targets.bundle import BundleError, OPS, from_dict, load_bundle
from tests.bundle_nets import NETS


@pytest.fixture
def bundles(net_bundles):
    return net_bundles


def test_every_op_kind_round_trips_through_its_dict(bundles):
    """op -> dict -> op is the identity, and the dict is what the manifest holds."""
    seen = set()
    for path in bundles.values():
        bundle = load_bundle(path)
        for op, entry in zip(bundle.ops, bundle.layers):
            d = op.to_dict()
            assert d == entry
            tables = {f"{op.name}.{role}": arr for role, arr in op.tables().items()}
            again = from_dict(d, tables)
            assert again == op and type(again) is type(op)
            seen.add(op.kind)
            if op.kind == "recurrent":
                seen.add(op.neuron.kind)
    assert seen == set(OPS), f"not covered: {set(OPS) - seen}"


def test_a_changed_op_is_not_equal():
    tg = targets.load("generic_int8")
    spec = FixedLinear(torch.ones(3, 4, dtype=torch.int64), tg, None, 2, name="fc").to_spec("fc", (4,), "spikes", 0)
    assert spec == spec.replace()
    assert spec != spec.replace(weight_shift=1, weight_exponent=-1)
    w = spec.weight.copy()
    w[0, 0] = 2
    assert spec != spec.replace(weight=w)


def _random_net(seed: int, target: str, hidden: int, cuba: bool):
    tg = targets.load(target)
    g = torch.Generator().manual_seed(seed)
    lo, hi = max(tg.widths.weight.lo, -60), min(tg.widths.weight.hi, 60)
    per_event = tg.synapse.accumulation == "per_event_saturate"
    step = tg.synapse.weight_step
    w1 = torch.randint(lo // step, hi // step + 1, (hidden, 6), generator=g) * step
    w2 = torch.randint(lo // step, hi // step + 1, (3, hidden), generator=g) * step
    neuron = (lambda n, **kw: FixedCubaLIFNode(tg, 300, 1, 2, **kw)) if cuba else (lambda n, **kw: FixedLIFNode(tg, 300, 2, **kw))
    net = torch.nn.Sequential(
        FixedLinear(w1, tg, None, 2 if per_event else 0, first_layer=True, name="a"),
        neuron(hidden, name="b"),
        FixedLinear(w2, tg, None, 1 if per_event else 0, name="c"),
        neuron(3, name="d", readout=True),
    )
    set_step_mode(net, "m")
    return net


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), target=st.sampled_from(["generic_int8", "xylo", "loihi", "ideal"]),
       hidden=st.integers(1, 12), cuba=st.booleans(), examples=st.booleans(), hex_files=st.booleans(),
       data=st.data())
def test_any_single_byte_change_is_refused(tmp_path_factory, seed, target, hidden, cuba, examples, hex_files, data):
    root = tmp_path_factory.mktemp("byte")
    net = _random_net(seed, target, hidden, cuba)
    ex = None
    if examples:
        g = torch.Generator().manual_seed(seed)
        ex = {"inputs": (torch.rand(5, 2, 6, generator=g) < 0.5).to(torch.int8), "labels": torch.tensor([0, 2])}
    path = quant.export(net, root / "b", examples=ex, hex_files=hex_files)
    load_bundle(path, deep=True)
    files = sorted(p for p in path.rglob("*") if p.is_file())
    for _ in range(6):
        f = data.draw(st.sampled_from(files), label="file")
        raw = f.read_bytes()
        i = data.draw(st.integers(0, len(raw) - 1), label="offset")
        new = data.draw(st.integers(0, 255).filter(lambda b: b != raw[i]), label="byte")
        f.write_bytes(raw[:i] + bytes([new]) + raw[i + 1:])
        with pytest.raises(BundleError):
            load_bundle(path, deep=True)
        f.write_bytes(raw)
    assert load_bundle(path, deep=True).digest  # restored: accepted again


def test_a_copied_bundle_keeps_its_digest_and_an_edit_changes_it(bundles, tmp_path):
    src = bundles["xylo"]
    shutil.copytree(src, tmp_path / "copy")
    a, b = load_bundle(src), load_bundle(tmp_path / "copy")
    assert a.digest == b.digest and a.digest.startswith("sha256:") and len(a.digest) == 71
    assert np.array_equal(a.reference()[0], b.reference()[0])
