"""Issue 17's criterion on Lava: a ViT exported from torch, compiled training-free (multi-threshold:8, threshold
scale 4, differential coding, T = 2), runs on Lava with messages identical to the reference simulator's: every
population's graded spikes, every graded unit's messages (LayerNorm, Q K^T, softmax, A V, GELU) at every step,
and the readout. The committed MNIST ViT takes about three minutes per image on Lava's CPU simulator
(benchmarks/vit_mnist.py --lava records it: docs/vit_mnist.md, "On Lava"), so the test builds a reduced ViT
with the same model code (examples/models/vit.py) and the same exporter (torch.onnx dynamo): 28x28 MNIST
images, patches 7x7 (17 tokens), dim 16, one block of 2 heads and the committed model's MLP width 128 (its
re-encoding is a 128-group depthwise convolution, which Lava's own Conv model cannot hold)."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from snnc.backends.base import BackendUnavailableError
from snnc_testutil import REPO

pytestmark = pytest.mark.lava
torch = pytest.importorskip("torch")

try:
    from snnc.backends.lava.compat import ensure_lava

    ensure_lava()
except BackendUnavailableError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"lava-nc not available: {e}", allow_module_level=True)

from snnc.backends.lava.backend import LavaBackend  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.compiler.api import compile_imported, import_model  # noqa: E402
from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.compiler.tools.runner import reference_runner  # noqa: E402
from snnc.compiler.tools.verify import verify_against_backend  # noqa: E402
from snnc.ir import Conv2d, GradedFunctionUnit, Schedule  # noqa: E402

MNIST = REPO / "examples" / "mnist"


def _example(name: str):
    spec = importlib.util.spec_from_file_location(f"snnc_examples_{name}", REPO / "examples" / "models" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def reduced_vit(tmp_path_factory):
    torch.set_num_threads(1)
    vit, qcfs = _example("vit"), _example("qcfs")
    torch.manual_seed(0)
    model = vit.ViT(image_size=28, patch=7, in_channels=1, num_classes=10, dim=16, depth=1, heads=2,
                    mlp_dim=128, readout="cls").eval()
    path = tmp_path_factory.mktemp("vit") / "vit_dynamo.onnx"
    qcfs.export_onnx(model, path, exporter="dynamo", input_shape=(2, 1, 28, 28), external_data=False)
    cfg = CompileConfig(neuron="multi-threshold", mt_n=8, threshold_scale=4.0, coding="differential", timesteps=2,
                        frac_bits="8", calibration_data=str(MNIST / "calib.npz"))
    return compile_imported(import_model(path), cfg, runner=reference_runner)


def test_a_reduced_mnist_vit_runs_on_lava_message_for_message(reduced_vit):
    net = reduced_vit
    units = [n for n in net.nodes if isinstance(n, GradedFunctionUnit)]
    assert {type(u).__name__ for u in units} == {"GradedLayerNorm", "GradedMatMul", "GradedSoftmax", "GradedElementwise"}
    assert any(isinstance(p, Conv2d) and p.groups == 128 for p in net.projections)
    x = np.load(MNIST / "test.npz")["x"][:2]
    ref = simulate(net, x, Schedule.PIPELINED, record=True)
    wide = [p.target for p in net.projections if isinstance(p, Conv2d) and p.groups == 128]
    assert all(np.any(ref.spikes[n] != 0) for n in [u.name for u in units] + wide)   # nothing compared is all zeros
    rep = verify_against_backend(net, x, LavaBackend(), Schedule.PIPELINED)
    assert rep.exact, rep.first_mismatch
    T = net.timesteps
    assert rep.spikes_compared == 2 * T * sum(int(np.prod(p.shape)) for p in net.populations)
    assert rep.units_compared == len(units) and not rep.units_unchecked
    assert rep.unit_messages_compared == 2 * T * sum(int(np.prod(u.shape)) for u in units)
