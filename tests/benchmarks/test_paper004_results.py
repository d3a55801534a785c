"""benchmarks/paper004_results.py on the reduced grid (what CI runs): docs/results.md's paper 004
section is produced from `snnc eval --json`, with computed claims."""

import importlib.util
import json

from snnc_testutil import REPO


def _load():
    spec = importlib.util.spec_from_file_location("paper004_results", REPO / "benchmarks" / "paper004_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_grid_writes_the_section_from_eval_json(tmp_path):
    mod = _load()
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nkept\n\n<!-- paper004:begin -->\nold\n<!-- paper004:end -->\n\nalso kept\n")
    assert mod.main(["--quick", "--doc", str(doc), "--json-dir", str(tmp_path / "json"),
                     "--diff-state-bits", "48", "--frac-bits", "12"]) == 0
    text = doc.read_text()
    assert "kept" in text and "also kept" in text and "\nold\n" not in text
    assert text.count(mod.BEGIN) == 1 and text.count(mod.END) == 1
    for heading in ("Table 3 shape: rate vs differential coding", "Table 4 shape: threshold method",
                    "Table 7 shape: thresholds per sign n", "Paper 004's claims against our numbers"):
        assert heading in text
    assert "differential coding 48 bits" in text and "rate coding 24 bits" in text and "F = 12" in text
    rep = json.loads((tmp_path / "json" / "relu_cnn.json").read_text())
    assert rep["kind"] == "relu" and rep["samples"] == 40 and rep["grid"]["coding"] == ["rate", "differential"]
    assert len(rep["results"]) == 2 * 2 * 2 * 2  # coding x n x thresholds x T
    assert not any(r["error"] for r in rep["results"])
    # a table cell is the JSON's number
    r = mod._get(rep, 4, "differential", "iterate", 4)
    assert f"{r['energy_ratio']:.3f}" in text and f"{100 * r['accuracy']:.2f}" in text
    # claims are counted over the grid, not typed
    assert "costs less energy than rate coding (Tables 3, 7):" in text and "of 8 settings" in text
    assert (tmp_path / "img" / "paper004_relu_cnn.png").exists()


def test_committed_paper004_section_is_rendered_from_the_committed_json(tmp_path):
    import shutil

    mod = _load()
    doc = tmp_path / "results.md"
    shutil.copy(mod.DOC, doc)
    assert mod.main(["--from-json", "--doc", str(doc)]) == 0
    cut = lambda t: t[t.index(mod.BEGIN):t.index(mod.END)]  # noqa: E731
    assert cut(doc.read_text()) == cut(mod.DOC.read_text()), \
        "docs/results.md's paper004 section differs from its JSON: run benchmarks/paper004_results.py --from-json"


def test_a_slice_of_the_paper004_tables_reproduces_from_the_committed_model():
    """relu_cnn, n = 1 and 4 at T = 2, both codings and the three threshold methods, all samples: the eval the
    script runs gives the committed JSON's figures."""
    from snnc_testutil import assert_rows_reproduce

    mod = _load()
    committed = json.loads((mod.JSON_DIR / "relu_cnn.json").read_text())
    grid = {**mod.FULL, "timesteps": (2,), "n": (1, 4)}
    n = 0
    for coding in mod.CODINGS:
        fresh = mod.run_eval(mod.DIGITS / "relu_cnn.onnx", coding, grid, "loihi", None, 1.0)
        assert fresh["sha256"] == committed["sha256"] and fresh["samples"] == committed["samples"]
        n += assert_rows_reproduce(committed["results"], fresh["results"], ("n", "coding", "thresholds", "timesteps"),
                                   "paper004 relu_cnn")
    assert n == 2 * 2 * 3
