"""Residual joins (Add/Sub), channel concatenation and DAG lowering (compiler/lowering/).

Every model is checked three ways: the float graph executor against onnxruntime (frontend), the
passes by running the graph before and after, and the lowering by (1) the layerwise SNN against the
integer ANN (exact, the theorem) and (2) the integer ANN against the float graph's activation
levels on a target with 24-bit weights, where integerization is nearly lossless: a wrong term,
scale or offset in the lowering shows up as thousands of wrong levels, rounding as none.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from snnc.ir import Schedule

from snnc.backends.reference import run_integer_ann
from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.config import CompileConfig
from snnc.compiler.errors import ConversionError
from snnc.compiler.frontend.onnx_loader import import_onnx
from snnc.compiler.frontend.float_graph import Add, AvgPool, Concat, Conv, FGraph, Flatten, Linear, QuantAct
from snnc.compiler.passes import DuplicateSharedPool, FoldPoolIntoConv, default_passes, run_passes
from snnc.compiler.tools.verify import verify_against_ann
from snnc.ir import Conv2d

from snnc_testutil import load_example_models_module, qcfs_nodes

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from snnc_testutil import REPO  # noqa: E402

sys.path.insert(0, str(REPO / "examples" / "models"))
import resnet  # noqa: E402
from qcfs import QuantClip, export_onnx  # noqa: E402

@pytest.fixture(scope="module")
def qcfs():
    return load_example_models_module()


def level_agreement(imported, net, x):
    """Per activation layer: the fraction of neurons whose integer-ANN level (tau = L) equals the
    float graph's level on the same quantized input; and the prediction agreement."""
    inp = net.inputs[0]
    vals = imported.graph.run(inp.quantize(x) * inp.scale)
    ann = run_integer_ann(net, x, timesteps=net.metadata["levels"])
    out = {}
    for L in net.metadata["layers"]:
        if L.get("onnx_activation"):
            q = imported.graph.op(L["onnx_activation"])
            lf = np.rint(vals[q.name] / q.gamma).astype(np.int64)
            out[L["layer"]] = float(np.mean(lf == ann.levels[L["layer"]].reshape(lf.shape)))
    pred = float(np.mean(vals[imported.graph.output].reshape(len(x), -1).argmax(1) == ann.predictions()))
    return out, pred


def check_model(path, x, wide, min_wide=0.999):
    """Frontend vs onnxruntime, SNN exact (loihi), integer ANN = float levels (wide target)."""
    import onnxruntime as ort

    g, _ = import_onnx(path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    y_ort = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(g(x), y_ort, rtol=1e-4, atol=1e-4)
    imp = import_model(path)
    np.testing.assert_allclose(imp.graph(x), y_ort, rtol=1e-4, atol=1e-4)  # after the passes
    net = compile_imported(imp)
    rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, imp.raw)
    assert rep.exact and rep.neurons_compared > 0, rep.to_dict()
    wnet = compile_imported(imp, CompileConfig(target=wide))
    assert verify_against_ann(wnet, x, None, Schedule.LAYERWISE, None).exact
    agree, pred = level_agreement(imp, wnet, x)
    assert agree and min(agree.values()) >= min_wide, agree
    return net, imp


def export(model, path, exporter="legacy", shape=(1, 3, 8, 8)):
    return export_onnx(model, path, exporter=exporter, input_shape=shape)


def calibrate(model, shape, seed=0):
    """BN statistics from the batch, lambda at the 99th percentile (examples/models/resnet.py)."""
    torch.manual_seed(seed)
    return resnet.calibrate_(model, shape, seed=seed)


def QC(levels=4, quantizer="round"):
    return QuantClip(levels, quantizer, 1.0)


