import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.errors import InvalidModelError, ModelLoadError, UnsupportedOperatorError
from snnc.compiler.frontend.onnx_loader import import_onnx, model_bytes

from snnc_testutil import make_mlp_onnx


def _ort(model, x):
    return ort.InferenceSession(model.SerializeToString()).run(None, {"x": x.astype(np.float32)})[0]


@pytest.mark.parametrize("const_nodes", [False, True])
@pytest.mark.parametrize("mode", ["floor", "round", "ceil"])
def test_float_graph_matches_onnxruntime(tmp_path, mode, const_nodes):
    m = make_mlp_onnx(mode=mode, const_nodes=const_nodes)
    onnx.save(m, tmp_path / "m.onnx")
    fg, _ = import_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    assert np.allclose(fg(x), _ort(m, x), atol=1e-5)


def test_external_data_is_read_and_inlined(tmp_path):
    m = make_mlp_onnx()
    onnx.save(m, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "m.onnx.data").exists()
    fg, model = import_onnx(tmp_path / "m.onnx")
    x = np.ones((2, 6), np.float32)
    assert np.allclose(fg(x), _ort(onnx.load_from_string(model_bytes(model)), x), atol=1e-5)
    (tmp_path / "m.onnx.data").unlink()
    with pytest.raises(ModelLoadError, match="external data"):
        import_onnx(tmp_path / "m.onnx")


def test_truncated_and_non_onnx_files(tmp_path):
    m = make_mlp_onnx().SerializeToString()
    (tmp_path / "trunc.onnx").write_bytes(m[: len(m) // 2])
    (tmp_path / "text.onnx").write_text("hello, I am not a model")
    for name in ("trunc.onnx", "text.onnx"):
        with pytest.raises(ModelLoadError, match="not a readable ONNX model"):
            import_onnx(tmp_path / name)
    with pytest.raises(ModelLoadError, match="does not exist"):
        import_onnx(tmp_path / "absent.onnx")


def _graph(nodes, inits, opset=17):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def test_all_unsupported_operators_are_listed_at_once(tmp_path):
    nodes = [helper.make_node("Sin", ["x"], ["a"], name="sig1"),
             helper.make_node("Tanh", ["a"], ["b"], name="tanh1"),
             helper.make_node("Relu", ["b"], ["y"], name="relu1")]
    onnx.save(_graph(nodes, []), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOperatorError) as e:
        import_onnx(tmp_path / "m.onnx")
    msg = str(e.value)
    assert "'sig1' (op_type Sin)" in msg and "'tanh1' (op_type Tanh)" in msg
    assert "supported operators:" in msg and "Conv" in msg
    assert [n for n, _ in e.value.nodes] == ["sig1", "tanh1"]


def test_cycle_and_dangling_input(tmp_path):
    cyc = [helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2"),
           helper.make_node("Identity", ["b"], ["y"], name="id")]
    m = _graph(cyc, [])
    onnx.save(m, tmp_path / "c.onnx")
    with pytest.raises(InvalidModelError, match="cycle"):
        import_onnx(tmp_path / "c.onnx")
    dang = [helper.make_node("Add", ["x", "ghost"], ["y"], name="add1")]
    onnx.save(_graph(dang, []), tmp_path / "d.onnx")
    with pytest.raises(InvalidModelError, match="'ghost', which nothing produces"):
        import_onnx(tmp_path / "d.onnx")


def test_nan_and_inf_weights_are_named(tmp_path):
    w = np.eye(4, dtype=np.float32)
    w[0, 0] = np.nan
    b = np.array([0, np.inf, 0, 0], np.float32)
    nodes = [helper.make_node("Gemm", ["x", "W", "B"], ["y"], name="fc1", transB=1)]
    onnx.save(_graph(nodes, [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")]), tmp_path / "m.onnx")
    with pytest.raises(InvalidModelError) as e:
        import_onnx(tmp_path / "m.onnx")
    assert "weight 'W' (used by ['fc1']) contains NaN or Inf" in str(e.value)
    assert "weight 'B'" in str(e.value)  # both problems reported at once


@pytest.mark.parametrize("opset", [13, 17, 21])
def test_opsets(tmp_path, opset):
    onnx.save(make_mlp_onnx(opset=opset), tmp_path / "m.onnx")
    fg, _ = import_onnx(tmp_path / "m.onnx")
    assert fg.meta["opset"] == opset


def test_matmul_plus_add_and_batchnorm_and_reshape(tmp_path):
    rng = np.random.default_rng(0)
    W = rng.normal(size=(4, 4)).astype(np.float32)
    inits = [numpy_helper.from_array(W, "W"), numpy_helper.from_array(np.ones(4, np.float32), "b"),
             numpy_helper.from_array(np.array([-1, 4], np.int64), "shape")]
    for n in ("s", "c", "m", "v"):
        inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, 4).astype(np.float32), n))
    nodes = [helper.make_node("MatMul", ["x", "W"], ["mm"], name="mm"),
             helper.make_node("Add", ["mm", "b"], ["ad"], name="ad"),
             helper.make_node("Reshape", ["ad", "shape"], ["rs"], name="rs"),
             helper.make_node("Unsqueeze", ["rs"], ["us"], name="us0"),
             helper.make_node("Squeeze", ["us"], ["y"], name="sq0")]
    m = _graph(nodes, inits)
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOperatorError, match="Unsqueeze"):
        import_onnx(tmp_path / "m.onnx")
    nodes = nodes[:3] + [helper.make_node("Dropout", ["rs"], ["y"], name="drop")]
    m = _graph(nodes, inits)
    onnx.save(m, tmp_path / "m2.onnx")
    fg, _ = import_onnx(tmp_path / "m2.onnx")
    x = rng.normal(size=(3, 4)).astype(np.float32)
    assert np.allclose(fg(x), _ort(m, x), atol=1e-5)


def test_every_opset_from_13_to_the_newest_compiles(tmp_path):
    from snnc.compiler.api import compile_model

    newest = onnx.defs.onnx_opset_version()
    assert newest >= 21
    for opset in range(13, newest + 1):
        onnx.save(make_mlp_onnx(opset=opset), tmp_path / f"m{opset}.onnx")
        net, _ = compile_model(tmp_path / f"m{opset}.onnx")
        assert net.metadata["levels"] == 4, opset


@pytest.mark.parametrize("lam", [-1.5, 0.0])
def test_lambda_not_positive_is_named(tmp_path, lam):
    from snnc.compiler.api import compile_model
    from snnc.compiler.errors import SnncError

    m = make_mlp_onnx()
    for init in m.graph.initializer:
        if init.name == "act0_lam":
            init.CopyFrom(numpy_helper.from_array(np.array(lam, np.float32), "act0_lam"))
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(SnncError, match="act0"):
        compile_model(tmp_path / "m.onnx")
