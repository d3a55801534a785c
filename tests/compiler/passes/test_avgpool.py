"""AveragePool exactly as ONNX defines it (floor/ceil_mode, pads, count_include_pad) and its folds: each
pass is checked by running the float graph before and after it, and against onnxruntime."""

import itertools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.compiler.api import compile_model
from snnc.compiler.errors import ConversionError
from snnc.compiler.frontend.float_graph import AvgPool, Conv, FGraph, Flatten, Linear
from snnc.compiler.frontend.onnx_loader import import_onnx
from snnc.compiler.passes import (FoldConvIntoPool, FoldPoolIntoConv, FoldPoolIntoLinear, NormalizeAvgPool,
                                  RefuseInexactAvgPool, default_passes, run_passes)
from snnc.compiler.tools.verify import verify_against_ann
from snnc.ir import Schedule
from snnc_testutil import qcfs_nodes

RNG = np.random.default_rng(0)


def _ort_pool(x, k, s, pads, ceil, cip):
    n = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[k, k], strides=[s, s], pads=pads, ceil_mode=ceil,
                         count_include_pad=cip)
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
    return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


CONFIGS = [(H, k, s, p, ceil, cip) for H, k, s, p, ceil, cip in itertools.product(
    (5, 6, 7, 13), (2, 3), (1, 2, 3), ((0, 0, 0, 0), (1, 1, 1, 1), (0, 0, 1, 1), (1, 0, 0, 1)), (0, 1), (0, 1))
    if max(p) < k]


@pytest.mark.parametrize("H,k,s,pads,ceil,cip", CONFIGS)
def test_avgpool_is_onnx_averagepool(H, k, s, pads, ceil, cip):
    x = RNG.normal(size=(2, 3, H, H + 1)).astype(np.float32)
    op = AvgPool("p", "x", (k, k), (s, s), (pads[0], pads[1], pads[2], pads[3]), bool(cip), bool(ceil))
    np.testing.assert_allclose(op(x.astype(np.float64)), _ort_pool(x, k, s, list(pads), ceil, cip), rtol=1e-5,
                               atol=1e-6)


def _run_pass(g: FGraph, p, x):
    before = g(x)
    fired = run_passes(g, [p])
    after = g(x)
    return before, after, fired[p.name]


@pytest.mark.parametrize("H,k,s,pads,ceil,cip", [c for c in CONFIGS if c[0] in (7, 13)])
def test_any_pool_folds_into_the_linear_after_it(H, k, s, pads, ceil, cip):
    pool = AvgPool("p", "x", (k, k), (s, s), tuple(pads), bool(cip), bool(ceil))
    oh, ow, _, _, _ = pool.geometry(H, H)
    lin = Linear("fc", "f", RNG.normal(size=(5, 3 * oh * ow)), RNG.normal(size=5))
    g = FGraph("x", (3, H, H), [pool, Flatten("f", "p"), lin], "fc")
    before, after, fired = _run_pass(g, FoldPoolIntoLinear(), RNG.normal(size=(4, 3, H, H)))
    assert fired == 1 and [type(o) for o in g.ops] == [Linear]
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("H,k,s,conv_pads,ceil", [
    (7, 2, 2, (0, 0, 0, 0), 0), (13, 2, 2, (0, 0, 0, 0), 0), (7, 3, 2, (0, 0, 0, 0), 0), (8, 2, 2, (1, 1, 1, 1), 0),
    (9, 3, 3, (0, 0, 0, 0), 1), (11, 2, 1, (0, 0, 0, 0), 0), (7, 2, 2, (1, 1, 0, 0), 0)])
def test_pool_then_conv_folds_on_odd_maps_when_it_is_one_convolution(H, k, s, conv_pads, ceil):
    pool = AvgPool("p", "x", (k, k), (s, s), (0, 0, 0, 0), True, bool(ceil))
    conv = Conv("c", "p", RNG.normal(size=(4, 3, 3, 3)), RNG.normal(size=4), (1, 1), conv_pads)
    g = FGraph("x", (3, H, H), [pool, conv], "c")
    geo = pool.geometry(H, H)
    if geo[4] or geo[3]:  # a ceil-mode window past the map: not uniform, not foldable into a conv
        pytest.skip("ceil window past the map")
    before, after, fired = _run_pass(g, FoldPoolIntoConv(), RNG.normal(size=(2, 3, H, H)))
    assert fired == 1 and [type(o) for o in g.ops] == [Conv]
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("H,k,s,conv_pads", [(7, 2, 2, (1, 1, 1, 1)), (11, 2, 1, (1, 0, 1, 0)), (9, 2, 2, (0, 0, 1, 1)),
                                             (7, 3, 2, (1, 1, 1, 1))])
