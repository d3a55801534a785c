"""QONNX's Quant / BipolarQuant / Trunc: the numpy reference (the spec's steps in float32) equals the
expansion into standard ONNX nodes run by onnxruntime, bit for bit, ties included; and both equal qonnx's
own executor on Brevitas' exports (when qonnx is installed)."""

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.fidelity import ReferenceModelError, reference_executor
from snnc.compiler.frontend import qonnx_ops
from snnc.compiler.frontend.qonnx_ops import QonnxOpError, expand_qonnx

EXT = Path(__file__).resolve().parents[3] / "examples" / "external"
DOM = "qonnx.custom_op.general"


def _model(op, inputs: dict, attrs: dict, shape=(64,), opset=13):
    inits = [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inputs.items()]
    node = helper.make_node(op, ["x"] + list(inputs), ["y"], name="q", domain=DOM, **attrs)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *shape])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOM, 1)])


def _x(scale, n=64):
    rng = np.random.default_rng(0)
    ties = (np.arange(-n // 2, n // 2) + 0.5) * scale  # x / scale exactly k + 1/2: every rounding mode's edge
    return np.stack([rng.normal(0, 4 * scale, n), ties, rng.uniform(-20, 20, n) * scale]).astype(np.float32)


@pytest.mark.parametrize("mode", qonnx_ops.ROUNDING_MODES)
@pytest.mark.parametrize("signed,narrow,bits", [(1, 0, 4), (1, 1, 8), (0, 0, 3), (0, 1, 6), (1, 0, 1)])
def test_quant_expansion_equals_the_spec(mode, signed, narrow, bits):
    s, z = np.float32(0.37), np.float32(0 if signed else 1)
    m = _model("Quant", {"s": s, "z": z, "b": bits}, {"signed": signed, "narrow": narrow, "rounding_mode": mode})
    x = _x(s)
    want = qonnx_ops.quant(x, s, z, np.float32(bits), bool(signed), bool(narrow), mode)
    got = reference_executor(m).run(x)["y"]
    np.testing.assert_array_equal(got, want)
    lv = np.round(want / s) + z  # the integers q, in range
    if bits > 1:
        assert qonnx_ops.min_int(bool(signed), bool(narrow), bits) <= lv.min() < lv.max() <= \
            qonnx_ops.max_int(bool(signed), bool(narrow), bits)



def test_the_rounding_modes_differ_on_these_inputs():
    """The inputs hold ties of every sign: the modes give 8 different results (the tests above can fail)."""
    s = np.float32(0.37)
    outs = {m: qonnx_ops.quant(_x(s), s, np.float32(0), np.float32(8), True, False, m).tobytes()
            for m in qonnx_ops.ROUNDING_MODES if m != "HALF_EVEN"}
    assert len(set(outs.values())) == len(outs)


def test_bipolar_and_trunc_expansions_equal_the_spec():
    x = _x(np.float32(0.5))
    m = _model("BipolarQuant", {"s": np.float32(0.25)}, {})
    np.testing.assert_array_equal(reference_executor(m).run(x)["y"], qonnx_ops.bipolar_quant(x, np.float32(0.25)))
    s = np.float32(0.125 / 4)
    xs = (np.round(_x(np.float32(1)) * 4) * s).astype(np.float32)  # integer multiples of the scale (pool sums)
    for mode in ("FLOOR", "ROUND", "CEIL", "HALF_UP"):
        v2 = _model("Trunc", {"s": s, "z": np.float32(0), "ib": np.float32(8), "os": np.float32(0.125),
                              "ob": np.float32(4)}, {"rounding_mode": mode, "signed": 1, "narrow": 0})
        want = qonnx_ops.trunc(xs, s, np.float32(0), np.float32(8), np.float32(0.125), np.float32(4), mode, True, False)
        np.testing.assert_array_equal(reference_executor(v2).run(xs)["y"], want)
        v1 = _model("Trunc", {"s": s, "z": np.float32(0), "ib": np.float32(8), "ob": np.float32(6)},
                    {"rounding_mode": mode})
        want1 = qonnx_ops.trunc(xs, s, np.float32(0), np.float32(8), np.float32(6), None, mode)
        np.testing.assert_array_equal(reference_executor(v1).run(xs)["y"], want1)
    assert len(np.unique(want)) > 3 and not np.array_equal(want, xs)


def test_what_cannot_be_expanded_is_named():
    m = _model("Quant", {"s": np.float32(1), "z": np.float32(0), "b": np.float32(4)}, {"rounding_mode": "STOCHASTIC"})
    with pytest.raises(ReferenceModelError, match="rounding_mode"):
        reference_executor(m)
    m = _model("Quant", {"s": np.float32(1), "z": np.float32(0), "b": np.float32(4)}, {}, opset=10)
    with pytest.raises(QonnxOpError, match="opset is 10"):
        expand_qonnx(m)
    other = _model("MultiThreshold", {"t": np.zeros((1, 3), np.float32)}, {})
    with pytest.raises(ReferenceModelError, match="MultiThreshold.*no executor"):
        reference_executor(other)
    g = helper.make_graph([helper.make_node("Quant", ["x", "s", "z", "b"], ["y"], name="q", domain=DOM)], "g",
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4]) for n in ("x", "s", "z", "b")],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    dyn = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(DOM, 1)])
    with pytest.raises(ReferenceModelError, match="scale.*constant"):
        reference_executor(dyn)


@pytest.mark.parametrize("name", ["brevitas_bnn_qonnx", "brevitas_trunc_round_qonnx", "brevitas_batch4_qonnx"])
def test_equal_to_qonnx_executor_on_brevitas_exports(name):
    pytest.importorskip("qonnx")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    path = EXT / f"{name}.onnx"
    mw = ModelWrapper(str(path))
    B = mw.graph.input[0].type.tensor_type.shape.dim[0].dim_value
    x = np.load(EXT.parent / "digits" / "test.npz")["x"][:B]
    ctx = execute_onnx(mw, {mw.graph.input[0].name: x}, return_full_exec_context=True)
    names = [n.output[0] for n in mw.graph.node if n.op_type in ("Quant", "BipolarQuant", "Trunc")]
    got = reference_executor(onnx.load(str(path))).run(x, names)
    assert len(names) >= 5
    for t in names:
        np.testing.assert_array_equal(got[t], ctx[t], err_msg=t)
