"""Tests for the digits model zoo (examples/digits/train_zoo.py, examples/digits/zoo/)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from snnc_testutil import REPO  # noqa: E402

DIGITS = REPO / "examples" / "digits"
ZOO = DIGITS / "zoo"
FIELDS = {"file", "quantizer", "levels", "test_accuracy", "onnxruntime_test_accuracy", "lam", "train_seconds"}


def _train_zoo_module():
    spec = importlib.util.spec_from_file_location("snnc_examples_train_zoo", DIGITS / "train_zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _check_entry(e: dict) -> None:
    assert FIELDS <= set(e), e
    assert e["file"] == f"{e['quantizer']}_L{e['levels']}.onnx"
    assert 0.0 <= e["test_accuracy"] <= 1.0
    assert e["onnxruntime_test_accuracy"] == e["test_accuracy"]
    assert len(e["lam"]) == 3 and all(v > 0 for v in e["lam"])
    assert e["train_seconds"] > 0


def test_train_zoo_smoke(tmp_path):
    tz = _train_zoo_module()
    assert tz.main(["--epochs", "1", "--quantizers", "floor", "--levels", "2", "--out-dir", str(tmp_path)]) == 0

    model = tmp_path / "floor_L2.onnx"
    onnx.checker.check_model(onnx.load(str(model)), full_check=True)
    assert (tmp_path / "floor_L2.json").is_file()
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index) == 1
    _check_entry(index[0])
    assert (index[0]["quantizer"], index[0]["levels"]) == ("floor", 2)
    assert "overrides" not in index[0]

    # the test split is written once and has the shipped arrays
    with np.load(tmp_path / "test.npz") as a, np.load(DIGITS / "test.npz") as b:
        for k in ("x", "y"):
            assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k])
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "README.md", "commands.json", "floor_L2.json", "floor_L2.onnx", "index.json", "test.npz"
    ]  # fmt: skip
    readme = (tmp_path / "README.md").read_text()
    assert "train_zoo.py --epochs 1 --quantizers floor --levels 2" in readme
    assert f"{index[0]['onnxruntime_test_accuracy']:.4f}" in readme


def test_check_split_rejects_a_different_split():
    tz = _train_zoo_module()
    with np.load(DIGITS / "test.npz") as d:
        x, y = d["x"], d["y"]
    tz.check_split((x, y))  # identical: no error
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 10
    with pytest.raises(RuntimeError, match="differs from the shipped split"):
        tz.check_split((x, y2))
    with pytest.raises(RuntimeError, match="differs from the shipped split"):
        tz.check_split((x.astype(np.float64), y))  # same values, other dtype


def test_shipped_zoo_index():
    index = json.loads((ZOO / "index.json").read_text())
    assert len(index) == 13
    assert {(e["quantizer"], e["levels"]) for e in index} == {
        (q, L) for q in ("floor", "round", "ceil") for L in (2, 4, 8)
    } | {(q, L) for q in ("floor", "round") for L in (16, 32)}
    for e in index:
        _check_entry(e)
        assert (ZOO / e["file"]).is_file(), e["file"]
        assert (ZOO / e["file"]).with_suffix(".json").is_file()
        assert e["test_accuracy"] >= 0.93, e
    assert (ZOO / "README.md").is_file() and (ZOO / "test.npz").is_file()


def test_shipped_zoo_accuracy_onnxruntime():
    with np.load(ZOO / "test.npz") as d:
        x, y = d["x"], d["y"]
    for e in json.loads((ZOO / "index.json").read_text()):
        sess = ort.InferenceSession(str(ZOO / e["file"]), providers=["CPUExecutionProvider"])
        logits = sess.run(["logits"], {"x": x})[0]
        acc = round(float((logits.argmax(1) == y).mean()), 4)
        assert acc == e["onnxruntime_test_accuracy"], (e["file"], acc)


def test_merge_index_keeps_models_not_retrained_and_replaces_retrained_ones():
    tz = _train_zoo_module()
    old = [{"file": "round_L2.onnx", "quantizer": "round", "levels": 2, "v": 1},
           {"file": "floor_L2.onnx", "quantizer": "floor", "levels": 2, "v": 1}]
    new = [{"file": "round_L2.onnx", "quantizer": "round", "levels": 2, "v": 2},
           {"file": "floor_L16.onnx", "quantizer": "floor", "levels": 16, "v": 2}]
    merged = tz.merge_index(old, new)
    assert [(e["file"], e["v"]) for e in merged] == [("floor_L2.onnx", 1), ("floor_L16.onnx", 2), ("round_L2.onnx", 2)]


def test_record_command_replaces_a_repeated_command(tmp_path):
    tz = _train_zoo_module()
    tz.record_command(tmp_path, ["--levels", "2"], 3.0)
    tz.record_command(tmp_path, ["--levels", "4"], 5.0)
    recs = tz.record_command(tmp_path, ["--levels", "2"], 7.0)
    assert [(r["command"].split("train_zoo.py")[1], r["seconds"]) for r in recs] == [(" --levels 4", 5), (" --levels 2", 7)]
    assert json.loads((tmp_path / "commands.json").read_text()) == recs
