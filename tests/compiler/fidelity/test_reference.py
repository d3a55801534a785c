"""The user's model as the reference: intermediate tensors by name, static batches chunked, one clear
error for what onnxruntime cannot load or run."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.fidelity import ModelFormat, ReferenceModelError, model_format, reference_executor
from snnc_testutil import make_mlp_onnx


def test_intermediate_tensors_are_the_models_own_values():
    m = make_mlp_onnx(seed=3, L=4, hidden=(12, 8))
    x = np.random.default_rng(0).uniform(-1, 1, (10, 6)).astype(np.float32)
    ex = reference_executor(m)
    out = ex.run(x, ["g0", "a0", "a1"])
    w0 = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "w0"))
    b0 = numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "b0"))
    np.testing.assert_allclose(out["g0"], x @ w0.T + b0, rtol=1e-5, atol=1e-6)
    lam = float(numpy_helper.to_array(next(t for t in m.graph.initializer if t.name == "act0_lam")))
    levels = out["a0"] * 4 / lam
    np.testing.assert_allclose(levels, np.round(levels), atol=1e-4)  # a QCFS activation: lam * M / L
    np.testing.assert_array_equal(out["y"], ex.run(x)["y"])  # asking for intermediates changes nothing
    with pytest.raises(ReferenceModelError, match="has no tensor"):
        ex.run(x, ["nope"])


def _fixed_batch_model(batch=4):
    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(3, 4) / 10, "w")
    g = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1, name="fc")], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("n", [1, 3, 4, 7, 9])
def test_static_batch_is_chunked_and_padded(n):
    ex = reference_executor(_fixed_batch_model())
    assert ex.fixed_batch == 4
    x = np.random.default_rng(n).normal(size=(n, 4)).astype(np.float32)
    y = ex.run(x, ["y"])["y"]
    assert y.shape == (n, 3)
    np.testing.assert_allclose(y, x @ (np.arange(12).reshape(3, 4) / 10).T, rtol=1e-5, atol=1e-6)


def test_unloadable_models_give_one_clear_error():
    with pytest.raises(ReferenceModelError, match="not a readable ONNX model"):
        reference_executor(b"not a model")
    m = _fixed_batch_model()
    m.graph.node[0].op_type = "NoSuchOp"
    with pytest.raises(ReferenceModelError, match="onnxruntime cannot load the model") as e:
        reference_executor(m, name="m.onnx")
    assert "\n" not in str(e.value)
    custom = _fixed_batch_model()
    custom.graph.node[0].domain = "com.example"
    custom.opset_import.append(helper.make_opsetid("com.example", 1))
    assert model_format(custom) is ModelFormat.ONNX
    with pytest.raises(ReferenceModelError, match="com.example"):
        reference_executor(custom)


def test_runtime_failure_is_a_reference_error():
    ex = reference_executor(_fixed_batch_model())
    with pytest.raises(ReferenceModelError, match="cannot run the model"):
        ex.run(np.zeros((4, 5), np.float32))


def test_inputs_outside_the_range_are_counted():
    from snnc.compiler.fidelity import input_range_report
    from snnc.ir import Dense, Input, Network, Readout

    inp = Input("input", (4,), scale=1 / 255, qmin=0, qmax=255)
    ro = Readout("readout", (2,))
    net = Network([inp, ro], [Dense("input->readout", "input", "readout", np.ones((2, 4), np.int64), 0, (4,), (2,))], 4)
    ok = input_range_report(net, np.array([[0.0, 0.5, 1.0, 1.0 + 0.4 / 255]]))
    assert ok.outside == 0 and ok.message() is None  # within half a step of the top: rounds to qmax
    u8 = input_range_report(net, np.array([[0, 16, 255, 3], [0, 0, 0, 0], [-1, 0, 0, 0]], np.float64))
    assert (u8.above, u8.below, u8.samples_affected) == (3, 1, 2)
    assert "4 of 12 input values (2 samples) lie outside the input 'input' range [0, 1]" in u8.message()