# ---- models --------------------------------------------------------------------------------------
class Block(nn.Module):
    """QCFS basic block: act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, cin, cout, stride, quantizer="round"):
        super().__init__()
        self.c1, self.b1, self.a1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), QC(4, quantizer)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.sc = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                   if stride != 1 or cin != cout else nn.Identity())
        self.a2 = QC(4, quantizer)

    def forward(self, x):
        return self.a2(self.b2(self.c2(self.a1(self.b1(self.c1(x))))) + self.sc(x))


class TinyResNet(nn.Module):
    def __init__(self, quantizer="round"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), QC(4, quantizer))
        self.blocks = nn.Sequential(Block(4, 4, 1, quantizer), Block(4, 6, 2, quantizer), Block(6, 6, 1, quantizer))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))


class InputShortcut(nn.Module):
    """The identity shortcut reads the network input itself (source scaling of the input)."""

    def __init__(self):
        super().__init__()
        self.c1, self.a1 = nn.Conv2d(3, 3, 3, 1, 1), QC()
        self.c2, self.a2 = nn.Conv2d(3, 3, 3, 1, 1), QC()
        self.fc = nn.Linear(3 * 64, 4)

    def forward(self, x):
        return self.fc(torch.flatten(self.a2(self.c2(self.a1(self.c1(x))) + x), 1))


class ConcatNet(nn.Module):
    """Every kind of concatenation: of activations before a conv (weights split by input channel),
    of conv outputs before an activation (slices of one population), of an activation with a conv of
    itself (DenseNet), and before the readout's flatten."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn0, self.a0 = nn.Conv2d(3, 4, 3, 1, 1), nn.BatchNorm2d(4), QC()
        self.b1, self.a1 = nn.Conv2d(4, 3, 1), QC()
        self.b2, self.a2 = nn.Conv2d(4, 5, 3, 1, 1), QC()
        self.m, self.a3 = nn.Conv2d(8, 6, 3, 1, 1), QC()                       # reads cat(a1, a2)
        self.p1, self.p2, self.bn4, self.a4 = nn.Conv2d(6, 2, 1), nn.Conv2d(4, 3, 3, 1, 1), nn.BatchNorm2d(5), QC()
        self.d, self.a5 = nn.Conv2d(5, 3, 3, 1, 1), QC()
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(8 * 16, 4)

    def forward(self, x):
        h = self.a0(self.bn0(self.stem(x)))
        m = self.a3(self.m(torch.cat([self.a1(self.b1(h)), self.a2(self.b2(h))], 1)))
        j = self.a4(self.bn4(torch.cat([self.p1(m), self.p2(h)], 1)))          # concat before the activation
        dense = torch.cat([j, self.a5(self.d(j))], 1)                          # DenseNet-style
        return self.fc(torch.flatten(self.pool(dense), 1))


class DenseJoin(nn.Module):
    """cat(h, conv(h)) straight into an activation: an identity into a channel slice."""

    def __init__(self):
        super().__init__()
        self.c0, self.a0 = nn.Conv2d(3, 4, 3, 1, 1), QC()
        self.c1 = nn.Conv2d(4, 2, 3, 1, 1)
        self.a1 = QC()
        self.fc = nn.Linear(6 * 64, 3)

    def forward(self, x):
        h = self.a0(self.c0(x))
        return self.fc(torch.flatten(self.a1(torch.cat([h, self.c1(h)], 1)), 1))


def _x(shape, n=4, seed=0):
    return np.random.default_rng(seed).random((n,) + tuple(shape)).astype(np.float32)


# ---- residual networks --------------------------------------------------------------------------
@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
def test_tiny_resnet_identity_and_projection_shortcuts(tmp_path, wide, exporter):
    model = calibrate(TinyResNet(), (3, 8, 8))
    path = export(model, tmp_path / "r.onnx", exporter)
    net, imp = check_model(path, _x((3, 8, 8)), wide)
    assert len(net.populations) == 7  # stem + 2 per block
    joins = [L for L in net.metadata["layers"] if L.get("onnx_linears")]
    assert len(joins) == 3
    for L in joins:
        inc = net.incoming(L["layer"])
        assert len(inc) == 2 and {p.source for p in inc} == set(L["sources"])
        assert net.node(L["layer"]).threshold.shape == (net.node(L["layer"]).shape[0],)  # one Theta per channel
    # the identity shortcuts: a depthwise 1x1 conv of the block's input population
    ident = [p for p in net.projections if isinstance(p, Conv2d) and p.groups > 1]
    assert len(ident) == 2
    for p in ident:
        assert p.weight.shape[1:] == (1, 1, 1) and p.groups == p.weight.shape[0]
        assert np.all(p.weight > 0)
    # the projection shortcut: a 1x1 stride-2 conv
    assert any(p.weight.shape[2:] == (1, 1) and p.stride == (2, 2) and p.groups == 1 for p in net.projections)


