"""End-to-end CLI tests on the shipped digits example, and the CLI's error paths."""

import json
import os
import stat

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from snnc.compiler.tools.cli import cli
from snnc.ir import load

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL, REPO, make_mlp_onnx


@pytest.fixture(scope="module")
def digits_bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "digits.snnc"
    r = CliRunner().invoke(cli, ["compile", str(DIGITS_MODEL), "--target", "loihi", "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_compile_writes_a_loadable_bundle(digits_bundle):
    net = load(digits_bundle)
    assert [p.name for p in net.populations] == ["conv1", "conv2", "fc1"]
    assert net.metadata["config"]["target"] == "loihi"
    for p in net.projections:
        assert -128 <= p.weight.min() and p.weight.max() <= 127 and 0 <= p.exponent <= 7


def test_verify_layerwise_exact_json(digits_bundle):
    r = run("verify", digits_bundle, "--against", "ann", "--data", DIGITS_DATA, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["exact"] is True and d["neurons_mismatched"] == 0 and d["neurons_compared"] == 576000
    assert d["accuracy"]["snn"] == d["accuracy"]["ann_int"] >= 0.95
    assert d["prediction_agreement"]["ann_int_vs_ann_float"] >= 0.99
    assert {L["name"] for L in d["layers"]} == {"conv1", "conv2", "fc1"}
    assert all(L["mismatched"] == 0 and L["unevenness_error"] == 0 for L in d["layers"])


def test_verify_pipelined_reports_unevenness_and_fails(digits_bundle):
    r = run("verify", digits_bundle, "--data", DIGITS_DATA, "--schedule", "pipelined", "--samples", "60", "--json")
    d = json.loads(r.stdout)
    assert r.exit_code == (0 if d["exact"] else 1)
    assert d["schedule"] == "pipelined" and d["samples"] == 60
    assert any(L["unevenness_error"] > 0 for L in d["layers"])


def test_verify_without_data_says_random(digits_bundle):
    r = run("verify", digits_bundle, "--samples", "5")
    assert r.exit_code == 0
    assert "random inputs" in r.stderr


def test_simulate_and_inspect(digits_bundle):
    r = run("simulate", digits_bundle, "--data", DIGITS_DATA, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["accuracy"] >= 0.95 and d["latency_steps"] == 4 * 3
    assert set(d["spikes_per_sample"]) == {"conv1", "conv2", "fc1"}
    r = run("inspect", digits_bundle)
    assert r.exit_code == 0 and "conv1" in r.stdout and "Conv2d" in r.stdout and "Q=round" in r.stdout
    d = json.loads(run("inspect", digits_bundle, "--json").stdout)
    assert d["timesteps"] == 4 and len(d["projections"]) == 4


def _assert_user_error(r, *fragments):
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.stderr.startswith("error: ")
    for f in fragments:
        assert f in r.stderr, r.stderr


def test_errors_are_one_line_exit_2_and_leave_no_file(tmp_path, digits_bundle):
    out = tmp_path / "o.snnc"
    (tmp_path / "bad.onnx").write_text("garbage")
    _assert_user_error(run("compile", tmp_path / "bad.onnx", "-o", out), "not a readable ONNX model")
    _assert_user_error(run("compile", tmp_path / "none.onnx", "-o", out), "does not exist")
    _assert_user_error(run("compile", DIGITS_MODEL, "--target", "loihi9", "-o", out), "unknown target 'loihi9'", "loihi2")
    _assert_user_error(run("compile", DIGITS_MODEL, "--timesteps", "0", "-o", out), "timesteps must be >= 1")
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "bad.onnx"]
    np.savez(tmp_path / "wrong.npz", x=np.zeros((3, 1, 7, 7), np.float32))
    _assert_user_error(run("verify", digits_bundle, "--data", tmp_path / "wrong.npz"), "(N, 1, 8, 8)")
    np.savez(tmp_path / "nox.npz", images=np.zeros(3))
    _assert_user_error(run("verify", digits_bundle, "--data", tmp_path / "nox.npz"), "array 'x'")
    np.savez(tmp_path / "ylen.npz", x=np.zeros((3, 1, 8, 8), np.float32), y=np.zeros(2))
    _assert_user_error(run("simulate", digits_bundle, "--data", tmp_path / "ylen.npz"), "2 labels")
    _assert_user_error(run("inspect", tmp_path / "bad.onnx"), "not an snnc bundle")
    _assert_user_error(run("simulate", digits_bundle, "--backend", "nest"), "unknown backend 'nest'", "reference")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_output_folder(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        _assert_user_error(run("compile", DIGITS_MODEL, "-o", ro / "m.snnc"), "writable")
    finally:
        ro.chmod(stat.S_IRWXU)


def test_read_only_output_path_as_root(tmp_path):
    """Portable variant: the output's parent is a file, so nothing can be written there."""
    (tmp_path / "afile").write_text("x")
    _assert_user_error(run("compile", DIGITS_MODEL, "-o", tmp_path / "afile" / "m.snnc"), "afile")


def test_plain_relu_and_mixed_levels_are_explained(tmp_path):
    from onnx import helper, numpy_helper, TensorProto

    m = make_mlp_onnx()
    g = m.graph
    # replace the first activation's Floor by Relu-only network: a plain ReLU MLP
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["g0"], name="fc0", transB=1),
             helper.make_node("Relu", ["g0"], ["r0"], name="relu0"),
             helper.make_node("Gemm", ["r0", "wo2", "bo"], ["y"], name="out", transB=1)]
    inits = [i for i in g.initializer if i.name in ("w0", "b0", "bo")]
    inits.append(numpy_helper.from_array(np.ones((3, 12), np.float32), "wo2"))
    relu = helper.make_model(helper.make_graph(nodes, "r", [g.input[0]], [g.output[0]], inits),
                             opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(relu, tmp_path / "relu.onnx")
    _assert_user_error(run("compile", tmp_path / "relu.onnx", "-o", tmp_path / "o.snnc"), "'relu0' is a plain ReLU")
    mixed = make_mlp_onnx()
    for init in mixed.graph.initializer:
        if init.name == "act1_L":
            init.CopyFrom(numpy_helper.from_array(np.array(2.0, np.float32), "act1_L"))
        if init.name == "act1_hi":
            init.CopyFrom(numpy_helper.from_array(np.array(2.0, np.float32), "act1_hi"))
    onnx.save(mixed, tmp_path / "mixed.onnx")
    # mixed L compiles (each layer runs its own L steps, layerwise); --timesteps and pipelined are refused by name
    _assert_user_error(run("compile", tmp_path / "mixed.onnx", "-o", tmp_path / "o.snnc", "--timesteps", "4"),
                       "different quantization levels", "--timesteps")
    _assert_user_error(run("compile", tmp_path / "mixed.onnx", "-o", tmp_path / "o.snnc", "--schedule", "pipelined"),
                       "different quantization levels", "'fc1' L=4", "'fc2' L=2", "layerwise")
    assert not (tmp_path / "o.snnc").exists()
    r = run("compile", tmp_path / "mixed.onnx", "-o", tmp_path / "o.snnc")
    assert r.exit_code == 0 and "mixed L [2, 4]" in r.output, r.output
    r = run("inspect", tmp_path / "o.snnc")
    assert r.exit_code == 0 and "fc2: 2" in r.output and "timesteps=2" in r.output, r.output
    _assert_user_error(run("simulate", tmp_path / "o.snnc", "--schedule", "pipelined"), "'fc2' L=2")


def test_compile_method_options_are_stored_and_shown(tmp_path):
    out = tmp_path / "m.snnc"
    r = run("compile", DIGITS_MODEL, "--timesteps", "2", "--neuron", "dual-threshold", "--v0", "zero",
            "--neg-divisor", "250", "--schedule", "pipelined", "-o", out)
    assert r.exit_code == 0, r.output
    assert "T=2 (L=4), neuron dual-threshold, v0 zero" in r.output
    net = load(out)
    cfg = net.metadata["config"]
    assert (cfg["timesteps"], cfg["neuron"], cfg["v0"], cfg["neg_divisor"], cfg["schedule"]) == (2, "dual-threshold", "zero", 250, "pipelined")
    assert all(type(p.neuron).__name__ == "DualThreshold" and p.neuron.neg_divisor == 250 for p in net.populations)
    r = run("inspect", out)
    assert "T = 2, L = 4: rates rescaled" in r.output and "neuron dual-threshold; v0 zero" in r.output
    assert "V0=zero (not matched to Q)" in r.output
    r = run("verify", out, "--data", DIGITS_DATA, "--samples", "20", "--json")
    d = json.loads(r.output)
    assert r.exit_code == 0 and d["comparison"] == "rates" and d["ok"] and not d["exact"]
    r = run("compile", DIGITS_MODEL, "--neuron", "lif", "-o", out)
    assert r.exit_code == 2 and "dual-threshold" in r.output


def test_simulate_counts_negative_spikes_as_spikes(tmp_path):
    out = tmp_path / "dt.snnc"
    assert run("compile", DIGITS_MODEL, "--neuron", "dual-threshold", "-o", out).exit_code == 0
    r = run("simulate", out, "--data", DIGITS_DATA, "--schedule", "pipelined", "--samples", "40", "--json")
    d = json.loads(r.output)
    assert r.exit_code == 0 and d["negative_spikes_per_sample"]["conv2"] > 0
    assert d["negative_spikes_per_sample"]["conv1"] == 0  # a constant input current never drives it down
    # events of either sign: more than the net counts
    from snnc.backends.reference import simulate
    from snnc.compiler.data import load_data
    net = load(out)
    x, _ = load_data(DIGITS_DATA, net, 40)
    res = simulate(net, x, "pipelined")
    net_counts = res.counts["conv2"].sum() / 40
    assert d["spikes_per_sample"]["conv2"] == pytest.approx(net_counts + 2 * d["negative_spikes_per_sample"]["conv2"])


def test_eval_training_free_grid_json_and_option_errors():
    """`snnc eval` on a plain ReLU model: the paper 004 grid (n x coding x thresholds x T) against the
    float ANN; options of quantized models are refused, and the other way round."""
    from snnc_testutil import REPO

    relu = str(REPO / "examples" / "digits" / "relu_cnn.onnx")
    calib = str(REPO / "examples" / "digits" / "calib.npz")
    base = ["eval", relu, "--data", str(DIGITS_DATA), "--calib", calib, "--samples", "12", "--frac-bits", "12"]
    r = CliRunner().invoke(cli, base + ["--timesteps", "2,4", "--coding", "rate,differential",
                                        "--neuron", "multi-threshold:1,multi-threshold:4",
                                        "--thresholds", "iterate,percentile:99.9", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[r.output.index("{"):])
    assert d["kind"] == "relu" and d["grid"] == {
        "timesteps": [2, 4], "neuron": ["multi-threshold:1", "multi-threshold:4"], "coding": ["rate", "differential"],
        "thresholds": ["iterate", "percentile:99.9"], "schedule": ["pipelined"]}
    assert len(d["results"]) == 16 and {"energy_ratio", "agreement_with_ann_float", "ac_per_sample",
                                        "mac_per_sample"} <= set(d["results"][0])
    r = CliRunner().invoke(cli, base + ["--timesteps", "2"])
    assert r.exit_code == 0 and "multi-threshold:4 rate         iterate" in r.output and "energy ratio" in r.output
    for args, msg in ((["--v0", "half"], "--v0"), (["--schedule", "layerwise"], "pipelined schedule"),
                      (["--neuron", "if"], "--neuron if"), (["--neuron", "multi-threshold:x"], "not understood"),
                      (["--coding", "temporal"], "rate, differential"), (["--thresholds", "median"], "median")):
        r = CliRunner().invoke(cli, base + ["--timesteps", "2"] + args)
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (args, r.output)
    r = CliRunner().invoke(cli, ["eval", relu, "--data", str(DIGITS_DATA), "--timesteps", "2"])
    assert r.exit_code == 2 and "--calib" in r.output
    for args, msg in ((["--coding", "differential"], "--coding"), (["--calib", calib], "--calib"),
                      (["--neuron", "multi-threshold:4"], "multi-threshold"), (["--frac-bits", "8"], "--frac-bits"),
                      (["--threshold-scope", "layer"], "--threshold-scope")):
        r = CliRunner().invoke(cli, ["eval", str(DIGITS_MODEL), "--data", str(DIGITS_DATA), "--timesteps", "2"] + args)
        assert r.exit_code == 2 and msg in r.output and "quantized activations" in r.output, (args, r.output)


def test_compile_timings_table_stop_after_and_dump(tmp_path):
    out = tmp_path / "m.snnc"
    r = run("compile", DIGITS_MODEL, "-o", out, "--timings")
    assert r.exit_code == 0, r.output
    table = r.stdout.split("stages:")[1]
    for stage in ("import", "passes", "calibrate", "lowering", "integerize", "bounds", "mapping", "bundle", "total"):
        assert f"\n  {stage} " in table, table
    assert "timings" not in load(out).metadata   # printed, not written: the bundle's bytes are deterministic
    r = run("compile", DIGITS_MODEL, "--stop-after", "lowering", "--dump", tmp_path / "dump")
    assert r.exit_code == 0, r.output
    assert "stopped after stage 'lowering'" in r.stdout and "no bundle written" in r.stdout
    assert sorted(p.name for p in (tmp_path / "dump").iterdir()) == ["1-import", "2-passes", "3-calibrate", "4-lowering"]
    r = run("compile", DIGITS_MODEL, "--stop-after", "mapping")   # no -o needed when no bundle is written
    assert r.exit_code == 0 and "no bundle written" in r.stdout
    r = run("compile", DIGITS_MODEL)
    assert r.exit_code == 2 and "Missing option '-o' / '--output'" in r.output
    r = run("compile", DIGITS_MODEL, "--stop-after", "lower", "-o", out)
    assert r.exit_code == 2 and "'lower' is not one of" in r.output


def test_a_schedule_the_network_cannot_run_is_one_line_naming_the_population(tmp_path):
    """Issue 15: `simulate --schedule layerwise` on a multi-threshold bundle escaped as a traceback."""
    out = tmp_path / "relu.snnc"
    relu = REPO / "examples" / "digits" / "relu_cnn.onnx"
    r = run("compile", relu, "--calib", REPO / "examples" / "digits" / "calib.npz", "--neuron", "multi-threshold:4",
            "--timesteps", "2", "-o", out)
    assert r.exit_code == 0, r.output
    for cmd in ("simulate", "stats"):
        r = run(cmd, out, "--schedule", "layerwise", "--data", DIGITS_DATA, "--samples", "2")
        _assert_user_error(r, "population 'conv1'", "layerwise", "runs in the pipelined schedule")
        assert len(r.stderr.strip().splitlines()) == 1


def test_an_internal_error_is_one_line_exit_3(monkeypatch, digits_bundle):
    import snnc.compiler.tools.inspect as inspect_cmd

    def broken(*a, **k):
        raise RuntimeError("something the code did not expect\nsecond line")

    monkeypatch.setattr(inspect_cmd, "inspect_text", broken)
    r = run("inspect", digits_bundle)
    assert r.exit_code == 3, r.output
    assert r.stderr.startswith("internal error: RuntimeError: something the code did not expect")
    assert "second line" not in r.stderr and "Traceback" not in r.output
    assert len(r.stderr.strip().splitlines()) == 1
