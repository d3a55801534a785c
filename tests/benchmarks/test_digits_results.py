"""Guard of docs/results.md's digits section: benchmarks/digits_results.py regenerates it in full (seconds)
from the committed model and test split; the test fails when the committed section no longer matches."""

import importlib.util
import shutil

from snnc_testutil import REPO


def _load():
    spec = importlib.util.spec_from_file_location("digits_results", REPO / "benchmarks" / "digits_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_digits_section_is_what_the_code_gives(tmp_path):
    mod = _load()
    doc = tmp_path / "results.md"
    shutil.copy(mod.DOC, doc)
    assert mod.main(["--doc", str(doc), "--json", str(tmp_path / "digits.json")]) == 0
    committed, now = mod.SECTION.read(mod.DOC), mod.SECTION.read(doc)
    assert committed is not None, "docs/results.md has no digits section"
    assert now == committed, "docs/results.md's digits section is stale: run benchmarks/digits_results.py"