def test_pool_conv_pairs_that_are_not_one_convolution_are_left_alone(H, k, s, conv_pads):
    """A conv's zero padding that stands for map elements the pool reads (overlapping windows, dropped
    rows): the fold must not fire (its result would differ)."""
    pool = AvgPool("p", "x", (k, k), (s, s))
    g = FGraph("x", (3, H, H), [pool, Conv("c", "p", RNG.normal(size=(4, 3, 3, 3)), np.zeros(4), (1, 1), conv_pads)],
               "c")
    assert run_passes(g, [FoldPoolIntoConv()])["fold-avgpool-into-conv"] == 0


def test_pool_then_padded_conv_that_would_read_a_dropped_row_is_refused_by_name():
    """7x7 map, 2x2 pool (floor): row 6 is left out; a conv padded at the bottom would read it as one conv."""
    pool = AvgPool("pool7", "x", (2, 2), (2, 2))
    conv = Conv("conv_b", "pool7", RNG.normal(size=(4, 3, 3, 3)), np.zeros(4), (1, 1), (1, 1, 1, 1))
    g = FGraph("x", (3, 7, 7), [pool, conv], "conv_b")
    before = g(RNG.normal(size=(1, 3, 7, 7)))
    assert run_passes(g, [FoldPoolIntoConv()])["fold-avgpool-into-conv"] == 0
    assert before.shape == (1, 4, 3, 3)
    with pytest.raises(ConversionError, match=r"AveragePool node 'pool7'.*7x7 map feeds Conv node 'conv_b'.*row"):
        run_passes(g, [RefuseInexactAvgPool()])


def test_non_uniform_pool_is_normalized_or_refused():
    uni = AvgPool("u", "x", (2, 2), (2, 2), (0, 0, 0, 0), False, True)  # ceil on an even map, no pad: uniform
    g = FGraph("x", (2, 8, 8), [uni], "u")
    before, after, fired = _run_pass(g, NormalizeAvgPool(), RNG.normal(size=(2, 2, 8, 8)))
    assert fired == 1 and uni.count_include_pad and not uni.ceil_mode
    np.testing.assert_array_equal(after, before)
    bad = AvgPool("b", "x", (3, 3), (2, 2), (1, 1, 1, 1), False)  # padding not counted: border divisors < 9
    g = FGraph("x", (2, 7, 7), [bad], "b")
    assert run_passes(g, [NormalizeAvgPool()])["normalize-avgpool"] == 0
    with pytest.raises(ConversionError, match=r"AveragePool node 'b'.*count_include_pad=0\) over a 7x7 map divides"):
        run_passes(g, [RefuseInexactAvgPool()])


def test_conv_then_uniform_pool_on_odd_map_folds():
    conv = Conv("c", "x", RNG.normal(size=(4, 2, 3, 3)), RNG.normal(size=4))
    pool = AvgPool("p", "c", (2, 2), (2, 2))
    g = FGraph("x", (2, 9, 9), [conv, pool], "p")  # conv output 7x7, pool drops the last row
    before, after, fired = _run_pass(g, FoldConvIntoPool(), RNG.normal(size=(2, 2, 9, 9)))
    assert fired == 1
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12)


