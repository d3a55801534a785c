"""docs/vit_mnist.md is benchmarks/vit_mnist.py's output: regenerated from the committed JSON it must match
the committed doc, and the MNIST ViT compiled now at T = 2 (differential and rate coding) must predict the
committed classes on the first 100 test images and count the same operations there (the committed energy
ratio of those 100 images, recomputed from the reference simulator's integer counts, is equal, and so is the
graded units' own arithmetic); the differential row keeps its measured accuracy within 2 points of the float
model's. The Lava rows (benchmarks/vit_mnist.py --lava) are re-rendered and their message counts recomputed."""

import importlib.util
import json
import shutil

import numpy as np
import pytest

from snnc.ir import GradedFunctionUnit
from snnc_testutil import REPO


def _load():
    spec = importlib.util.spec_from_file_location("vit_mnist_bench", REPO / "benchmarks" / "vit_mnist.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _committed():
    return json.loads((REPO / "benchmarks" / "results" / "vit_mnist.json").read_text())


def _lava_committed():
    return json.loads((REPO / "benchmarks" / "results" / "vit_mnist_lava.json").read_text())


def test_the_doc_is_generated_from_the_committed_results(tmp_path):
    mod = _load()
    doc = tmp_path / "vit_mnist.md"
    shutil.copyfile(mod.DOC, doc)
    assert mod.write_doc(_committed(), doc, lava=_lava_committed()) == mod.DOC.read_text(), \
        "docs/vit_mnist.md is stale: run benchmarks/vit_mnist.py --doc-only"
    assert "## On Lava, message for message" in mod.DOC.read_text()


def test_the_lava_rows_cover_every_message_of_the_vit_compiled_now():
    """The committed Lava comparison (benchmarks/vit_mnist.py --lava) at T = 2 and 4: identical, with no
    mismatch, and what it counts as compared is every population spike and every graded-unit message of the
    MNIST ViT compiled now at that T for that many images (the Lava run itself takes minutes per image:
    tests/backends/lava/test_lava_vit.py runs a reduced ViT on Lava instead)."""
    mod = _load()
    rows = _lava_committed()["rows"]
    assert {r["T"] for r in rows} >= {2, 4}
    for r in rows:
        assert r["identical"] and r["mismatches"] == 0 and r["first_difference"] is None and not r["units_unchecked"]
        net = mod.vit_mnist_lava.compile_vit(mod.MNIST / r["model"], mod.config(r["T"], str(r["frac_bits"])))
        pops, units = mod.vit_mnist_lava.expected_messages(net, r["images"])
        assert (r["population_spikes_compared"], r["unit_messages_compared"]) == (pops, units)
        assert r["units_compared"] == r["graded_units"] == sum(isinstance(n, GradedFunctionUnit) for n in net.nodes)
        assert r["populations"] == len(net.populations)


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
    for k in ("unit_macs_per_sample", "unit_adds_per_sample", "unit_energy_ratio"):   # the units' arithmetic column
        assert now["energy"][k] == row["energy"][k], k
