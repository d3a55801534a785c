"""The plain-ReLU digits ResNet (training-free conversion, paper 004): residual joins with identity
and projection shortcuts, average pooling."""

import importlib.util
import json

import numpy as np
import onnxruntime as ort

from snnc_testutil import DIGITS_DATA, REPO

HERE = REPO / "examples" / "digits"


def _load():
    spec = importlib.util.spec_from_file_location("train_relu_resnet", HERE / "train_relu_resnet.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_training_run_is_deterministic(tmp_path):
    mod = _load()
    for d in ("a", "b"):
        assert mod.main(["--epochs", "1", "--no-check", "--out-dir", str(tmp_path / d)]) == 0
    assert (tmp_path / "a" / "relu_resnet.onnx").read_bytes() == (tmp_path / "b" / "relu_resnet.onnx").read_bytes()
    info = json.loads((tmp_path / "a" / "relu_resnet.json").read_text())
    assert info["blocks"] == {"identity": 2, "projection": 1} and 0 <= info["test_accuracy"] <= 1


def test_shipped_model_matches_its_recorded_accuracy_and_converts_training_free():
    info = json.loads((HERE / "relu_resnet.json").read_text())
    z = np.load(DIGITS_DATA)
    logits = ort.InferenceSession(str(HERE / "relu_resnet.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": z["x"]})[0]
    assert round(float(np.mean(logits.argmax(1) == z["y"])), 4) == info["onnxruntime_test_accuracy"] >= 0.97
    import onnx

    ops = {n.op_type for n in onnx.load(str(HERE / "relu_resnet.onnx")).graph.node}
    assert "Add" in ops and "Relu" in ops and "MaxPool" not in ops
    # the training-free conversion (residual joins included) keeps the accuracy
    from snnc.backends.reference import simulate
    from snnc.compiler.api import compile_imported, import_model
    from snnc.compiler.tools.runner import reference_runner
    from snnc.compiler.config import CompileConfig

    net = compile_imported(import_model(HERE / "relu_resnet.onnx"), CompileConfig(
        neuron="multi-threshold", mt_n=4, timesteps=4, calibration_data=str(HERE / "calib.npz"), schedule="pipelined"), runner=reference_runner)
    acc = float(np.mean(simulate(net, z["x"][:120], "pipelined").predictions() == z["y"][:120]))
    assert acc >= 0.95, acc
