"""docs/transformer_units.md is benchmarks/transformer_units.py's output: regenerated from the committed
JSON it must match the committed doc, and the G = 8 rows measured now must reproduce the committed ones."""

import importlib.util
import json
import shutil

import numpy as np

from snnc_testutil import REPO


def _load():
    spec = importlib.util.spec_from_file_location("transformer_units_bench", REPO / "benchmarks" / "transformer_units.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_doc_is_generated_from_the_committed_results(tmp_path):
    mod = _load()
    doc = tmp_path / "transformer_units.md"
    shutil.copyfile(mod.DOC, doc)
    data = json.loads(mod.RESULTS.read_text())
    assert mod.write_doc(data, doc) == mod.DOC.read_text(), \
        "docs/transformer_units.md is stale: run benchmarks/transformer_units.py --doc-only"


def test_the_g8_rows_measured_now_match_the_committed_ones():
    mod = _load()
    committed = [r for r in json.loads(mod.RESULTS.read_text())["rows"] if r["G"] == 8]
    now = mod.measure(gs=(8,))["rows"]
    assert [r["unit"] for r in now] == [r["unit"] for r in committed]
    for a, b in zip(now, committed):
        assert a.keys() == b.keys(), a["unit"]
        for k in a:
            if isinstance(a[k], float):   # float64 sums: equal up to the last bits of another BLAS
                assert np.isclose(a[k], b[k], rtol=1e-9, atol=0), (a["unit"], k, a[k], b[k])
            else:
                assert a[k] == b[k], (a["unit"], k)
    assert all(r["max_abs_error"] < 2.0**-6 for r in now), "a unit's error exceeds 2 units of 2^-8 at G = 8"
