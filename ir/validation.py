"""Field checks shared by the IR's dataclasses (nodes, projections): names, shapes, integer arrays."""

from __future__ import annotations

import dataclasses

import numpy as np

from .errors import IRValidationError

INT_DTYPE = np.int64
#: a projection's weights are held in the narrowest of these that holds their range (a folded ImageNet
#: classifier has 411 M of them: int16 is a quarter of int64); arithmetic on them always widens first
WEIGHT_DTYPES = (np.int16, np.int32, np.int64)


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


def weight_dtype(lo: int, hi: int) -> type:
    """The dtype a projection's weights in [lo, hi] are held in: the narrowest of ``WEIGHT_DTYPES`` whose
    range holds both ends with a representable negation (so |w| never wraps)."""
    for dt in WEIGHT_DTYPES:
        top = int(np.iinfo(dt).max)
        if -top <= int(lo) and int(hi) <= top:
            return dt
    raise ValueError(f"weights in [{lo}, {hi}] exceed int64")


STORAGE_DTYPES = (np.int8, np.int16, np.int32, np.int64)


def storage_array(arr: np.ndarray) -> np.ndarray:
    """``arr`` (integer) in the narrowest of ``STORAGE_DTYPES`` that holds its values: how a bundle
    stores a projection's weights (lossless; loading widens them back to ``weight_dtype``)."""
    if arr.size == 0:
        return arr.astype(np.int8)
    lo, hi = int(arr.min()), int(arr.max())
    dt = next(d for d in STORAGE_DTYPES if np.iinfo(d).min <= lo and hi <= np.iinfo(d).max)
    return arr.astype(dt, copy=False)


def as_weight_array(node: str, name: str, value) -> np.ndarray:
    """``as_int_array`` for a projection's weights, held in ``weight_dtype`` of their range (the same
    values give the same dtype, whatever dtype they came in). An array already of that dtype is kept
    as it is (no copy; a broadcast view stays a view)."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        arr = as_int_array(node, name, arr, None)
    if arr.size == 0:
        return arr.astype(WEIGHT_DTYPES[0])
    lo, hi = int(arr.min()), int(arr.max())
    top = int(np.iinfo(np.int64).max)
    if not -top <= lo <= hi <= top:
        raise IRValidationError(node, f"{name} has values in [{lo}, {hi}]; weights must lie in [-(2^63 - 1), 2^63 - 1]")
    return arr.astype(weight_dtype(lo, hi), copy=False)


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
