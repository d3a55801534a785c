"""Field checks shared by the IR's dataclasses (nodes, projections): names, shapes, integer arrays."""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import IRValidationError

INT_DTYPE = np.int64


def as_int_array(node: str, name: str, value, allow_shapes) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise IRValidationError(node, f"{name} contains NaN or Inf")
        if not np.all(arr == np.round(arr)):
            raise IRValidationError(node, f"{name} must be integer-valued, got non-integers")
    elif arr.dtype.kind not in "iub":
        raise IRValidationError(node, f"{name} must be an integer array, got dtype {arr.dtype}")
    arr = arr.astype(INT_DTYPE, copy=False)  # an int64 array is kept as it is (no copy of large weights)
    if allow_shapes is not None and arr.shape not in allow_shapes:
        raise IRValidationError(
            node, f"{name} has shape {arr.shape}; expected one of {sorted(allow_shapes)}"
        )
    return arr


def check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise IRValidationError(str(name), f"{kind} needs a non-empty string name")


def check_shape(node: str, shape) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise IRValidationError(node, f"shape must be a non-empty tuple of positive ints, got {shape}")
    return shape


def per_channel_shapes(shape: tuple[int, ...]) -> set[tuple[int, ...]]:
    """A per-node parameter is a scalar (per layer) or one value per channel (axis 0)."""
    return {(), (shape[0],)}


def conv_output_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, dilation: int = 1) -> int:
    """Output length of a strided, padded, dilated window along one axis (ONNX Conv/Pool)."""
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


def replace(obj, **changes):
    """dataclasses.replace that re-runs validation (used by passes and tests)."""
    return dataclasses.replace(obj, **changes)
