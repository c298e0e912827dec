"""The typed op descriptions (``targets.bundle``): validation naming the field, the chain of a
network, the twins' to_spec/from_spec, and the format page generated from the classes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import quant
import targets
from hwsnn.fixed import FixedCubaLIFNode, FixedLinear
from hwsnn.fixed.base import twin_from_spec
from targets import bundle as fmt

REPO = Path(__file__).resolve().parents[1]
TG = targets.load("generic_int8")


def dense(**kw):
    base = dict(name="fc", input_shape=(4,), input_kind="spikes", output_shape=(3,), output_kind="values",
                output_exponent=-2, in_features=4, out_features=3, latency=0, first_layer=True, accumulation="sum",
                event_cap=None, clip_events=False, weight_shift=2, input_exponent=0, weight_exponent=0,
                weight=np.ones((3, 4), np.int64))
    base.update(kw)
    return fmt.Dense(**base)


def test_a_valid_op_and_its_plain_data():
    op = dense()
    d = op.to_dict()
    assert d["params"]["weight_shift"] == 2 and d["tables"] == {"weight": "fc.weight"}
    assert fmt.from_dict(d, {"fc.weight": op.weight}) == op
    assert not op.weight.flags.writeable  # tables are read-only
    assert op.table_format("weight", TG) == fmt.TableFormat(8, True, 0)


@pytest.mark.parametrize("change,match", [
    (dict(weight_shift=True), r"params.weight_shift: expected an integer; got True"),
    (dict(in_features=0), r"params.in_features: 0 is outside \[1, inf\]"),
    (dict(accumulation="max"), r"params.accumulation: 'max' is not allowed"),
    (dict(weight=np.ones((3, 5), np.int64)), r"tables.weight: shape \[3, 5\]; expected \[3, 4\]"),
    (dict(output_exponent=-3), r"output.exponent: -3 but weight_exponent \+ input_exponent - weight_shift = -2"),
    (dict(input_shape=(5,)), r"input_shape: \[5\]; a dense layer with in_features = 4 takes \[4\]"),
    (dict(event_cap=3), r"params.event_cap: must be null with sum accumulation"),
    (dict(weight=np.ones((3, 4)) * 0.5), r"tables.weight: a table must hold integers; got dtype float64"),
    (dict(output_kind="sparks"), r"output_kind: 'sparks' is not one of spikes, counts, values"),
])
def test_every_invalid_field_is_named(change, match):
    with pytest.raises(fmt.SpecError, match=rf"(?s)layer 'fc' \(dense\) is not a valid dense op.*{match}"):
        dense(**change)


def test_target_checks_name_the_field_and_the_limit():
    op = dense(weight=np.full((3, 4), 200, np.int64), weight_shift=20, output_exponent=-20)
    with pytest.raises(fmt.SpecError) as err:
        op.check(TG)
    msg = str(err.value)
    assert "does not fit target 'generic_int8'" in msg
    assert "params.weight_shift: 20 is outside the target's" in msg
    assert "tables.weight: values [200, 200] do not fit 8 signed bits" in msg
    loihi = targets.load("loihi")
    w = np.ones((3, 4), np.int64)
    w[0, 0] = -2  # mixed sign mode: Lava floors odd weights onto its even grid
    with pytest.raises(fmt.SpecError, match="mixed sign mode changes .*multiples of 2"):
        dense(weight=w, sign_mode="mixed").check(loihi)


def test_unknown_and_missing_fields_of_an_entry():
    d = dense().to_dict()
    d["params"]["colour"] = "red"
    del d["params"]["latency"]
    with pytest.raises(fmt.SpecError) as err:
        fmt.from_dict(d, {"fc.weight": np.ones((3, 4))})
    assert "params.colour: unknown parameter of dense" in str(err.value)
    assert "params.latency: missing" in str(err.value)
    with pytest.raises(fmt.SpecError, match="op 'pooling' is not part of the export format"):
        fmt.from_dict({**dense().to_dict(), "op": "pooling"}, {})


def test_the_network_checks_the_chain():
    a = dense()
    b = dense(name="fc2", input_shape=(3,), in_features=3, weight=np.ones((3, 3), np.int64), input_kind="values",
              input_exponent=-2, output_exponent=-4, first_layer=False)
    fmt.Network(target=TG, input_shape=(4,), input_kind="spikes", input_exponent=0, ops=(a, b))
    with pytest.raises(fmt.SpecError, match=r"layers\[1\] \('fc2', dense\): takes \[3\] spikes, but receives \[3\] values"):
        fmt.Network(target=TG, input_shape=(4,), input_kind="spikes", input_exponent=0,
                    ops=(a, b.replace(input_kind="spikes")))
    with pytest.raises(fmt.SpecError, match="the name is used twice"):
        fmt.Network(target=TG, input_shape=(4,), input_kind="spikes", input_exponent=0, ops=(a, b.replace(name="fc")))
    with pytest.raises(fmt.SpecError, match="dt: must be a finite number"):
        fmt.Network(target=TG, input_shape=(4,), input_kind="spikes", input_exponent=0, ops=(a, b), dt=float("nan"))


def test_twins_rebuild_from_their_specs(net_bundles):
    """from_spec(to_spec(twin)) describes the same op again, for every op of every test network."""
    for path in net_bundles.values():
        bundle = quant.load_export(path)
        for op in bundle.ops:
            twin = twin_from_spec(op, bundle.target)
            again = twin.to_spec(op.name, op.input_shape, op.input_kind, _incoming(bundle, op))
            if op.kind in ("dropout", "dropout2d"):  # a rebuilt twin has drawn no mask yet: the draw is the same
                again = again.replace(mask=op.mask, mask_shape=op.mask_shape)
            elif op.kind == "dropconnect":
                again = again.replace(mask_w=op.mask_w, mask_b=op.mask_b, mask_batch=op.mask_batch)
            assert again == op, op.name


def _incoming(bundle, op):
    prev = None
    for o in bundle.ops:
        if o is op:
            return bundle.network.input_exponent if prev is None else prev.output_exponent
        prev = o


def test_the_event_cap_is_computed_once_by_the_twin_and_checked_by_the_format():
    xy = targets.load("xylo")
    fc = FixedLinear(torch.ones(4, 16, dtype=torch.int64), xy, None, 1, first_layer=True, name="w_in")
    hidden = FixedLinear(torch.ones(2, 4, dtype=torch.int64), xy, None, 1, name="w_h")
    assert fc.event_cap == 15 and hidden.event_cap == 31 and FixedLinear(torch.ones(2, 2, dtype=torch.int64), TG).event_cap is None
    spec = fc.to_spec("w_in", (16,), "counts", 0)
    assert spec.event_cap == 15
    with pytest.raises(fmt.SpecError, match="params.event_cap: 31 but the target's cap for the input projection is 15"):
        spec.replace(event_cap=31).check(xy)
    cuba = FixedCubaLIFNode(xy, 300, 2, 3, name="n")
    assert cuba.to_spec("n", (4,), "counts", None).max_spikes == 31


def test_the_format_page_is_generated_from_the_classes():
    page = REPO / "docs" / "EXPORT_FORMAT.md"
    proc = subprocess.run([sys.executable, "-m", "targets.bundle.docgen", str(page), "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = page.read_text()
    for kind, cls in fmt.OPS.items():
        assert f"`{kind}`" in text
        for f in cls.param_fields():
            assert f"params.`{f.name}`" in text, (kind, f.name)
    # the check can fail: a page with a stale block is reported
    stale = text.replace("| params.`weight_shift` |", "| params.`weightshift` |", 1)
    tmp = REPO / "docs" / ".stale_check.md"
    try:
        tmp.write_text(stale)
        proc = subprocess.run([sys.executable, "-m", "targets.bundle.docgen", str(tmp), "--check"], cwd=REPO,
                              capture_output=True, text=True)
        assert proc.returncode == 1 and "out of date" in proc.stderr
    finally:
        tmp.unlink()


def test_the_format_package_never_imports_torch():
    code = ("import sys, targets.bundle, targets.bundle.docgen\n"
            "assert not any(m == 'torch' or m.startswith(('torch.', 'hwsnn', 'quant', 'sim')) for m in sys.modules)\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