# ---- end to end: the SpikingJelly layout (pools over odd maps) with QCFS activations -------------------
def _sj_model(pool_pads=(0, 0, 0, 0), ceil=0, cip=1, conv2_pads=(0, 0, 0, 0)):
    """x (1, 13, 13) -> Conv3x3 -> QCFS -> AvgPool 2x2 over 11x11 -> Conv3x3 -> QCFS -> AvgPool -> Gemm."""
    rng = np.random.default_rng(1)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b1"),
             numpy_helper.from_array(rng.normal(0, 0.3, (6, 4, 3, 3)).astype(np.float32), "w2"),
             numpy_helper.from_array(rng.normal(0, 0.1, 6).astype(np.float32), "b2")]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1")]
    qn, qi = qcfs_nodes("a1", "c1", "r1", lam=2.0, L=4)
    nodes += qn
    inits += qi
    nodes.append(helper.make_node("AveragePool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2],
                                  pads=list(pool_pads), ceil_mode=ceil, count_include_pad=cip))
    nodes.append(helper.make_node("Conv", ["p1", "w2", "b2"], ["c2"], name="conv2", pads=list(conv2_pads)))
    qn, qi = qcfs_nodes("a2", "c2", "r2", lam=1.5, L=4)
    nodes += qn
    inits += qi
    nodes.append(helper.make_node("AveragePool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2],
                                  ceil_mode=ceil))
    nodes.append(helper.make_node("Flatten", ["p2"], ["f"], name="flat"))
    probe = onnx.shape_inference.infer_shapes(helper.make_model(
        helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 13, 13])],
                          [helper.make_tensor_value_info("f", TensorProto.FLOAT, None)], inits),
        opset_imports=[helper.make_opsetid("", 17)]))
    n_f = int(ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": np.zeros((1, 1, 13, 13), np.float32)})[0].shape[1])
    inits += [numpy_helper.from_array(rng.normal(0, 0.3, (3, n_f)).astype(np.float32), "wf"),
              numpy_helper.from_array(np.zeros(3, np.float32), "bf")]
    nodes.append(helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], name="fc", transB=1))
    g = helper.make_graph(nodes, "sj", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 13, 13])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("kw,refused", [
    ({}, None), ({"conv2_pads": (1, 1, 0, 0)}, None),
    ({"ceil": 1}, "ceil_mode=1.*11x11 map divides"),                     # the 6th window holds one row
    ({"pool_pads": (1, 1, 1, 1), "cip": 0}, "count_include_pad=0.*divides"),
    ({"conv2_pads": (1, 1, 1, 1)}, "11x11 map feeds Conv node 'conv2'.*element"),  # pads over the dropped row
])
def test_odd_map_pools_import_match_onnxruntime_and_verify_exact_or_are_refused(tmp_path, kw, refused):
    m = _sj_model(**kw)
    onnx.save(m, tmp_path / "sj.onnx")
    x = np.random.default_rng(2).uniform(0, 1, (40, 1, 13, 13)).astype(np.float32)
    ref = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g, _ = import_onnx(tmp_path / "sj.onnx")
    np.testing.assert_allclose(g(x), ref, rtol=1e-4, atol=1e-4)
    if refused:
        with pytest.raises(ConversionError, match=f"AveragePool node 'pool1'.*{refused}"):
            run_passes(g, default_passes())
        return
    run_passes(g, default_passes())
    np.testing.assert_allclose(g(x), ref, rtol=1e-4, atol=1e-4)
    net, _ = compile_model(tmp_path / "sj.onnx")
    rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, m.SerializeToString())
    assert rep.exact and rep.neurons_compared > 0 and rep.prediction_agreement["ann_int_vs_ann_float"] >= 0.9


@pytest.mark.parametrize("kernel,stride,pads,hw", [((2, 2), (2, 2), (0, 0, 0, 0), (6, 4)),
                                                   ((3, 2), (3, 2), (0, 0, 0, 0), (6, 4)),
                                                   ((2, 2), (2, 2), (0, 0, 0, 0), (5, 4)),
                                                   ((3, 3), (2, 2), (1, 1, 1, 1), (6, 6))])
def test_pool_adjoint_dense_equals_the_window_sum(kernel, stride, pads, hw):
    """The folded dense weight, tiled windows or overlapping ones, equals the definition
    W'[o, c, y, x] = 0.0 + sum over windows covering (y, x) of W[o, c, i, j] / div, sign of zero included."""
    from snnc.compiler.frontend.float_graph import AvgPool
    from snnc.compiler.passes.pooling import _pool_adjoint_dense

    H, W = hw
    pool = AvgPool("p", "x", kernel, stride, pads)
    oh, ow, div, _, _ = pool.geometry(H, W)
    rng = np.random.default_rng(3)
    w = rng.standard_normal((5, 2 * oh * ow))
    w[0, :4] = -0.0
    want = np.zeros((5, 2, H, W))
    w4 = w.reshape(5, 2, oh, ow)
    for u in range(kernel[0]):  # the window offsets outermost: the order the fold adds in
        for v in range(kernel[1]):
            for oy in range(oh):
                for ox in range(ow):
                    y, x = oy * stride[0] - pads[0] + u, ox * stride[1] - pads[1] + v
                    if 0 <= y < H and 0 <= x < W:
                        want[:, :, y, x] += w4[:, :, oy, ox] / np.broadcast_to(div, (oh, ow))[oy, ox]
    got = _pool_adjoint_dense(w, pool, (2, H, W))
    np.testing.assert_array_equal(got, want.reshape(5, -1))
    np.testing.assert_array_equal(np.signbit(got), np.signbit(want.reshape(5, -1)))