@pytest.mark.parametrize("quantizer", ["floor", "ceil"])
def test_resnet_other_quantizers(tmp_path, wide, quantizer):
    model = calibrate(TinyResNet(quantizer), (3, 8, 8), seed=1)
    check_model(export(model, tmp_path / "r.onnx"), _x((3, 8, 8), seed=1), wide)


def test_identity_shortcut_from_the_network_input(tmp_path, wide):
    model = calibrate(InputShortcut(), (3, 8, 8))
    net, _ = check_model(export(model, tmp_path / "r.onnx"), _x((3, 8, 8)), wide)
    join = net.metadata["layers"][1]
    assert "input" in join["sources"]


def test_residual_T_not_L_and_dual_threshold(tmp_path):
    model = calibrate(TinyResNet(), (3, 8, 8))
    imp = import_model(export(model, tmp_path / "r.onnx"))
    x = _x((3, 8, 8))
    for cfg in (CompileConfig(timesteps=7), CompileConfig(neuron="dual-threshold"),
                CompileConfig(timesteps=2, neuron="dual-threshold", v0="zero")):
        net = compile_imported(imp, cfg)
        rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, None)
        assert rep.ok, (cfg, rep.to_dict())
        if cfg.timesteps is None:
            assert rep.exact


def _onnx_model(nodes, inits, in_shape, out_shape):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *in_shape])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out_shape])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _conv_node(name, x, out, rng, cout, cin, k=3, pad=1, inits=None, bias=True):
    inits.append(numpy_helper.from_array(rng.normal(0, 0.5, (cout, cin, k, k)).astype(np.float32), f"{name}_w"))
    ins = [x, f"{name}_w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.1, cout).astype(np.float32), f"{name}_b"))
        ins.append(f"{name}_b")
    return helper.make_node("Conv", ins, [out], name=name, pads=[pad] * 4)


def test_sub_join_and_batchnorm_after_the_join(tmp_path, wide):
    """act(BN(conv(h) - h)): the un-foldable BN scales both terms (pre-activation ResNet style)."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    nodes.append(_conv_node("c0", "x", "z0", rng, 3, 3, inits=inits))
    q, i = qcfs_nodes("a0", "z0", "h", lam=1.5, L=4)
    nodes += q
    inits += i
    nodes.append(_conv_node("c1", "h", "z1", rng, 3, 3, inits=inits))
    nodes.append(helper.make_node("Sub", ["z1", "h"], ["d"], name="join"))
    for n, v in (("s", rng.uniform(0.5, 2, 3)), ("t", rng.normal(0, .2, 3)), ("mu", rng.normal(0, .2, 3)), ("var", rng.uniform(.5, 2, 3))):
        inits.append(numpy_helper.from_array(v.astype(np.float32), n))
    nodes.append(helper.make_node("BatchNormalization", ["d", "s", "t", "mu", "var"], ["bn"], name="bn"))
    q, i = qcfs_nodes("a1", "bn", "h2", lam=1.2, L=4)
    nodes += q
    inits += i
    nodes.append(helper.make_node("Flatten", ["h2"], ["f"], name="flat"))
    inits.append(numpy_helper.from_array(rng.normal(0, 0.3, (3 * 36, 4)).astype(np.float32), "wf"))
    nodes.append(helper.make_node("MatMul", ["f", "wf"], ["y"], name="fc"))
    p = tmp_path / "sub.onnx"
    onnx.save(_onnx_model(nodes, inits, (3, 6, 6), (4,)), p)
    g, _ = import_onnx(p)
    assert any(isinstance(o, Add) and o.sign == -1 for o in g.ops)
    net, imp = check_model(p, _x((3, 6, 6), n=16), wide)
    inc = net.incoming(net.metadata["layers"][1]["layer"])
    ident = next(p for p in inc if p.groups > 1)
    assert np.all(ident.weight < 0)  # the subtracted identity


def test_concatenations(tmp_path, wide):
    model = calibrate(ConcatNet(), (3, 8, 8))
    for exporter in ("legacy", "dynamo"):
        path = export(model, tmp_path / f"c_{exporter}.onnx", exporter)
        net, imp = check_model(path, _x((3, 8, 8)), wide)
        assert len(net.populations) == 6
        # cat(a1, a2) -> conv: two projections into the conv's population, the weight split by input channel
        m = [L for L in net.metadata["layers"] if L.get("sources") and len(L["sources"]) == 2]
        assert len(m) >= 2
        readout = net.incoming("readout")
        assert len(readout) == 2  # the flattened concat: one dense projection per source


def test_dense_join_identity_into_a_channel_slice(tmp_path, wide):
    model = calibrate(DenseJoin(), (3, 8, 8))
    net, _ = check_model(export(model, tmp_path / "d.onnx"), _x((3, 8, 8)), wide)
    inc = net.incoming("conv2")
    assert len(inc) == 2
    sl = next(p for p in inc if p.source == "conv1" and p.weight.shape[2:] == (1, 1))
    assert sl.weight.shape == (6, 4, 1, 1) and np.count_nonzero(sl.weight) == 4  # channels 0..3 of 6
    assert np.all(sl.weight[4:] == 0)


# ---- passes ----------------------------------------------------------------------------------------
def test_duplicate_shared_pool_then_fold(tmp_path):
    rng = np.random.default_rng(0)
    ops = [Conv("c0", "x", rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), (1, 1), (1, 1, 1, 1)),
           QuantAct("q", "c0", alpha=2.0, beta=0.5, levels=4, gamma=0.3),
           AvgPool("p", "q", (2, 2), (2, 2)),
           Conv("c1", "p", rng.normal(size=(3, 3, 3, 3)), rng.normal(size=3), (1, 1), (1, 1, 1, 1)),
           Add("j", "c1", "p"),
           Flatten("f", "j"), Linear("fc", "f", rng.normal(size=(2, 48)), np.zeros(2))]
    g = FGraph("x", (2, 8, 8), ops, "fc")
    x = rng.normal(size=(3, 2, 8, 8))
    before = g(x)
    fired = run_passes(g, [DuplicateSharedPool(), FoldPoolIntoConv()])
    assert fired["duplicate-shared-avgpool"] == 1 and fired["fold-avgpool-into-conv"] == 1
    np.testing.assert_allclose(g(x), before, rtol=1e-12, atol=1e-12)
    assert [type(o).__name__ for o in g.ops].count("AvgPool") == 1 and g.op("c1").stride == (2, 2)


def test_graph_joins_run_like_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3, 4, 4)), rng.normal(size=(2, 2, 4, 4))
    assert np.array_equal(Concat("c", "a", ["b"], 1)(a, b), np.concatenate([a, b], 1))
    assert np.array_equal(Concat("c", "a", ["b"], -3)(a, b), np.concatenate([a, b], 1))
    assert np.array_equal(Add("s", "a", "a", -1.0)(a, a), np.zeros_like(a))
    g = FGraph("x", (3, 4, 4), [Add("j", "x", "x")], "j")
    assert [o.name for o in g.consumers("x")] == ["j"]
    g.replace_uses("x", "y")
    assert g.ops[0].sources() == ["y", "y"]


# ---- errors -----------------------------------------------------------------------------------------
def test_two_linear_layers_without_activation_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    nodes.append(_conv_node("c0", "x", "z0", rng, 3, 3, inits=inits))
    q, i = qcfs_nodes("a0", "z0", "h", lam=1.5, L=4)
    nodes += q
    inits += i
    nodes.append(_conv_node("c1", "h", "z1", rng, 3, 3, inits=inits))
    nodes.append(_conv_node("c2", "z1", "z2", rng, 3, 3, inits=inits))
    q, i = qcfs_nodes("a1", "z2", "h2", lam=1.5, L=4)
    nodes += q
    inits += i
    nodes.append(helper.make_node("GlobalAveragePool", ["h2"], ["gp"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gp"], ["y"], name="flat"))
    p = tmp_path / "cc.onnx"
    onnx.save(_onnx_model(nodes, inits, (3, 6, 6), (3,)), p)
    with pytest.raises(ConversionError, match=r"node 'c2' \(Conv\) reads the output of \['c1'\] with no activation"):
        compile_imported(import_model(p))


def test_bias_before_a_padded_conv_is_refused(tmp_path):
    """act -> BatchNorm -> padded conv: the BN shift becomes position dependent at the borders."""
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    nodes.append(_conv_node("c0", "x", "z0", rng, 3, 3, inits=inits))
    q, i = qcfs_nodes("a0", "z0", "h", lam=1.5, L=4)
    nodes += q
    inits += i
    for n, v in (("s", np.ones(3)), ("t", np.full(3, 0.7)), ("mu", np.zeros(3)), ("var", np.ones(3))):
        inits.append(numpy_helper.from_array(v.astype(np.float32), n))
    nodes.append(helper.make_node("BatchNormalization", ["h", "s", "t", "mu", "var"], ["hs"], name="bn"))
    nodes.append(_conv_node("c1", "hs", "z1", rng, 3, 3, inits=inits))
    q, i = qcfs_nodes("a1", "z1", "h1", lam=1.5, L=4)
    nodes += q
    inits += i
    nodes.append(helper.make_node("GlobalAveragePool", ["h1"], ["gp"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gp"], ["y"], name="flat"))
    p = tmp_path / "b.onnx"
    onnx.save(_onnx_model(nodes, inits, (3, 6, 6), (3,)), p)
    with pytest.raises(ConversionError, match="before activation 'a1_div2': the bias differs across positions"):
        compile_imported(import_model(p))


def test_concat_along_space_and_broadcast_add_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    inits, nodes = [], []
    nodes.append(_conv_node("c0", "x", "z0", rng, 3, 3, inits=inits))
    q, i = qcfs_nodes("a0", "z0", "h", lam=1.5, L=4)
    nodes += q
    inits += i
    nodes.append(helper.make_node("Concat", ["h", "h"], ["cat"], name="cat_h", axis=2))
    nodes.append(_conv_node("c1", "cat", "z1", rng, 3, 3, inits=inits))
    q, i = qcfs_nodes("a1", "z1", "h1", lam=1.5, L=4)
    nodes += q
    inits += i
    nodes.append(helper.make_node("GlobalAveragePool", ["h1"], ["gp"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gp"], ["y"], name="flat"))
    p = tmp_path / "cs.onnx"
    onnx.save(_onnx_model(nodes, inits, (3, 6, 6), (3,)), p)
    with pytest.raises(ConversionError, match="Concat node 'cat_h' joins along axis 2"):
        compile_imported(import_model(p))
    g = FGraph("x", (2, 4, 4), [Conv("c", "x", np.ones((2, 2, 1, 1)), np.zeros(2), (2, 2)),
                                QuantAct("q", "c", levels=4, gamma=0.25),
                                AvgPool("gp", "q", (2, 2), (2, 2)), Add("j", "gp", "x"), Flatten("f", "j"),
                                Linear("fc", "f", np.ones((2, 32)), np.zeros(2))], "fc")
    from snnc.compiler.targets import load_target
    from snnc_testutil import lower_to_network

    with pytest.raises(ConversionError, match="Add node 'j' joins tensors of shapes"):
        lower_to_network(g, load_target("loihi"), None, (0.0, 1.0))


def test_mul_of_two_tensors_is_named(tmp_path):
    """A product of two tensors imports (GELU / SiLU are spelled with one) but is refused by name where it
    is neither of those nor attention's MatMul."""
    from onnx import numpy_helper

    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.errors import ConversionError
    from snnc.compiler.tools.runner import reference_runner

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 6)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.standard_normal((6, 3)).astype(np.float32), "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"], name="fc1"), helper.make_node("Relu", ["a"], ["r"], name="relu1"),
             helper.make_node("Mul", ["r", "r"], ["s"], name="sq"), helper.make_node("MatMul", ["s", "w2"], ["y"], name="fc2")]
    onnx.save(_onnx_model(nodes, inits, (4,), (3,)), tmp_path / "m.onnx")
    np.savez(tmp_path / "c.npz", x=rng.random((32, 4)).astype(np.float32))
    cfg = CompileConfig(calibration_data=str(tmp_path / "c.npz"), timesteps=4, neuron="multi-threshold", mt_n=4)
    with pytest.raises(ConversionError, match="node 'sq' \\(Mul\\) multiplies two tensors"):
        compile_model(tmp_path / "m.onnx", cfg, runner=reference_runner)


