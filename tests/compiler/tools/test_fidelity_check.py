"""``snnc verify --against ann`` judged against the user's model (issue 13 phase 2), ``compile``'s one-line
suggestion on a weight-precision refusal, ``inspect``'s weight bits, input-range warnings, and ``eval`` on
models it used to crash on."""

import json
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.compiler.tools.cli import cli

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL, REPO

EXT = REPO / "examples" / "external"
VERDICTS = {"EXACT", "NOT FAITHFUL", "MISMATCH", "UNCHECKED"}


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _no_crash(r):
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("fc")
    out = {}
    for name, model in (("bnn", EXT / "brevitas_bnn_qonnx.onnx"), ("batch4", EXT / "brevitas_batch4_qonnx.onnx"),
                        ("digits", DIGITS_MODEL)):
        out[name] = d / f"{name}.snnc"
        r = run("compile", model, "-o", out[name])
        assert r.exit_code == 0, r.output
    return out


def test_qonnx_model_is_verified_with_its_own_semantics_and_exact(bundles):
    r = run("verify", bundles["bnn"], "--against", "ann", "--data", DIGITS_DATA, "--samples", "40", "--json")
    _no_crash(r)
    d = json.loads(r.stdout)
    assert r.exit_code == 0 and d["verdict"]["name"] == "EXACT" and d["ok"]
    f = d["fidelity"]
    assert f["levels_compared"] > 0 and f["levels_mismatched"] == 0
    assert f["prediction_agreement"]["user_vs_int"] == 1.0 and len(f["layers"]) == 3
    assert all(L["status"] == "compared" for L in f["layers"])
    assert d["exact"] is True and d["accuracy"]["ann_float"] is not None  # today's keys stay


def test_fixed_batch_model_verifies_any_sample_count_and_prints_a_per_layer_table(bundles):
    r = run("verify", bundles["batch4"], "--against", "ann", "--data", DIGITS_DATA, "--samples", "7")
    _no_crash(r)
    assert r.exit_code in (0, 1)
    assert "fidelity to the model (onnxruntime, 7 samples)" in r.stdout
    assert "conv1" in r.stdout and "mean|dM|" in r.stdout
    last = r.stdout.strip().splitlines()[-1].strip()
    assert last.split(":")[0] in VERDICTS and (r.exit_code == 0) == last.startswith("EXACT")


def test_a_model_that_cannot_be_run_makes_the_verdict_unchecked_not_exact(bundles, tmp_path):
    """The judgement itself: a model the reference executor cannot run is UNCHECKED, never EXACT."""
    from snnc.compiler.data import load_data
    from snnc.compiler.fidelity import MinFidelity
    from snnc.compiler.tools.fidelity_check import compare_with_user_model, judge, merge_into_report
    from snnc.compiler.tools.verify import verify_against_ann
    from snnc.ir import Schedule, load

    net = load(bundles["bnn"])
    x, y = load_data(DIGITS_DATA, net, 8)
    rep = verify_against_ann(net, x, y, Schedule.LAYERWISE, None)
    run_ = compare_with_user_model(net, b"not an onnx model", x, y, rep.snn_predictions, name="bad.onnx")
    merge_into_report(rep, run_)
    verdict = judge(rep, run_, MinFidelity.parse("0.80,0.98"))
    assert verdict.exit_code == 1 and verdict.label.value == "UNCHECKED"
    assert "not a readable ONNX model" in verdict.message() and "EXACT" not in verdict.message()


def test_a_model_that_is_not_the_bundles_source_is_refused_by_name(bundles, tmp_path):
    """``--model`` must be the model the bundle was compiled from (its sha256): a user error, exit 2."""
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    r = run("verify", bundles["bnn"], "--data", DIGITS_DATA, "--samples", "8", "--model", bad, "--json")
    _no_crash(r)
    assert r.exit_code == 2 and "bad.onnx" in r.output and len(r.output.strip().splitlines()) == 1


def test_min_fidelity_decides_float_weight_models(bundles):
    ok = run("verify", bundles["digits"], "--data", DIGITS_DATA, "--samples", "60", "--json")
    d = json.loads(ok.stdout)
    assert d["verdict"]["model_kind"] == "float"
    assert ok.exit_code == (0 if d["verdict"]["name"] == "EXACT" else 1)
    strict = run("verify", bundles["digits"], "--data", DIGITS_DATA, "--samples", "60", "--min-fidelity", "1.0",
                 "--json")
    s = json.loads(strict.stdout)
    if s["fidelity"]["levels_mismatched"]:
        assert strict.exit_code == 1 and s["verdict"]["name"] == "NOT FAITHFUL" and "--min-fidelity" in \
            s["verdict"]["message"]
    bad = run("verify", bundles["digits"], "--min-fidelity", "lots")
    assert bad.exit_code == 2 and "--min-fidelity" in bad.output


