"""QCFS-style quantized-clip CNN for the sklearn digits example (plain torch, no torchvision).

The activation is the quantization-clip-floor-shift function of the ANN->SNN conversion papers
(Bu et al., "Optimal ANN-SNN conversion ...", ICLR 2022) generalised to three quantizers::

    a = lam * clamp(Q(x * L / lam), 0, L) / L,   Q in {floor, round (= floor(v + 0.5)), ceil}

with a learnable threshold ``lam`` per activation layer and ``L`` quantization levels.  In eval
mode the forward pass is written so that the ONNX export is exactly the op chain

    Mul(x, L) -> Div(., lam) -> [Add(., 0.5)] -> Floor | Ceil -> Clip(., 0, L) -> Mul(., lam) -> Div(., L)

which is the pattern the snnc ONNX frontend recognises.  In training mode a straight-through
estimator is used for the quantizer.

This file is importable by path: ``sys.path.insert(0, "<repo>/examples/models"); import qcfs``.
"""

from __future__ import annotations

import os
import warnings
from typing import Sequence

import torch
from torch import nn

QUANTIZERS = ("floor", "round", "ceil")
EXPORTERS = ("legacy", "dynamo")


class QuantClip(nn.Module):
    """Quantized clip activation ``lam * clamp(Q(x * L / lam), 0, L) / L`` with learnable ``lam``."""

    def __init__(self, levels: int = 4, quantizer: str = "round", lam: float = 1.0) -> None:
        super().__init__()
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {quantizer!r}")
        if int(levels) < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if lam <= 0:
            raise ValueError(f"lam must be > 0, got {lam}")
        self.levels = int(levels)
        self.quantizer = quantizer
        self.lam = nn.Parameter(torch.tensor(float(lam)))

    def _quantize(self, v: torch.Tensor) -> torch.Tensor:
        if self.quantizer == "round":
            return torch.floor(v + 0.5)
        if self.quantizer == "floor":
            return torch.floor(v)
        return torch.ceil(v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L = float(self.levels)
        v = (x * L) / self.lam
        if self.training:
            # straight-through estimator: forward = Q(v), backward = identity
            v = v + (self._quantize(v) - v).detach()
        else:
            v = self._quantize(v)
        v = torch.clamp(v, 0.0, L)
        return (v * self.lam) / L

    @torch.no_grad()
    def clamp_lam_(self, min_value: float = 1e-3) -> None:
        """Keep the threshold positive (call after each optimizer step)."""
        self.lam.data.clamp_(min=min_value)

    def extra_repr(self) -> str:
        return f"levels={self.levels}, quantizer={self.quantizer!r}, lam={float(self.lam.detach()):.4g}"


def make_digits_cnn(quantizer: str = "round", levels: int = 4, lam_init: float = 2.0,
                    input_size: int = 8) -> nn.Sequential:
    """CNN for 8x8 digits: input (N, 1, 8, 8), output (N, 10) logits. ``input_size`` (even) builds the
    same recipe for (N, 1, s, s) images (examples/mnist: 28); only the first Linear's width changes."""
    if input_size < 2 or input_size % 2:
        raise ValueError(f"input_size must be even and >= 2 (one 2x2 average pool), got {input_size}")
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        QuantClip(levels, quantizer, lam_init),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        QuantClip(levels, quantizer, lam_init),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * (input_size // 2) ** 2, 64),
        QuantClip(levels, quantizer, lam_init),
        nn.Linear(64, 10),
    )


def clamp_all_lams_(model: nn.Module, min_value: float = 1e-3) -> None:
    for m in model.modules():
        if isinstance(m, QuantClip):
            m.clamp_lam_(min_value)


@torch.no_grad()
def make_random_qcfs_net(
    quantizer: str = "round",
    levels: int = 4,
    seed: int = 0,
    n_calib: int = 64,
    percentile: float = 99.0,
) -> nn.Sequential:
    """Untrained digits CNN with random weights / BN statistics and calibrated thresholds (eval mode).

    Each ``lam`` is set to the ``percentile``-th percentile of its pre-activation on random inputs in
    [0, 1], so that the quantizer is neither saturated nor all-zero.
    """
    gen = torch.Generator().manual_seed(int(seed))
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    try:
        model = make_digits_cnn(quantizer, levels)
    finally:
        torch.random.set_rng_state(torch_state)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.running_mean.copy_(0.2 * torch.randn(c, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
            m.weight.copy_(0.75 + 0.5 * torch.rand(c, generator=gen))
            m.bias.copy_(0.2 * torch.randn(c, generator=gen))
    model.eval()
    h = torch.rand(n_calib, 1, 8, 8, generator=gen)
    for m in model:
        if isinstance(m, QuantClip):
            q = torch.quantile(h.flatten().double(), percentile / 100.0).item()
            m.lam.copy_(torch.tensor(q if q > 1e-3 else 1.0))
        h = m(h)
    return model


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    exporter: str = "legacy",
    input_shape: Sequence[int] = (1, 1, 8, 8),
    dynamic_batch: bool = True,
    opset: int = 17,
    external_data: bool = True,
) -> str:
    """Export ``model`` (in eval mode) to ONNX with input ``x`` and output ``logits``.

    ``exporter="legacy"`` uses the TorchScript exporter (``dynamo=False``); ``"dynamo"`` uses the
    torch.export based exporter (``dynamo=True``), which stores the weights as external data in
    ``path + ".data"`` next to the model -- keep both files together -- unless ``external_data=False``
    (weights inlined, one file; models under 2 GB).  Returns ``str(path)``.
    """
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter must be one of {EXPORTERS}, got {exporter!r}")
    path = str(path)
    model.eval()
    example = torch.zeros(*input_shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        if exporter == "legacy":
            torch.onnx.export(
                model,
                (example,),
                path,
                dynamo=False,
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None,
                opset_version=opset,
                do_constant_folding=True,
                verbose=False,
            )
        else:
            _export_dynamo(model, example, path, dynamic_batch, opset, external_data)
    return path


def _export_dynamo(model: nn.Module, example: torch.Tensor, path: str, dynamic_batch: bool, opset: int,
                   external_data: bool = True) -> None:
    import logging

    # the dynamo exporter logs its progress ("[torch.onnx] Obtain model graph ...") via logging/print
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    try:
        kwargs = dict(
            dynamo=True,
            input_names=["x"],
            output_names=["logits"],
            opset_version=opset,
            external_data=external_data,
            verbose=False,
            report=False,
        )
        if dynamic_batch:
            # torch.export specialises dimensions of size 0/1, so trace with a batch of >= 2
            if example.shape[0] < 2:
                example = torch.zeros(2, *example.shape[1:])
            # positional form: nn.Sequential's forward argument is called "input", not "x"
            dyn = ({0: torch.export.Dim("batch", min=1, max=1 << 16)},)
            try:
                torch.onnx.export(model, (example,), path, dynamic_shapes=dyn, **kwargs)
            except Exception:  # pragma: no cover - safety net for other torch versions
                # Fallback: if torch.export cannot make the batch dimension symbolic, export with the
                # static batch of the example input (the model then only accepts that batch size).
                torch.onnx.export(model, (example,), path, **kwargs)
        else:
            torch.onnx.export(model, (example,), path, **kwargs)
    finally:
        for lg, lv in zip(quiet, levels):
            lg.setLevel(lv)
