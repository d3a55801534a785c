"""Transformer passes (compiler/passes/transformer.py): each run before and after on the float graph, and
against onnxruntime: GELU of both exporters and SiLU recognised by what they compute, the class token
taken before the final norm, and near-misses left alone."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.frontend.float_graph import Erf, Gelu, LayerNorm, Mul, Select, Silu
from snnc.compiler.frontend.onnx_loader import import_onnx
from snnc.compiler.passes import FuseElementwiseFunction, MergeScalarAffine, SelectBeforeRowwise, run_passes
from snnc_testutil import REPO


def _run_both(g, passes, x):
    """The graph computes the same before and after (within the pass's TOL: a fused GELU is the exact
    function, the exporter's spelling uses float32 constants such as 1.414214 for sqrt 2)."""
    before = g(x)
    run_passes(g, passes)
    after = g(x)
    np.testing.assert_allclose(after, before, atol=1e-6, rtol=1e-6)
    return g


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_gelu_of_both_exporters_is_fused(exporter):
    path = REPO / f"examples/digits/vit_digits_{exporter}.onnx"
    g, _ = import_onnx(path)
    x = np.load(REPO / "examples/digits/test.npz")["x"][:8]
    assert sum(isinstance(o, Erf) for o in g.ops) == 3
    _run_both(g, [MergeScalarAffine(), FuseElementwiseFunction()], x)
    assert sum(isinstance(o, Gelu) for o in g.ops) == 3
    assert not any(isinstance(o, (Erf, Mul)) for o in g.ops)
    s = ort.InferenceSession(str(path))
    np.testing.assert_allclose(g(x), s.run(None, {"x": x.astype(np.float32)})[0], atol=2e-5)


def _elementwise_model(nodes, inits):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 5])],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("scale,fused", [(1.0, True), (1.01, False)])
def test_silu_is_recognised_and_a_near_miss_is_not(tmp_path, scale, fused):
    nodes = [helper.make_node("Mul", ["x", "c"], ["xs"]), helper.make_node("Sigmoid", ["xs"], ["s"]),
             helper.make_node("Mul", ["x", "s"], ["y"])]
    model = _elementwise_model(nodes, {"c": scale})
    onnx.save(model, tmp_path / "m.onnx")
    g, _ = import_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(0, 4, (4, 3, 5))
    _run_both(g, [MergeScalarAffine(), FuseElementwiseFunction()], x)
    assert any(isinstance(o, Silu) for o in g.ops) is fused
    s = ort.InferenceSession(model.SerializeToString())
    np.testing.assert_allclose(g(x), s.run(None, {"x": x.astype(np.float32)})[0], atol=2e-5, rtol=1e-5)


def test_class_token_is_selected_before_the_final_norm():
    g, _ = import_onnx(REPO / "examples/mnist/vit_mnist_dynamo.onnx")
    x = np.load(REPO / "examples/mnist/test.npz")["x"][:4]
    _run_both(g, [SelectBeforeRowwise()], x)
    sel = next(o for o in g.ops if isinstance(o, Select))
    assert isinstance(g.producer(g.op(g.consumers(sel.name)[0].name).name), LayerNorm)
    assert g.shapes()[sel.name] == (64,)
