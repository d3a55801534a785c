"""benchmarks/methods_results.py on the reduced grid (what CI runs): docs/results.md's methods
section is produced from `snnc eval --json`, with computed claims."""

import importlib.util
import json

from snnc_testutil import REPO


def _load():
    spec = importlib.util.spec_from_file_location("methods_results", REPO / "benchmarks" / "methods_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quick_grid_writes_the_section_from_eval_json(tmp_path):
    mod = _load()
    doc = tmp_path / "results.md"
    doc.write_text("# Results\n\nkept\n\n<!-- methods:begin -->\nold\n<!-- methods:end -->\n\nalso kept\n")
    assert mod.main(["--quick", "--doc", str(doc), "--json-dir", str(tmp_path / "json")]) == 0
    text = doc.read_text()
    assert "kept" in text and "also kept" in text and "\nold\n" not in text
    assert text.count(mod.BEGIN) == 1 and text.count(mod.END) == 1
    for heading in ("Exactness at T = L", "Paper 003, Table 4 shape", "Paper 000, Tables 3 / 7 / 8 shape",
                    "The papers' claims against our numbers"):
        assert heading in text
    # the theorem's claim is checked, not asserted: every matched V0 exact, every other not
    assert "Theorem 3 (exact at T = L with the matched V0, layerwise): agrees.** In 9 of 9" in text
    reps = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "json").glob("*.json")}
    assert sorted(reps) == ["ceil_L2", "floor_L2", "round_L2"]
    r = reps["round_L2"]
    assert r["grid"]["timesteps"] == [1, 2, 4] and r["samples"] == 60 and len(r["results"]) == 36
    # a table cell is the JSON's number
    cell = mod._find(r, neuron="if", v0="half", schedule="layerwise", timesteps=2)
    assert f"{100 * cell['accuracy']:.2f}\\*" in text
    assert (tmp_path / "img" / "methods_round_L2.png").exists()


def test_committed_methods_section_is_rendered_from_the_committed_json(tmp_path):
    import shutil

    mod = _load()
    doc = tmp_path / "results.md"
    shutil.copy(mod.DOC, doc)
    assert mod.main(["--from-json", "--doc", str(doc)]) == 0
    begin, end = mod.BEGIN, mod.END
    cut = lambda t: t[t.index(begin):t.index(end)]  # noqa: E731
    assert cut(doc.read_text()) == cut(mod.DOC.read_text()), \
        "docs/results.md's methods section differs from its JSON: run benchmarks/methods_results.py --from-json"


def test_a_slice_of_the_methods_tables_reproduces_from_the_committed_models():
    """round L = 8 and floor L = 16 at T = 1, 2 (every neuron, V0, schedule; all 360 samples): the eval the
    script runs must give the committed JSON's figures, so a change that moves them fails here."""
    from snnc_testutil import assert_rows_reproduce

    mod = _load()
    key = ("neuron", "v0", "schedule", "timesteps")
    for q, L in (("round", 8), ("floor", 16)):
        committed = json.loads((mod.JSON_DIR / f"{q}_L{L}.json").read_text())
        fresh = mod.run_eval(mod.ZOO / f"{q}_L{L}.onnx", mod.DATA, (1, 2), None)
        assert fresh["samples"] == committed["samples"] == 360
        for k in ("sha256", "ann_float_accuracy", "ann_int_accuracy"):
            assert fresh[k] == committed[k], (q, L, k)
        assert assert_rows_reproduce(committed["results"], fresh["results"], key, f"methods {q}_L{L}") == 24
