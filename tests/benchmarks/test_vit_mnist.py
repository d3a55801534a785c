"""docs/vit_mnist.md is benchmarks/vit_mnist.py's output: regenerated from the committed JSON it must match
the committed doc, and the MNIST ViT compiled now at T = 2 (differential and rate coding) must predict the
committed classes on the first 100 test images and count the same operations there (the committed energy
ratio of those 100 images, recomputed from the reference simulator's integer counts, is equal); the
differential row keeps its measured accuracy within 2 points of the float model's."""

import importlib.util
import json
import shutil

import numpy as np
import pytest

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


@pytest.mark.parametrize("coding", ["differential", "rate"])
def test_t2_on_100_images_reproduces_the_committed_predictions_and_operations(coding):
    mod = _load()
    row = next(r for r in _committed()["models"]["dynamo"] if r["T"] == 2 and r["coding"] == coding)
    if coding == "differential":
        assert abs(row["snn_accuracy"] - row["float_accuracy"]) <= 0.02
    d = np.load(mod.MNIST / "test.npz")
    frac = [str(row["frac_bits"] if row["frac_bits"] is not None else 8)]
    now = mod.run(mod.MNIST / "vit_mnist_dynamo.onnx", 2, frac, d["x"][:100], d["y"][:100], coding=coding)
    assert now["frac_bits"] == row["frac_bits"]
    assert now["predictions_first_100"] == row["predictions_first_100"]
    assert now["energy_ratio_first_100"] == row["energy_ratio_first_100"]
    assert now["energy"]["ann_macs"] == row["energy"]["ann_macs"]
