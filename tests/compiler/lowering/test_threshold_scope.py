"""Per-channel calibrated thresholds of plain ReLU nets (paper 004: "channel-wise thresholds").

A message of channel c is worth theta_c / 2^(n-1), so the next layer's real weight on channel c
is W[o, c] theta_c / (2^(n-1) theta_o). The sharp check: rescaling channel c of a layer by
a_c > 0 (its weights and bias times a_c, the next layer's weights on c divided by a_c) leaves the
float network unchanged (ReLU is positively homogeneous); with thresholds theta_c times a_c the
integer network must come out the same, integer for integer. A scale applied on the wrong axis,
or not at all, breaks it.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.backends.reference import simulate
from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.config import CompileConfig
from snnc.compiler.targets import load_target
from snnc.ir import DifferentialCoding, MultiThreshold, RateCoding
from snnc_testutil import REPO, lower_to_network


def _net(rng, scale1=None, scale3=None):
    """Conv(1->4) ReLU Conv(4->6) ReLU Flatten Gemm(216->5) ReLU Gemm(5->3) on (1, 6, 6) inputs;
    scale1 / scale3 rescale the channels of ReLU 1 / features of ReLU 3 (same function)."""
    w1 = rng.normal(0, 0.5, (4, 1, 3, 3)); b1 = rng.normal(0, 0.1, 4)
    w2 = rng.normal(0, 0.3, (6, 4, 3, 3)); b2 = rng.normal(0, 0.1, 6)
    w3 = rng.normal(0, 0.1, (5, 216)); b3 = rng.normal(0, 0.1, 5)
    w4 = rng.normal(0, 0.5, (3, 5)); b4 = np.zeros(3)
    if scale1 is not None:
        w1, b1 = w1 * scale1[:, None, None, None], b1 * scale1
        w2 = w2 / scale1[None, :, None, None]
    if scale3 is not None:
        w3, b3 = w3 * scale3[:, None], b3 * scale3
        w4 = w4 / scale3[None, :]
    f = lambda a, n: numpy_helper.from_array(np.asarray(a, np.float32), n)  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("Flatten", ["r2"], ["fl"], name="flat"),
        helper.make_node("Gemm", ["fl", "w3", "b3"], ["g3"], name="fc3", transB=1),
        helper.make_node("Relu", ["g3"], ["r3"], name="relu3"),
        helper.make_node("Gemm", ["r3", "w4", "b4"], ["y"], name="fc4", transB=1),
    ]
    g = helper.make_graph(nodes, "scoped", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                          [f(w1, "w1"), f(b1, "b1"), f(w2, "w2"), f(b2, "b2"), f(w3, "w3"), f(b3, "b3"),
                           f(w4, "w4"), f(b4, "b4")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _imported(tmp_path, name, model):
    p = tmp_path / f"{name}.onnx"
    onnx.save(model, p)
    return import_model(p)


def _params(net):
    out = {}
    for n in net.ordered_nodes():
        for k in ("threshold", "v0", "bias"):
            if hasattr(n, k):
                out[f"{n.name}.{k}"] = np.asarray(getattr(n, k)).tolist()
    for p in net.projections:
        out[p.name] = (np.asarray(p.weight).tolist(), int(p.exponent), type(p).__name__)
    return out


@pytest.mark.parametrize("coding", [RateCoding(), DifferentialCoding(frac_bits=8)], ids=["rate", "differential"])
def test_channel_rescaling_gives_the_same_integer_network(tmp_path, coding):
    rng = np.random.default_rng(3)
    a1 = np.array([1.0, 2.0, 0.5, 4.0])          # powers of two: the float rescaling is exact
    a3 = np.array([0.25, 1.0, 8.0, 2.0, 0.5])
    base = _imported(tmp_path, "base", _net(np.random.default_rng(3)))
    scaled = _imported(tmp_path, "scaled", _net(rng, a1, a3))
    th = {"relu1": np.array([1.0, 1.5, 0.7, 2.0]), "relu2": np.linspace(0.8, 1.8, 6), "relu3": np.linspace(1, 3, 5)}
    th_s = {"relu1": th["relu1"] * a1, "relu2": th["relu2"], "relu3": th["relu3"] * a3}
    target = load_target("loihi")
    neuron = MultiThreshold(n=4, relu=True)
    net_a = lower_to_network(base.graph, target, 4, (0.0, 1.0), neuron, "auto", th, coding)
    net_b = lower_to_network(scaled.graph, target, 4, (0.0, 1.0), neuron, "auto", th_s, coding)
    pa, pb = _params(net_a), _params(net_b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert pa[k] == pb[k], k
    # and the scaled thresholds really are per channel in the IR (not collapsed to one)
    assert np.allclose(net_b.node("fc1").real_threshold, th_s["relu3"])


def test_uniform_channel_thresholds_equal_the_layer_network(tmp_path):
    imp = _imported(tmp_path, "base", _net(np.random.default_rng(5)))
    target, neuron = load_target("loihi"), MultiThreshold(n=2, relu=True)
    per_layer = {"relu1": 1.25, "relu2": 1.5, "relu3": 2.0}
    per_channel = {"relu1": np.full(4, 1.25), "relu2": np.full(6, 1.5), "relu3": np.full(5, 2.0)}
    a = lower_to_network(imp.graph, target, 8, (0.0, 1.0), neuron, "auto", per_layer, RateCoding())
    b = lower_to_network(imp.graph, target, 8, (0.0, 1.0), neuron, "auto", per_channel, RateCoding())
    assert _params(a) == _params(b)


def test_wrong_number_of_channel_thresholds_is_named(tmp_path):
    from snnc.compiler.errors import ConversionError

    imp = _imported(tmp_path, "base", _net(np.random.default_rng(5)))
    th = {"relu1": np.ones(3), "relu2": np.ones(6), "relu3": np.ones(5)}
    with pytest.raises(ConversionError, match="relu1.*3 calibrated thresholds for 4 channels"):
        lower_to_network(imp.graph, load_target("loihi"), 4, (0.0, 1.0), MultiThreshold(n=4, relu=True), "auto", th,
                         RateCoding())


def test_digits_channel_scope_compiles_per_channel_and_tracks_the_float_ann():
    """Before/after on the shipped plain-ReLU digits CNN: per-channel thresholds from calibration,
    the SNN (rate, MT-4, T = 8) within 2 points of the float ANN (98.61 %)."""
    digits = REPO / "examples" / "digits"
    imp = import_model(digits / "relu_cnn.onnx")
    z = np.load(digits / "test.npz")
    x, y = z["x"], z["y"]
    cfg = CompileConfig(neuron="multi-threshold", mt_n=4, timesteps=8, calibration_data=str(digits / "calib.npz"),
                        schedule="pipelined", threshold_scope="channel")
    net = compile_imported(imp, cfg, runner=reference_runner)
    for pop in net.populations:
        rt = np.asarray(pop.real_threshold)
        assert rt.shape == (pop.shape[0],) and len(set(rt.tolist())) > 1, pop.name
    acc = float(np.mean(simulate(net, x, "pipelined").predictions() == y))
    assert acc >= 0.9861 - 0.02
