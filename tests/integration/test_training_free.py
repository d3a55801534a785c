"""Training-free conversion of a plain float ReLU network (paper 004): calibrated thresholds,
multi-threshold neurons, rate and differential coding. Runs the compiled networks."""

import numpy as np
import pytest

from snnc.ir import Schedule

from snnc.backends.reference import simulate
from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.config import CompileConfig
from snnc.compiler.errors import ConversionError, DataFileError, StateOverflowError
from snnc.ir import DifferentialCoding, MultiThreshold, RateCoding

from snnc_testutil import DIGITS_DATA, REPO

RELU = REPO / "examples" / "digits" / "relu_cnn.onnx"
CALIB = REPO / "examples" / "digits" / "calib.npz"


@pytest.fixture(scope="module")
def imported():
    return import_model(RELU)


@pytest.fixture(scope="module")
def data():
    z = np.load(DIGITS_DATA)
    return z["x"], z["y"]


def _acc(net, x, y):
    return float(np.mean(simulate(net, x, Schedule.PIPELINED).predictions() == y))


def test_float_relu_digits_net_within_one_point_at_t_le_8(imported, data):
    """Issue 8, done-when 1: within 1 point of the ANN's accuracy at some T <= 8 with
    multi-threshold differential neurons (and how rate coding compares)."""
    import onnxruntime as ort

    x, y = data
    float_acc = float(np.mean(ort.InferenceSession(str(RELU)).run(None, {"x": x})[0].argmax(1) == y))
    best = {}
    for coding in ("rate", "differential"):
        for T in (2, 4, 8):
            cfg = CompileConfig(neuron="multi-threshold", mt_n=4, coding=coding, timesteps=T,
                                calibration_data=str(CALIB), schedule="pipelined")
            net = compile_imported(imported, cfg, runner=reference_runner)
            assert all(isinstance(p.neuron, MultiThreshold) and p.neuron.n == 4 for p in net.populations)
            assert isinstance(net.coding, DifferentialCoding if coding == "differential" else RateCoding)
            best[coding] = max(best.get(coding, 0.0), _acc(net, x, y))
    assert best["differential"] >= float_acc - 0.01, (best, float_acc)
    assert best["rate"] >= float_acc - 0.02, (best, float_acc)


def test_threshold_methods_and_scale_change_the_thresholds(imported):
    th = {}
    for method in ("max", "percentile:99.9", "iterate"):
        cfg = CompileConfig(neuron="multi-threshold", timesteps=4, calibration_data=str(CALIB), thresholds=method)
        net = compile_imported(imported, cfg, runner=reference_runner)
        th[method] = np.concatenate([np.ravel(p.real_threshold) for p in net.populations])
    assert not np.allclose(th["max"], th["iterate"]) and np.all(th["max"] >= th["percentile:99.9"])
    scaled = compile_imported(imported, CompileConfig(neuron="multi-threshold", timesteps=4, calibration_data=str(CALIB),
                                                      threshold_scale=2.0), runner=reference_runner)
    assert np.allclose(np.concatenate([np.ravel(p.real_threshold) for p in scaled.populations]), 2 * th["iterate"])


def test_training_free_errors(imported, tmp_path):
    with pytest.raises(DataFileError, match="needs calibration data"):
        compile_imported(imported, CompileConfig(neuron="multi-threshold", timesteps=4), runner=reference_runner)
    with pytest.raises(ConversionError, match="give --timesteps"):
        compile_imported(imported, CompileConfig(neuron="multi-threshold", calibration_data=str(CALIB)), runner=reference_runner)
    np.savez(tmp_path / "bad.npz", x=np.zeros((4, 1, 7, 7), np.float32))
    with pytest.raises(DataFileError, match="expects \\(N, 1, 8, 8\\)"):
        compile_imported(imported, CompileConfig(neuron="multi-threshold", timesteps=4, calibration_data=str(tmp_path / "bad.npz")), runner=reference_runner)
    with pytest.raises(ConversionError, match="--calib FILE.npz --neuron multi-threshold:N"):
        compile_imported(imported, CompileConfig(), runner=reference_runner)
    with pytest.raises(ValueError, match="differential coding needs --neuron multi-threshold"):
        CompileConfig(coding="differential")


@pytest.mark.parametrize("n,T", [(4, 16), (8, 8)])
def test_frac_bits_auto_does_not_starve_a_wide_layer(imported, data, n, T):
    """frac_bits = auto on the 24-bit target: the F it picks must leave the 1024-input layer usable
    weights (a criterion on the largest mantissa alone picked F = 14 / 10 here: 17 % / 12 %)."""
    x, y = data
    net = compile_imported(imported, CompileConfig(neuron="multi-threshold", mt_n=n, coding="differential",
                                                   timesteps=T, calibration_data=str(CALIB), schedule="pipelined"), runner=reference_runner)
    acc = float(np.mean(simulate(net, x, "pipelined", state_bits=24).predictions() == y))
    assert acc >= 0.96, (net.coding.frac_bits, acc)


def test_calibration_statistics_are_collected_once_per_file(tmp_path, monkeypatch):
    import shutil

    import snnc.compiler.calibrate as cal   # the calibrate stage calls collect_relu_stats

    calls = []
    real = cal.collect_relu_stats
    monkeypatch.setattr(cal, "collect_relu_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    imp = import_model(RELU)
    calib = tmp_path / "calib.npz"
    shutil.copy(CALIB, calib)
    for T in (2, 4):
        for method in ("iterate", "max"):
            compile_imported(imp, CompileConfig(neuron="multi-threshold", timesteps=T, calibration_data=str(calib),
                                                thresholds=method), runner=reference_runner)
    assert len(calls) == 1
    z = dict(np.load(calib))
    np.savez(calib, x=z["x"][:64])  # another file content: collected again
    compile_imported(imp, CompileConfig(neuron="multi-threshold", timesteps=2, calibration_data=str(calib)), runner=reference_runner)
    assert len(calls) == 2


def test_frac_bits_auto_is_chosen_by_the_calibration_error():
    """With calibration data, auto picks the F whose SNN outputs are closest to the float ANN's on the
    calibration inputs (the rounding estimate alone picked F = 3 on the 7-layer ResNet at n = 8,
    T = 16: 51.5 %; the worst-case bound squeezes its deep layers' weights)."""
    from snnc.compiler.integerize import choose_frac_bits

    calls = []

    def lower_at(coding, min_weight_bits=None):
        calls.append(coding.frac_bits)
        if coding.frac_bits > 9:
            raise StateOverflowError("does not fit")
        return coding.frac_bits  # stands for the network

    errs = {9: 0.5, 8: 0.2, 7: 0.2, 6: 0.3}
    coding, res = choose_frac_bits(lower_at, 4, error=lambda F: errs.get(F, 1.0), network_of=lambda r: r)
    assert coding.frac_bits == 8 and res == 8  # the smallest error; ties go to the larger F
    assert 0 in calls and 16 in calls          # every candidate is tried (no early stop on an estimate)
    imp = import_model(REPO / "examples" / "digits" / "relu_resnet.onnx")
    z = np.load(REPO / "examples" / "digits" / "test.npz")
    net = compile_imported(imp, CompileConfig(neuron="multi-threshold", mt_n=8, coding="differential", timesteps=16,
                                              calibration_data=str(CALIB), schedule="pipelined"), runner=reference_runner)
    acc = float(np.mean(simulate(net, z["x"][:200], "pipelined", state_bits=24).predictions() == z["y"][:200]))
    assert acc >= 0.96, (net.coding.frac_bits, acc)
