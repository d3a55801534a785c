"""Large weights (issue 16: VGG-16 at 224x224, a 4096 x 100352 fc1 after the pool fold) are held once:
the fold as float32 where exact, the lowered weight as a lazily scaled ``ScaledWeight``, the integers
in the target's width. Each of these paths switches on by size, so these tests lower the thresholds
to 0 and compile small models both ways: every integer of the network must be the same, and the
network must still equal its quantized ANN."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler import weight_scale
from snnc.compiler.config import CompileConfig
from snnc.compiler.frontend import float_graph
from snnc.compiler.lowering import ScaledWeight, plan
from snnc.compiler.passes import pooling
from snnc.compiler.pipeline import CompileContext, run_pipeline
from snnc.compiler.tools.verify import verify_against_ann
from snnc.ir import Schedule
from snnc_testutil import qcfs_nodes


def _pool_dense_model(k: int, bn_bias: bool = False) -> onnx.ModelProto:
    """x (1, 12, 12) -> Conv3x3 (4) -> QCFS -> AvgPool k x k (stride k) -> Flatten -> Gemm (16) -> QCFS ->
    Gemm (3). k = 2: the folded weights are float32 weights over 4 (exact in float32); k = 3: over 9 (not).
    ``bn_bias``: a BatchNormalization before the pool, so the dense layer's input carries a bias."""
    rng = np.random.default_rng(k)
    oh = 12 // k
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (16, 4 * oh * oh)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "b2"),
             numpy_helper.from_array(rng.normal(0, 0.3, (3, 16)).astype(np.float32), "w3"),
             numpy_helper.from_array(np.zeros(3, np.float32), "b3")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1])]
    qn, qi = qcfs_nodes("a1", "c1", "r1", lam=2.0, L=4)
    nodes += qn
    inits += qi
    act = "r1"
    if bn_bias:
        for name, v in (("bn_s", rng.uniform(0.5, 1.5, 4)), ("bn_b", rng.normal(0, 0.2, 4)),
                        ("bn_m", rng.normal(0, 0.1, 4)), ("bn_v", rng.uniform(0.5, 1.5, 4))):
            inits.append(numpy_helper.from_array(v.astype(np.float32), name))
        nodes.append(helper.make_node("BatchNormalization", ["r1", "bn_s", "bn_b", "bn_m", "bn_v"], ["r1n"], name="bn"))
        act = "r1n"
    nodes.append(helper.make_node("AveragePool", [act], ["p1"], name="pool1", kernel_shape=[k, k], strides=[k, k]))
    pooled = "p1"
    nodes.append(helper.make_node("Flatten", [pooled], ["f"], name="flat"))
    nodes.append(helper.make_node("Gemm", ["f", "w2", "b2"], ["g2"], name="fc1", transB=1))
    qn, qi = qcfs_nodes("a2", "g2", "r2", lam=1.5, L=4)
    nodes += qn
    inits += qi
    nodes.append(helper.make_node("Gemm", ["r2", "w3", "b3"], ["y"], name="fc2", transB=1))
    g = helper.make_graph(nodes, "pd", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _compile(path, tmp_path):
    ctx = CompileContext(CompileConfig(), model_path=str(path), out_path=tmp_path / "net.snnc")
    return run_pipeline(ctx, "import", "bundle").records


def _arrays(net) -> list:
    """Every node's and projection's fields, integer arrays as int64 values (their dtype may be narrower)."""
    out = []
    for o in list(net.nodes) + list(net.projections):
        for f in dataclasses.fields(o):
            v = getattr(o, f.name)
            if isinstance(v, np.ndarray):
                v = (str(v.dtype) if v.dtype.kind == "f" else "int", v.shape, v.astype(np.int64).tolist()
                     if v.dtype.kind in "iub" else v.tolist())
            out.append((type(o).__name__, f.name, repr(v) if not isinstance(v, tuple) else v))
    return out


def _lower_thresholds(monkeypatch):
    monkeypatch.setattr(pooling, "FLOAT32_MIN_WEIGHTS", 0)
    monkeypatch.setattr(plan, "LAZY_MIN_WEIGHTS", 0)
    monkeypatch.setattr(float_graph, "MIXED_BLOCK", 7)      # a float32 weight read by float64 inputs, by blocks
    monkeypatch.setattr(weight_scale, "ROUND_BLOCK", 50)     # rounding by blocks of rows
    monkeypatch.setattr(weight_scale, "ROWS_PER_BLOCK", 50)
    monkeypatch.setattr(weight_scale, "SCREEN_MIN_WEIGHTS", 0)


@pytest.mark.parametrize("k,bn_bias,fold_dtype", [(2, False, np.float32), (3, False, np.float64),
                                                   (2, True, np.float32)])
def test_the_large_weight_paths_give_the_same_network(tmp_path, monkeypatch, k, bn_bias, fold_dtype):
    path = tmp_path / "pd.onnx"
    onnx.save(_pool_dense_model(k, bn_bias), path)
    eager = _compile(path, tmp_path)
    fc = next(op for op in eager.model.graph.ops if isinstance(op, float_graph.Linear) and op.name == "fc1")
    assert fc.weight.dtype == np.float64  # small: the usual float64 fold
    _lower_thresholds(monkeypatch)
    lazy = _compile(path, tmp_path)
    fc = next(op for op in lazy.model.graph.ops if isinstance(op, float_graph.Linear) and op.name == "fc1")
    assert fc.weight.dtype == fold_dtype   # float32 only where every folded value is exactly a float32
    quantized = [it for it in lazy.lowered.items if hasattr(it, "layer")]
    assert any(isinstance(w, ScaledWeight) for it in quantized for w in it.layer.weights)
    assert _arrays(lazy.compiled.network) == _arrays(eager.compiled.network)
    x = np.random.default_rng(5).uniform(0, 1, (64, 1, 12, 12)).astype(np.float32)
    rep = verify_against_ann(lazy.compiled.network, x, None, Schedule.LAYERWISE, lazy.model.raw)
    assert rep.exact and rep.neurons_compared > 0


def test_a_scaled_weight_reads_as_the_eager_product():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(7, 3, 5)).astype(np.float32)
    base[0, 0, 0] = -0.0
    for factor in (0.37, -1.9, np.float64(3e-7)):
        w = ScaledWeight(base, factor)
        want = factor * base.astype(np.float64)
        assert w.shape == want.shape and w.ndim == 3 and w.size == want.size and len(w) == 7
        np.testing.assert_array_equal(w[2:5], want[2:5])
        np.testing.assert_array_equal(np.asarray(w), want)
        np.testing.assert_array_equal(w.row_abs_max(), np.abs(want).reshape(7, -1).max(axis=1))
        assert w.value_range() == (float(want.max()), float(want.min()))
    with pytest.raises(ValueError, match="float array with rows"):
        ScaledWeight(np.arange(3), 1.0)


def test_a_scaled_weight_with_a_nan_reports_it():
    base = np.ones((3, 4))
    base[1, 2] = np.nan
    hi, lo = ScaledWeight(base, 2.0).value_range()
    assert np.isnan(hi) and np.isnan(lo)


def test_a_float64_input_times_a_float32_weight_by_blocks(monkeypatch):
    """Linear with a large float32 weight widens it by blocks: the float64 product, up to the order BLAS
    sums in (which depends on the block's width: a few ulps), never the float32 product."""
    rng = np.random.default_rng(1)
    w = rng.normal(size=(37, 29)).astype(np.float32)
    x = rng.normal(size=(5, 29))
    lin = float_graph.Linear("fc", "x", w, rng.normal(size=37))
    want = x @ w.astype(np.float64).T + lin.bias
    monkeypatch.setattr(float_graph, "MIXED_BLOCK", 100)
    got = lin(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    f32 = (x.astype(np.float32) @ w.T).astype(np.float64) + lin.bias
    assert np.max(np.abs(f32 - want)) > 1e-9  # what a float32 product would have been: far off
