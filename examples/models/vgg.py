"""VGG-16 (configuration D) with QCFS quantized-clip activations, for the energy benchmark.

This is the network of paper 000's energy table (Table 4: VGG-16 on CIFAR-100, classifier
512-4096-4096-100), built the way the ANN->SNN conversion papers train it:

* 13 x [Conv3x3 (padding 1) + BatchNorm2d + QuantClip] in configuration D
  (64, 64, P, 128, 128, P, 256, 256, 256, P, 512, 512, 512, P, 512, 512, 512, P);
* **AvgPool2d(2)** instead of max pooling (average pooling folds into the next linear op);
* Flatten, Linear(512 * (input_size / 32)^2 -> c1) + QuantClip, Linear(c1 -> c2) + QuantClip,
  Linear(c2 -> num_classes).  No dropout (eval only).

Weights are random (Kaiming); there is no training here.  ``make_vgg16`` calibrates the network on
a few random inputs in [0, 1] so that activations are neither dead nor saturated: each BatchNorm's
running statistics are set to the batch statistics of its input (data-dependent init), its affine
parameters are drawn near (1, 0), and each QuantClip's ``lam`` is the 99th percentile of its
pre-activation.  Spike counts of such a network say nothing about a trained one.

Importable by path: ``sys.path.insert(0, "<repo>/examples/models"); import vgg``.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qcfs import QuantClip, export_onnx  # noqa: E402,F401  (export_onnx re-exported for callers)

# configuration D of Simonyan & Zisserman 2015; "P" is a 2x2 pooling (average pooling here)
VGG16_CFG: tuple = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")


def _check_input_size(input_size: int) -> int:
    input_size = int(input_size)
    if input_size < 32 or input_size % 32:
        raise ValueError(f"input_size must be a positive multiple of 32 (five 2x2 poolings), got {input_size}")
    return input_size


def build_vgg16(
    num_classes: int = 100,
    input_size: int = 32,
    classifier: Sequence[int] = (4096, 4096),
    quantizer: str = "round",
    levels: int = 4,
) -> nn.Sequential:
    """The uncalibrated VGG-16 (torch default init, lam = 1).  Use ``make_vgg16`` for a usable net."""
    return build_vgg16_scaled(num_classes, input_size, 1.0, classifier, quantizer, levels)


@torch.no_grad()
def make_vgg16(
    num_classes: int = 100,
    input_size: int = 32,
    classifier: Sequence[int] = (4096, 4096),
    quantizer: str = "round",
    levels: int = 4,
    seed: int = 0,
    n_calib: int = 8,
    percentile: float = 99.0,
) -> nn.Sequential:
    """Random-weight VGG-16 with calibrated BatchNorm statistics and QCFS thresholds, in eval mode.

    Input (N, 3, input_size, input_size) in [0, 1], output (N, num_classes) logits.
    """
    input_size = _check_input_size(input_size)
    return _randomized(lambda: build_vgg16(num_classes, input_size, classifier, quantizer, levels),
                       input_size, seed, n_calib, percentile)


def vgg16_conv_macs(
    input_size: int = 32, num_classes: int = 100, classifier: Sequence[int] = (4096, 4096)
) -> dict:
    """MACs of one forward pass, counted by hand from the architecture (independent of snnc).

    Convention (as snnc and the papers): one MAC per multiply-accumulate of a conv or linear layer;
    biases, batch norm, pooling and activations are not counted.  Returns
    ``{"conv": int, "linear": int, "total": int, "per_layer": [(name, macs), ...]}``.
    """
    input_size = _check_input_size(input_size)
    per_layer = []
    hw, cin, k = input_size, 3, 0
    for v in VGG16_CFG:
        if v == "P":
            hw //= 2
            continue
        k += 1
        per_layer.append((f"conv{k}", v * hw * hw * cin * 9))
        cin = v
    conv = sum(m for _, m in per_layer)
    fin = cin * hw * hw
    widths = list(classifier) + [num_classes]
    for i, width in enumerate(widths, 1):
        per_layer.append((f"fc{i}", fin * int(width)))
        fin = int(width)
    linear = sum(m for n, m in per_layer if n.startswith("fc"))
    return {"conv": int(conv), "linear": int(linear), "total": int(conv + linear), "per_layer": per_layer}


__all__ = ["VGG16_CFG", "build_vgg16", "make_vgg16", "vgg16_conv_macs", "export_onnx", "QuantClip"]


# ---- the model zoo (issue 5): width-scaled VGG-16 for tests and benchmarks --------------------------
def build_vgg16_scaled(
    num_classes: int = 10,
    input_size: int = 32,
    width: float = 1.0,
    classifier: Sequence[int] | None = None,
    quantizer: str = "round",
    levels: int = 4,
) -> nn.Sequential:
    """VGG-16 (configuration D) with every conv's channel count times ``width`` (at least 1) and
    the classifier ``classifier`` (default: 4096-4096 times ``width``). ``width=1`` with the
    default classifier is ``build_vgg16``."""
    input_size = _check_input_size(input_size)
    if classifier is None:
        classifier = (max(1, int(round(4096 * width))),) * 2
    layers: list[nn.Module] = []
    cin = 3
    for v in VGG16_CFG:
        if v == "P":
            layers.append(nn.AvgPool2d(2))
        else:
            c = max(1, int(round(v * width)))
            layers += [nn.Conv2d(cin, c, 3, padding=1), nn.BatchNorm2d(c), QuantClip(levels, quantizer, 1.0)]
            cin = c
    layers.append(nn.Flatten())
    fin = cin * (input_size // 32) ** 2
    for w in classifier:
        layers += [nn.Linear(fin, int(w)), QuantClip(levels, quantizer, 1.0)]
        fin = int(w)
    layers.append(nn.Linear(fin, int(num_classes)))
    return nn.Sequential(*layers)


@torch.no_grad()
def make_vgg16_scaled(
    num_classes: int = 10,
    input_size: int = 32,
    width: float = 1.0,
    classifier: Sequence[int] | None = None,
    quantizer: str = "round",
    levels: int = 4,
    seed: int = 0,
    n_calib: int = 8,
    percentile: float = 99.0,
) -> nn.Sequential:
    """Random-weight, calibrated ``build_vgg16_scaled`` in eval mode (the calibration of
    ``make_vgg16``: Kaiming weights, BatchNorm statistics from the batch, lambda at the
    ``percentile``-th percentile of each activation's input)."""
    input_size = _check_input_size(input_size)
    return _randomized(lambda: build_vgg16_scaled(num_classes, input_size, width, classifier, quantizer, levels),
                       input_size, seed, n_calib, percentile)


@torch.no_grad()
def _randomized(build, input_size: int, seed: int, n_calib: int, percentile: float) -> nn.Sequential:
    """``build()`` with Kaiming weights, BatchNorm statistics from a random batch and each lambda at
    the ``percentile``-th percentile of its activation's input (at most 2^24 values, a seeded
    random subsample beyond that), in eval mode."""
    gen = torch.Generator().manual_seed(int(seed))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = build()
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                nn.init.normal_(m.bias, 0.0, 0.01)
    model.eval()
    h = torch.rand(n_calib, 3, input_size, input_size, generator=gen)
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(h.mean(dim=(0, 2, 3)))
            m.running_var.copy_(h.var(dim=(0, 2, 3), unbiased=False) + 1e-3)
            m.weight.copy_(0.75 + 0.5 * torch.rand(c, generator=gen))
            m.bias.copy_(0.2 * torch.randn(c, generator=gen))
        elif isinstance(m, QuantClip):
            flat = h.flatten().double()
            if flat.numel() > 1 << 24:
                flat = flat[torch.randperm(flat.numel(), generator=gen)[: 1 << 24]]
            q = torch.quantile(flat, percentile / 100.0).item()
            m.lam.copy_(torch.tensor(q if q > 1e-3 else 1.0))
        h = m(h)
    return model


__all__ += ["build_vgg16_scaled", "make_vgg16_scaled"]
