"""docs/vit_mnist.md is benchmarks/vit_mnist.py's output: regenerated from the committed JSON it must match
the committed doc, and the MNIST ViT compiled now at T = 2 must predict the committed classes on the first
100 test images (and keep its measured accuracy within 2 points of the float model's)."""

import importlib.util
import json
import shutil

import numpy as np

from snnc_testutil import REPO


def _load():
    spec = importlib.util.spec_from_file_location("vit_mnist_bench", REPO / "benchmarks" / "vit_mnist.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _committed():
    return json.loads((REPO / "benchmarks" / "results" / "vit_mnist.json").read_text())


def test_the_doc_is_generated_from_the_committed_results(tmp_path):
    mod = _load()
    doc = tmp_path / "vit_mnist.md"
    shutil.copyfile(mod.DOC, doc)
    assert mod.write_doc(_committed(), doc) == mod.DOC.read_text(), \
        "docs/vit_mnist.md is stale: run benchmarks/vit_mnist.py --doc-only"


def test_t2_on_100_images_reproduces_the_committed_predictions():
    mod = _load()
    row = next(r for r in _committed()["models"]["dynamo"] if r["T"] == 2)
    assert abs(row["snn_accuracy"] - row["float_accuracy"]) <= 0.02
    d = np.load(mod.MNIST / "test.npz")
    now = mod.run(mod.MNIST / "vit_mnist_dynamo.onnx", 2, [str(row["frac_bits"])], d["x"][:100], d["y"][:100])
    assert now["frac_bits"] == row["frac_bits"]
    assert now["predictions_first_100"] == row["predictions_first_100"]
