"""benchmarks/architecture_graph.py: docs/architecture.md's map is regenerated from the code's imports
and must equal the committed one (rerun the script when modules, docstrings or imports change)."""

from snnc_testutil import REPO, load_architecture_graph


def test_the_committed_map_is_the_code_s(tmp_path):
    ag = load_architecture_graph()
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    text = ag.render_text()
    assert ag.committed_text(doc) == text, "docs/architecture.md is stale: run benchmarks/architecture_graph.py"
    for pkg in ("snnc.ir", "snnc.compiler.lowering", "snnc.compiler.tools", "snnc.backends.reference"):
        assert f" {pkg}\n" in text
    assert ag.main(["--check"]) == 0


def test_the_script_rewrites_only_the_map_and_draws_the_picture(tmp_path):
    ag = load_architecture_graph()
    doc = tmp_path / "architecture.md"
    doc.write_text(f"# kept\n\n{ag.BEGIN}\nold map\n{ag.END}\n\nalso kept\n", encoding="utf-8")
    assert ag.main(["--check", "--doc", str(doc)]) == 1
    assert ag.main(["--doc", str(doc), "--png", str(tmp_path / "a.png")]) == 0
    text = doc.read_text(encoding="utf-8")
    assert text.startswith("# kept") and text.endswith("also kept\n") and "old map" not in text
    assert ag.committed_text(text) == ag.render_text()
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
