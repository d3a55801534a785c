"""`snnc eval`: the grid sweep (library and CLI)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.compiler.tools.cli import cli
from snnc.compiler.errors import DataFileError, SnncError
from snnc.compiler.tools.evaluate import EvalGrid, evaluate, format_tables, plot_accuracy

from snnc_testutil import DIGITS_DATA, zoo_model


@pytest.fixture(scope="module")
def report():
    grid = EvalGrid(timesteps=[1, 2, 4], neurons=["if", "dual-threshold"], v0s=["auto", "zero"],
                    schedules=["pipelined", "layerwise"])
    calls = []
    rep = evaluate(zoo_model("round", 2), DIGITS_DATA, grid, samples=50, progress=calls.append)
    assert sum(calls) == grid.size == 24
    return rep


def test_eval_runs_every_setting_once(report):
    assert len(report.results) == 24 and report.samples == 50 and report.levels == 2
    keys = {(r.neuron, r.v0, r.schedule, r.timesteps) for r in report.results}
    assert len(keys) == 24
    assert report.quantizers == ["round"] and 0.9 <= report.ann_float_accuracy <= 1


def test_eval_measures_the_same_thing_as_verify(report):
    for r in report.results:
        # exact only at T = L with the matched V0 in the layerwise schedule
        should = r.timesteps == 2 and r.v0 == "auto" and r.schedule == "layerwise"
        assert r.exact == should, r
        assert r.v0_matched == (r.v0 == "auto")
        assert r.spikes_per_sample > 0 and r.sops_per_sample > r.spikes_per_sample
        assert r.rate_error == pytest.approx(np.mean(list(r.layer_rate_error.values())))
    a = report.lookup("if", "auto", "layerwise", 2)
    b = report.lookup("dual-threshold", "auto", "layerwise", 2)
    assert a.accuracy == b.accuracy == report.ann_int_accuracy and a.rate_error == 0.0
    with pytest.raises(KeyError):
        report.lookup("if", "full", "layerwise", 2)


def test_tables_and_plot(report, tmp_path):
    text = format_tables(report)
    assert "accuracy" in text and "unevenness" in text and "spikes per sample" in text
    assert text.count("dual-threshold  zero  pipelined") == 3  # one row per table
    assert "*" in text  # the exact setting is marked
    png = tmp_path / "acc.png"
    plot_accuracy(report, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["acc.png"]


def test_grid_and_data_errors(tmp_path):
    with pytest.raises(SnncError, match=r"timesteps must be in 1\.\.65536 .*got \[0\]"):
        EvalGrid(timesteps=[0, 2])
    with pytest.raises(SnncError, match="no timesteps"):
        EvalGrid(timesteps=[])
    np.savez(tmp_path / "nolabels.npz", x=np.load(DIGITS_DATA)["x"][:4])
    with pytest.raises(DataFileError, match="no labels"):
        evaluate(zoo_model("round", 2), tmp_path / "nolabels.npz", EvalGrid(timesteps=[2]))


def test_cli_eval_json_plot_and_errors(tmp_path):
    r = CliRunner().invoke(cli, ["eval", str(zoo_model("floor", 2)), "--data", str(DIGITS_DATA), "--timesteps", "1,2",
                                 "--v0", "auto,full", "--schedule", "layerwise", "--samples", "30", "--json",
                                 "--plot", str(tmp_path / "p.png")])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["grid"] == {"timesteps": [1, 2], "neuron": ["if"], "v0": ["auto", "full"], "schedule": ["layerwise"]}
    assert len(d["results"]) == 4 and (tmp_path / "p.png").exists()
    r = CliRunner().invoke(cli, ["eval", str(zoo_model("floor", 2)), "--data", str(DIGITS_DATA), "--timesteps", "2",
                                 "--samples", "30"])
    assert r.exit_code == 0 and "if              auto  layerwise" in r.output
    for args, msg in ((["--neuron", "if,lif"], "['lif'] not understood"), (["--timesteps", "1,x"], "integers"),
                      (["--v0", "quarter"], "auto, zero, half, full"), (["--plot", str(tmp_path / "p.png" / "q.png")], "is a regular file, not a folder")):
        r = CliRunner().invoke(cli, ["eval", str(zoo_model("floor", 2)), "--data", str(DIGITS_DATA)] + args)
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (args, r.output)


# ---- plain ReLU models: the training-free grid (paper 004) -----------------------------------------

from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.compiler.tools.evaluate import EvalReport, TrainingFreeResult  # noqa: E402

from snnc_testutil import REPO  # noqa: E402

RELU = REPO / "examples" / "digits" / "relu_cnn.onnx"
CALIB = REPO / "examples" / "digits" / "calib.npz"


@pytest.fixture(scope="module")
def relu_report():
    grid = EvalGrid(timesteps=[2, 4], neurons=["multi-threshold:1", "multi-threshold:4"],
                    codings=["rate", "differential"], thresholds=["iterate", "percentile:99.9"])
    calls = []
    rep = evaluate(RELU, DIGITS_DATA, grid, CompileConfig(calibration_data=str(CALIB), frac_bits=12), samples=30,
                   progress=calls.append)
    assert sum(calls) == grid.size == 16
    return rep


def test_relu_grid_is_measured_against_the_float_ann(relu_report):
    rep = relu_report
    assert rep.kind == "relu" and rep.samples == 30 and rep.levels is None and rep.ann_int_accuracy is None
    assert rep.grid == {"timesteps": [2, 4], "neuron": ["multi-threshold:1", "multi-threshold:4"],
                        "coding": ["rate", "differential"], "thresholds": ["iterate", "percentile:99.9"],
                        "schedule": ["pipelined"]}
    assert rep.state_bits == 24 and all(r.fits_target for r in rep.results if r.coding == "rate")
    assert rep.ann_macs == 95360 and rep.energy["e_mac_j"] == 4.6e-12 and rep.energy["e_ac_j"] == 0.9e-12
    keys = {(r.neuron, r.coding, r.thresholds, r.timesteps) for r in rep.results}
    assert len(keys) == 16 and all(isinstance(r, TrainingFreeResult) for r in rep.results)
    # rate coding fits the 24-bit target; differential coding may be refused by its state bound
    assert all(r.error is None for r in rep.results if r.coding == "rate")
    for r in rep.results:
        if r.error is not None:
            assert r.coding == "differential" and r.accuracy is None and "bit" in r.error
            continue
        assert r.frac_bits == (12 if r.coding == "differential" else None)
        assert r.schedule == "pipelined" and r.n == int(r.neuron.split(":")[1])
        assert 0 <= r.accuracy <= 1 and 0 <= r.agreement_with_ann_float <= 1
        if r.coding == "rate":
            assert r.accuracy >= 0.8 and r.agreement_with_ann_float >= 0.8
        assert r.sops_per_sample == pytest.approx(r.ac_per_sample + r.mac_per_sample)
        assert r.spikes_per_sample == pytest.approx(sum(r.layer_spikes_per_sample.values()))
        # Eq. 31 from the counts
        e = (r.mac_per_sample * 4.6 + r.ac_per_sample * 0.9) / (95360 * 4.6)
        assert r.energy_ratio == pytest.approx(e) and r.energy_ratio_mac0 < r.energy_ratio
    # the input is presented every step in rate coding, once in differential coding
    a = rep.find(neuron="multi-threshold:4", coding="rate", thresholds="iterate", timesteps=4)
    b = rep.find(neuron="multi-threshold:4", coding="differential", thresholds="iterate", timesteps=4)
    a2 = rep.find(neuron="multi-threshold:4", coding="rate", thresholds="iterate", timesteps=2)
    assert a.mac_per_sample == pytest.approx(2 * a2.mac_per_sample)
    assert b.error is not None or 0 < b.mac_per_sample < a.mac_per_sample / 2
    with pytest.raises(KeyError):
        rep.find(neuron="multi-threshold:8", coding="rate", thresholds="iterate", timesteps=2)


def test_relu_tables_plot_and_json_round_trip(relu_report, tmp_path):
    import json

    text = format_tables(relu_report)
    for title in ("accuracy", "agreement with the float ANN", "spikes per sample", "synaptic operations",
                  "energy ratio E_SNN/E_ANN"):
        assert title in text
    assert text.count("multi-threshold:4 differential percentile:99.9") == 5  # one row per table
    d = json.loads(json.dumps(relu_report.to_dict()))
    back = EvalReport.from_dict(d)
    assert back.to_dict() == relu_report.to_dict() and isinstance(back.results[0], TrainingFreeResult)
    assert format_tables(back) == text
    plot_accuracy(back, tmp_path / "relu.png")
    assert (tmp_path / "relu.png").read_bytes()[:4] == b"\x89PNG"


def test_quantized_report_json_is_unchanged(report):
    d = report.to_dict()
    assert "kind" not in d and "energy" not in d
    assert EvalReport.from_dict(d).to_dict() == d


@pytest.mark.parametrize("grid, base, msg", [
    (dict(v0s=["half"]), {}, "--v0"),
    (dict(schedules=["layerwise"]), {}, "pipelined schedule"),
    (dict(neurons=["if", "multi-threshold:4"]), {}, "--neuron if"),
    (dict(), {"neg_divisor": 5}, "--neg-divisor"),
    (dict(), {"calibration_data": None}, "needs calibration data"),
])
def test_relu_grid_refuses_quantized_options(grid, base, msg):
    cfg = {"calibration_data": str(CALIB), **base}
    with pytest.raises(SnncError, match=msg):
        evaluate(RELU, DIGITS_DATA, EvalGrid(timesteps=[2], **grid), CompileConfig(**cfg), samples=5)


@pytest.mark.parametrize("grid, base, msg", [
    (dict(codings=["differential"]), {}, "--coding"),
    (dict(thresholds=["iterate"]), {}, "--thresholds"),
    (dict(neurons=["multi-threshold:4"]), {}, "multi-threshold neurons convert plain ReLU models"),
    (dict(), {"calibration_data": str(CALIB)}, "--calib"),
    (dict(), {"threshold_scale": 2.0}, "--threshold-scale"),
])
def test_quantized_grid_refuses_relu_options(grid, base, msg):
    with pytest.raises(SnncError, match=msg):
        evaluate(zoo_model("round", 2), DIGITS_DATA, EvalGrid(timesteps=[2], **grid), CompileConfig(**base), samples=5)


def test_grid_values_are_checked():
    with pytest.raises(SnncError, match="unknown threshold method 'median'"):
        EvalGrid(timesteps=[2], thresholds=["iterate", "median"])
    with pytest.raises(SnncError, match="must be in 1..16"):
        EvalGrid(timesteps=[2], neurons=["multi-threshold:0"])
    with pytest.raises(SnncError, match="only multi-threshold takes a size"):
        EvalGrid(timesteps=[2], neurons=["if:2"])
    with pytest.raises(SnncError, match="lists a value twice"):
        EvalGrid(timesteps=[2], neurons=["multi-threshold", "multi-threshold:4"])
    with pytest.raises(SnncError, match="invalid eval grid"):
        EvalGrid(timesteps=[2], codings=["temporal"])
    g = EvalGrid(timesteps=[2, 4], neurons=["multi-threshold:1", "multi-threshold:4"], codings=["rate", "differential"])
    assert g.size == 8 and g.resolve("relu").thresholds == ["iterate"]
    assert EvalGrid(timesteps=[2]).resolve("quantized").to_dict() == {
        "timesteps": [2], "neuron": ["if"], "v0": ["auto"], "schedule": ["layerwise"]}


def test_refused_settings_are_recorded_not_fatal(monkeypatch):
    """A setting the compiler refuses (e.g. a state bound the target cannot hold) becomes a result
    with its error; the rest of the grid still runs."""
    from snnc.compiler.tools import evaluate as ev
    from snnc.compiler.errors import StateOverflowError

    real = ev.compile_imported

    def compile_imported(imported, cfg, runner=None):
        if cfg.timesteps == 4:
            raise StateOverflowError("state could overflow the 24-bit width: layer 'readout'")
        return real(imported, cfg, runner=runner)

    monkeypatch.setattr(ev, "compile_imported", compile_imported)
    rep = evaluate(RELU, DIGITS_DATA, EvalGrid(timesteps=[2, 4], codings=["rate"]),
                   CompileConfig(calibration_data=str(CALIB)), samples=5)
    ok, refused = rep.results
    assert ok.error is None and ok.accuracy is not None
    assert "24-bit" in refused.error and refused.accuracy is None and refused.energy_ratio is None
    text = format_tables(rep)
    assert "refused (multi-threshold:4 rate iterate T=4): state could overflow the 24-bit width: layer 'readout'" in text



def test_eval_and_stats_price_the_same_network_alike(relu_report):
    """One energy convention (horowitz2014, paper 004 Eq. 31): `snnc stats` on the network eval compiled
    gives eval's energy ratio (graded input events priced as MACs in both)."""
    from snnc.compiler.api import compile_model
    from snnc.compiler.tools.runner import reference_runner
    from snnc.compiler.tools.stats import compute_stats

    r = relu_report.find(neuron="multi-threshold:4", coding="rate", thresholds="iterate", timesteps=4)
    cfg = CompileConfig(calibration_data=str(CALIB), frac_bits=12, timesteps=4, neuron="multi-threshold", mt_n=4,
                        coding="rate", thresholds="iterate", schedule="pipelined")
    net, _ = compile_model(RELU, cfg, runner=reference_runner)
    x = np.load(DIGITS_DATA)["x"][:30]
    st = compute_stats(net, x, "pipelined", "horowitz2014")
    assert st.ann["macs"] == relu_report.ann_macs
    assert st.snn["energy_j"] / st.ann["energy_j"] == pytest.approx(r.energy_ratio, rel=1e-9)
    assert relu_report.energy["e_input_j"] == relu_report.energy["e_mac_j"] == 4.6e-12
