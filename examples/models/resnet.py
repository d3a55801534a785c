"""ResNet-18 and ResNet-20 with QCFS quantized-clip activations (plain torch, no torchvision).

Built the way the ANN->SNN conversion papers train them (QCFS, Bu et al. 2022): every ReLU is a
``QuantClip`` and the residual add comes *before* the block's second activation,

    h   = QuantClip(bn1(conv1(x)))
    out = QuantClip(bn2(conv2(h)) + shortcut(x)),   shortcut = identity | bn(conv1x1(x, stride))

(option B shortcuts: a 1x1 conv + BatchNorm wherever the shape changes). Stems:

* ``"cifar"`` (32x32 inputs; ResNet-20 always): conv3x3(3 -> w) + BN + QuantClip;
* ``"imagenet"`` (ResNet-18 at 224x224): conv7x7 stride 2 + BN + QuantClip + **AvgPool2d(2)** in
  place of torchvision's MaxPool2d(3, 2, 1), as the papers do; ``stem_pool="max"`` keeps the max
  pool (snnc converts a max pool of activations exactly, at the cost of extra layers).

Head: global average pooling, Flatten, Linear. ``width`` scales every channel count (tests use
narrow nets). ``activation="relu"`` builds the same network with plain ReLUs in place of every
QuantClip (the float nets of paper 004's training-free conversion). ``make_*`` return random-weight networks calibrated on a few random inputs in [0, 1]
so that activations are neither dead nor saturated (BatchNorm statistics from the batch, lambda at
the 99th percentile of each activation's input, module by module in forward order); spike counts
of such a network say nothing about a trained one.

Importable by path: ``sys.path.insert(0, "<repo>/examples/models"); import resnet``.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qcfs import QuantClip, export_onnx  # noqa: E402,F401  (export_onnx re-exported for callers)


def _activation(kind: str, levels: int, quantizer: str) -> nn.Module:
    if kind == "qcfs":
        return QuantClip(levels, quantizer, 1.0)
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"activation must be 'qcfs' or 'relu', got {kind!r}")


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, levels: int, quantizer: str, activation: str = "qcfs") -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = _activation(activation, levels, quantizer)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()
        self.act2 = _activation(activation, levels, quantizer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(h)) + self.shortcut(x))


class QCFSResNet(nn.Module):
    """Stem, stages of BasicBlocks (the first block of every stage but the first has stride 2), head."""

    def __init__(
        self,
        widths: Sequence[int],
        blocks: Sequence[int],
        num_classes: int = 10,
        stem: str = "cifar",
        stem_pool: str = "avg",
        levels: int = 4,
        quantizer: str = "round",
        in_channels: int = 3,
        activation: str = "qcfs",
    ) -> None:
        super().__init__()
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be 'cifar' or 'imagenet', got {stem!r}")
        if stem_pool not in ("avg", "max"):
            raise ValueError(f"stem_pool must be 'avg' or 'max', got {stem_pool!r}")
        w0 = int(widths[0])
        if stem == "cifar":
            layers = [nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0),
                      _activation(activation, levels, quantizer)]
        else:
            layers = [nn.Conv2d(in_channels, w0, 7, 2, 3, bias=False), nn.BatchNorm2d(w0),
                      _activation(activation, levels, quantizer),
                      nn.AvgPool2d(2) if stem_pool == "avg" else nn.MaxPool2d(3, 2, 1)]
        self.stem = nn.Sequential(*layers)
        stages, cin = [], w0
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(int(n)):
                stages.append(BasicBlock(cin, int(w), 2 if (i > 0 and j == 0) else 1, levels, quantizer, activation))
                cin = int(w)
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.layers(self.stem(x)))))


def _scaled(widths: Sequence[int], width: float) -> list[int]:
    return [max(1, int(round(w * width))) for w in widths]


def build_resnet18(num_classes: int = 10, input_size: int = 32, width: float = 1.0, levels: int = 4,
                   quantizer: str = "round", stem: str | None = None, stem_pool: str = "avg") -> QCFSResNet:
    """ResNet-18 (2-2-2-2 BasicBlocks, 64-128-256-512 channels times ``width``). The stem is
    ``"cifar"`` for inputs below 64 pixels, else ``"imagenet"`` (override with ``stem``)."""
    stem = stem or ("cifar" if input_size < 64 else "imagenet")
    return QCFSResNet(_scaled((64, 128, 256, 512), width), (2, 2, 2, 2), num_classes, stem, stem_pool, levels, quantizer)


def build_resnet20(num_classes: int = 10, width: float = 1.0, levels: int = 4, quantizer: str = "round",
                   in_channels: int = 3, activation: str = "qcfs") -> QCFSResNet:
    """CIFAR ResNet-20 (He et al. 2016, section 4.2): 3 stages x 3 BasicBlocks, 16-32-64 channels
    times ``width``, any input size (global average pooling)."""
    return QCFSResNet(_scaled((16, 32, 64), width), (3, 3, 3), num_classes, "cifar", "avg", levels, quantizer,
                      in_channels, activation)


@torch.no_grad()
def calibrate_(model: nn.Module, input_shape: Sequence[int], seed: int = 0, n_calib: int = 8,
               percentile: float = 99.0) -> nn.Module:
    """Data-dependent init on random inputs in [0, 1], in forward order: every BatchNorm gets the
    statistics of its input batch (and affine parameters near (1, 0)), every QuantClip's lambda the
    ``percentile``-th percentile of its input. Returns the model in eval mode."""
    gen = torch.Generator().manual_seed(int(seed))
    model.eval()

    def bn_hook(m, args):
        (h,) = args
        c = m.num_features
        m.running_mean.copy_(h.mean(dim=(0, 2, 3)))
        m.running_var.copy_(h.var(dim=(0, 2, 3), unbiased=False) + 1e-3)
        m.weight.copy_(0.75 + 0.5 * torch.rand(c, generator=gen))
        m.bias.copy_(0.2 * torch.randn(c, generator=gen))

    def qc_hook(m, args):
        (h,) = args
        flat = h.flatten().double()
        if flat.numel() > 1 << 24:
            flat = flat[torch.randperm(flat.numel(), generator=gen)[: 1 << 24]]
        q = torch.quantile(flat, percentile / 100.0).item()
        m.lam.copy_(torch.tensor(q if q > 1e-3 else 1.0))

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_pre_hook(bn_hook))
        elif isinstance(m, QuantClip):
            hooks.append(m.register_forward_pre_hook(qc_hook))
    try:
        model(torch.rand(n_calib, *input_shape, generator=gen))
    finally:
        for h in hooks:
            h.remove()
    return model


def _init_weights(model: nn.Module, seed: int) -> None:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.normal_(m.bias, 0.0, 0.01)


def make_resnet18(num_classes: int = 10, input_size: int = 32, width: float = 1.0, levels: int = 4,
                  quantizer: str = "round", seed: int = 0, n_calib: int = 8, stem: str | None = None,
                  stem_pool: str = "avg") -> QCFSResNet:
    """Random-weight, calibrated ResNet-18 in eval mode: input (N, 3, input_size, input_size)."""
    model = build_resnet18(num_classes, input_size, width, levels, quantizer, stem, stem_pool)
    _init_weights(model, seed)
    return calibrate_(model, (3, input_size, input_size), seed, n_calib)


def make_resnet20(num_classes: int = 10, input_size: int = 32, width: float = 1.0, levels: int = 4,
                  quantizer: str = "round", seed: int = 0, n_calib: int = 8) -> QCFSResNet:
    """Random-weight, calibrated CIFAR ResNet-20 in eval mode: input (N, 3, input_size, input_size)."""
    model = build_resnet20(num_classes, width, levels, quantizer)
    _init_weights(model, seed)
    return calibrate_(model, (3, input_size, input_size), seed, n_calib)


def count_blocks(model: nn.Module) -> dict:
    """Blocks by shortcut kind: {"identity": n, "projection": n}."""
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    proj = sum(isinstance(b.shortcut, nn.Sequential) for b in blocks)
    return {"identity": len(blocks) - proj, "projection": proj}


__all__ = ["BasicBlock", "QCFSResNet", "build_resnet18", "build_resnet20", "make_resnet18", "make_resnet20",
           "calibrate_", "count_blocks", "export_onnx", "QuantClip"]
