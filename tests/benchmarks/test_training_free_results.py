"""Guard of docs/training_free.md's generated tables: rows of the first table are recomputed from the
committed model, calibration and test split (benchmarks/training_free_results.py's own code) and must
appear in the committed page unchanged."""

import numpy as np
import pytest

from snnc_testutil import load_benchmark_script


@pytest.mark.parametrize("coding,n", [("rate", 1), ("differential", 4)])
def test_a_row_of_the_training_free_table_reproduces(coding, n):
    from snnc.compiler.api import import_model

    mod = load_benchmark_script("training_free_results")
    z = np.load(mod.DIGITS / "test.npz")
    row = mod.first_table_row(import_model(mod.MODEL), z["x"], z["y"], coding, n)
    text = mod.DOC.read_text()
    section = text[text.index(mod.BEGIN):text.index(mod.END)]
    assert row in section.splitlines(), (f"docs/training_free.md is stale: the code now gives\n{row}\n"
                                         "run benchmarks/training_free_results.py")
