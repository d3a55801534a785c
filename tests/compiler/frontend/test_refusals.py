"""What the frontend refuses before it reads anything else (issue 14): nodes outside the standard
domain, old opsets, attributes of the wrong type, initializers whose data does not match their dims,
two producers of a tensor, bad QONNX/QDQ quantizer attributes and scales, activation quantizers
beyond 16 bits, and inputs whose declared size is beyond the memory budget. Each is an
``InvalidModelError`` naming the model file and the node, initializer or input."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.errors import InvalidModelError
from snnc.compiler.frontend.builder import initializer_problem
from snnc.compiler.frontend.onnx_loader import import_onnx, to_fgraph

from snnc_testutil import make_mlp_onnx

QONNX = "qonnx.custom_op.general"


def _refused(model: onnx.ModelProto, tmp_path, *fragments):
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    with pytest.raises(InvalidModelError) as e:
        import_onnx(path)
    msg = str(e.value)
    assert "'" + str(path) + "'" in msg.splitlines()[0], msg
    for f in fragments:
        assert f in msg, (f, msg)
    return e.value


def _node(m, op):
    return next(n for n in m.graph.node if n.op_type == op)


def test_the_unmodified_model_imports(tmp_path):
    onnx.save(make_mlp_onnx(), tmp_path / "m.onnx")
    fg, _ = import_onnx(tmp_path / "m.onnx")
    assert fg.ops


def test_a_node_in_a_foreign_domain_is_refused_by_name(tmp_path):
    m = make_mlp_onnx()
    _node(m, "Mul").domain = "com.evil"
    m.opset_import.append(helper.make_opsetid("com.evil", 1))
    _refused(m, tmp_path, "is in domain 'com.evil'", "(Mul)")


def test_an_opset_below_11_is_refused(tmp_path):
    _refused(make_mlp_onnx(opset=9), tmp_path, "opset 9", "opset 11 and later")


def test_an_attribute_of_the_wrong_type_is_refused(tmp_path):
    m = make_mlp_onnx()
    g = _node(m, "Gemm")
    del g.attribute[:]
    g.attribute.append(helper.make_attribute("transB", "yes"))
    _refused(m, tmp_path, f"node '{g.name}' (Gemm): attribute 'transB' is string, ONNX declares it int")


def test_initializer_data_must_match_its_dims():
    t = numpy_helper.from_array(np.zeros((4, 3), np.float32), "w")
    assert initializer_problem(t) is None
    t.ClearField("dims")
    t.dims.extend([10**9, 6])
    assert "declares shape (1000000000, 6) (24,000,000,000 bytes) but holds 48 bytes" in initializer_problem(t)
    s = helper.make_tensor("s", TensorProto.STRING, [2], [b"a", b"b"])
    assert "string tensor" in initializer_problem(s)
    f = TensorProto(name="f", data_type=TensorProto.FLOAT, dims=[3], float_data=[1.0, 2.0])  # short float_data
    assert "(3 values) but holds 2 values" in initializer_problem(f)


def test_a_short_initializer_is_named_not_its_users(tmp_path):
    m = make_mlp_onnx()
    t = next(t for t in m.graph.initializer if t.name == "w0")
    t.raw_data = t.raw_data[: len(t.raw_data) // 2]
    e = _refused(m, tmp_path, "initializer 'w0'", "damaged or truncated")
    assert "nothing produces" not in str(e)


def test_two_producers_of_one_tensor_are_named(tmp_path):
    m = make_mlp_onnx()
    a, b = m.graph.node[1], m.graph.node[2]
    b.output[0] = a.output[0]
    _refused(m, tmp_path, f"tensor '{a.output[0]}' is written by two nodes")


def _qonnx_weight_model(scale=0.1, bits=4.0, signed=1, narrow=0):
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(np.float32(scale), "ws"),
             numpy_helper.from_array(np.float32(0), "wz"), numpy_helper.from_array(np.float32(bits), "wb")]
    nodes = [helper.make_node("Quant", ["w", "ws", "wz", "wb"], ["wq"], name="wquant", domain=QONNX,
                              signed=signed, narrow=narrow, rounding_mode="ROUND"),
             helper.make_node("Gemm", ["x", "wq"], ["y"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX, 1)])


def test_the_qonnx_weight_model_itself_converts():
    assert to_fgraph(_qonnx_weight_model()).ops


@pytest.mark.parametrize("kw, fragment", [
    ({"scale": 0.0}, "scale must be finite and > 0"),
    ({"scale": -0.5}, "scale must be finite and > 0"),
    ({"bits": 0.0}, "bitwidth must be one integer >= 1"),
    ({"bits": 2.5}, "bitwidth must be one integer >= 1"),
    ({"signed": 5}, "attribute signed must be 0 or 1, got 5"),
    ({"narrow": 2}, "attribute narrow must be 0 or 1, got 2"),
])
def test_qonnx_weight_quantizer_attributes_are_checked(tmp_path, kw, fragment):
    _refused(_qonnx_weight_model(**kw), tmp_path, "node 'wquant' (Quant)", fragment)


def test_a_dequantized_weight_with_scale_zero_is_refused(tmp_path):
    q = numpy_helper.from_array(np.arange(12, dtype=np.int8).reshape(3, 4), "wq8")
    inits = [q, numpy_helper.from_array(np.float32(0.0), "ws"), numpy_helper.from_array(np.int8(0), "wz")]
    nodes = [helper.make_node("DequantizeLinear", ["wq8", "ws", "wz"], ["w"], name="dqw"),
             helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    _refused(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path, "node 'dqw'",
             "scale must be finite and > 0")


def test_an_int32_activation_quantizer_is_refused_before_anything_per_level(tmp_path):
    inits = [numpy_helper.from_array(np.float32(0.1), "s"), numpy_helper.from_array(np.int32(0), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q0"),
             helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq0")]
    g = helper.make_graph(nodes, "q", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)
    _refused(helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)]), tmp_path,
             "QuantizeLinear node 'q0': its int32 output has 4,294,967,296 levels", "at most 16 bits")


def test_an_input_beyond_the_memory_budget_is_refused_before_the_probe(tmp_path):
    m = make_mlp_onnx()
    m.graph.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 60000, 60000]))
    _refused(m, tmp_path, "input 'x' declares shape (3, 60000, 60000)", "memory budget")
