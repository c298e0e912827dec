"""The output code on a Xylo chip: the decoder runs off the chip after the one core (fusing, the fit
check, the Rockpool hand-off), its codebook is covered by the bundle (tampering refused), and the NIR,
netx and run-file paths handle it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import quant
import sim
import targets
from hwsnn import cli, functional
from hwsnn.config import ConfigError, run_config_from_dict
from hwsnn.demo import default_network
from hwsnn.fixed import FixedDropout, FixedOutputCode
from quant.xylo import FuseError, fuse
from targets.bundle import BundleError, default_codebook, load_bundle
from targets.bundle.xylo_fuse import fuse_ops
from tests.bundle_nets import xylo_code_net
from tests.bundle_tools import resign


@pytest.fixture
def code_bundle(net_bundles):
    return net_bundles["xylo_code"]


def test_fusing_leaves_the_inactive_dropout_out_and_the_decoder_after_the_core():
    net = xylo_code_net()
    fused = fuse(net, input_shape=(16,), input_kind="counts")
    assert [type(m).__name__ for m in fused] == ["FixedXyloCore", "FixedOutputCode"]
    g = torch.Generator().manual_seed(4)
    x = torch.randint(0, 4, (25, 3, 16), generator=g) * (torch.rand(25, 3, 16, generator=g) < 0.4)
    functional.reset_net(net)
    functional.reset_net(fused)
    ref = net(x)
    assert ref.shape == (25, 3, 10) and ref.abs().sum() > 0 and torch.equal(fused(x), ref)


def test_an_active_dropout_inside_the_core_is_refused_by_name():
    net = xylo_code_net()
    net[2] = FixedDropout(0.25, 11, net[0].target, name="drop", step_mode="m").train()
    spec = quant.network_spec(net, input_shape=(16,), input_kind="counts")
    with pytest.raises(FuseError, match="drop: an active dropout .* has no place on the Xylo core"):
        fuse_ops(spec.ops, targets.load("xylo"))


def test_fit_lists_the_decoder_off_the_chip_and_rockpool_gets_the_core(code_bundle):
    bundle = sim.load_export(code_bundle)
    fit = sim.fit_check(bundle)
    assert fit["fits"], fit["problems"]
    assert fit["off_chip"] == [{"layer": "code", "op": "output_code"}]
    assert not any(c["layer"] == "code" for c in fit["checks"])  # not a chip resource
    kw = quant.to_rockpool_xylo(bundle)
    assert kw["weights_out"].shape == (30, 8)  # the 8 readouts; the decoder is not part of the chip


def test_a_decoder_before_a_neuron_does_not_fit_xylo():
    tg = targets.load("xylo")
    net = xylo_code_net()
    layers = list(net)
    bad = torch.nn.Sequential(*layers[:2], FixedOutputCode(np.eye(30, dtype=np.uint8), tg, name="code30"), *layers[3:5])
    functional.set_step_mode(bad, "m")
    with pytest.raises(FuseError, match="code30"):
        fuse(bad, input_shape=(16,), input_kind="counts")


def test_a_changed_codebook_bit_is_refused(code_bundle, tmp_path):
    path = tmp_path / "b"
    shutil.copytree(code_bundle, path)
    original = load_bundle(path).tables["code.codebook"].copy()

    def flip(tables):
        cb = tables["code.codebook"].copy()
        cb[3, 0] ^= 1
        tables["code.codebook"] = cb

    # unsigned: the digest refuses it; signed again: the format's own check refuses the code
    raw = tmp_path / "raw"
    shutil.copytree(code_bundle, raw)
    from tests.bundle_tools import rewrite_npz_member

    rewrite_npz_member(raw / "tables.npz", "code.codebook", lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    with pytest.raises(BundleError, match="code.codebook|tables.npz"):
        load_bundle(raw)
    resign(path, edit_tables=flip)
    with pytest.raises(BundleError) as err:
        load_bundle(path)
    assert "layer 'code' (output_code)" in str(err.value) and "same number of ones" in str(err.value)
    assert cli.main(["report", str(path), "--out", str(tmp_path / "r"), "--no-plots", "--no-progress"]) == cli.EXIT_BUNDLE
    assert np.array_equal(original, default_codebook(10, 8))


def test_a_valid_other_codebook_signed_again_fails_the_recorded_reference(code_bundle, tmp_path, capsys):
    """Rows 0 and 1 swapped: still a valid code, correctly signed, but not what was exported."""
    path = tmp_path / "b"
    shutil.copytree(code_bundle, path)

    def swap(tables):
        cb = tables["code.codebook"].copy()
        cb[[0, 1]] = cb[[1, 0]]
        tables["code.codebook"] = cb

    resign(path, edit_tables=swap)
    load_bundle(path, deep=True)  # every digest is correct again
    out = tmp_path / "r"
    status = cli.main(["report", str(path), "--out", str(out), "--no-plots", "--no-progress"])
    capsys.readouterr()
    rep = json.loads((out / "report.json").read_text())
    assert status == cli.EXIT_PROOF_FAILED and rep["bit_exact"] is False
    assert rep["checks"]["reference"]["first_mismatch"]["layer"] == "code"


def test_netx_refuses_the_decoder_by_name(tmp_path):
    tg = targets.load("loihi_netx")
    net = default_network("loihi_netx", hidden=8)
    twin = quant.convert(net.eval(), tg, clip=True)
    twin = torch.nn.Sequential(*twin[:2], *twin[3:5],  # dense, lif, dense, cuba (no dropout)
                               FixedOutputCode(np.eye(40, dtype=np.uint8), tg, name="code"))
    functional.set_step_mode(twin, "m")
    path = quant.export(twin, tmp_path / "e")
    from quant import views
    from quant.netx import NetxFormatError

    with pytest.raises(NetxFormatError, match=r"op 'code' \(output_code\): netx cannot build this op"):
        views.add_view(path, "netx")


def test_run_file_with_an_output_code_checks_the_chain():
    net = [
        {"type": "Linear", "in_features": 16, "out_features": 8, "bias": False},
        {"type": "CubaLIFNode", "tau_syn": 2.0, "tau_mem": 2.0, "v_reset": None},
        {"type": "OutputCode", "classes": 4, "readouts": 8},
    ]
    cfg = run_config_from_dict({"target": "xylo", "network": net})
    assert cfg.build_network()[-1].classes == 4
    bad = [dict(e) for e in net]
    bad[2]["readouts"] = 6
    with pytest.raises(ConfigError, match=r"network\[2\].readouts: 6 does not match the 8 features"):
        run_config_from_dict({"target": "xylo", "network": bad})
    bad[2].update(readouts=8, codebook=[[1, 1, 0, 0, 0, 0, 0, 0]] * 4)
    with pytest.raises(ConfigError, match=r"(?s)network\[2\] \(OutputCode\).*same codeword"):
        run_config_from_dict({"target": "xylo", "network": bad}).build_network()
