"""``snnc verify --against ann`` and ``snnc simulate`` on training-free networks (paper 004): the
reference is the float ANN (nothing to be exact against), events are non-zero graded messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.backends.reference import simulate
from snnc.compiler.api import compile_to_file
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.tools.cli import cli
from snnc.compiler.config import CompileConfig
from snnc.compiler.metadata import Conversion, conversion_of
from snnc.compiler.tools.verify_float import verify_training_free
from snnc.ir import load_with_extras
from snnc_testutil import DIGITS_MODEL, REPO

DIGITS = REPO / "examples" / "digits"


@pytest.fixture(scope="module", params=["rate", "differential"])
def bundle(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("tf") / f"{request.param}.snnc"
    compile_to_file(DIGITS / "relu_cnn.onnx", out, CompileConfig(
        neuron="multi-threshold", mt_n=4, coding=request.param, timesteps=4,
        calibration_data=str(DIGITS / "calib.npz"), schedule="pipelined"), runner=reference_runner)
    return out


def test_verify_compares_every_layer_with_the_float_relu(bundle):
    net, extras = load_with_extras(bundle)
    assert conversion_of(net) is Conversion.TRAINING_FREE
    z = np.load(DIGITS / "test.npz")
    x, y = z["x"][:120], z["y"][:120]
    rep = verify_training_free(net, x, y, bytes(extras["onnx_model"]))
    assert [L.name for L in rep.layers] == [p.name for p in net.populations]
    for L in rep.layers:   # the SNN tracks each ReLU: a few percent, not garbage (a wrong scale gives ~1)
        assert L.compared == 120 * net.node(L.name).size and 0 < L.rel_rms_error < 0.2, L
    assert rep.accuracy["ann_float"] > 0.95 and rep.prediction_agreement["snn_vs_ann_float"] > 0.95
    r = CliRunner().invoke(cli, ["verify", str(bundle), "--against", "ann", "--data", str(DIGITS / "test.npz"),
                                 "--samples", "40", "--json"])
    assert r.exit_code == 1, r.output  # approximate by design: UNCHECKED, never EXACT
    d = json.loads(r.output[r.output.index("{"):])
    assert d["comparison"] == "float" and not d["ok"] and len(d["layers"]) == 3
    assert d["verdict"]["name"] == "UNCHECKED" and d["verdict"]["exit_code"] == 1


def test_a_qcfs_bundle_is_still_verified_exactly(tmp_path):
    out = tmp_path / "q.snnc"
    compile_to_file(DIGITS_MODEL, out, runner=reference_runner)
    assert conversion_of(load_with_extras(out)[0]) is not Conversion.TRAINING_FREE


def test_simulate_counts_graded_messages_as_events(bundle):
    net, _ = load_with_extras(bundle)
    x = np.load(DIGITS / "test.npz")["x"][:20]
    res = simulate(net, x, "pipelined", record=True)
    events = sum(int(np.count_nonzero(res.spikes[p.name])) for p in net.populations)
    r = CliRunner().invoke(cli, ["simulate", str(bundle), "--data", str(DIGITS / "test.npz"), "--samples", "20",
                                 "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[r.output.index("{"):])
    assert sum(d["spikes_per_sample"].values()) == pytest.approx(events / 20)
