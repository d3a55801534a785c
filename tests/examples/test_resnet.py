"""The model zoo (examples/models/resnet.py, vgg.py's scaled VGG-16) and the trained digits ResNet.

Each zoo model is exported with both torch exporters, compiled for loihi and verified exact
(layerwise, T = L) on random inputs; narrow widths keep every test short (full widths:
benchmarks/zoo_bench.py).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
from torch import nn  # noqa: E402

from snnc.ir import Schedule  # noqa: E402
from snnc.compiler.api import compile_model  # noqa: E402
from snnc.compiler.tools.verify import verify_against_ann  # noqa: E402
from snnc.ir import Conv2d  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples" / "models"))
import resnet  # noqa: E402
import vgg  # noqa: E402
from qcfs import QuantClip  # noqa: E402

DIGITS = REPO / "examples" / "digits"


def _hand_count(widths, blocks, stem_k, cin, classes):
    """Parameters of a QCFS ResNet counted from the architecture: convs without bias, BN gamma+beta,
    one lambda per activation, option-B shortcuts where the shape changes, the fc."""
    n = cin * widths[0] * stem_k * stem_k + 2 * widths[0] + 1
    c = widths[0]
    for i, (w, b) in enumerate(zip(widths, blocks)):
        for j in range(b):
            n += c * w * 9 + 2 * w + 1 + w * w * 9 + 2 * w + 1
            if (i > 0 and j == 0) or c != w:
                n += c * w + 2 * w
            c = w
    return n + c * classes + classes


def test_resnet_structures_and_parameter_counts():
    r18 = resnet.build_resnet18(num_classes=1000, input_size=224)
    assert resnet.count_blocks(r18) == {"identity": 5, "projection": 3}
    n18 = sum(p.numel() for p in r18.parameters())
    assert n18 == _hand_count((64, 128, 256, 512), (2, 2, 2, 2), 7, 3, 1000)
    assert n18 - 17 == 11_689_512  # torchvision's resnet18, plus one lambda per QuantClip
    assert isinstance(r18.stem[3], nn.AvgPool2d) and sum(isinstance(m, QuantClip) for m in r18.modules()) == 17
    assert not any(isinstance(m, (nn.ReLU, nn.MaxPool2d)) for m in r18.modules())
    c18 = resnet.build_resnet18(num_classes=10, input_size=32)
    assert c18.stem[0].kernel_size == (3, 3) and len(c18.stem) == 3  # CIFAR stem
    r20 = resnet.build_resnet20(num_classes=10)
    assert resnet.count_blocks(r20) == {"identity": 7, "projection": 2}
    n20 = sum(p.numel() for p in r20.parameters())
    assert n20 == _hand_count((16, 32, 64), (3, 3, 3), 3, 3, 10)
    assert 0.27e6 < n20 < 0.28e6  # He et al.: 0.27M
    assert sum(isinstance(m, QuantClip) for m in r20.modules()) == 19
    m = resnet.build_resnet18(input_size=224, stem_pool="max")
    assert isinstance(m.stem[3], nn.MaxPool2d)


def test_calibrated_resnet_is_alive():
    model = resnet.make_resnet20(width=0.5, seed=0)
    lams = [float(m.lam.detach()) for m in model.modules() if isinstance(m, QuantClip)]
    assert all(lam > 1e-3 and lam != 1.0 for lam in lams)
    outs = []
    hooks = [m.register_forward_hook(lambda m, i, o: outs.append((o / m.lam * m.levels).round()))
             for m in model.modules() if isinstance(m, QuantClip)]
    with torch.no_grad():
        y = model(torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(5)))
    for h in hooks:
        h.remove()
    assert y.shape == (4, 10) and torch.isfinite(y).all()
    for lv in outs:  # neither dead nor saturated
        assert 0.05 < float((lv > 0).float().mean()) < 0.97 and float((lv == 4).float().mean()) < 0.3


ZOO = {
    "vgg16": lambda size: vgg.make_vgg16_scaled(num_classes=10, input_size=size, width=1 / 16, classifier=(32, 32)),
    "resnet18": lambda size: resnet.make_resnet18(num_classes=10, input_size=size, width=1 / 8),
    "resnet20": lambda size: resnet.make_resnet20(num_classes=10, input_size=size, width=0.5),
}
POPULATIONS = {"vgg16": 15, "resnet18": 17, "resnet20": 19}


def _compile_verify(model, tmp_path, exporter, size, n=2):
    path = vgg.export_onnx(model, tmp_path / "m.onnx", exporter, input_shape=(1, 3, size, size))
    net, raw = compile_model(path)
    x = np.random.default_rng(0).random((n, 3, size, size)).astype(np.float32)
    rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, raw)
    assert rep.exact and rep.neurons_mismatched == 0 and rep.neurons_compared > 0, rep.to_dict()
    assert rep.prediction_agreement["snn_vs_ann_int"] == 1.0
    return net


@pytest.mark.parametrize("exporter", ["legacy", "dynamo"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_32x32_compiles_and_verifies_exact(tmp_path, name, exporter):
    net = _compile_verify(ZOO[name](32), tmp_path, exporter, 32)
    assert net.timesteps == 4 and len(net.populations) == POPULATIONS[name]
    joins = [L for L in net.metadata["layers"] if L.get("onnx_linears")]
    if name == "vgg16":
        assert not joins
    else:  # every block's second activation joins its two branches
        assert len(joins) == {"resnet18": 8, "resnet20": 9}[name]
        shortcuts = [p for p in net.projections if isinstance(p, Conv2d) and p.groups > 1]
        assert len(shortcuts) == {"resnet18": 5, "resnet20": 7}[name]  # the identity shortcuts


def test_resnet18_224x224_imagenet_stem_is_exact(tmp_path):
    """ImageNet-size input (narrow): the stem's average pool feeds both the first block's conv (folded
    into it) and its identity shortcut (a pooled identity: a depthwise 2x2 stride-2 projection)."""
    net = _compile_verify(resnet.make_resnet18(num_classes=10, input_size=224, width=1 / 16, n_calib=2),
                          tmp_path, "legacy", 224, n=1)
    stem_sc = [p for p in net.incoming("conv3") if p.source == "conv1"]
    assert len(stem_sc) == 1 and stem_sc[0].stride == (2, 2) and stem_sc[0].groups == 4


@pytest.mark.parametrize("name", ["resnet20", "vgg16"])
def test_zoo_224x224_compiles(tmp_path, name):
    model = {"resnet20": lambda: resnet.make_resnet20(input_size=224, width=1 / 16, n_calib=2),
             "vgg16": lambda: vgg.make_vgg16_scaled(num_classes=10, input_size=224, width=1 / 32, classifier=(16, 16),
                                                    n_calib=2)}[name]()
    net, _ = compile_model(vgg.export_onnx(model, tmp_path / "m224.onnx", "legacy", input_shape=(1, 3, 224, 224)))
    assert len(net.populations) == POPULATIONS[name] and net.inputs[0].shape == (3, 224, 224)


def test_resnet18_with_max_pool_stem_is_exact(tmp_path):
    model = resnet.make_resnet18(num_classes=10, input_size=64, width=1 / 16, stem="imagenet", stem_pool="max")
    net = _compile_verify(model, tmp_path, "legacy", 64)
    roles = [L.get("role") for L in net.metadata["layers"]]
    assert roles.count("maxpool output") == 1 and roles.count("maxpool relu(b - a)") == 8  # 3x3 window


def test_shipped_digits_resnet_is_exact_and_as_accurate_as_recorded():
    info = json.loads((DIGITS / "resnet_digits.json").read_text())
    data = np.load(DIGITS / "test.npz")
    x, y = data["x"], data["y"]
    net, raw = compile_model(DIGITS / "resnet_digits.onnx")
    assert len(net.populations) == 7 and net.timesteps == info["levels"] == 4
    assert sum(1 for L in net.metadata["layers"] if L.get("onnx_linears")) == 3  # three residual joins
    rep = verify_against_ann(net, x, y, Schedule.LAYERWISE, raw)
    assert rep.exact and rep.neurons_mismatched == 0
    assert rep.accuracy["snn"] == rep.accuracy["ann_int"]
    assert round(rep.accuracy["snn"], 4) == info["snnc"]["snn_accuracy"]
    assert round(rep.accuracy["ann_float"], 4) == info["onnxruntime_test_accuracy"] == info["test_accuracy"]
    assert info["test_accuracy"] >= 0.97
    assert rep.prediction_agreement["ann_int_vs_ann_float"] >= 0.98
