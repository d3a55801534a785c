"""``--backend`` / ``--device`` on simulate, verify, eval, stats and report (compiler/tools/backend_choice.py):
the default is the fastest exact backend (torch when installed), the output names the backend that ran,
torch and reference give the same numbers through every command, and what cannot run is one line, exit 2."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from snnc.backends import DeviceError
from snnc.backends.reference import ReferenceBackend
from snnc.compiler.tools.backend_choice import BackendChoice, BackendOptionError, against_backend, counting
from snnc.compiler.tools.cli import cli
from snnc.ir import Dense, Input, MultiThreshold, Network, Population, Readout

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL, REPO

TIMING = ("seconds", "compile_seconds", "run_seconds")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _json(r):
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout[r.stdout.index("{"):])


def _user_error(r, *fragments):
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.output
    for f in fragments:
        assert f in r.stderr, r.stderr


def _without(d, keys=("backend", "device", *TIMING)):
    """``d`` without the keys that name the backend or time it (recursively)."""
    if isinstance(d, dict):
        return {k: _without(v, keys) for k, v in d.items() if k not in keys}
    if isinstance(d, list):
        return [_without(v, keys) for v in d]
    return d


def _net(neuron=None):
    kw = {} if neuron is None else {"neuron": neuron, "threshold": 8}
    return Network([Input("x", (2,)), Population("p", (2,), **({"threshold": 3} | kw)), Readout("r", (1,))],
                   [Dense("a", "x", "p", np.eye(2, dtype=np.int64), 0, (2,), (2,)),
                    Dense("b", "p", "r", np.ones((1, 2), np.int64), 0, (2,), (1,))], 3)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("bc")
    out = {"if": d / "if.snnc", "dual": d / "dual.snnc", "mt": d / "mt.snnc"}
    assert run("compile", DIGITS_MODEL, "-o", out["if"]).exit_code == 0
    assert run("compile", DIGITS_MODEL, "--neuron", "dual-threshold", "--schedule", "pipelined",
               "-o", out["dual"]).exit_code == 0
    r = run("compile", REPO / "examples" / "digits" / "relu_cnn.onnx", "--calib", REPO / "examples" / "digits" /
            "calib.npz", "--neuron", "multi-threshold:4", "--coding", "differential", "--timesteps", "4",
            "-o", out["mt"])
    assert r.exit_code == 0, r.output
    return out


# ---- the choice itself -----------------------------------------------------------------------------------
def test_choice_refuses_unknown_names_and_devices():
    with pytest.raises(BackendOptionError, match="unknown backend 'nest'.*auto.*reference"):
        BackendChoice("nest")
    with pytest.raises(BackendOptionError, match="--device tpu: unknown device; supported: cpu, cuda"):
        BackendChoice(None, "tpu")
    assert BackendChoice.from_options("auto", None) == BackendChoice(None, "cpu")
    assert BackendChoice.from_options("reference", "cpu").label == "reference"


def test_auto_is_torch_where_it_runs_and_reference_where_it_does_not():
    pytest.importorskip("torch")
    auto = BackendChoice()
    assert auto.backend(_net(), "pipelined").name == "torch"
    # no backend runs multi-threshold neurons layerwise: torch says no, the reference is left to say why
    assert auto.backend(_net(MultiThreshold(n=2)), "layerwise").name == "reference"
    assert BackendChoice("reference").backend(_net(), "pipelined").name == "reference"


def test_counting_and_against_refusals():
    class SpikesOnly:
        name = "spikesonly"

        def run(self, net, x, schedule, record=False):
            raise AssertionError("not run")

    with pytest.raises(BackendOptionError, match="--backend spikesonly: .*does not count"):
        counting(SpikesOnly())
    assert isinstance(counting(ReferenceBackend()), ReferenceBackend)
    with pytest.raises(BackendOptionError, match="leave --backend out"):
        against_backend("lava", BackendChoice("reference"))
    with pytest.raises(DeviceError, match="CPU only"):
        BackendChoice("reference", "cuda").backend(_net(), "pipelined")


def test_cuda_without_cuda_is_one_line_exit_2(bundles):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    for cmd in (["simulate", bundles["if"]], ["stats", bundles["if"]], ["verify", bundles["if"]],
                ["verify", bundles["if"], "--against", "torch"]):
        _user_error(run(*cmd, "--samples", "2", "--device", "cuda"), "no CUDA device is available here")
    _user_error(run("simulate", bundles["if"], "--backend", "reference", "--device", "cuda"), "CPU only")
    _user_error(run("eval", DIGITS_MODEL, "--data", DIGITS_DATA, "--timesteps", "2", "--samples", "2",
                    "--device", "cuda"), "no CUDA device is available here")


def test_options_that_cannot_run_are_one_line_exit_2(bundles, tmp_path):
    _user_error(run("simulate", bundles["if"], "--backend", "nest"), "unknown backend 'nest'", "reference")
    _user_error(run("simulate", bundles["if"], "--device", "tpu"), "--device tpu")
    _user_error(run("verify", bundles["if"], "--against", "torch", "--backend", "reference"), "leave --backend out")
    assert not (tmp_path / "rep").exists()


# ---- the commands: torch and reference give the same numbers, the output names the backend ----------------
@pytest.mark.parametrize("name,schedule", [("if", "layerwise"), ("if", "pipelined"), ("dual", "pipelined"),
                                           ("mt", "pipelined")])
def test_simulate_torch_equals_reference_json(bundles, name, schedule):
    pytest.importorskip("torch")
    args = ["simulate", bundles[name], "--data", DIGITS_DATA, "--samples", "60", "--schedule", schedule, "--json"]
    ref = _json(run(*args, "--backend", "reference"))
    got = _json(run(*args, "--backend", "torch"))
    auto = _json(run(*args))
    assert (ref["backend"], got["backend"], auto["backend"]) == ("reference", "torch", "torch")
    assert got["device"] == ref["device"] == "cpu"
    assert sum(ref["spikes_per_sample"].values()) > 0
    assert _without(got) == _without(ref)          # counts, rates, negative spikes, predictions, accuracy
    r = run("simulate", bundles[name], "--samples", "3", "--schedule", schedule, "--backend", "torch")
    assert r.exit_code == 0 and f"on torch (cpu), schedule {schedule}" in r.stdout


def test_verify_and_stats_torch_equal_reference(bundles):
    pytest.importorskip("torch")
    base = ["--data", DIGITS_DATA, "--samples", "40", "--json"]
    for name, extra in (("if", []), ("if", ["--schedule", "pipelined"]), ("mt", [])):
        ref = run("verify", bundles[name], *base, *extra, "--backend", "reference")
        got = run("verify", bundles[name], *base, *extra)
        assert ref.exit_code == got.exit_code
        d_ref, d_got = json.loads(ref.stdout), json.loads(got.stdout)
        assert (d_ref["backend"], d_got["backend"]) == ("reference", "torch")
        assert _without(d_got) == _without(d_ref)
        s_ref = _json(run("stats", bundles[name], *base, *extra, "--backend", "reference"))
        s_got = _json(run("stats", bundles[name], *base, *extra, "--backend", "torch"))
        assert (s_ref["backend"], s_got["backend"]) == ("reference", "torch")
        assert _without(s_got) == _without(s_ref) and s_ref["snn"]["sops_per_sample"] > 0
    r = run("verify", bundles["dual"], "--against", "torch", "--samples", "20", "--json")
    d = _json(r)
    assert d["exact"] is True and d["backend"] == "torch" and d["mismatches"] == 0 and d["spikes_compared"] > 0
    r = run("stats", bundles["if"], "--samples", "4", "--backend", "torch")
    assert r.exit_code == 0 and "counted on torch (cpu)" in r.stdout


def test_eval_torch_equals_reference(tmp_path):
    pytest.importorskip("torch")
    args = ["eval", DIGITS_MODEL, "--data", DIGITS_DATA, "--timesteps", "2,4", "--schedule", "layerwise,pipelined",
            "--samples", "30", "--json"]
    ref = _json(run(*args, "--backend", "reference"))
    got = _json(run(*args))
    assert {r["backend"] for r in ref["results"]} == {"reference"}
    assert {r["backend"] for r in got["results"]} == {"torch"}
    assert _without(got) == _without(ref)
    r = run(*args[:-1], "--backend", "torch")
    assert r.exit_code == 0 and "simulated on torch (cpu)" in r.stdout


def test_report_names_the_backend(bundles, tmp_path):
    pytest.importorskip("torch")
    r = run("report", bundles["if"], "--samples", "3", "-o", tmp_path / "rep", "--backend", "torch")
    assert r.exit_code == 0, r.output
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "simulated on" in page and "pipelined torch (cpu)" in page and "layerwise torch (cpu)" in page


def test_a_cpu_run_of_a_command_never_imports_the_cuda_code(bundles):
    """`snnc simulate` / `stats` with the default backend (torch) on the CPU, in a fresh process."""
    import subprocess
    import sys
    import textwrap

    pytest.importorskip("torch")
    code = textwrap.dedent(f"""
        import sys
        from snnc.compiler.tools.cli import cli
        for cmd in (["simulate", {str(bundles['if'])!r}, "--samples", "3", "--json"],
                    ["stats", {str(bundles['if'])!r}, "--samples", "3"]):
            try:
                cli.main(cmd, standalone_mode=False)
            except SystemExit as e:
                assert not e.code, e.code
        assert "snnc.backends.torch.simulator" in sys.modules
        assert "snnc.backends.torch.cuda" not in sys.modules
        print("CPU-ONLY-OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "CPU-ONLY-OK" in r.stdout, r.stderr
    assert '"backend": "torch"' in r.stdout
