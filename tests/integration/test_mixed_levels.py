"""Mixed quantization levels L across layers (docs/conversion.md, "Mixed L"; docs/ir.md, "Mixed levels").

A model whose activations have different L (a Brevitas mixed-precision export: 8-bit here, 3-bit
there) compiles to a network whose T is the largest L and whose populations each integrate their own
L steps in the layerwise schedule (``Population.timesteps``). The constant-current theorem holds per
layer, so the SNN's counts equal the quantized ANN's levels integer for integer (every layer at its
own L). The T != L rescale (an explicit --timesteps) and the pipelined schedule are refused by name.
"""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest

from snnc.ir import Schedule

from snnc.backends.reference import run_integer_ann, simulate
from snnc.compiler.analysis.bounds import network_bounds
from snnc.compiler.tools.stats import compute_stats
from snnc.compiler.api import compile_imported, compile_model, import_model
from snnc.compiler.config import CompileConfig
from snnc.compiler.errors import ConversionError
from snnc.compiler.frontend.float_graph import QuantAct
from snnc.compiler.mapping import rates_from_counts
from snnc.compiler.tools.verify import verify_against_ann
from snnc.ir import Dense, DualThreshold, IFSoftReset, Input, IRValidationError, Network, Population, Readout, load

from snnc_testutil import REPO, brevitas_cnn, export_brevitas, make_mlp_onnx

MIXES = [(8, 3), (3, 8), (2, 5, 3)]


def _mlp(tmp_path, Ls, seed=1, mode="round"):
    path = tmp_path / f"mlp_{'_'.join(map(str, Ls))}_{mode}_{seed}.onnx"
    onnx.save(make_mlp_onnx(seed=seed, L=list(Ls), hidden=(12, 8, 6)[:len(Ls)], mode=mode), path)
    return path


def _x(n=400, seed=0, shape=(6,)):
    return np.random.default_rng(seed).uniform(0, 1, (n,) + tuple(shape)).astype(np.float32)


def _float_level_agreement(imp, net, x):
    """Per activation: the fraction of neurons whose integer-ANN level (each layer at its own L) equals
    the float graph's level a*L/lambda (on a 24-bit-weight target only weight rounding can differ)."""
    inp = net.inputs[0]
    vals = imp.graph.run(inp.quantize(x) * inp.scale)
    ann = run_integer_ann(net, x)
    out = {}
    for L in net.metadata["layers"]:
        if L.get("onnx_activation"):
            q = imp.graph.op(L["onnx_activation"])
            lf = np.rint(vals[q.name] / q.gamma).astype(np.int64)
            out[L["layer"]] = float(np.mean(lf == ann.levels[L["layer"]].reshape(lf.shape)))
    return out


@pytest.mark.parametrize("mode", ["round", "floor", "ceil"])
@pytest.mark.parametrize("neuron", ["if", "dual-threshold"])
@pytest.mark.parametrize("Ls", MIXES, ids=lambda Ls: "L" + "-".join(map(str, Ls)))
def test_mixed_mlp_is_exact_layerwise(tmp_path, Ls, neuron, mode):
    net, raw = compile_model(_mlp(tmp_path, Ls, mode=mode), CompileConfig(neuron=neuron))
    assert net.timesteps == max(Ls)
    assert [(p.levels, p.timesteps) for p in net.populations] == [(L, L) for L in Ls]
    assert net.metadata["mixed_levels"] and sorted(net.metadata["mixed_levels"].values()) == sorted(Ls)
    x = _x()
    rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, raw)
    assert rep.exact and rep.neurons_mismatched == 0
    assert rep.comparison == "levels" and rep.neurons_compared == 400 * sum(p.size for p in net.populations)
    assert rep.prediction_agreement["snn_vs_ann_int"] == 1.0
    sim = simulate(net, x, Schedule.LAYERWISE, record=True)
    for p, L in zip(net.populations, Ls):
        assert sim.spikes[p.name].shape[0] == L                       # each layer runs its own L steps
        assert sim.counts[p.name].min() >= 0 and sim.counts[p.name].max() <= L
        assert 0.0 <= sim.activation(net, p.name).max() <= float(p.real_threshold) + 1e-12
    assert sim.latency_steps == sum(Ls)                               # layers back to back
    if neuron == "dual-threshold":                                    # constant current: no negative spike
        assert all(int((sim.spikes[p.name] < 0).sum()) == 0 for p in net.populations)


def test_mixed_integer_ann_is_the_float_models_levels(tmp_path, wide):
    """The integer ANN the mixed network defines (each layer at its own L, the input counting T*x_int
    with T the largest L) is the float model's quantized ANN: on a 24-bit-weight target its levels equal
    the float graph's a*L/lambda, layer by layer (so the count unit of every source, input included, is
    right)."""
    for Ls in MIXES:
        imp = import_model(_mlp(tmp_path, Ls))
        net = compile_imported(imp, CompileConfig(target=wide))
        agree = _float_level_agreement(imp, net, _x(seed=3))
        assert min(agree.values()) >= 0.999, (Ls, agree)


