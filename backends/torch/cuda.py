"""CUDA-only settings of the torch backend, imported only when a CUDA device is asked for.

Exactness on CUDA (docs/torch_backend.md): TF32 is off for matmul and convolutions (it keeps 10
mantissa bits), and cuDNN is off during a run, because cuDNN may pick FFT or Winograd convolution
algorithms, which round; with cuDNN off torch runs convolutions as im2col + cuBLAS GEMM, whose
partial sums are integer partial sums. int64 projections (bounds >= 2^53) run on the CPU (CUDA
has no int64 GEMM) and come back to the device.

UNTESTED on hardware in this repository's CI (no GPU): tests/backends/torch/test_cuda.py runs only
where ``torch.cuda.is_available()``.
"""

from __future__ import annotations

import contextlib

import torch

from snnc.backends.base import DeviceError


def check_available(dev: torch.device) -> None:
    if not torch.cuda.is_available():
        raise DeviceError(f"device '{dev}': no CUDA device is available here (torch {torch.__version__}, "
                          f"CUDA build: {torch.version.cuda or 'no'}); use --device cpu")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device '{dev}': only {torch.cuda.device_count()} CUDA device(s) here")


def _precision_knobs():
    """The fp32 precision settings of cuBLAS matmul and cuDNN conv (torch >= 2.9 API), where they exist."""
    knobs = []
    for mod in (getattr(torch.backends.cuda, "matmul", None), getattr(torch.backends.cudnn, "conv", None)):
        if mod is not None and hasattr(mod, "fp32_precision"):
            knobs.append(mod)
    return knobs


@contextlib.contextmanager
def exact_cuda_math():
    """TF32 off (IEEE float32), no reduced-precision reductions, cuDNN off; restored on exit."""
    knobs = _precision_knobs()
    if knobs:   # the new API; mixing it with the legacy allow_tf32 flags is an error in torch >= 2.9
        saved = [k.fp32_precision for k in knobs]
        for k in knobs:
            k.fp32_precision = "ieee"
    else:
        saved = [torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32]
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    reduced = torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    cudnn_enabled = torch.backends.cudnn.enabled
    torch.backends.cudnn.enabled = False
    try:
        yield
    finally:
        torch.backends.cudnn.enabled = cudnn_enabled
        torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = reduced
        if knobs:
            for k, v in zip(knobs, saved):
                k.fp32_precision = v
        else:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
