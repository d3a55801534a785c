"""ONNX -> float graph for transformers (compiler/frontend/transformer_ops.py): the committed ViTs of both
exporters and small graphs of each op, run against onnxruntime; what is refused, by name."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.errors import InvalidModelError
from snnc.compiler.frontend.float_graph import (AddConst, ConcatConst, LayerNorm, MatMul, Mean, Reshape, Select, Softmax,
                                                TokenLinear, Transpose)
from snnc.compiler.frontend.onnx_loader import import_onnx
from snnc_testutil import REPO

VITS = {"mnist_legacy": "examples/mnist/vit_mnist_legacy.onnx", "mnist_dynamo": "examples/mnist/vit_mnist_dynamo.onnx",
        "digits_legacy": "examples/digits/vit_digits_legacy.onnx", "digits_dynamo": "examples/digits/vit_digits_dynamo.onnx"}


def _ort(path_or_model, x):
    s = ort.InferenceSession(path_or_model if isinstance(path_or_model, str) else path_or_model.SerializeToString())
    return s.run(None, {s.get_inputs()[0].name: x.astype(np.float32)})[0]


@pytest.mark.parametrize("which", sorted(VITS))
def test_committed_vits_import_and_match_onnxruntime(which):
    path = str(REPO / VITS[which])
    data = REPO / ("examples/mnist/test.npz" if "mnist" in which else "examples/digits/test.npz")
    x = np.load(data)["x"][:16]
    g, _ = import_onnx(path)
    np.testing.assert_allclose(g(x), _ort(path, x), atol=2e-5, rtol=1e-5)
    kinds = {type(o) for o in g.ops}
    assert {TokenLinear, MatMul, LayerNorm, Softmax, Transpose, Reshape, ConcatConst, AddConst, Select} <= kinds


def _model(nodes, inits, in_shape, out_shape, opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _check(tmp_path, model, in_shape):
    onnx.save(model, tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(3, *in_shape)).astype(np.float32)
    g, _ = import_onnx(tmp_path / "m.onnx")
    np.testing.assert_allclose(g(x), _ort(model, x), atol=1e-5, rtol=1e-5)
    return g


def test_token_mean_readout_and_layernorm_without_bias(tmp_path):
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("LayerNormalization", ["x", "s"], ["n"], axis=-1, epsilon=1e-5),
             helper.make_node("ReduceMean", ["n"], ["m"], axes=[1], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["y"])]
    g = _check(tmp_path, _model(nodes, {"s": rng.normal(size=6).astype(np.float32), "w": rng.normal(size=(6, 3)).astype(np.float32)}, (5, 6), (3,)), (5, 6))
    assert any(isinstance(o, Mean) for o in g.ops)


def test_softmax_on_scores_and_scaled_attention(tmp_path):
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", ["x", "wq"], ["q"]), helper.make_node("MatMul", ["x", "wk"], ["k"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Mul", ["s", "c"], ["s2"]),
             helper.make_node("Softmax", ["s2"], ["a"], axis=-1), helper.make_node("MatMul", ["a", "x"], ["y"])]
    inits = {"wq": rng.normal(size=(4, 4)).astype(np.float32), "wk": rng.normal(size=(4, 4)).astype(np.float32),
             "c": np.array(0.5, np.float32)}
    _check(tmp_path, _model(nodes, inits, (3, 4), (3, 4)), (3, 4))


def test_refusals_name_the_node(tmp_path):
    cases = [
        ([helper.make_node("LayerNormalization", ["x", "s"], ["y"], axis=1, name="ln")],
         {"s": np.ones((3, 4), np.float32)}, "'ln'.*last axis"),
        ([helper.make_node("Gather", ["x", "i"], ["y"], axis=1, name="ga")], {"i": np.array([0, 1])},
         "'ga'.*one scalar index"),
        ([helper.make_node("Transpose", ["x"], ["y"], perm=[1, 0, 2], name="tr")], {}, "'tr'.*batch axis"),
        ([helper.make_node("Reshape", ["x", "t"], ["y"], name="rs")], {"t": np.array([3, -1])}, "'rs'.*batch axis"),
    ]
    for nodes, inits, pat in cases:
        onnx.save(_model(nodes, inits, (3, 4), (3, 4)), tmp_path / "m.onnx")
        with pytest.raises(InvalidModelError, match=pat):
            import_onnx(tmp_path / "m.onnx")
