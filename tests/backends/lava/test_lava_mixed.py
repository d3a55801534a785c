"""Mixed quantization levels on Lava (docs/lava.md, docs/ir.md "Mixed levels"): in the layerwise schedule
each population's process runs its own tau_p = L steps with its state scaled by tau_p (threshold,
V0, bias and the dual-threshold neuron's negative threshold); spike for spike and count for count
identical to the reference simulator. The pipelined schedule is refused naming the layers."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest

from snnc_testutil import REPO, assert_same_run, make_mlp_onnx

from snnc.backends.base import BackendUnavailableError

pytestmark = pytest.mark.lava

try:
    from snnc.backends.lava.compat import ensure_lava

    ensure_lava()
except BackendUnavailableError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"lava-nc not available: {e}", allow_module_level=True)

from snnc.backends.lava.backend import LavaBackend  # noqa: E402
from snnc.backends.lava.emit import build  # noqa: E402
from snnc.ir import Schedule  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.compiler.api import compile_imported, compile_model, import_model  # noqa: E402
from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.compiler.tools.verify import verify_against_ann, verify_against_backend  # noqa: E402
from snnc.ir import IRValidationError  # noqa: E402


@pytest.fixture(scope="module")
def lava():
    return LavaBackend()


@pytest.mark.parametrize("neuron", ["if", "dual-threshold"])
def test_mixed_mlp_identical_on_lava(tmp_path, lava, neuron):
    path = tmp_path / "mlp.onnx"
    onnx.save(make_mlp_onnx(seed=1, L=[2, 5, 3], hidden=(12, 8, 6)), path)
    net, raw = compile_model(path, CompileConfig(neuron=neuron))
    assert net.mixed_steps == {"fc1": 2, "fc2": 5, "fc3": 3} and net.timesteps == 5
    x = np.random.default_rng(0).uniform(0, 1, (6, 6)).astype(np.float32)
    ref = simulate(net, x, Schedule.LAYERWISE, record=True)
    got = lava.run(net, x, Schedule.LAYERWISE, record=True)
    assert_same_run(ref, got)
    assert {k: v.shape[0] for k, v in got.spikes.items()} == net.mixed_steps
    assert got.latency_steps == ref.latency_steps == 10
    rep = verify_against_backend(net, x, lava, Schedule.LAYERWISE)
    assert rep.exact and rep.mismatches == 0 and rep.steps_compared == 10, rep.first_mismatch
    assert verify_against_ann(net, x, None, Schedule.LAYERWISE, raw).exact
    with pytest.raises(IRValidationError, match=r"'fc1' L=2, 'fc2' L=5, 'fc3' L=3"):
        build(net, x, Schedule.PIPELINED)
    lb = build(net, x, Schedule.LAYERWISE)            # each process: its own steps, state scaled by them
    for p in net.populations:
        proc = lb.processes[p.name]
        assert int(proc.timing.init[1]) == net.steps(p)
        assert lb.end[p.name] - lb.start[p.name] + 1 == net.steps(p)
        np.testing.assert_array_equal(np.unique(proc.thr.init), np.unique(net.steps(p) * p.threshold))


@pytest.mark.parametrize("neuron", ["if", "dual-threshold"])
def test_mixed_cnn_with_maxpool_identical_on_lava(tmp_path, lava, neuron):
    torch = pytest.importorskip("torch")
    from torch import nn

    sys.path.insert(0, str(REPO / "examples" / "models"))
    import resnet
    from qcfs import QuantClip, export_onnx

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c0, self.a0, self.mp = nn.Conv2d(2, 3, 3, 1, 1), QuantClip(6, "round", 1.0), nn.MaxPool2d(2)
            self.c1, self.a1 = nn.Conv2d(3, 4, 3, 1, 1), QuantClip(2, "floor", 1.0)
            self.gap, self.fc = nn.AdaptiveAvgPool2d(1), nn.Linear(4, 3)

        def forward(self, x):
            h = self.a1(self.c1(self.mp(self.a0(self.c0(x)))))
            return self.fc(torch.flatten(self.gap(h), 1))

    torch.manual_seed(0)
    model = resnet.calibrate_(Net(), (2, 6, 6), seed=0)
    imp = import_model(export_onnx(model, tmp_path / "cnn.onnx", input_shape=(1, 2, 6, 6)))
    net = compile_imported(imp, CompileConfig(neuron=neuron))
    assert net.timesteps == 6 and net.mixed_steps["conv2"] == 2 and net.mixed_steps["mpool1"] == 6
    x = np.random.default_rng(1).uniform(0, 1, (3, 2, 6, 6)).astype(np.float32)
    rep = verify_against_backend(net, x, lava, Schedule.LAYERWISE)
    assert rep.exact and rep.mismatches == 0, rep.first_mismatch
    assert verify_against_ann(net, x, None, Schedule.LAYERWISE, None).exact
