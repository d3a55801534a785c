"""Tests for the VGG-16 QCFS model of the energy benchmark (examples/models/vgg.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from torch import nn  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples" / "models"))
import vgg  # noqa: E402
from qcfs import QuantClip  # noqa: E402

CFG_D = [64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"]


def _macs_from_modules(model: nn.Sequential, input_size: int) -> tuple[int, int]:
    """Conv and linear MACs by walking the torch layers (independent of vgg16_conv_macs)."""
    hw, conv, linear = input_size, 0, 0
    for m in model:
        if isinstance(m, nn.Conv2d):
            kh, kw = m.kernel_size
            hw = (hw + 2 * m.padding[0] - kh) // m.stride[0] + 1
            conv += m.out_channels * hw * hw * m.in_channels * kh * kw
        elif isinstance(m, nn.AvgPool2d):
            hw //= 2
        elif isinstance(m, nn.Linear):
            linear += m.in_features * m.out_features
    return conv, linear


def test_vgg16_structure_and_parameter_count():
    model = vgg.build_vgg16(num_classes=100, input_size=32, classifier=(4096, 4096))
    kinds = [type(m).__name__ for m in model]
    assert kinds.count("Conv2d") == 13 and kinds.count("BatchNorm2d") == 13
    assert kinds.count("AvgPool2d") == 5 and kinds.count("Linear") == 3 and kinds.count("QuantClip") == 15
    assert not any(isinstance(m, (nn.MaxPool2d, nn.Dropout, nn.ReLU)) for m in model.modules())
    # configuration D, each conv followed by BN + QuantClip
    got = []
    for i, m in enumerate(model):
        if isinstance(m, nn.Conv2d):
            assert m.kernel_size == (3, 3) and m.padding == (1, 1) and m.stride == (1, 1)
            assert isinstance(model[i + 1], nn.BatchNorm2d) and isinstance(model[i + 2], QuantClip)
            got.append(m.out_channels)
        elif isinstance(m, nn.AvgPool2d):
            got.append("P")
    assert got == CFG_D
    lin = [m for m in model if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in lin] == [(512, 4096), (4096, 4096), (4096, 100)]
    assert isinstance(model[-1], nn.Linear)
    # parameter count by hand: conv W+b, BN gamma+beta, one lam per QuantClip, linear W+b
    expected, cin = 0, 3
    for v in CFG_D:
        if v != "P":
            expected += cin * v * 9 + v + 2 * v + 1
            cin = v
    expected += (512 * 4096 + 4096 + 1) + (4096 * 4096 + 4096 + 1) + (4096 * 100 + 100)
    assert sum(p.numel() for p in model.parameters()) == expected == 34_015_411


def test_vgg16_macs_hand_count():
    model = vgg.build_vgg16(100, 32, (4096, 4096))
    conv, linear = _macs_from_modules(model, 32)
    assert (conv, linear) == (313_196_544, 19_283_968)
    m = vgg.vgg16_conv_macs(32, 100, (4096, 4096))
    assert (m["conv"], m["linear"], m["total"]) == (conv, linear, conv + linear)
    assert len(m["per_layer"]) == 16
    # a larger input and another classifier
    model = vgg.build_vgg16(10, 64, (64, 32))
    conv, linear = _macs_from_modules(model, 64)
    m = vgg.vgg16_conv_macs(64, 10, (64, 32))
    assert (m["conv"], m["linear"]) == (conv, linear) and linear == 2048 * 64 + 64 * 32 + 32 * 10
    with pytest.raises(ValueError):
        vgg.vgg16_conv_macs(48)


@pytest.fixture(scope="module")
def small_vgg():
    model = vgg.make_vgg16(num_classes=10, input_size=32, classifier=(64, 64), seed=0)
    return model


def test_make_vgg16_calibrated(small_vgg):
    assert not small_vgg.training
    lams = [float(m.lam.detach()) for m in small_vgg if isinstance(m, QuantClip)]
    assert len(lams) == 15 and all(lam > 1e-3 and lam != 1.0 for lam in lams)
    # activations neither dead nor saturated on fresh random inputs
    h = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for m in small_vgg:
            h = m(h)
            if isinstance(m, QuantClip):
                lv = torch.round(h / m.lam * m.levels)
                assert 0.05 < float((lv > 0).float().mean()) < 0.95
                assert float((lv == m.levels).float().mean()) < 0.2
    assert h.shape == (2, 10) and torch.isfinite(h).all()
    # deterministic in the seed
    again = vgg.make_vgg16(num_classes=10, input_size=32, classifier=(64, 64), seed=0)
    for a, b in zip(small_vgg.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)


def test_small_vgg_exports_compiles_and_verifies_exact(small_vgg, tmp_path):
    from snnc.compiler.api import compile_model
    from snnc.compiler.tools.verify import verify_against_ann

    path = vgg.export_onnx(small_vgg, tmp_path / "vgg_small.onnx", "legacy", input_shape=(1, 3, 32, 32))
    net, raw = compile_model(path)
    assert len(net.populations) == 15  # 13 conv + 2 hidden fc, the readout is not a population
    assert net.metadata["ann_macs_total"] == vgg.vgg16_conv_macs(32, 10, (64, 64))["total"]
    x = np.random.default_rng(0).random((2, 3, 32, 32)).astype(np.float32)
    rep = verify_against_ann(net, x, None, "layerwise", raw)
    assert rep.exact, rep.to_dict()
    assert rep.neurons_mismatched == 0 and rep.neurons_compared > 0
