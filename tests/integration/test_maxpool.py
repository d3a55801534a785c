"""Max pooling: exact as a max of spike counts (relu tournament populations), refused elsewhere.

docs/conversion.md, "Residual networks, concat and max pooling". Checks: the swap pass by running
the graph before and after; the lowering by SNN = integer ANN (exact) and integer ANN = float graph
levels on a 24-bit-weight target; the max populations by comparing their counts with a numpy max
over the source population's counts, for T = L and T != L.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from hypothesis import given, settings, strategies as st
from onnx import TensorProto, helper, numpy_helper

from snnc.ir import Schedule

from snnc.backends.reference import simulate
from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.config import CompileConfig
from snnc.compiler.errors import ConversionError
from snnc.compiler.frontend.onnx_loader import import_onnx
from snnc.compiler.frontend.float_graph import BatchNorm, Conv, FGraph, MaxPool, QuantAct, ScalarAffine
from snnc.compiler.passes import SwapMaxPoolMonotone, run_passes
from snnc.compiler.tools.verify import verify_against_ann

from snnc_testutil import REPO, qcfs_nodes

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

sys.path.insert(0, str(REPO / "examples" / "models"))
import resnet  # noqa: E402
from qcfs import QuantClip, export_onnx  # noqa: E402

def QC():
    return QuantClip(4, "round", 1.0)


class PoolNet(nn.Module):
    """act -> MaxPool (after the activation), conv -> MaxPool -> BN -> act (before it), MaxPool with
    padding, GlobalMaxPool at the end."""

    def __init__(self, k=2, s=2, p=0, head="gmp"):
        super().__init__()
        self.c0, self.a0 = nn.Conv2d(3, 4, 3, 1, 1), QC()
        self.mp0 = nn.MaxPool2d(k, s, p)
        self.c1, self.mp1, self.bn1, self.a1 = nn.Conv2d(4, 5, 3, 1, 1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(5), QC()
        self.head = head
        self.gmp = nn.AdaptiveMaxPool2d(1) if head == "gmp" else nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        h = self.mp0(self.a0(self.c0(x)))
        h = self.a1(self.bn1(self.mp1(self.c1(h))))
        return self.fc(torch.flatten(self.gmp(h), 1))


def _calibrated(model, shape, seed=0):
    torch.manual_seed(seed)
    resnet.calibrate_(model, shape, seed=seed)
    with torch.no_grad():  # keep the BN scales positive: the swap needs a non-decreasing BN
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.abs_()
    return model


def _x(shape, n=4, seed=0):
    return np.random.default_rng(seed).random((n,) + tuple(shape)).astype(np.float32)


def _level_agreement(imp, net, x):
    from snnc.backends.reference import run_integer_ann

    inp = net.inputs[0]
    vals = imp.graph.run(inp.quantize(x) * inp.scale)
    ann = run_integer_ann(net, x, timesteps=net.metadata["levels"])
    out = {}
    for L in net.metadata["layers"]:
        if L.get("onnx_activation"):
            q = imp.graph.op(L["onnx_activation"])
            lf = np.rint(vals[q.name] / q.gamma).astype(np.int64)
            out[L["layer"]] = float(np.mean(lf == ann.levels[L["layer"]].reshape(lf.shape)))
    return out


def _max_counts(src_counts, k, s, p, d=(1, 1)):
    """numpy max over the windows of counts >= 0 (zero padding is the same as -inf padding here)."""
    g = FGraph("x", src_counts.shape[1:], [MaxPool("m", "x", k, s, p, d)], "m")
    return g(src_counts.astype(np.float64)).astype(np.int64)


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
@pytest.mark.parametrize("k,s,p", [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1))])
def test_maxpool_nets_are_exact(tmp_path, wide, exporter, k, s, p):
    import onnxruntime as ort

    model = _calibrated(PoolNet(k[0], s[0], p[0]), (3, 8, 8))
    path = export_onnx(model, tmp_path / "mp.onnx", exporter=exporter, input_shape=(1, 3, 8, 8))
    x = _x((3, 8, 8))
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    g, _ = import_onnx(path)
    np.testing.assert_allclose(g(x), y, rtol=1e-4, atol=1e-4)
    imp = import_model(path)
    np.testing.assert_allclose(imp.graph(x), y, rtol=1e-4, atol=1e-4)
    ops = [type(o).__name__ for o in imp.graph.ops]
    assert ops.count("MaxPool") == 3 and ops.count("QuantAct") == 2
    # every max pool now reads an activation (or a max pool of one)
    assert all(isinstance(imp.graph.producer(o.input), (QuantAct, MaxPool)) for o in imp.graph.ops if isinstance(o, MaxPool))
    net = compile_imported(imp)
    rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, imp.raw)
    assert rep.exact, rep.to_dict()
    roles = [L.get("role") for L in net.metadata["layers"]]
    n_win = k[0] * k[1]
    # a window of n elements: n - 1 relu populations and one output population per pool
    assert roles.count("maxpool output") == 3
    assert roles.count("maxpool relu(b - a)") == (n_win - 1) + 3 + 3  # mp0, mp1 (2x2), global max of 2x2
    wnet = compile_imported(imp, CompileConfig(target=wide))
    agree = _level_agreement(imp, wnet, x)
    assert min(agree.values()) >= 0.999, agree
    # the max populations count the max of their source's counts
    sim = simulate(net, x, Schedule.LAYERWISE)
    c1 = sim.counts["conv1"]
    np.testing.assert_array_equal(sim.counts["mpool1"], _max_counts(c1, k, s, p))


@pytest.mark.parametrize("T", [1, 3, 4, 9])
def test_max_of_counts_is_exact_for_any_T(tmp_path, T):
    model = _calibrated(PoolNet(3, 2, 1, head="gap"), (3, 8, 8), seed=2)
    imp = import_model(export_onnx(model, tmp_path / "mp.onnx", input_shape=(1, 3, 8, 8)))
    for neuron in ("if", "dual-threshold"):
        net = compile_imported(imp, CompileConfig(timesteps=T, neuron=neuron))
        x = _x((3, 8, 8), n=3, seed=T)
        sim = simulate(net, x, Schedule.LAYERWISE)
        np.testing.assert_array_equal(sim.counts["mpool1"], _max_counts(sim.counts["conv1"], (3, 3), (2, 2), (1, 1, 1, 1)))
        rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, None)
        assert rep.ok


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 1), st.integers(1, 6), st.integers(0, 10**6))
def test_tournament_computes_the_max_of_any_counts(kh, kw, stride, pad, T, seed):
    """Random counts in [0, T] on a source population (Theta = 1 and identity weights make the source
    count its input), any window: the max population equals numpy's max."""
    from snnc.compiler.lowering import Source, count_maxpool
    from snnc.ir import Conv2d, IFSoftReset, Input, Network, Population, Readout

    pad = min(pad, kh - 1, kw - 1)
    C, H, W = 2, 5, 6
    g = FGraph("x", (C, H, W), [QuantAct("q", "x", levels=T, gamma=1.0), MaxPool("m", "q", (kh, kw), (stride, stride), (pad,) * 4)], "m")
    pool = count_maxpool(g.ops[1], Source("src", (C, H, W), 1.0, 1.0), "mpool1", IFSoftReset(), T)
    nodes, projs = pool.nodes, pool.projections
    inp = Input("input", (C, H, W), scale=1.0, qmin=0, qmax=T)
    src = Population("src", (C, H, W), threshold=np.array(T), levels=T)  # counts = x_int (input current T*x_int per layer)
    p_in = Conv2d("input->src", "input", "src", np.full((C, 1, 1, 1), 1), 0, (C, H, W), (C, H, W), groups=C)
    out_shape = nodes[-1].shape
    ro = Readout("readout", out_shape)
    p_out = Conv2d("mpool1->readout", "mpool1", "readout", np.full((C, 1, 1, 1), 1), 0, out_shape, out_shape, groups=C)
    net = Network([inp, src] + nodes + [ro], [p_in] + projs + [p_out], T)
    x = np.random.default_rng(seed).integers(0, T + 1, (3, C, H, W))
    sim = simulate(net, x, Schedule.LAYERWISE, quantized=True)
    np.testing.assert_array_equal(sim.counts["src"], x)
    np.testing.assert_array_equal(sim.counts["mpool1"], _max_counts(x, (kh, kw), (stride, stride), (pad,) * 4))