def test_uniform_levels_are_unchanged(tmp_path):
    """One L: no population gets its own steps, the bundle has no such field, T = L as before."""
    net, _ = compile_model(_mlp(tmp_path, (4, 4)))
    assert net.timesteps == 4 and net.mixed_steps == {} and all(p.timesteps is None for p in net.populations)
    assert "mixed_levels" not in net.metadata
    net, _ = compile_model(_mlp(tmp_path, (4, 4)), CompileConfig(timesteps=2))
    assert net.timesteps == 2 and all(p.timesteps is None for p in net.populations)


def test_mixed_refusals_are_named(tmp_path):
    path = _mlp(tmp_path, (8, 3))
    with pytest.raises(ConversionError, match=r"different quantization levels .*--timesteps 8"):
        compile_model(path, CompileConfig(timesteps=8))
    with pytest.raises(IRValidationError, match=r"different quantization levels.*'fc1' L=8, 'fc2' L=3.*layerwise"):
        compile_model(path, CompileConfig(schedule="pipelined"))
    net, _ = compile_model(path)
    with pytest.raises(IRValidationError, match=r"'fc2' L=3"):
        simulate(net, _x(4), Schedule.PIPELINED)
    with pytest.raises(ValueError, match="mixed levels"):
        run_integer_ann(net, _x(4), timesteps=3)


def test_mixed_bundle_round_trip_and_bounds(tmp_path):
    path = _mlp(tmp_path, (2, 5, 3))
    from snnc.compiler.api import compile_to_file

    net = compile_to_file(path, tmp_path / "m.snnc")
    back = load(tmp_path / "m.snnc")
    assert back.mixed_steps == net.mixed_steps == {"fc1": 2, "fc2": 5, "fc3": 3}
    x = _x(300, seed=7)
    sim = simulate(back, x, Schedule.LAYERWISE)
    bounds = network_bounds(back)
    for name, m in sim.max_abs_state.items():           # measured <= bound, per node
        assert m <= bounds[name].layerwise, (name, m, bounds[name])
    for p in back.populations:                           # the pipelined bound does not apply (refused)
        assert bounds[p.name].pipelined == 0
        assert bounds[p.name].threshold_layerwise == back.steps(p) * int(np.max(p.threshold))
    rates = rates_from_counts(back, sim.counts)          # spikes per neuron per own step: <= 1
    assert all(0 <= r <= 1 for r in rates.values())
    st = compute_stats(back, x[:50])
    for L in st.layers:
        if L.name in back.mixed_steps:
            assert 0 <= L.spike_rate <= 1
            assert L.updates_per_sample == back.steps(L.name) * back.node(L.name).size


def _random_mixed_net(rng, neuron):
    """A hand-built IR network with mixed steps and random parameters, 0 <= V0 < Theta."""
    T = int(rng.integers(3, 9))
    taus = [int(rng.integers(1, T + 1)) for _ in range(3)]
    taus[int(rng.integers(3))] = T
    sizes = [5, 7, 6, 4]
    inp = Input("x", (sizes[0],), scale=1 / 15, qmin=0, qmax=15)
    nodes, projs, prev = [inp], [], "x"
    for k, tau in enumerate(taus):
        th = rng.integers(20, 200, sizes[k + 1])
        nodes.append(Population(f"h{k}", (sizes[k + 1],), neuron=neuron, threshold=th,
                                v0=(rng.random(sizes[k + 1]) * th).astype(np.int64),
                                bias=rng.integers(-20, 20, sizes[k + 1]), levels=tau, timesteps=tau))
        projs.append(Dense(f"{prev}->h{k}", prev, f"h{k}", rng.integers(-40, 60, (sizes[k + 1], sizes[k])), 0,
                           (sizes[k],), (sizes[k + 1],)))
        prev = f"h{k}"
    projs.append(Dense("x->h2", "x", "h2", rng.integers(-5, 5, (sizes[3], sizes[0])), 0, (sizes[0],), (sizes[3],)))
    nodes.append(Readout("r", (3,), v0=rng.integers(-9, 9, 3), bias=rng.integers(-3, 3, 3)))
    projs.append(Dense("h2->r", "h2", "r", rng.integers(-9, 9, (3, sizes[3])), 1, (sizes[3],), (3,)))
    return Network(nodes, projs, T)


