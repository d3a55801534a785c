"""The torch backend on a CUDA device equals the reference simulator. Runs only where a GPU exists
(skipped on CPU-only machines, where this path is untested)."""

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device here: the CUDA path is untested on this machine", allow_module_level=True)

from snnc_torch_testutil import assert_same_result  # noqa: E402

from snnc.backends.reference import simulate as reference  # noqa: E402
from snnc.backends.torch import TorchBackend, simulate  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("model,kw", [("qcfs_cnn.onnx", {}), ("qcfs_cnn.onnx", {"neuron": "dual-threshold"}),
                                      ("resnet_digits.onnx", {}),
                                      ("relu_maxpool_cnn.onnx", {"neuron": "multi-threshold", "coding": "differential",
                                                                 "schedule": "pipelined", "timesteps": 4,
                                                                 "calibration_data": str(REPO / "examples/digits/calib.npz")})])
def test_cuda_equals_reference(model, kw):
    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.tools.runner import reference_runner

    net, _ = compile_model(REPO / "examples" / "digits" / model, CompileConfig(**kw), runner=reference_runner)
    x = np.load(REPO / "examples" / "digits" / "test.npz")["x"][:64]
    be = TorchBackend(device="cuda")
    for schedule in ("pipelined", "layerwise"):
        try:
            ref = reference(net, x, schedule, record=True, count_ops=True)
        except NotImplementedError:
            continue
        assert_same_result(ref, be.simulate(net, x, schedule, record=True, count_ops=True))


def test_cuda_int64_projection_and_adversarial_float32():
    """The int64 path (computed on the CPU) and sums just below 2^24 in float32 on the GPU."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_exactness_cases", Path(__file__).with_name("test_exactness.py"))
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    counts_net, odd_weights, readout_net = cases.counts_net, cases.odd_weights, cases.readout_net

    for net, sched in ((counts_net(2**47 + 1, 64, theta=4), "layerwise"),
                       (readout_net(odd_weights(2**24 - 1, 7)), "pipelined")):
        x = np.ones((2,) + tuple(net.inputs[0].shape))
        assert_same_result(reference(net, x, sched), simulate(net, x, sched, device="cuda"))