def test_swap_pass_runs_the_same():
    rng = np.random.default_rng(0)
    a = np.array([0.5, 2.0, 1.0])
    ops = [Conv("c", "x", rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), (1, 1), (1, 1, 1, 1)),
           MaxPool("mp", "c", (3, 3), (2, 2), (1, 1, 1, 1)),
           BatchNorm("bn", "mp", a, rng.normal(size=3), rng.normal(size=3), np.ones(3)),
           ScalarAffine("s", "bn", 2.0, 0.5),
           QuantAct("q", "s", alpha=1.5, beta=0.5, levels=4, gamma=0.3)]
    g = FGraph("x", (2, 8, 8), ops, "q")
    x = rng.normal(size=(4, 2, 8, 8)) * 3
    before = g(x)
    fired = run_passes(g, [SwapMaxPoolMonotone()])
    assert fired["swap-maxpool-monotone"] == 3
    assert [type(o).__name__ for o in g.ops] == ["Conv", "BatchNorm", "ScalarAffine", "QuantAct", "MaxPool"]
    assert g.output == "mp"
    np.testing.assert_allclose(g(x), before, rtol=0, atol=0)
    # a negative BN scale is decreasing: not swapped
    g2 = FGraph("x", (2, 8, 8), [ops[0].__class__(**{**vars(ops[0])}),
                                 MaxPool("mp", "c", (2, 2), (2, 2)),
                                 BatchNorm("bn", "mp", -a, np.zeros(3), np.zeros(3), np.ones(3))], "bn")
    assert SwapMaxPoolMonotone().match(g2) == []


