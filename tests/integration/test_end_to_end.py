"""The spine's acceptance criteria: models from both torch exporters with floor, round and ceil compile
for loihi and verify exact in the layerwise schedule; the integer ANN tracks onnxruntime."""

import numpy as np
import pytest

from snnc.ir import Schedule
from snnc.compiler.api import compile_model
from snnc.compiler.tools.verify import verify_against_ann

from snnc_testutil import DIGITS_DATA, load_example_models_module

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def qcfs():
    return load_example_models_module()


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
@pytest.mark.parametrize("quantizer", ["floor", "round", "ceil"])
def test_exported_models_verify_exact(tmp_path, qcfs, exporter, quantizer):
    model = qcfs.make_random_qcfs_net(quantizer=quantizer, levels=4, seed=3)
    path = qcfs.export_onnx(model, tmp_path / "m.onnx", exporter=exporter)
    net, raw = compile_model(path)
    assert net.timesteps == 4
    assert [L["quantizer"] for L in net.metadata["layers"][:-1]] == [quantizer] * 3
    data = np.load(DIGITS_DATA)
    x, y = data["x"][:120], data["y"][:120]
    rep = verify_against_ann(net, x, y, Schedule.LAYERWISE, raw)
    assert rep.exact and rep.neurons_mismatched == 0 and rep.neurons_compared > 0
    assert rep.accuracy["snn"] == rep.accuracy["ann_int"]
    assert rep.prediction_agreement["ann_int_vs_ann_float"] >= 0.95  # random weights: near-ties happen
    pipe = verify_against_ann(net, x, y, Schedule.PIPELINED, raw)
    assert all(L.unevenness_error >= 0 for L in pipe.layers)


def test_matched_v0_is_what_makes_it_exact(tmp_path, qcfs):
    """Sanity check that verify can fail: shifting V0 away from the QVM match breaks exactness."""
    from snnc.ir import Population, Network

    model = qcfs.make_random_qcfs_net(quantizer="round", levels=4, seed=1)
    net, raw = compile_model(qcfs.export_onnx(model, tmp_path / "m.onnx"))
    nodes = [Population(n.name, n.shape, threshold=n.threshold, v0=np.zeros_like(n.v0), bias=n.bias,
                        levels=n.levels, real_threshold=n.real_threshold) if isinstance(n, Population) else n
             for n in net.nodes]
    broken = Network(nodes, net.projections, net.timesteps)
    x = np.load(DIGITS_DATA)["x"][:50]
    rep = verify_against_ann(broken, x, None, Schedule.LAYERWISE, None)
    assert rep.neurons_mismatched == 0  # both the ANN and the SNN use the same V0 ...
    good = verify_against_ann(net, x, None, Schedule.LAYERWISE, raw)
    bad = verify_against_ann(broken, x, None, Schedule.LAYERWISE, raw)
    # ... but the integer ANN with V0 = 0 is floor, not round: it drifts from the float model
    assert bad.prediction_agreement["ann_int_vs_ann_float"] < good.prediction_agreement["ann_int_vs_ann_float"]
