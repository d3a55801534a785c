"""examples/mnist/train_zoo.py: a smoke run (one model, one epoch on 128 images, measured on 50) writes the
model, its sidecar, the index, the commands and the README, and the index grows one run at a time."""

import importlib.util
import json

import onnx

from snnc_testutil import REPO


def _mod():
    spec = importlib.util.spec_from_file_location("mnist_train_zoo", REPO / "examples" / "mnist" / "train_zoo.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mnist_train_zoo_smoke(tmp_path):
    tz = _mod()
    argv = ["--models", "round_L2", "--epochs", "1", "--limit", "128", "--test-limit", "50", "--threads", "1",
            "--out-dir", str(tmp_path)]
    assert tz.main(argv) == 0
    onnx.checker.check_model(onnx.load(str(tmp_path / "round_L2.onnx")), full_check=True)
    info = json.loads((tmp_path / "round_L2.json").read_text())
    assert info["levels"] == 2 and info["quantizer"] == "round" and info["snnc"]["exact"] is True
    index = json.loads((tmp_path / "index.json").read_text())
    assert [e["file"] for e in index] == ["round_L2.onnx"]
    assert "--models round_L2" in (tmp_path / "README.md").read_text()
    # a later run with another model keeps the first one's entry
    old = [{"file": "floor_L8.onnx", "quantizer": "floor", "levels": 8}]
    merged = tz.merge_index(old, index)
    assert {e["file"] for e in merged} == {"floor_L8.onnx", "round_L2.onnx"}


def test_model_names_are_checked():
    import pytest

    tz = _mod()
    assert tz.parse_model("round_L16") == ("round", 16)
    for bad in ("round16", "trunc_L4", "round_L0"):
        with pytest.raises(ValueError, match="expected <floor|round|ceil>_L<levels>"):
            tz.parse_model(bad)


def test_committed_zoo_is_what_its_sidecars_and_index_say():
    """examples/mnist/zoo: README.md is rendered from index.json, each index entry is its sidecar's, every model
    was verified exact (layerwise, T = L) on the 1000 test images, and each .onnx is there."""
    tz = _mod()
    zoo = REPO / "examples" / "mnist" / "zoo"
    index = json.loads((zoo / "index.json").read_text())
    commands = json.loads((zoo / "commands.json").read_text())
    assert (zoo / "README.md").read_text() == tz.render_readme(index, commands, zoo), \
        "examples/mnist/zoo/README.md differs from index.json: rerun examples/mnist/train_zoo.py"
    assert {f"round_L{L}.onnx" for L in (2, 4, 8, 16, 32)} <= {e["file"] for e in index}  # paper 000's Tables 7 / 8
    for e in index:
        stem = e["file"][: -len(".onnx")]
        assert (zoo / e["file"]).is_file()
        assert tz.entry_of(json.loads((zoo / f"{stem}.json").read_text()), stem) == e
        assert e["snnc_exact"] is True and e["snnc_neurons_mismatched"] == 0 and e["n_test"] == 1000