def test_inputs_outside_the_range_are_warned_once(bundles, tmp_path):
    z = np.load(DIGITS_DATA)
    u8 = tmp_path / "u8.npz"
    np.savez(u8, x=np.round(z["x"][:30] * 255).astype(np.uint8), y=z["y"][:30])
    for cmd in ("verify", "simulate"):
        r = run(cmd, bundles["batch4"], "--data", u8)
        _no_crash(r)
        assert r.stderr.count("lie outside the input") == 1, r.stderr
    r = run("simulate", bundles["batch4"], "--data", DIGITS_DATA, "--samples", "10")
    assert "outside the input" not in r.stderr


def test_compile_refusal_prints_the_timesteps_that_work_in_one_line(tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    import external_models as corpus

    path, _ = corpus.build("ort_digits_mlp_u8s8_pc", tmp_path)
    r = run("compile", path, "-o", tmp_path / "x.snnc")
    _no_crash(r)
    assert r.exit_code == 2 and not (tmp_path / "x.snnc").exists()
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: layer ") and "at T=255" in lines[0]
    assert lines[1].startswith("suggestion: --timesteps 32 keeps every layer's weight bits")
    ok = run("compile", path, "--timesteps", "32", "-o", tmp_path / "x.snnc")
    assert ok.exit_code == 0, ok.output
    ins = run("inspect", tmp_path / "x.snnc")
    assert "effective weight bits" in ins.stdout and "fc1        8 of the model's 8" in ins.stdout
    assert "below the floor" not in ins.output
    d = json.loads(run("inspect", tmp_path / "x.snnc", "--json").stdout)
    assert {w["layer"]: (w["kept"], w["needed"]) for w in d["weight_bits"]}["fc2"] == (8, 8)


def test_inspect_warns_about_starved_weights(tmp_path):
    pytest.importorskip("onnxruntime.quantization")
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    import external_models as corpus
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.pipeline import CompileContext, run_pipeline
    from snnc.compiler.tools.runner import reference_runner

    path, _ = corpus.build("ort_digits_mlp_u8s8_pc", tmp_path)
    out = tmp_path / "starved.snnc"  # the weights of issue 13's collapse: a floor of 1 bit lets them starve
    run_pipeline(CompileContext(CompileConfig(), reference_runner, str(path), out, min_weight_bits=1), "import", "bundle")
    r = run("inspect", out)
    assert r.exit_code == 0
    assert "warning: layer 'fc2' keeps 3 weight bits, below the floor of 4" in r.stderr
    assert "fc2        3 of the model's 8  WARNING: below the floor" in r.stdout


def test_eval_runs_a_qonnx_model_and_prints_each_refusal_whole_once(tmp_path):
    r = run("eval", EXT / "brevitas_bnn_qonnx.onnx", "--data", DIGITS_DATA, "--timesteps", "8,15", "--samples", "20",
            "--json")
    _no_crash(r)
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["ann_float_accuracy"] is not None and all(x["error"] is None for x in d["results"])
    pytest.importorskip("onnxruntime.quantization")
    sys.path.insert(0, str(REPO / "tests" / "integration"))
    import external_models as corpus

    path, _ = corpus.build("ort_digits_mlp_u8s8_pc", tmp_path)
    r = run("eval", path, "--data", DIGITS_DATA, "--timesteps", "32,255", "--v0", "auto,zero", "--samples", "20")
    _no_crash(r)
    assert r.exit_code == 0, r.output
    refusals = [ln for ln in r.stdout.splitlines() if ln.startswith("refused (")]
    assert len(refusals) == 1 and "if v0 auto T=255, if v0 zero T=255" in refusals[0]
    assert refusals[0].endswith("(--profile with [numeric] state_bits)")  # the reason, whole
    assert "the integer ANN (T = L, matched V0) is refused" in r.stdout
    assert r.stderr.count("keeps") <= len(set(ln for ln in r.stderr.splitlines() if "keeps" in ln))
