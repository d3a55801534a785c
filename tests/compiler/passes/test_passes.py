"""Each pass is tested by running the network before and after it."""

import numpy as np
import pytest

from snnc.compiler.errors import ConversionError
from snnc.compiler.frontend.float_graph import (
    AvgPool, BatchNorm, Clamp, Conv, FGraph, Flatten, Identity, Linear, QuantAct, Relu, Rounding, ScalarAffine,
)
from snnc.compiler.passes import (
    FoldBatchNorm, FoldConvIntoPool, FoldPoolIntoConv, FoldPoolIntoLinear, FuseQuantAct, MergeScalarAffine,
    PassDidNotConverge, RemoveIdentity, ResolveGlobalPool, run_passes,
)
from snnc.compiler.passes.base import Pass

rng = np.random.default_rng(0)


def conv(name, inp, o, c, k=3, stride=(1, 1), pads=(1, 1, 1, 1)):
    return Conv(name, inp, rng.normal(size=(o, c, k, k)), rng.normal(size=o), stride, pads)


def check(g: FGraph, p: Pass, x, expect_fired=True):
    before = g(x)
    n = len(g.ops)
    fired = run_passes(g, [p])
    after = g(x)
    assert (fired[p.name] > 0) == expect_fired
    np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-9)
    return n - len(g.ops)


X = rng.normal(size=(5, 2, 8, 8))


def test_remove_identity():
    g = FGraph("x", (2, 8, 8), [Identity("i", "x"), conv("c", "i", 3, 2), Identity("j", "c")], "j")
    assert check(g, RemoveIdentity(), X) == 2 and g.output == "c"


def test_fold_batchnorm():
    bn = BatchNorm("bn", "c", rng.uniform(.5, 2, 3), rng.normal(size=3), rng.normal(size=3), rng.uniform(.5, 2, 3))
    g = FGraph("x", (2, 8, 8), [conv("c", "x", 3, 2), bn], "bn")
    assert check(g, FoldBatchNorm(), X) == 1


def test_fold_batchnorm_leaves_shared_producer():
    bn = BatchNorm("bn", "c", np.ones(3), np.zeros(3), np.zeros(3), np.ones(3))
    g = FGraph("x", (2, 8, 8), [conv("c", "x", 3, 2), bn, Identity("other", "c")], "bn")
    assert FoldBatchNorm().match(g) == []


def test_merge_scalar_affine():
    g = FGraph("x", (2, 8, 8), [ScalarAffine("a", "x", 2.0, 1.0), ScalarAffine("b", "a", 0.25, -3.0)], "b")
    assert check(g, MergeScalarAffine(), X) == 1


@pytest.mark.parametrize("spelling", ["torch", "clamp_first", "relu_then", "ceil", "min_max", "folded_round"])
def test_fuse_quant_act_spellings(spelling):
    lam, L = 1.7, 4
    if spelling == "torch":
        ops = [ScalarAffine("m", "x", L), ScalarAffine("d", "m", 1 / lam), ScalarAffine("h", "d", 1, .5),
               Rounding("f", "h"), Clamp("c", "f", 0, L), ScalarAffine("m2", "c", lam), ScalarAffine("d2", "m2", 1 / L)]
    elif spelling == "clamp_first":  # the original QCFS code: clamp(x/lam, 0, 1) then floor(x*L + 0.5)/L*lam
        ops = [ScalarAffine("d", "x", 1 / lam), Clamp("c", "d", 0, 1), ScalarAffine("m", "c", L, .5),
               Rounding("f", "m"), ScalarAffine("o", "f", lam / L)]
    elif spelling == "relu_then":
        ops = [Relu("r", "x"), ScalarAffine("m", "r", L / lam), Rounding("f", "m"), Clamp("c", "f", -np.inf, L),
               ScalarAffine("o", "c", lam / L)]
    elif spelling == "ceil":
        ops = [ScalarAffine("m", "x", L / lam), Rounding("f", "m", "ceil"), Clamp("c", "f", 0, L), ScalarAffine("o", "c", lam / L)]
    elif spelling == "min_max":
        ops = [ScalarAffine("m", "x", L / lam), Rounding("f", "m"), Clamp("mx", "f", 0, np.inf), Clamp("mn", "mx", -np.inf, L),
               ScalarAffine("o", "mn", lam / L)]
    else:
        ops = [ScalarAffine("m", "x", L / lam, 0.5), Rounding("f", "m"), Clamp("c", "f", 0, L), ScalarAffine("o", "c", lam / L)]
    g = FGraph("x", (2, 8, 8), [conv("cv", "x", 3, 2)] + [o if o.input != "x" else type(o)(**{**vars(o), "input": "cv"}) for o in ops], ops[-1].name)
    x = X * 3
    before = g(x)
    run_passes(g, [MergeScalarAffine(), FuseQuantAct()])
    assert [type(o) for o in g.ops] == [Conv, QuantAct]
    q = g.ops[1]
    assert q.levels == L and np.isclose(q.lam, lam)
    assert q.mode == ("ceil" if spelling == "ceil" else "floor")
    np.testing.assert_allclose(g(x), before, atol=1e-12)


