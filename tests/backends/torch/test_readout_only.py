"""``keep=Keep.READOUTS``: the result says what it holds, refuses what it dropped in one clear error, and
the torch backend never builds the dropped parts (no hidden counts accumulated, no int64 copies)."""

import pickle
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from snnc_torch_testutil import assert_same_readouts  # noqa: E402

from snnc.backends.base import Keep, NotKeptError, get_backend  # noqa: E402
from snnc.backends.reference import simulate as reference  # noqa: E402
from snnc.backends.torch import TorchBackend, simulate  # noqa: E402

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def digits():
    from snnc.compiler.api import compile_model
    from snnc.compiler.tools.runner import reference_runner

    net, _ = compile_model(REPO / "examples" / "digits" / "qcfs_cnn.onnx", runner=reference_runner)
    return net, np.load(REPO / "examples" / "digits" / "test.npz")["x"][:24]


@pytest.mark.parametrize("schedule", ["pipelined", "layerwise"])
def test_backend_run_keeps_readouts_only(digits, schedule):
    net, x = digits
    full = reference(net, x, schedule)
    for name in ("torch", "reference"):
        got = get_backend(name).run(net, x, schedule, keep=Keep.READOUTS)
        assert_same_readouts(full, got)
    pop = net.populations[0].name
    with pytest.raises(NotKeptError, match=f"counts\\['{pop}'\\] was not kept.*keep=Keep.ALL"):
        got.activation(net, pop)
    with pytest.raises(NotKeptError, match="final_v"):
        got.final_v[pop]


def test_pipelined_never_accumulates_hidden_counts(digits, monkeypatch):
    """The pipelined run keeps no counts or encoded sums of inputs or populations while it runs."""
    from snnc.backends.torch import pipelined

    net, x = digits
    seen = {}
    orig = pipelined.Pipelined._result

    def spy(self):
        seen["counts"], seen["encoded"] = dict(self.counts), dict(self.encoded)
        return orig(self)

    monkeypatch.setattr(pipelined.Pipelined, "_result", spy)
    simulate(net, x, "pipelined", keep=Keep.READOUTS)
    assert seen == {"counts": {}, "encoded": {}}
    simulate(net, x, "pipelined")
    assert set(seen["counts"]) == {n.name for n in net.nodes if n.name not in {r.name for r in net.readouts}}


def test_layerwise_frees_each_layers_counts_and_copies_nothing(digits, monkeypatch):
    """Layerwise converts only the readouts to int64 (no copies of counts or states)."""
    from snnc.backends.torch import layerwise

    net, x = digits
    converted = []
    orig = layerwise._np64
    monkeypatch.setattr(layerwise, "_np64", lambda t: converted.append(tuple(t.shape)) or orig(t))
    simulate(net, x, "layerwise", keep=Keep.READOUTS)
    assert converted == [(len(x),) + tuple(r.shape) for r in net.readouts]


def test_keep_is_typed_and_refuses_recording(digits):
    net, x = digits
    for run in (reference, simulate):
        with pytest.raises(TypeError, match="Keep"):
            run(net, x, "pipelined", keep="readouts")
        with pytest.raises(ValueError, match="record=True.*Keep.ALL"):
            run(net, x, "pipelined", record=True, keep=Keep.READOUTS)


def test_readout_only_result_pickles_with_what_it_holds(digits):
    net, x = digits
    got = pickle.loads(pickle.dumps(TorchBackend().run(net, x, "pipelined", keep=Keep.READOUTS)))
    assert got.kept is Keep.READOUTS and list(got.final_v) == [r.name for r in net.readouts]
    with pytest.raises(NotKeptError):
        got.counts[net.populations[-1].name]
