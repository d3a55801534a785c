"""Guards of docs/results.md's paper 003 input-timing section (benchmarks/paper003_input_timing.py): the
committed section is what the committed JSON renders to; the single-layer experiment re-run now gives the
JSON's figures; the MNIST network rows re-run through `snnc eval` give the JSON's (the digits rows are the
methods section's JSON, guarded by test_methods_results.py)."""

import json
import shutil

from snnc_testutil import load_benchmark_script


def test_committed_timing_section_is_rendered_from_the_committed_json(tmp_path):
    mod = load_benchmark_script("paper003_input_timing")
    doc = tmp_path / "results.md"
    shutil.copy(mod.DOC, doc)
    assert mod.main(["--from-json", "--no-plot", "--doc", str(doc)]) == 0
    assert mod.SECTION.read(doc) == mod.SECTION.read(mod.DOC), \
        "docs/results.md's paper003-timing section differs from its JSON: run the script with --from-json"


def test_single_layer_experiment_reproduces():
    mod = load_benchmark_script("paper003_input_timing")
    committed = json.loads(mod.JSON.read_text())
    assert mod.single_layer() == committed["single_layer"]


def test_network_rows_reproduce():
    mod = load_benchmark_script("paper003_input_timing")
    committed = json.loads(mod.JSON.read_text())["networks"]
    digits = json.loads(mod.DIGITS_METHODS_JSON.read_text())
    assert mod.network_rows(digits, 8) == committed["digits"]["schedules"]
    mnist = mod.run_eval([mod.MNIST_MODEL, "--data", mod.MNIST_DATA, "--timesteps", "4", "--neuron", "if", "--v0",
                          "half", "--schedule", "pipelined,layerwise", "--samples", str(mod.MNIST_SAMPLES)])
    assert mod.network_rows(mnist, 4) == committed["mnist"]["schedules"]
