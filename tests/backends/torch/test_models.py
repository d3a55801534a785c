"""Every model the repo compiles (the 31 golden networks: the digits zoo, the QCFS CNN with every neuron
and V0 option, residual nets, the training-free multi-threshold nets in both codings with graded
max-pool units, QDQ / QONNX / QCDQ imports, mixed levels) and the model zoo (VGG-16, ResNet-18,
ResNet-20, narrow): the torch backend equals the reference simulator on every field of SimResult, in
both schedules (where the reference refuses a schedule, the torch backend refuses it too), with spike
records and op counts."""

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from snnc_torch_testutil import assert_same_readouts, assert_same_result  # noqa: E402

from snnc.backends.base import Keep  # noqa: E402

from snnc.backends.reference import simulate as reference  # noqa: E402
from snnc.backends.torch import TorchBackend, simulate  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    import golden_networks

    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.tools.runner import reference_runner

    out = {}
    for name, path, kw in golden_networks.cases(tmp_path_factory.mktemp("golden")):
        out[name] = compile_model(path, CompileConfig(**kw), runner=reference_runner)[0]
    return out


def _inputs(net, n=12, seed=0):
    x = np.random.default_rng(seed).uniform(-0.1, 1.1, size=(n,) + tuple(net.inputs[0].shape))
    data = REPO / "examples" / "digits" / "test.npz"
    if tuple(net.inputs[0].shape) == (1, 8, 8):   # the digits models: real test images too
        x = np.concatenate([x, np.load(data)["x"][:n].reshape(n, 1, 8, 8)])
    return x


def _compare(net, x, schedule):
    try:
        ref = reference(net, x, schedule, record=True, count_ops=True)
    except (NotImplementedError, ValueError) as e:
        with pytest.raises(type(e)) as got:
            simulate(net, x, schedule, record=True, count_ops=True)
        assert str(got.value).split(":")[0] == str(e).split(":")[0]   # the same node is named
        return False
    assert_same_result(ref, simulate(net, x, schedule, record=True, count_ops=True))
    assert_same_result(reference(net, x, schedule), simulate(net, x, schedule, chunk_steps=1))
    return True


@pytest.mark.slow
def test_every_golden_network_both_schedules(golden):
    ran = {}
    for name, net in golden.items():
        for schedule in ("pipelined", "layerwise"):
            ran[(name, schedule)] = _compare(net, _inputs(net), schedule)
    assert len(golden) == 31
    # every network runs in at least one schedule; the refusals are the reference's own
    assert all(ran[(n, "pipelined")] or ran[(n, "layerwise")] for n in golden)
    assert sum(ran.values()) >= 50


@pytest.mark.slow
def test_every_golden_network_with_the_int8_gemm_forced(golden, monkeypatch):
    """Every projection the plan allows (weights and source values in int8, partial sums below 2^31) runs
    as an int8 GEMM, however shallow: the reference's result on all 31 networks, both schedules."""
    from snnc.backends.torch import linear
    from snnc.backends.torch.linear import TorchProjection

    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 0)
    monkeypatch.setattr(linear, "INT8_MIN_OUTPUTS", 0)
    used = set()
    real = TorchProjection._apply_int8
    monkeypatch.setattr(TorchProjection, "_apply_int8", lambda self, *a: used.add(self.p.name) or real(self, *a))
    for name, net in golden.items():
        for schedule in ("pipelined", "layerwise"):
            _compare(net, _inputs(net, n=6), schedule)
    assert len(used) >= 15   # distinct projection names (networks share names such as conv1->conv2)


@pytest.mark.slow
def test_readout_only_runs_equal_the_full_run_on_every_golden_network(golden):
    """keep=Keep.READOUTS (torch, both schedules, one chunk and step by step; the reference): readouts,
    predictions, ops and max_abs_state bit-identical to the full run, and no hidden counts."""
    ran = 0
    for name, net in golden.items():
        x = _inputs(net)
        for schedule in ("pipelined", "layerwise"):
            try:
                full = reference(net, x, schedule, count_ops=True)
            except (NotImplementedError, ValueError):
                continue
            assert_same_readouts(full, reference(net, x, schedule, count_ops=True, keep=Keep.READOUTS))
            for chunk in (None, 1):
                assert_same_readouts(full, simulate(net, x, schedule, count_ops=True, chunk_steps=chunk,
                                                    keep=Keep.READOUTS))
            assert_same_readouts(reference(net, x, schedule), simulate(net, x, schedule, keep=Keep.READOUTS))
            ran += 1
    assert ran >= 50


@pytest.mark.slow
@pytest.mark.parametrize("model", ["vgg16", "resnet18", "resnet20"])
def test_model_zoo_narrow(tmp_path, model, monkeypatch):
    """The zoo's architectures (examples/models), narrow so that they compile fast: folded average pools
    (unfolded by the torch backend: forced here, where the narrow layers would not pay for the window
    sum), residual joins with identity and 1x1 shortcuts."""
    from snnc.backends.torch import linear

    monkeypatch.setattr(linear, "POOL_COST", 0)
    sys.path.insert(0, str(REPO / "examples" / "models"))
    import resnet
    import vgg

    from snnc.compiler.api import compile_model
    from snnc.compiler.tools.runner import reference_runner

    build = {"vgg16": lambda: vgg.make_vgg16_scaled(num_classes=10, input_size=32, width=1 / 16, classifier=(32, 32)),
             "resnet18": lambda: resnet.make_resnet18(num_classes=10, input_size=32, width=0.125),
             "resnet20": lambda: resnet.make_resnet20(num_classes=10, input_size=32, width=0.5)}[model]
    path = tmp_path / f"{model}.onnx"
    vgg.export_onnx(build(), path, "legacy", input_shape=(1, 3, 32, 32))
    net, _ = compile_model(path, runner=reference_runner)
    x = np.random.default_rng(1).random((3, 3, 32, 32))
    for schedule in ("pipelined", "layerwise"):
        assert _compare(net, x, schedule)
    if model == "vgg16":
        from snnc.backends.torch import PreparedNetwork

        assert PreparedNetwork(net).unfolded()   # the folded pools do run unfolded


def test_backend_protocol_and_reuse():
    """TorchBackend.run (the Backend protocol) equals the reference, twice on the same prepared network."""
    from snnc.compiler.api import compile_model
    from snnc.compiler.tools.runner import reference_runner

    net, _ = compile_model(REPO / "examples" / "digits" / "qcfs_cnn.onnx", runner=reference_runner)
    x = np.load(REPO / "examples" / "digits" / "test.npz")["x"][:40]
    be = TorchBackend(num_threads=1)
    for schedule in ("pipelined", "layerwise"):
        for _ in range(2):
            assert_same_result(reference(net, x, schedule, record=True), be.run(net, x, schedule, record=True))
    assert be.prepared(net) is be.prepared(net)
