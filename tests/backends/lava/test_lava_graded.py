"""Graded max-pool units on Lava (``GradedMaxPoolUnit``, backends/lava/processes.py): spike for
spike, message for message and readout for readout equal to the reference simulator, both codings,
every consumer kind (readout, multi-threshold population, another graded unit), padded and
overlapping windows, and the shipped max-pool digits CNN."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from snnc.backends.base import BackendUnavailableError

pytestmark = pytest.mark.lava

try:
    from snnc.backends.lava.compat import ensure_lava

    ensure_lava()
except BackendUnavailableError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"lava-nc not available: {e}", allow_module_level=True)

from snnc_testutil import REPO, assert_same_run  # noqa: E402

from snnc.backends.lava.backend import LavaBackend  # noqa: E402
from snnc.backends.lava.emit import build  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import DifferentialCoding, RateCoding  # noqa: E402

_spec = importlib.util.spec_from_file_location("snnc_test_graded_ref", REPO / "tests/backends/reference/test_graded.py")
ref_graded = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref_graded)

CODINGS = [RateCoding(), DifferentialCoding(8)]


@pytest.mark.parametrize("coding", CODINGS, ids=["rate", "differential"])
@pytest.mark.parametrize("kernel, stride, padding", ref_graded.GEOMETRIES[:2])
@pytest.mark.parametrize("consumer, chain", [("readout", False), ("population", True)])
def test_graded_units_match_the_reference(coding, kernel, stride, padding, consumer, chain):
    net = ref_graded.build(coding, T=4, kernel=kernel, stride=stride, padding=padding, consumer=consumer, chain=chain)
    x = ref_graded._x(B=3)
    ref = simulate(net, x, "pipelined", record=True)
    assert np.any(ref.counts["pool"] != 0)
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert_same_run(ref, got)


@pytest.mark.parametrize("coding", ["rate", "differential"])
def test_maxpool_digits_cnn_is_identical_on_lava(coding):
    from snnc.compiler.api import compile_imported, import_model
    from snnc.compiler.tools.runner import reference_runner
    from snnc.compiler.config import CompileConfig

    digits = REPO / "examples" / "digits"
    net = compile_imported(import_model(digits / "relu_maxpool_cnn.onnx"), CompileConfig(
        neuron="multi-threshold", mt_n=4, coding=coding, timesteps=4, calibration_data=str(digits / "calib.npz"),
        schedule="pipelined"), runner=reference_runner)
    assert sum(type(n).__name__ == "GradedMaxPool" for n in net.nodes) == 2
    x = np.load(digits / "test.npz")["x"][:3]
    ref = simulate(net, x, "pipelined", record=True)
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert_same_run(ref, got)


def test_layerwise_is_refused_naming_the_unit():
    net = ref_graded.build(RateCoding(), T=3)
    with pytest.raises(NotImplementedError, match="graded max-pool unit 'pool': graded units run only in the pipelined"):
        build(net, ref_graded._x(B=1), "layerwise")
