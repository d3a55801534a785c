"""Guards of docs/results.md's paper 004 c = 2 section (benchmarks/paper004_c2.py): the committed section is
what the committed JSON renders to, and a slice of the grid re-run now gives the committed JSON's figures."""

import json
import shutil

from snnc_testutil import assert_rows_reproduce, load_benchmark_script


def test_committed_c2_section_is_rendered_from_the_committed_json(tmp_path):
    mod = load_benchmark_script("paper004_c2")
    doc = tmp_path / "results.md"
    shutil.copy(mod.DOC, doc)
    assert mod.main(["--from-json", "--no-plots", "--doc", str(doc)]) == 0
    assert mod.SECTION.read(doc) == mod.SECTION.read(mod.DOC), \
        "docs/results.md's paper004-c2 section differs from its JSON: run benchmarks/paper004_c2.py --from-json"


def test_a_slice_of_the_c2_tables_reproduces_from_the_committed_model():
    """digits relu_cnn, n = 1 at T = 8 and n = 4 at T = 2, both codings and threshold methods, all samples."""
    mod = load_benchmark_script("paper004_c2")
    key = "digits/relu_cnn"
    committed = json.loads((mod.JSON_DIR / mod.json_name(key)).read_text())
    fresh = mod.eval_model(key, dict(models=(key,), t_by_n={1: (8,), 4: (2,)}, samples=None))
    for k in ("sha256", "samples", "ann_float_accuracy", "ann_macs", "threshold_scale", "energy"):
        assert fresh[k] == committed[k], k
    n = assert_rows_reproduce(committed["results"], fresh["results"], ("n", "coding", "thresholds", "timesteps"),
                              "paper004_c2 digits/relu_cnn")
    assert n == 8
