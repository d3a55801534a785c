"""Issue criterion: the shipped digits model and the exported floor/round/ceil models (both torch
exporters) are identical on Lava and on the reference simulator, in both schedules, on 4 samples."""

import subprocess
import sys

import numpy as np
import pytest

from snnc.backends import get_backend
from snnc.ir import Schedule
from snnc.compiler.api import compile_model
from snnc.compiler.tools.verify import verify_against_backend

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL, load_example_models_module

pytest.importorskip("lava")
pytestmark = pytest.mark.lava

X4 = np.load(DIGITS_DATA)["x"][:4]


@pytest.fixture(scope="module")
def lava():
    return get_backend("lava")


@pytest.mark.parametrize("schedule", list(Schedule))
def test_digits_identical_on_lava(lava, schedule):
    net, _ = compile_model(DIGITS_MODEL)
    rep = verify_against_backend(net, X4, lava, schedule)
    assert rep.exact, rep.first_mismatch
    assert rep.spikes_compared == 4 * 4 * (512 + 1024 + 64)
    assert rep.extra["lava_version"] == "0.10.0"


@pytest.mark.parametrize("exporter,quantizer", [("legacy", "floor"), ("dynamo", "round"), ("legacy", "ceil"),
                                                ("dynamo", "floor"), ("legacy", "round"), ("dynamo", "ceil")])
def test_exported_models_identical_on_lava(tmp_path, lava, exporter, quantizer):
    pytest.importorskip("torch")
    qcfs = load_example_models_module()
    path = qcfs.export_onnx(qcfs.make_random_qcfs_net(quantizer, 4, seed=5), tmp_path / "m.onnx", exporter=exporter)
    net, _ = compile_model(path)
    for schedule in Schedule:
        rep = verify_against_backend(net, X4, lava, schedule)
        assert rep.exact, (schedule, rep.first_mismatch)


def test_lava_imports_after_the_start_method_was_fixed():
    """tqdm or a test runner may fix multiprocessing's start method before Lava's import-time
    set_start_method('fork'); ensure_lava must still work."""
    code = ("import multiprocessing as mp; mp.set_start_method('spawn');"
            "from snnc.backends.lava.compat import ensure_lava; ensure_lava();"
            "import lava.proc.dense.process; print(mp.get_start_method())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fork"
