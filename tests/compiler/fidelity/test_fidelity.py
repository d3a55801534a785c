"""The three-way comparison (user's model, snnc's integer network, the SNN) and the verdict rule, on models
nobody here wrote: onnxruntime's quantize_static, Brevitas QONNX, a QCFS zoo model, a max pool the passes
move; and on networks deliberately broken so that a check must fail."""

import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from snnc.backends.reference import run_integer_ann, simulate
from snnc.compiler.api import compile_model
from snnc.compiler.config import CompileConfig
from snnc.compiler.fidelity import (DEFAULT_MIN_FIDELITY, Faithfulness, IntegerRun, MinFidelity, WeightKind,
                                    activation_probes, fidelity_verdict, layer_bits, measure_fidelity,
                                    probe_tensor_sizes, read_levels, reference_executor, weight_kind)
from snnc.compiler.fidelity.levels import Probe
from snnc.compiler.tools.verify import network_levels, reference_network
from snnc.ir import Network, apply_projection, replace

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import external_models as corpus  # noqa: E402

DIGITS = np.load(REPO / "examples" / "digits" / "test.npz")


def _measure(net, raw, x, y, snn=True):
    ex = reference_executor(raw)
    probes = activation_probes(net, onnx.load_from_string(raw), probe_tensor_sizes(ex, x[:1], net,
                                                                                    onnx.load_from_string(raw)))
    L = network_levels(net)
    ref = reference_network(net)

    def irun(xb):
        r = run_integer_ann(ref, xb, timesteps=L)
        return IntegerRun(r.levels, r.predictions())

    res = measure_fidelity(ref, ex, probes, x, y, irun, L, apply_projection,
                           (lambda xb: simulate(net, xb, "layerwise").predictions()) if snn else None)
    return res, probes


def test_read_levels_checks_integers():
    p = Probe("h", "a", "t", 0.5, 4, (3,))
    got = read_levels(p, np.array([[0.0, 1.0, 2.0], [0.5, 1.5, 2.0]], np.float32))
    np.testing.assert_array_equal(got.levels, [[0, 2, 4], [1, 3, 4]])
    bad = read_levels(p, np.array([[0.0, 1.2, 2.0]], np.float32))
    assert bad.levels is None and bad.not_integer == 1 and abs(bad.example - 2.4) < 1e-6
    assert read_levels(p, np.array([[0.0, 1.0, 2.5]], np.float32)).not_integer == 1  # 5 > L = 4


@pytest.fixture(scope="module")
def ort_mlp(tmp_path_factory):
    pytest.importorskip("onnxruntime.quantization")
    path, _ = corpus.build("ort_digits_mlp_u8s8_pc", tmp_path_factory.mktemp("ort"))
    return path


def test_onnxruntime_qdq_mlp_is_faithful_within_precision_at_the_t_that_keeps_its_bits(ort_mlp):
    net, raw = compile_model(ort_mlp, CompileConfig(timesteps=32))
    x, y = DIGITS["x"][:120], DIGITS["y"][:120]
    res, probes = _measure(net, raw, x, y)
    assert not probes.unmapped and len(probes.probes) == 3  # the input relay, fc1, fc2
    assert res.levels_compared == 120 * (64 + 128 + 64)
    assert res.local_unexplained == 0 and 0 < res.levels_mismatched < 0.01 * res.levels_compared
    assert res.prediction_agreement["user_vs_int"] >= 0.99 and res.accuracy["user"] is not None
    model = onnx.load_from_string(raw)
    assert weight_kind(model) is WeightKind.INTEGER
    bits = layer_bits(net, model)
    assert {b.layer: (b.kept, b.needed) for b in bits} == {"fc1": (8, 8), "fc2": (8, 8), "readout": (8, 8)}
    v = fidelity_verdict(res, WeightKind.INTEGER, None, layer_bits=bits)
    assert v.faithful is Faithfulness.WITHIN_PRECISION and v.ok and v.exact is None
    assert "holds its scale ratio to" in v.message() and "EXACT" not in v.headline


def test_a_layer_that_computes_something_else_is_unfaithful_and_named(ort_mlp):
    net, raw = compile_model(ort_mlp, CompileConfig(timesteps=32))
    fc2 = net.node("fc2")
    broken = replace(fc2, threshold=np.asarray(fc2.threshold) + 37)  # not a rounding: a different scale
    net = Network([broken if n.name == "fc2" else n for n in net.nodes], net.projections, net.timesteps, net.metadata)
    res, _ = _measure(net, raw, DIGITS["x"][:60], DIGITS["y"][:60], snn=False)
    bad = {L.layer: L.local_unexplained for L in res.layers}
    assert bad["fc2"] > 0 and bad["fc1"] == 0
    v = fidelity_verdict(res, WeightKind.INTEGER, True)
    assert v.faithful is Faithfulness.UNFAITHFUL and not v.ok and v.exit_code == 1
    assert "layer 'fc2'" in v.message() and "beyond snnc's rounding" in v.message()