def _model(nodes, inits, in_shape, out_shape):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _conv(name, x, out, cout, cin, inits, rng):
    inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (cout, cin, 3, 3)).astype(np.float32), f"{name}_w"))
    return helper.make_node("Conv", [x, f"{name}_w"], [out], name=name, pads=[1, 1, 1, 1])


def test_maxpool_on_the_input_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    inits = []
    nodes = [helper.make_node("MaxPool", ["x"], ["p"], name="pool_in", kernel_shape=[2, 2], strides=[2, 2]),
             _conv("c0", "p", "z", 3, 3, inits, rng)]
    q, i = qcfs_nodes("a0", "z", "h", lam=1.0, L=4)
    nodes += q + [helper.make_node("GlobalAveragePool", ["h"], ["g"], name="gap"),
                  helper.make_node("Flatten", ["g"], ["y"], name="flat")]
    onnx.save(_model(nodes, inits + i, (3, 8, 8), (3,)), tmp_path / "m.onnx")
    with pytest.raises(ConversionError, match="MaxPool node 'pool_in'.*retrain with AveragePool"):
        compile_imported(import_model(tmp_path / "m.onnx"))


def test_maxpool_between_linear_layers_is_refused(tmp_path):
    """act -> conv -> MaxPool -> conv: the pool reads a pre-activation value, not counts."""
    rng = np.random.default_rng(0)
    inits = []
    nodes = [_conv("c0", "x", "z0", 3, 3, inits, rng)]
    q, i = qcfs_nodes("a0", "z0", "h", lam=1.0, L=4)
    nodes += q
    inits += i
    nodes += [_conv("c1", "h", "z1", 3, 3, inits, rng),
              helper.make_node("MaxPool", ["z1"], ["p"], name="pool_mid", kernel_shape=[2, 2], strides=[2, 2]),
              _conv("c2", "p", "z2", 3, 3, inits, rng)]
    q, i = qcfs_nodes("a2", "z2", "h2", lam=1.0, L=4)
    nodes += q + [helper.make_node("GlobalAveragePool", ["h2"], ["g"], name="gap"),
                  helper.make_node("Flatten", ["g"], ["y"], name="flat")]
    onnx.save(_model(nodes, inits + i, (3, 8, 8), (3,)), tmp_path / "m.onnx")
    with pytest.raises(ConversionError) as e:
        compile_imported(import_model(tmp_path / "m.onnx"))
    assert "MaxPool node 'pool_mid'" in str(e.value) and "retrain with AveragePool" in str(e.value)


def test_maxpool_frontend_refusals(tmp_path):
    from snnc.compiler.errors import InvalidModelError

    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="mp_ceil", kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)]
    onnx.save(_model(nodes, [], (3, 5, 5), (3, 3, 3)), tmp_path / "m.onnx")
    with pytest.raises(InvalidModelError, match="MaxPool node 'mp_ceil': ceil_mode=1"):
        import_onnx(tmp_path / "m.onnx")


def test_maxpool_executor_matches_onnxruntime(tmp_path):
    import onnxruntime as ort

    nodes = [helper.make_node("MaxPool", ["x"], ["a"], name="mp", kernel_shape=[3, 2], strides=[2, 1],
                              pads=[1, 0, 1, 1], dilations=[1, 2]),
             helper.make_node("GlobalMaxPool", ["a"], ["y"], name="gmp")]
    onnx.save(_model(nodes, [], (2, 7, 6), (2, 1, 1)), tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(size=(3, 2, 7, 6)).astype(np.float32)
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"x": x})[0]
    g, _ = import_onnx(tmp_path / "m.onnx")
    vals = g.run(x)
    np.testing.assert_allclose(vals["gmp"], y, rtol=1e-6)