@pytest.mark.parametrize("ops,msg", [
    ([ScalarAffine("m", "x", 2.0), Rounding("f", "m"), Clamp("c", "f", -1, 4)], "signed levels -1..4"),
    ([ScalarAffine("m", "x", 2.0), Rounding("f", "m"), Clamp("c", "f", 0, np.inf)], "upper clip bound"),
    ([ScalarAffine("m", "x", 2.0), Rounding("f", "m"), Clamp("c", "f", 0, 4), ScalarAffine("o", "c", 1, 0.3)], "offset"),
    ([ScalarAffine("m", "x", -2.0), Rounding("f", "m"), Clamp("c", "f", 0, 4)], "must be > 0"),
    ([ScalarAffine("m", "x", 2.0, 1.5), Rounding("f", "m"), Clamp("c", "f", 0, 4)], "shift"),
])
def test_fuse_quant_act_rejects_other_functions(ops, msg):
    g = FGraph("x", (4,), ops, ops[-1].name)
    with pytest.raises(ConversionError, match=msg):
        run_passes(g, [MergeScalarAffine(), FuseQuantAct()])


def test_resolve_global_pool_then_fold_into_linear():
    g = FGraph("x", (2, 8, 8), [conv("c", "x", 3, 2), Relu("r", "c"), AvgPool("gap", "r", (0, 0), (1, 1)),
                                Flatten("fl", "gap"), Linear("fc", "fl", rng.normal(size=(5, 3)), rng.normal(size=5))], "fc")
    check(g, ResolveGlobalPool(), X, expect_fired=True)
    assert g.op("gap").kernel == (8, 8)
    assert check(g, FoldPoolIntoLinear(), X) == 2
    assert g.op("fc").weight.shape == (5, 3 * 64)


def test_fold_pool_into_linear_overlapping_windows():
    g = FGraph("x", (2, 8, 8), [Relu("r", "x"), AvgPool("p", "r", (3, 3), (2, 2)),
                                Linear("fc", "p", rng.normal(size=(4, 2 * 3 * 3)), np.zeros(4))], "fc")
    check(g, FoldPoolIntoLinear(), X)


def test_fold_pool_into_conv():
    g = FGraph("x", (2, 8, 8), [Relu("r", "x"), AvgPool("p", "r", (2, 2), (2, 2)), conv("c", "p", 3, 2, stride=(1, 1))], "c")
    assert check(g, FoldPoolIntoConv(), X) == 1
    assert g.op("c").stride == (2, 2) and g.op("c").weight.shape[-1] == 6


def test_fold_pool_into_conv_skips_non_tiling_input():
    g = FGraph("x", (2, 7, 7), [Relu("r", "x"), AvgPool("p", "r", (2, 2), (2, 2)), conv("c", "p", 3, 2)], "c")
    check(g, FoldPoolIntoConv(), rng.normal(size=(2, 2, 7, 7)), expect_fired=False)


@pytest.mark.parametrize("stride", [(1, 1), (2, 2)])
def test_fold_conv_into_pool(stride):
    g = FGraph("x", (2, 9, 9), [conv("c", "x", 3, 2, stride=stride), AvgPool("p", "c", (2, 2), (2, 2))], "p")
    assert check(g, FoldConvIntoPool(), rng.normal(size=(3, 2, 9, 9))) == 1


def test_driver_stops_at_fixed_point_and_caps_iterations():
    class Forever(Pass):
        name = "forever"

        def match(self, g):
            return [g.ops[0]]

        def transform(self, g, site):
            pass

    g = FGraph("x", (4,), [Identity("i", "x")], "i")
    with pytest.raises(PassDidNotConverge):
        run_passes(g, [Forever()], max_iterations=10)
    assert run_passes(g, [RemoveIdentity()]) == {"remove-identity": 1}


def test_the_rewrite_cap_scales_with_the_graph():
    """1001 (and 5000) Identity nodes in a valid model need as many rewrites: the default cap grows with
    the graph (issue 14; the cap was a fixed 1000)."""
    from snnc.compiler.frontend.onnx_loader import to_fgraph
    from snnc.compiler.passes import default_passes
    from onnx import helper

    from snnc_testutil import make_mlp_onnx

    for k in (1001, 5000):
        m = make_mlp_onnx()
        first = m.graph.node[0]
        src = first.input[0]
        ids = [helper.make_node("Identity", [src if i == 0 else f"id{i - 1}"], [f"id{i}"], name=f"id{i}") for i in range(k)]
        first.input[0] = f"id{k - 1}"
        for n in reversed(ids):
            m.graph.node.insert(0, n)
        g = to_fgraph(m)
        fired = run_passes(g, default_passes())
        assert fired["remove-identity"] == k and len(g.ops) < 20
        assert not any(type(o).__name__ == "Identity" for o in g.ops)
