"""The plain-ReLU digits example (training-free conversion, paper 004)."""

import importlib.util
import json

import numpy as np
import onnxruntime as ort

from snnc_testutil import DIGITS_DATA, REPO

HERE = REPO / "examples" / "digits"


def _load():
    spec = importlib.util.spec_from_file_location("train_relu", HERE / "train_relu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_training_run_writes_model_calibration_and_info(tmp_path):
    assert _load().main(["--epochs", "1", "--calib", "32", "--out-dir", str(tmp_path)]) == 0
    info = json.loads((tmp_path / "relu_cnn.json").read_text())
    assert info["n_calib"] == 32 and 0 <= info["test_accuracy"] <= 1
    assert np.load(tmp_path / "calib.npz")["x"].shape == (32, 1, 8, 8)


def test_shipped_relu_model_matches_its_recorded_accuracy():
    info = json.loads((HERE / "relu_cnn.json").read_text())
    z = np.load(DIGITS_DATA)
    logits = ort.InferenceSession(str(HERE / "relu_cnn.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": z["x"]})[0]
    assert round(float(np.mean(logits.argmax(1) == z["y"])), 4) == info["onnxruntime_test_accuracy"] >= 0.97
    calib = np.load(HERE / "calib.npz")["x"]
    assert calib.shape == (256, 1, 8, 8) and not any(np.array_equal(c, t) for c in calib[:20] for t in z["x"])
