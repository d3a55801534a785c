"""`snnc eval`: the grid sweep (library and CLI)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.compiler.cli import cli
from snnc.compiler.errors import DataFileError, SnncError
from snnc.compiler.evaluate import EvalGrid, evaluate, format_tables, plot_accuracy

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
    with pytest.raises(SnncError, match="timesteps must be >= 1"):
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
                      (["--v0", "quarter"], "auto, zero, half, full"), (["--plot", str(tmp_path / "no" / "p.png")], "does not exist")):
        r = CliRunner().invoke(cli, ["eval", str(zoo_model("floor", 2)), "--data", str(DIGITS_DATA)] + args)
        assert r.exit_code == 2 and msg in r.output and "Traceback" not in r.output, (args, r.output)
