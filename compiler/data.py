"""Data files: ``.npz`` with ``x`` (N, *input shape, float) and optional ``y`` (N,) labels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from snnc.ir import Network

from .errors import DataFileError


def load_data(path, net: Network, limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """x (and y) for ``net``'s first input."""
    return load_arrays(path, tuple(net.inputs[0].shape), net.inputs[0].name, limit)


def load_arrays(path, shape: tuple[int, ...], input_name: str = "input",
                limit: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """x (float32, checked against ``shape``) and optional labels y from an .npz."""
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"data file '{path}' does not exist")
    try:
        z = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise DataFileError(f"'{path}' is not an .npz data file ({e})") from None
    if not hasattr(z, "files") or "x" not in z.files:
        raise DataFileError(f"'{path}' must be an .npz with an array 'x' (N, *input shape) and optional 'y'")
    x = z["x"]
    if x.ndim != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise DataFileError(
            f"'{path}': x has shape {x.shape}; the network's input '{input_name}' expects (N, {', '.join(map(str, shape))})"
        )
    if x.dtype.kind not in "fiu" or not np.all(np.isfinite(x)):
        raise DataFileError(f"'{path}': x must be finite numbers")
    y = None
    if "y" in z.files:
        y = np.asarray(z["y"]).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise DataFileError(f"'{path}': y has {y.shape[0]} labels but x has {x.shape[0]} samples")
    if limit is not None:
        x, y = x[:limit], (None if y is None else y[:limit])
    return x.astype(np.float32), y


def random_inputs(net: Network, n: int, seed: int = 0) -> np.ndarray:
    """Uniform random inputs over the network's input range."""
    inp = net.inputs[0]
    rng = np.random.default_rng(seed)
    lo, hi = inp.qmin * inp.scale, inp.qmax * inp.scale
    return rng.uniform(lo, hi, size=(n,) + tuple(inp.shape)).astype(np.float32)
