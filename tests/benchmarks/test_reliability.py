"""docs/reliability.md's tables are benchmarks/reliability.py's output: regenerated from the committed
JSON they must match the committed doc, and a reduced slice of the corpus run now must reproduce the
committed outcomes of its cases."""

import importlib.util
import json
import shutil

from snnc_testutil import REPO

SLICE = ["bundle/timesteps-4.9", "bundle/weight-changed-in-range", "bundle/valid-inspect", "data/y-out-of-range",
         "data/x-empty", "profile/state-bits-80", "energy/nan", "output/fifo", "output/umask-002",
         "onnx/truncated", "cli/samples-0-simulate"]


def _load():
    spec = importlib.util.spec_from_file_location("reliability_bench", REPO / "benchmarks" / "reliability.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_doc_is_generated_from_the_committed_results(tmp_path):
    mod = _load()
    doc = tmp_path / "reliability.md"
    shutil.copyfile(mod.DOC, doc)
    assert mod.write_doc(doc) == mod.DOC.read_text(), "docs/reliability.md is stale: run benchmarks/reliability.py --doc-only"
    after = mod.load("after")
    before = mod.load("before")
    assert after and before and {r["id"] for r in after} == {r["id"] for r in before}
    assert {r["id"] for r in after} == {c.id for c in mod.badinputs.ALL_CASES}, "the corpus changed: rerun the benchmark"
    text = doc.read_text()
    for r in after:
        assert f"`{r['id']}`" in text


def test_a_slice_of_the_corpus_reproduces_the_committed_outcomes():
    mod = _load()
    committed = {r["id"]: r for r in mod.load("after")}
    cases = [c for c in mod.badinputs.ALL_CASES if c.id in SLICE]
    assert len(cases) == len(SLICE)
    got = mod.run(cases, jobs=1)
    diff = {r["id"]: (committed[r["id"]]["outcome"], r["outcome"]) for r in got
            if r["outcome"] != committed[r["id"]]["outcome"]}
    assert not diff, f"(committed, now): {json.dumps(diff)}"
