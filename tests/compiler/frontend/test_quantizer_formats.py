"""The real models of issue 13 through the frontend and passes: BipolarQuant weights, Trunc, signed
activations, argmax-preserving output ops, fixed-batch exports. Each imported float graph is run before and
after the default passes against the model's own executor (onnxruntime, or the QONNX expansion)."""

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.errors import ConversionError, InvalidModelError, UnsupportedOperatorError
from snnc.compiler.fidelity import reference_executor
from snnc.compiler.frontend.onnx_loader import import_onnx, to_fgraph
from snnc.compiler.passes import default_passes, run_passes

REPO = Path(__file__).resolve().parents[3]
EXT = REPO / "examples" / "external"
X = np.load(REPO / "examples" / "digits" / "test.npz")["x"][:48]


def _check_before_after(path, x=X, argmax_only=False):
    """The float graph (float64) before and after the passes against the model's executor (float32): values
    equal but where float32 noise moves a level (rare), predictions equal."""
    model = onnx.load(str(path))
    ref = reference_executor(model).run(x)[model.graph.output[0].name].reshape(len(x), -1)
    g, _ = import_onnx(path)
    for stage in ("before", "after"):
        q = g.meta.get("input_quantizer")  # dropped by the passes: the input on the model's own grid
        xs = x
        if stage == "after" and q is not None:
            v = x.astype(np.float64) / q["scale"]
            xs = np.clip(np.rint(v) if q["rounding"] == "half_even" else np.floor(v + 0.5), q["qmin"], q["qmax"]) * \
                q["scale"]
        got = g(xs).reshape(len(x), -1)
        assert np.mean(got.argmax(1) == ref.argmax(1)) >= 0.97, stage
        if not argmax_only:
            off = np.abs(got - ref) > 1e-3 * max(1.0, np.abs(ref).max())
            assert off.mean() <= 0.02, f"{stage}: {off.sum()} of {off.size} outputs differ"
        run_passes(g, default_passes())
    return g


def test_bipolar_weights_fold_to_plus_minus_scale():
    g = _check_before_after(EXT / "brevitas_bnn_qonnx.onnx")
    conv1 = next(o for o in g.ops if type(o).__name__ == "Conv")
    assert len(np.unique(np.abs(conv1.weight))) == 1  # binary weights: one magnitude, both signs
    assert (conv1.weight > 0).any() and (conv1.weight < 0).any()


@pytest.mark.parametrize("mode", ["FLOOR", "ROUND"])
def test_trunc_after_average_pool_is_a_quantized_activation(tmp_path, mode, caplog):
    m = onnx.load(str(EXT / "brevitas_trunc_round_qonnx.onnx"))
    trunc = next(n for n in m.graph.node if n.op_type == "Trunc")
    for a in trunc.attribute:
        if a.name == "rounding_mode":
            a.s = mode.encode()
    onnx.save(m, tmp_path / "t.onnx")
    with caplog.at_level(logging.WARNING):  # ROUND: ties after the pool round up in snnc (warned): argmax only
        g = _check_before_after(tmp_path / "t.onnx", argmax_only=mode == "ROUND")
    assert ("rounds half to even" in caplog.text) == (mode == "ROUND")
    assert "'pool' (TruncAvgPool2d" in caplog.text or mode == "FLOOR"
    acts = [o for o in g.ops if type(o).__name__ == "QuantAct"]
    assert len(acts) == 3 and acts[-1].levels == 15  # conv1, conv2, the pool's 4-bit Trunc


def test_trunc_that_does_not_follow_a_pooled_quantizer_is_refused_by_name():
    s = numpy_helper.from_array(np.float32(0.25), "s")
    consts = [numpy_helper.from_array(np.float32(v), k) for k, v in (("z", 0), ("ib", 8), ("os", 1.0), ("ob", 4))]
    n = helper.make_node("Trunc", ["x", "s", "z", "ib", "os", "ob"], ["y"], name="tr", domain="qonnx.custom_op.general")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [s] + consts)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("qonnx.custom_op.general", 2)])
    with pytest.raises(InvalidModelError, match="Trunc \\(layer 'tr'\\): its input is not an unpadded AveragePool"):
        to_fgraph(m)


