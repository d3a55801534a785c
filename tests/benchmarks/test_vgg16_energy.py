"""Guards of docs/results.md's VGG-16 energy section (benchmarks/vgg16_energy.py): the committed section is
what the committed JSON renders to, and the weight-independent figures (MAC hand counts, the operations
snnc leaves out) recompute to the JSON's. The SNN figures need a 136 MB export and a VGG-16 compile: the
script's full run, not a test."""

import json
import shutil

from snnc_testutil import load_benchmark_script


def test_committed_vgg16_section_is_rendered_from_the_committed_json(tmp_path):
    mod = load_benchmark_script("vgg16_energy")
    doc = tmp_path / "results.md"
    shutil.copy(mod.ROOT / "docs" / "results.md", doc)
    out = mod.ROOT / "benchmarks" / "results" / "vgg16_energy.json"
    assert mod.main(["--docs-only", "--docs", str(doc), "--out", str(out)]) == 0
    cut = lambda t: t[t.index(mod.BEGIN):t.index(mod.END)]  # noqa: E731
    assert cut(doc.read_text()) == cut((mod.ROOT / "docs" / "results.md").read_text()), \
        "docs/results.md's vgg16-energy section differs from its JSON: run benchmarks/vgg16_energy.py --docs-only"


def test_weight_independent_vgg16_figures_recompute():
    mod = load_benchmark_script("vgg16_energy")
    r = json.loads((mod.ROOT / "benchmarks" / "results" / "vgg16_energy.json").read_text())
    m = r["model"]
    classes, size, hidden = m["classifier"][-1], m["input_size"], tuple(m["classifier"][1:-1])
    hand = mod.vgg.vgg16_conv_macs(size, classes, hidden)
    assert r["hand_count"] == {k: hand[k] for k in ("conv", "linear", "total")}
    assert r["hand_count_512_classifier"] == mod.vgg.vgg16_conv_macs(size, classes, (512, 512))["total"]
    assert r["uncounted_ops"] == mod.uncounted_ops(size, hidden, classes)
    for s in r["stats"].values():
        assert s["ann"]["macs"] == r["hand_count"]["total"]
