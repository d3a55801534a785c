"""benchmarks/zoo_bench.py (compile at scale, issue 16): the committed results have every row and a
targets block consistent with them, docs/compile_scale.md is generated from them, and a reduced slice
(ResNet-20 at 32x32) run now has the committed row's structure and placement (not its timings)."""

import importlib.util
import json
import shutil
import sys

from snnc_testutil import REPO


def _load():
    spec = importlib.util.spec_from_file_location("zoo_bench", REPO / "benchmarks" / "zoo_bench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_committed_results_have_every_row_and_their_targets():
    mod = _load()
    data = json.loads(mod.RESULTS.read_text())
    rows = {(r["model"], r["input"][-1]): r for r in data["results"]}
    assert set(rows) == {(m, s) for m in mod.MODELS for s in (32, 224)}
    for r in rows.values():
        assert r["status"] in ("ok", "out of memory", "killed", "error", "placement refused")
        if r["status"] == "ok":
            assert set(r["stage_seconds"]) == {"import", "passes", "calibrate", "lowering", "integerize", "bounds",
                                               "mapping", "bundle"}
            assert abs(sum(r["stage_seconds"].values()) - r["compile_seconds"]) < 1e-6
            if r["input"][-1] == 32:
                assert r["verify"]["exact"] is True
    assert data["targets"] == mod.targets_block(data["results"])
    assert len(data["targets"]) == len(mod.TARGETS)
    for t in data["targets"]:
        assert t["met"] == (t["measured"] is not None and t["measured"] < t["limit"])
    before = json.loads(mod.BEFORE.read_text())
    assert {(r["model"], r["input"][-1]) for r in before["results"]} == set(rows)


def test_the_doc_is_generated_from_the_committed_results(tmp_path):
    mod = _load()
    doc = tmp_path / "compile_scale.md"
    shutil.copyfile(mod.DOC, doc)
    assert mod.write_doc(doc, png=None) == mod.DOC.read_text(), \
        "docs/compile_scale.md is stale: run benchmarks/zoo_bench.py --doc-only"
    assert mod.PLOT.exists()


class _Box:
    def put(self, value):
        self.value = value


def test_a_reduced_slice_reproduces_the_committed_row(monkeypatch):
    mod = _load()
    monkeypatch.syspath_prepend(str(REPO / "examples" / "models"))
    box = _Box()
    mod.run_one("resnet20", 32, 1, None, box)
    got = box.value
    committed = {(r["model"], r["input"][-1]): r for r in json.loads(mod.RESULTS.read_text())["results"]}[("resnet20", 32)]
    assert got["status"] == "ok", got.get("error")
    assert set(got) == set(committed) - {"wall_seconds"}
    assert got["verify"]["exact"] is True and got["verify"]["neurons_mismatched"] == 0
    for key in ("placement", "populations", "projections", "neurons", "synapses", "residual_joins", "timesteps",
                "parameters", "target"):
        assert got[key] == committed[key], key
    assert list(got["stage_seconds"]) == list(committed["stage_seconds"])