@pytest.mark.parametrize("name,node", [("brevitas_signed_qonnx", "node__symbolic_2"),
                                       ("brevitas_signed_qcdq", "node__symbolic_5")])
def test_signed_activation_is_refused_with_the_users_layer_and_what_to_do(name, node):
    with pytest.raises(ConversionError) as e:
        g, _ = import_onnx(EXT / f"{name}.onnx")
        run_passes(g, default_passes())
    msg = str(e.value)
    assert f"layer 'act1' (QuantHardTanh, ONNX node '{node}') quantizes to signed levels -8..7" in msg
    assert "cannot carry negative activations" in msg and "QuantReLU" in msg
    assert "/round" not in msg  # no synthesized op name


@pytest.mark.parametrize("name", ["brevitas_softmax_qonnx", "brevitas_logsoftmax_qcdq", "brevitas_sigmoid_qonnx"])
def test_argmax_preserving_output_op_is_dropped_with_a_note(name, caplog):
    with caplog.at_level(logging.WARNING):
        _check_before_after(EXT / f"{name}.onnx", argmax_only=True)
    assert "at the network's output: it cannot change the predicted class" in caplog.text


def _tiny(op, at_output=True, axis=None):
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    attrs = {} if axis is None else {"axis": axis}
    if at_output:
        nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], name="fc"), helper.make_node(op, ["h"], ["y"], name="head",
                                                                                          **attrs)]
    else:
        nodes = [helper.make_node(op, ["x"], ["h"], name="head", **attrs), helper.make_node("Gemm", ["h", "w"], ["y"],
                                                                                            name="fc")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_output_ops_that_could_change_the_argmax_are_refused():
    with pytest.raises(InvalidModelError, match="node 'head' \\(LogSoftmax, layer 'head'\\) is inside the network"):
        to_fgraph(_tiny("LogSoftmax", at_output=False))
    # a Softmax inside the network is a transformer's nonlinear layer (a graded unit), not dropped
    assert [type(op).__name__ for op in to_fgraph(_tiny("Softmax", at_output=False)).ops][0] == "Softmax"
    with pytest.raises(InvalidModelError, match="normalizes over axis 0"):
        to_fgraph(_tiny("Softmax", axis=0))
    with pytest.raises(UnsupportedOperatorError, match="Tanh at the network's output: only Softmax"):
        to_fgraph(_tiny("Tanh"))
    g = to_fgraph(_tiny("LogSoftmax", axis=1))
    x = np.random.default_rng(0).normal(size=(5, 4))
    np.testing.assert_allclose(g(x), x)  # the head dropped: identity weights


@pytest.mark.parametrize("name", ["brevitas_batch4_qonnx", "brevitas_batch4_qcdq"])
def test_fixed_batch_export_imports_and_runs_on_any_sample_count(name):
    model = onnx.load(str(EXT / f"{name}.onnx"))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    _check_before_after(EXT / f"{name}.onnx")
    ex = reference_executor(model)
    seven = ex.run(X[:7])[ex.output_name]
    eight = ex.run(X[:8])[ex.output_name]
    assert seven.shape[0] == 7
    np.testing.assert_array_equal(seven, eight[:7])


def test_reshape_of_another_batch_is_refused():
    w = numpy_helper.from_array(np.zeros((2, 8), np.float32), "w")
    shape = numpy_helper.from_array(np.array([2, 8], np.int64), "shape")
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"], name="rs"), helper.make_node("Gemm", ["r", "w"], ["y"],
                                                                                            transB=1, name="fc")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 2])], [w, shape])
    with pytest.raises(InvalidModelError, match="Reshape node 'rs' to \\[2, 8\\].*the model's batch is 4"):
        to_fgraph(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