def test_starved_weights_are_named_with_the_bits_they_are_short(ort_mlp):
    net, raw = compile_model(ort_mlp, CompileConfig(timesteps=128))  # passes the floor, loses bits
    bits = {b.layer: b for b in layer_bits(net, onnx.load_from_string(raw))}
    assert bits["fc2"].short >= 1
    res, _ = _measure(net, raw, DIGITS["x"][:40], DIGITS["y"][:40], snn=False)
    v = fidelity_verdict(res, WeightKind.INTEGER, None, layer_bits=list(bits.values()))
    assert v.faithful is Faithfulness.UNFAITHFUL
    assert f"layer 'fc2' keeps {bits['fc2'].kept} of the model's 8 weight bits" in v.message()


def test_brevitas_binary_weight_qonnx_model_is_exact_and_faithful():
    path = REPO / "examples" / "external" / "brevitas_bnn_qonnx.onnx"
    net, raw = compile_model(path)
    res, probes = _measure(net, raw, DIGITS["x"][:64], DIGITS["y"][:64])
    assert not probes.unmapped and res.levels_compared > 0
    assert res.levels_mismatched == 0 and res.prediction_agreement["int_vs_snn"] == 1.0
    v = fidelity_verdict(res, weight_kind(onnx.load_from_string(raw)), True,
                         layer_bits=layer_bits(net, onnx.load_from_string(raw)))
    assert v.headline == "EXACT" and v.ok


def test_qcfs_zoo_model_meets_the_default_min_fidelity():
    path = REPO / "examples" / "digits" / "zoo" / "round_L4.onnx"
    net, raw = compile_model(path)
    res, probes = _measure(net, raw, DIGITS["x"], DIGITS["y"])
    assert not probes.unmapped
    assert weight_kind(onnx.load_from_string(raw)) is WeightKind.FLOAT
    v = fidelity_verdict(res, WeightKind.FLOAT, True)
    assert v.faithful is Faithfulness.FAITHFUL and v.ok, v.message()
    strict = fidelity_verdict(res, WeightKind.FLOAT, True, MinFidelity(1.0, 1.0))
    assert res.levels_mismatched == 0 or strict.faithful is Faithfulness.UNFAITHFUL


def test_max_pool_moved_after_the_activation_is_compared_at_the_pooled_population(tmp_path):
    torch = pytest.importorskip("torch")
    sys.path.insert(0, str(REPO / "examples" / "models"))
    from qcfs import QuantClip, export_onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.MaxPool2d(2), QuantClip(4, "round", 1.5),
                                torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    path = export_onnx(model, tmp_path / "mp.onnx", input_shape=(1, 1, 8, 8))
    net, raw = compile_model(path)
    res, probes = _measure(net, raw, DIGITS["x"][:32], DIGITS["y"][:32])
    assert [p.via for p in probes.probes] == ["maxpool"]
    assert any("max-pools before this activation" in u.reason for u in probes.unmapped)
    assert res.levels_compared == 32 * 64 and res.levels_mismatched <= 0.01 * res.levels_compared


def test_verdict_rules():
    from snnc.compiler.fidelity.compare import FidelityResult, LayerFidelity

    def result(mism=0, within=0, unexpl=0, agree=1.0, status="compared"):
        L = LayerFidelity("h", "t", 4, status=status, reason="r" if status != "compared" else "", compared=1000,
                          mismatched=mism, local_compared=1000, local_mismatched=within + unexpl,
                          local_within_precision=within, threshold_min=300)
        return FidelityResult(10, [L], {"user_vs_int": agree, "int_vs_snn": 1.0, "user_vs_snn": agree},
                              {"user": None, "int": None, "snn": None})

    assert fidelity_verdict(result(), WeightKind.INTEGER, True).headline == "EXACT"
    assert fidelity_verdict(result(), WeightKind.INTEGER, False).exit_code == 1
    assert fidelity_verdict(None, WeightKind.INTEGER, True).faithful is Faithfulness.UNCHECKED
    assert fidelity_verdict(result(status="unmapped"), WeightKind.INTEGER, True).faithful is Faithfulness.UNCHECKED
    w = fidelity_verdict(result(mism=3, within=3), WeightKind.INTEGER, True)
    assert w.faithful is Faithfulness.WITHIN_PRECISION and w.ok and "9 bits" in w.message()
    assert not fidelity_verdict(result(mism=3, within=3, agree=0.9), WeightKind.INTEGER, True).ok
    assert fidelity_verdict(result(mism=3, unexpl=1), WeightKind.INTEGER, True).faithful is Faithfulness.UNFAITHFUL
    assert fidelity_verdict(result(mism=5), WeightKind.FLOAT, True).faithful is Faithfulness.FAITHFUL
    low = fidelity_verdict(result(mism=5, agree=DEFAULT_MIN_FIDELITY.prediction_agreement - 0.01), WeightKind.FLOAT,
                           True)
    assert low.faithful is Faithfulness.UNFAITHFUL and "prediction agreement" in low.message()
    assert MinFidelity.parse("0.9,0.8") == MinFidelity(0.9, 0.8) and MinFidelity.parse("0.95").level_agreement == 0.95
    with pytest.raises(ValueError, match="--min-fidelity"):
        MinFidelity.parse("a,b,c")
    with pytest.raises(ValueError):
        MinFidelity(1.5, 0.5)
