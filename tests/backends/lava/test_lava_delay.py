"""Skip connections in Lava's pipelined schedule: delay lines align sources at different depths.

Every projection adds one Lava step; a projection from depth d_s into a node at depth d goes through
a DelayLine of d - 1 - d_s steps (backends/lava/emit.py). Checked spike for spike against the
reference simulator on hand-built skip networks (including a skip from the input and a skip of
two layers), on the shipped digits ResNet and on a max-pool tournament.
"""

from __future__ import annotations

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
from snnc.backends.lava.processes import DelayLine  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import Conv2d, Dense, DualThreshold, Input, Network, Population, Readout  # noqa: E402


def skip_net(T, rng, neuron=None):
    """x -> a -> b -> c, plus x -> c (lag 2), a -> c (lag 1) and a -> out (lag 2)."""
    kw = dict(neuron=neuron) if neuron is not None else {}
    nodes = [Input("x", (2, 5, 5), qmin=0, qmax=7),
             Population("a", (3, 5, 5), threshold=60, v0=30, bias=2, levels=T, **kw),
             Population("b", (3, 5, 5), threshold=[90, 70, 110], v0=10, levels=T, **kw),
             Population("c", (4, 5, 5), threshold=[150, 120, 100, 130], v0=[5, 60, 0, 40], bias=-1, levels=T, **kw),
             Readout("out", (3,), v0=rng.integers(-9, 9, 3), bias=1)]

    def conv(name, s, d, cin, cout, e=0):
        return Conv2d(name, s, d, rng.integers(-40, 60, (cout, cin, 3, 3)), exponent=e, in_shape=(cin, 5, 5),
                      out_shape=(cout, 5, 5), padding=(1, 1, 1, 1))

    projs = [conv("xa", "x", "a", 2, 3), conv("ab", "a", "b", 3, 3, 1), conv("bc", "b", "c", 3, 4),
             conv("xc", "x", "c", 2, 4), conv("ac", "a", "c", 3, 4),
             Dense("cout", "c", "out", rng.integers(-128, 128, (3, 100)), exponent=2, in_shape=(4, 5, 5), out_shape=(3,)),
             Dense("aout", "a", "out", rng.integers(-128, 128, (3, 75)), exponent=1, in_shape=(3, 5, 5), out_shape=(3,))]
    return Network(nodes, projs, T)


@pytest.mark.parametrize("T", [1, 3, 5])
@pytest.mark.parametrize("neuron", [None, DualThreshold(neg_divisor=4)], ids=["if", "dual"])
def test_skip_connections_match_the_reference_pipelined(T, neuron):
    rng = np.random.default_rng(T)
    net = skip_net(T, rng, neuron)
    inp = net.inputs[0]
    x = rng.integers(0, inp.qmax + 1, (3,) + inp.shape).astype(np.float64) * inp.scale
    ref = simulate(net, x, "pipelined", record=True)
    assert all(0 < s.mean() < 1 for s in ref.spikes.values())  # every layer fires, none saturates
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert_same_run(ref, got)
    lb = build(net, x, "pipelined")
    lags = sorted(p.proc_params.get("name") for p in lb.processes.values() if isinstance(p, DelayLine))
    assert lags == ["a.delay1", "a.delay2", "x.delay2"]  # one line per (source, lag), shared by projections


def test_digits_resnet_runs_pipelined_on_lava_identically():
    """The shipped digits ResNet (3 residual joins) in the pipelined schedule (it needed delay lines)."""
    from snnc.compiler.api import compile_model

    net, _ = compile_model(REPO / "examples" / "digits" / "resnet_digits.onnx")
    x = np.load(REPO / "examples" / "digits" / "test.npz")["x"][:2]
    ref = simulate(net, x, "pipelined", record=True)
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert_same_run(ref, got)


def test_maxpool_tournament_runs_pipelined_on_lava_identically(tmp_path):
    """Max pooling of counts is a tournament of populations at several depths."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from snnc.compiler.api import compile_model
    from snnc_testutil import qcfs_nodes

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.5, (3, 1, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.normal(0.1, 0.1, 3).astype(np.float32), "b"),
             numpy_helper.from_array(rng.normal(0, 0.5, (4, 12)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.zeros(4, np.float32), "fb")]
    qn, qi = qcfs_nodes("act", "c", "a", lam=1.0, L=4, mode="round")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1])] + qn + [
        helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "mp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], inits + qi)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "mp.onnx")
    net, _ = compile_model(tmp_path / "mp.onnx")
    assert len(set(net.depth().values())) > 3  # the tournament spans several depths
    x = rng.uniform(0, 1, (3, 1, 4, 4))
    ref = simulate(net, x, "pipelined", record=True)
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert_same_run(ref, got)


@pytest.mark.parametrize("model", ["relu_resnet", "relu_resnet20"])
@pytest.mark.parametrize("coding", ["rate", "differential"])
def test_training_free_digits_resnet_is_identical_on_lava(coding, model):
    """The plain-ReLU digits ResNets converted training-free (paper 004, MT-4, T = 4): residual joins
    of multi-threshold populations, pipelined, both codings; relu_resnet20 is the model zoo's
    ResNet-20 (19 spiking layers, 9 residual joins)."""
    from snnc.compiler.api import compile_imported, import_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.tools.runner import reference_runner

    digits = REPO / "examples" / "digits"
    imp = import_model(digits / f"{model}.onnx")
    net = compile_imported(imp, CompileConfig(neuron="multi-threshold", mt_n=4, coding=coding, timesteps=4,
                                              calibration_data=str(digits / "calib.npz"), schedule="pipelined"), runner=reference_runner)
    depth = net.depth()
    assert any(depth[p.target] - 1 > depth[p.source] for p in net.projections)  # it has skip connections
    x = np.load(digits / "test.npz")["x"][:2]
    ref = simulate(net, x, "pipelined", record=True)
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert_same_run(ref, got)
