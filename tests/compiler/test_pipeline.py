"""compiler/pipeline.py: named stages with typed records, a check between stages, timings, stopping
after a stage and dumping what each stage made; data-driven choices need an explicit runner."""

import json

import numpy as np
import pytest

from snnc.compiler import pipeline
from snnc.compiler.api import compile_imported, compile_model, import_model
from snnc.compiler.calibrate import RunnerRequiredError
from snnc.compiler.config import CompileConfig
from snnc.compiler.frontend.float_graph import FGraph, Linear, Relu
from snnc.compiler.integerize import IntegerNetwork
from snnc.compiler.lowering import LoweredGraph
from snnc.compiler.pipeline import (STAGE_NAMES, CompileContext, PipelineCheckError, Records, float_graph_problems,
                                    run_pipeline)
from snnc.compiler.tools.runner import reference_runner
from snnc.ir import load
from snnc_testutil import DIGITS_MODEL, REPO

RELU = REPO / "examples" / "digits" / "relu_cnn.onnx"
CALIB = REPO / "examples" / "digits" / "calib.npz"


def test_the_stages_in_order():
    assert STAGE_NAMES == ("import", "passes", "calibrate", "lowering", "integerize", "bounds", "mapping", "bundle")


def test_stop_after_a_stage_keeps_every_record_so_far_and_nothing_after(tmp_path):
    run = run_pipeline(CompileContext(model_path=str(DIGITS_MODEL)), last="lowering")
    assert run.ran == ["import", "passes", "calibrate", "lowering"]
    assert isinstance(run.records.lowered, LoweredGraph) and run.records.integer is None
    assert [t.stage for t in run.timings] == run.ran
    rss = [t.peak_rss_bytes for t in run.timings]
    assert rss == sorted(rss) and rss[0] > 0   # a high-water mark
    assert [type(i).__name__ for i in run.records.lowered.items] == ["QuantizedPopulation"] * 3
    with pytest.raises(Exception, match="unknown stage 'lower'; the stages are import, passes"):
        run_pipeline(CompileContext(model_path=str(DIGITS_MODEL)), last="lower")


def test_the_pipeline_makes_the_network_the_entry_points_make(tmp_path):
    net, _ = compile_model(DIGITS_MODEL)
    run = run_pipeline(CompileContext(model_path=str(DIGITS_MODEL), out_path=tmp_path / "m.snnc"),
                       store_timings=True)
    ran = run.records.compiled.network
    assert [n.name for n in ran.nodes] == [n.name for n in net.nodes]
    for a, b in zip(net.projections, ran.projections):
        np.testing.assert_array_equal(a.weight, b.weight)
    for a, b in zip(net.populations, ran.populations):
        np.testing.assert_array_equal(a.threshold, b.threshold)
    stored = ran.metadata["timings"]   # the stages that made the network, in the network's metadata
    assert [t["stage"] for t in stored] == list(STAGE_NAMES[:-1]) and all(t["seconds"] >= 0 for t in stored)
    assert all(t["peak_rss_mib"] > 0 for t in stored)
    assert "timings" not in load(tmp_path / "m.snnc").metadata   # wall-clock timings are not written (ir/bundle.py)
    assert (tmp_path / "m.snnc").read_bytes() == bundle_without_timings(tmp_path)


def bundle_without_timings(tmp_path):
    """Without ``store_timings``: the same network, the same bundle bytes."""
    run_pipeline(CompileContext(model_path=str(DIGITS_MODEL), out_path=tmp_path / "plain.snnc"))
    return (tmp_path / "plain.snnc").read_bytes()


def test_every_stage_dumps_a_readable_record(tmp_path):
    out, dump = tmp_path / "m.snnc", tmp_path / "dump"
    run_pipeline(CompileContext(model_path=str(DIGITS_MODEL), out_path=out), dump_dir=dump)
    folders = sorted(p.name for p in dump.iterdir())
    assert folders == [f"{i + 1}-{s}" for i, s in enumerate(STAGE_NAMES)]
    graph = (dump / "2-passes" / "graph.txt").read_text()
    assert "QuantAct" in graph and "Conv" in graph
    assert json.loads((dump / "2-passes" / "graph.json").read_text())["passes"]["fuse-quant-act"] == 3
    lowered = json.loads((dump / "4-lowering" / "lowered.json").read_text())
    assert [i["layer"]["name"] for i in lowered["items"]] == ["conv1", "conv2", "fc1"]
    assert lowered["conversion"] == "quantized" and lowered["readout"]["layer"]["name"] == "readout"
    staged = load(dump / "5-integerize" / "network.snnc")
    assert [r["layer"] for r in staged.metadata["layers"]] == ["conv1", "conv2", "fc1", "readout"]
    assert "placement" not in staged.metadata and "placement" in load(dump / "7-mapping" / "network.snnc").metadata
    bounds = json.loads((dump / "6-bounds" / "network.json").read_text())["bounds"]
    assert [b["node"] for b in bounds] == ["conv1", "conv2", "fc1", "readout"]


def test_a_check_between_stages_catches_a_broken_record(monkeypatch):
    g = FGraph("x", (3,), [Linear("fc", "x", np.eye(3), np.zeros(3)), Relu("r", "missing"), Relu("r", "fc")], "out")
    assert float_graph_problems(g) == ["op 'r' reads ['missing'] before they are produced",
                                       "op name 'r' is used twice", "the output 'out' is not produced"]
    real = pipeline.integerize_network

    def drop_a_record(lowered, ctx):
        r = real(lowered, ctx)
        return IntegerNetwork(r.network, r.layers[1:], r.levels, r.mixed_levels, r.conversion)

    monkeypatch.setattr(pipeline, "integerize_network", drop_a_record)
    with pytest.raises(PipelineCheckError, match="layer records .* do not match the network's layers"):
        compile_model(DIGITS_MODEL)


def test_data_driven_choices_need_a_runner():
    imported = import_model(RELU)
    cfg = CompileConfig(neuron="multi-threshold", coding="differential", timesteps=2, calibration_data=str(CALIB),
                        schedule="pipelined")   # frac_bits auto: F chosen by the measured error
    with pytest.raises(RunnerRequiredError, match="frac_bits=auto .* pass runner="):
        compile_imported(imported, cfg)
    digits = import_model(DIGITS_MODEL)
    with pytest.raises(RunnerRequiredError, match="--calib .*placement"):
        compile_imported(digits, CompileConfig(calibration_data=str(REPO / "examples" / "digits" / "test.npz")))
    net = compile_imported(imported, cfg, runner=reference_runner)
    assert net.metadata["placement"]["traffic_basis"] == "rates"
    # without calibration data nothing runs the network: no runner needed, the same network either way
    a, b = compile_imported(digits), compile_imported(digits, runner=reference_runner)
    for p, q in zip(a.projections, b.projections):
        np.testing.assert_array_equal(p.weight, q.weight)


def test_records_are_the_stage_outputs_of_compile_imported():
    imported = import_model(DIGITS_MODEL)
    run = run_pipeline(CompileContext(CompileConfig(timesteps=8)), "calibrate", "mapping", Records(model=imported))
    assert run.ran == ["calibrate", "lowering", "integerize", "bounds", "mapping"]
    assert run.records.calibration.relu_thresholds is None and run.records.integer.levels == 4
    assert run.records.compiled.network.timesteps == 8