def test_chain_models_lower_as_before(tmp_path, qcfs):
    """The DAG lowering gives a chain the same layer names, shapes and one projection per layer."""
    net = compile_imported(import_model(qcfs.export_onnx(qcfs.make_random_qcfs_net(seed=2), tmp_path / "m.onnx")))
    assert [n.name for n in net.nodes] == ["input", "conv1", "conv2", "fc1", "readout"]
    assert all(len(net.incoming(n.name)) == 1 for n in net.nodes[1:])
    assert all("onnx_linears" not in L for L in net.metadata["layers"])


@pytest.mark.parametrize("keepdims", [0, 1])
def test_spatial_reductions_and_shared_constants_match_onnxruntime(tmp_path, keepdims):
    """ReduceMean / ReduceMax over H, W (the dynamo exporter's adaptive pools), and an Identity of a
    constant (the legacy exporter's shared equal parameters) are read as what they compute."""
    import onnxruntime as ort

    inits = [numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
             numpy_helper.from_array(np.array(2.0, np.float32), "two")]
    nodes = [helper.make_node("Identity", ["two"], ["two_b"], name="shared"),
             helper.make_node("Mul", ["x", "two_b"], ["m"], name="mul"),
             helper.make_node("ReduceMean", ["m", "axes"], ["a"], name="rmean", keepdims=keepdims),
             helper.make_node("ReduceMax", ["m", "axes"], ["b"], name="rmax", keepdims=keepdims),
             helper.make_node("Sub", ["a", "b"], ["y"], name="diff")]
    out = (3,) if not keepdims else (3, 1, 1)
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *out])], inits)
    p = tmp_path / "r.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]), p)
    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype(np.float32)
    y = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    fg, _ = import_onnx(p)
    np.testing.assert_allclose(fg(x), y, rtol=1e-5, atol=1e-6)
    run_passes(fg, default_passes())
    np.testing.assert_allclose(fg(x), y, rtol=1e-5, atol=1e-6)


def test_shape_mismatch_is_named_at_import(tmp_path):
    from snnc.compiler.errors import InvalidModelError

    inits = [numpy_helper.from_array(np.ones((5, 3), np.float32), "w")]
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc_bad", transB=1)]
    onnx.save(_onnx_model(nodes, inits, (4,), (5,)), tmp_path / "m.onnx")
    with pytest.raises(InvalidModelError, match="node 'fc_bad' \\(Linear\\) cannot be applied to input\\(s\\) of shape \\[\\(4,\\)\\]"):
        import_onnx(tmp_path / "m.onnx")