@pytest.mark.parametrize("neuron", [IFSoftReset(), DualThreshold(neg_divisor=7)], ids=["if", "dual"])
def test_theorem_holds_per_layer_on_random_networks(neuron):
    """docs/ir.md: with its own tau_p, a layerwise population's count is clip(floor((X + V0)/Theta), 0, tau_p),
    X = sum P(N_s) + tau_p*B: the simulator equals the integer ANN on random mixed networks (a skip
    connection included)."""
    rng = np.random.default_rng(0)
    for _ in range(25):
        net = _random_mixed_net(rng, neuron)
        x = rng.integers(0, 16, (64, 5))
        sim = simulate(net, x, Schedule.LAYERWISE, quantized=True, record=True)
        ann = run_integer_ann(net, x, quantized=True)
        for p in net.populations:
            np.testing.assert_array_equal(sim.counts[p.name], ann.levels[p.name], err_msg=p.name)
            assert sim.spikes[p.name].shape[0] == net.steps(p)
        np.testing.assert_array_equal(sim.readout["r"], ann.readout["r"])


# ---- a CNN with max pooling, mixed L ------------------------------------------------------------------
@pytest.fixture(scope="module")
def mixed_cnn(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from torch import nn

    sys.path.insert(0, str(REPO / "examples" / "models"))
    import resnet
    from qcfs import QuantClip, export_onnx

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0, self.a0, self.mp = nn.Conv2d(3, 4, 3, 1, 1), QuantClip(8, "round", 1.0), nn.MaxPool2d(2)
            self.c1, self.a1 = nn.Conv2d(4, 5, 3, 1, 1), QuantClip(3, "floor", 1.0)
            self.c2, self.a2 = nn.Conv2d(5, 6, 3, 1, 1), QuantClip(2, "ceil", 1.0)
            self.gap, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(6, 3)

        def forward(self, x):
            h = self.a1(self.c1(self.mp(self.a0(self.c0(x)))))
            return self.fc(torch.flatten(self.gap(self.a2(self.c2(h))), 1))

    torch.manual_seed(0)
    model = resnet.calibrate_(Net(), (3, 8, 8), seed=0)
    path = export_onnx(model, tmp_path_factory.mktemp("mixed") / "cnn.onnx", input_shape=(1, 3, 8, 8))
    return import_model(path)


@pytest.mark.parametrize("neuron", ["if", "dual-threshold"])
def test_mixed_cnn_with_maxpool_is_exact(mixed_cnn, neuron):
    imp = mixed_cnn
    assert sorted({o.levels for o in imp.graph.ops if isinstance(o, QuantAct)}) == [2, 3, 8]
    net = compile_imported(imp, CompileConfig(neuron=neuron))
    assert net.timesteps == 8
    steps = net.mixed_steps
    assert steps["conv1"] == 8 and steps["conv2"] == 3 and steps["conv3"] == 2
    pools = [p for p in net.populations if p.name.startswith("mpool")]
    assert pools and all(steps[p.name] == 8 and p.levels == 8 for p in pools)   # a max of counts 0..8
    x = _x(32, seed=1, shape=(3, 8, 8))
    rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, imp.raw)
    assert rep.exact and rep.neurons_mismatched == 0, rep.to_dict()
    sim = simulate(net, x, Schedule.LAYERWISE)
    c1 = sim.counts["conv1"]
    want = c1.reshape(c1.shape[:2] + (4, 2, 4, 2)).max(axis=(3, 5))
    np.testing.assert_array_equal(sim.counts["mpool1"], want)


def test_mixed_cnn_levels_match_the_float_graph(mixed_cnn, wide):
    net = compile_imported(mixed_cnn, CompileConfig(target=wide))
    agree = _float_level_agreement(mixed_cnn, net, _x(16, seed=2, shape=(3, 8, 8)))
    assert min(agree.values()) >= 0.999, agree


# ---- a Brevitas mixed-precision export ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_brevitas_mixed_bit_widths_verify_exact(tmp_path, fmt):
    model, torch = brevitas_cnn((4, 2))   # L = 15, then L = 3
    export_brevitas(model, torch, fmt, tmp_path / "m.onnx")
    imp = import_model(tmp_path / "m.onnx")
    net = compile_imported(imp)
    assert [L["levels"] for L in net.metadata["layers"][:-1]] == [15, 3]
    assert net.timesteps == 15 and [p.timesteps for p in net.populations] == [15, 3]
    xs = _x(100, seed=5, shape=(1, 8, 8))   # in the default input range 0..1
    # onnxruntime runs the QCDQ export (QONNX's Quant op is not an onnxruntime op)
    rep = verify_against_ann(net, xs, None, Schedule.LAYERWISE, imp.raw if fmt == "qcdq" else None)
    assert rep.exact and rep.neurons_mismatched == 0 and rep.neurons_compared > 0
    if fmt == "qcdq":
        assert rep.prediction_agreement["ann_int_vs_ann_float"] >= 0.85, rep.to_dict()
    # the integer levels are the float graph's (8-bit weights: up to a few per cent differ by rounding,
    # as for one L)
    agree = _float_level_agreement(imp, net, xs)
    assert min(agree.values()) >= 0.95, agree
