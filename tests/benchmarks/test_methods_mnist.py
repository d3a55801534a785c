"""Guards of docs/results.md's methods-mnist section (benchmarks/methods_mnist.py, paper 000's Tables 7 / 8 on
MNIST 5k): the committed section is what the committed JSON renders to, a slice of the grid re-run now gives
the committed JSON's figures, and a refused cell falls back to the 32-bit state's run, marked."""

import json
import shutil

from snnc_testutil import assert_rows_reproduce, load_benchmark_script


def test_committed_methods_mnist_section_is_rendered_from_the_committed_json(tmp_path):
    mod = load_benchmark_script("methods_mnist")
    doc = tmp_path / "results.md"
    shutil.copy(mod.DOC, doc)
    assert mod.main(["--from-json", "--no-plots", "--doc", str(doc)]) == 0
    assert mod.SECTION.read(doc) == mod.SECTION.read(mod.DOC), \
        "docs/results.md's methods-mnist section differs from its JSON: run benchmarks/methods_mnist.py --from-json"


def test_a_slice_of_the_mnist_tables_reproduces_from_the_committed_model():
    """round L = 2 at T = 1, 2 (IF and dual threshold, V0 = θ/2, pipelined) on every committed test image."""
    mod = load_benchmark_script("methods_mnist")
    committed = json.loads((mod.JSON_DIR / "round_L2.json").read_text())
    fresh = mod.eval_model(2, dict(levels=(2,), timesteps=(1, 2), samples=None))
    for k in ("sha256", "samples", "ann_float_accuracy", "ann_int_accuracy"):
        assert fresh[k] == committed[k], k
    assert not any(r["profile"] for r in fresh["results"])  # T = 1, 2 fit the 24-bit state
    n = assert_rows_reproduce(committed["results"], fresh["results"], ("neuron", "timesteps", "profile"),
                              "methods_mnist round_L2")
    assert n == 4


def _row(neuron, T, profile, accuracy, error=None):
    return {"neuron": neuron, "timesteps": T, "profile": profile, "accuracy": accuracy, "error": error,
            "rate_error": 0.5, "exact": False, "neurons_mismatched": 1, "neurons_compared": 2}


def test_a_refused_cell_shows_the_wide_state_run_marked_and_a_missing_one_a_dash():
    mod = load_benchmark_script("methods_mnist")
    wide = "examples/mnist/state32.toml"
    rep = {"timesteps": [16, 32], "results": [
        _row("if", 16, None, 0.9), _row("if", 32, None, None, error="layer 'fc1': refused"),
        _row("if", 32, wide, 0.95), _row("dual-threshold", 16, None, None, error="layer 'fc1': refused")]}
    assert mod.cell(rep, "if", 16)["accuracy"] == 0.9
    assert mod.cell(rep, "if", 32)["profile"] == wide
    assert mod.acc_text(mod.cell(rep, "if", 32)) == "95.00‡"
    assert mod.acc_text(mod.cell(rep, "dual-threshold", 16)) == "refused"  # refused, and no wide run
    assert mod.acc_text(mod.cell(rep, "dual-threshold", 32)) == "-"  # not run
