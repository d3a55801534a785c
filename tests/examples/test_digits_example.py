"""Tests for the digits QCFS example (examples/digits, examples/models/qcfs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
MODEL = DIGITS / "qcfs_cnn.onnx"
TEST_NPZ = DIGITS / "test.npz"

sys.path.insert(0, str(REPO / "examples" / "models"))
import qcfs  # noqa: E402

CHAIN = {
    "floor": ["Mul", "Div", "Floor", "Clip", "Mul", "Div"],
    "round": ["Mul", "Div", "Add", "Floor", "Clip", "Mul", "Div"],
    "ceil": ["Mul", "Div", "Ceil", "Clip", "Mul", "Div"],
}


def _session(path: Path) -> "ort.InferenceSession":
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _count_chain(ops: list[str], chain: list[str]) -> int:
    return sum(ops[i : i + len(chain)] == chain for i in range(len(ops) - len(chain) + 1))


def test_test_npz_keys_shapes_dtypes():
    with np.load(TEST_NPZ) as d:
        assert sorted(d.files) == ["x", "y"]
        x, y = d["x"], d["y"]
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.ndim == 4 and x.shape[1:] == (1, 8, 8)
    assert y.shape == (x.shape[0],)
    assert 300 <= x.shape[0] <= 400
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert set(np.unique(y).tolist()) == set(range(10))


def test_shipped_model_accuracy_onnxruntime():
    with np.load(TEST_NPZ) as d:
        x, y = d["x"], d["y"]
    sess = _session(MODEL)
    assert [i.name for i in sess.get_inputs()] == ["x"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    logits = sess.run(["logits"], {"x": x})[0]  # whole split in one batch: dynamic batch dimension
    assert logits.shape == (len(y), 10)
    acc = float((logits.argmax(1) == y).mean())
    assert acc >= 0.9, acc


def test_shipped_model_has_qcfs_chains():
    m = onnx.load(str(MODEL))
    ops = [n.op_type for n in m.graph.node if n.op_type != "Constant"]
    assert _count_chain(ops, CHAIN["round"]) == 3, ops
    assert ops.count("Conv") == 2 and ops.count("Gemm") == 2 and ops.count("AveragePool") == 1


@pytest.mark.parametrize("quantizer", qcfs.QUANTIZERS)
def test_quantclip_eval_formula(quantizer):
    L, lam = 4, 1.7
    act = qcfs.QuantClip(L, quantizer, lam).eval()
    x = torch.linspace(-1.0, 3.0, 401)
    q = {"floor": np.floor, "round": lambda v: np.floor(v + 0.5), "ceil": np.ceil}[quantizer]
    xn = x.numpy().astype(np.float64)
    ref = lam * np.clip(q(xn * L / lam), 0, L) / L
    with torch.no_grad():
        got = act(x).numpy()
    # compare away from quantization boundaries (float32 vs float64 rounding)
    v = xn * L / lam
    off = np.abs(v - np.round(v * 2) / 2) > 1e-4
    np.testing.assert_allclose(got[off], ref[off], atol=1e-6)
    assert len(np.unique(got)) == L + 1


@pytest.mark.parametrize("exporter", qcfs.EXPORTERS)
@pytest.mark.parametrize("quantizer", qcfs.QUANTIZERS)
def test_export_matches_torch(tmp_path, exporter, quantizer):
    model = qcfs.make_random_qcfs_net(quantizer, levels=4, seed=1)
    assert not model.training
    path = tmp_path / f"{exporter}_{quantizer}.onnx"
    qcfs.export_onnx(model, path, exporter=exporter)

    ops = [n.op_type for n in onnx.load(str(path)).graph.node if n.op_type != "Constant"]
    assert _count_chain(ops, CHAIN[quantizer]) == 3, ops

    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = model(x).numpy()
        hidden = model[:3](x).numpy()
    # the random net must exercise the quantizer (neither all-zero nor saturated everywhere)
    assert 0.05 < float((hidden > 0).mean()) < 0.95
    assert np.ptp(ref, axis=0).max() > 1e-3  # outputs differ between the samples

    got = _session(path).run(["logits"], {"x": x.numpy()})[0]
    assert got.shape == (3, 10)
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
