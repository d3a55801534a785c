"""Devices, threads and the floating-point rules every torch run obeys (docs/torch_backend.md).

``exact_math(device)`` is a context manager that pins the settings a run needs and restores the
caller's on exit:

* no convolution algorithm that rounds: NNPACK (Winograd / FFT convolutions) is disabled; oneDNN
  (mkldnn) convolutions stay on, they use the direct algorithm (``algorithm::convolution_direct``,
  ideep's default) whose partial sums are the integer partial sums; its fp32 math mode is pinned to
  IEEE (no bf16 / tf32 down-conversion); float32 matmul precision "highest";
* on CUDA (``cuda.py``, imported only for a CUDA device): TF32 off for matmul and cuDNN, and cuDNN off
  (its FFT / Winograd algorithms round; the native im2col + GEMM kernels do not).

CPU-only runs never import ``snnc.backends.torch.cuda`` and never touch ``torch.cuda``.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass

import torch

from snnc.backends.base import DeviceError


def resolve_device(device) -> torch.device:
    """'cpu', 'cuda', 'cuda:N' or a torch.device; refuses a CUDA device where none is available."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"device '{device}' not understood ({e}); supported: cpu, cuda, cuda:N") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        cuda = importlib.import_module("snnc.backends.torch.cuda")
        cuda.check_available(dev)
        return dev
    raise DeviceError(f"device '{device}': the torch backend runs on cpu or cuda")


@dataclass
class _Saved:
    precision: str
    mkldnn_conv: str | None
    mkldnn_matmul: str | None


def _mkldnn_precision(op: str):
    mod = getattr(torch.backends.mkldnn, op, None)
    return mod if mod is not None and hasattr(mod, "fp32_precision") else None


@contextlib.contextmanager
def exact_math(device: torch.device):
    """Pin the settings under which float32 / float64 projections are exact (see the module doc)."""
    conv, mm = _mkldnn_precision("conv"), _mkldnn_precision("matmul")
    saved = _Saved(torch.get_float32_matmul_precision(), conv.fp32_precision if conv else None,
                   mm.fp32_precision if mm else None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.backends.nnpack.flags(enabled=False))
        stack.enter_context(torch.no_grad())
        torch.set_float32_matmul_precision("highest")
        if conv is not None:
            conv.fp32_precision = "ieee"
        if mm is not None:
            mm.fp32_precision = "ieee"
        if device.type == "cuda":
            stack.enter_context(importlib.import_module("snnc.backends.torch.cuda").exact_cuda_math())
        try:
            yield
        finally:
            torch.set_float32_matmul_precision(saved.precision)
            if conv is not None:
                conv.fp32_precision = saved.mkldnn_conv
            if mm is not None:
                mm.fp32_precision = saved.mkldnn_matmul


@contextlib.contextmanager
def threads(n: int | None):
    """``torch.set_num_threads(n)`` for the duration of a run (None: leave the caller's setting)."""
    if n is None:
        yield
        return
    if int(n) < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)
