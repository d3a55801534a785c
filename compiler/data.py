"""Data files: ``.npz`` with ``x`` (N, *input shape, numbers) and optional ``y`` (N,) integer labels.

Read without trusting the file: the path must be a regular file (a FIFO would block), the archive's
directory and each member's ``.npy`` header are checked before any data is decompressed, and only the
samples asked for are read (C order: the first rows are a prefix of the member, the rest is never
decompressed). What is read must fit the memory budget of the file's size (``snnc.ir.limits``). Labels
must be integers in 0..classes-1. Every error names the file and says what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snnc.ir import Network
from snnc.ir.archive import ArchiveError, NpyArchive, nbytes_of
from snnc.ir.limits import DEFAULT_LIMITS, Limits

from .errors import DataFileError, SnncError

X_KINDS = "fiu"  # float, signed and unsigned integers


def check_samples(limit: int | None, option: str = "--samples") -> None:
    """``limit`` is None (all) or an integer >= 1."""
    if limit is None:
        return
    if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
        raise SnncError(f"{option} must be an integer >= 1 (how many samples to use), got {limit!r}")


def load_data(path, net: Network, limit: int | None = None,
              limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, np.ndarray | None]:
    """x (and y) for ``net``'s first input; labels checked against its readout's classes."""
    classes = net.readouts[0].size if len(net.readouts) == 1 else None
    return load_arrays(path, tuple(net.inputs[0].shape), net.inputs[0].name, limit, classes=classes, limits=limits)


def load_arrays(path, shape: tuple[int, ...], input_name: str = "input", limit: int | None = None,
                classes: int | None = None, limits: Limits = DEFAULT_LIMITS) -> tuple[np.ndarray, np.ndarray | None]:
    """x (float32, checked against ``shape``; only the first ``limit`` samples are read) and optional
    labels y (int64, in 0..classes-1 when ``classes`` is given) from an .npz."""
    check_samples(limit)
    path = Path(path)
    want = f"(N, {', '.join(map(str, shape))})"
    try:
        arc = NpyArchive(path, limits.max_members)
    except FileNotFoundError:
        raise DataFileError(f"data file '{path}' does not exist") from None
    except ArchiveError as e:
        raise DataFileError(f"'{path}' is not an .npz data file: it {e}; expected an .npz with x {want} "
                            "and optional integer labels y (N,)") from None
    except OSError as e:
        raise DataFileError(f"data file '{path}' cannot be read ({e.strerror or e})") from None
    with arc:
        names = set(arc.names)
        if "x" not in names:
            raise DataFileError(f"'{path}' must be an .npz with an array 'x' {want} and optional labels 'y' "
                                f"(it holds {sorted(names)[:5]})")
        budget = limits.array_bytes(arc.size)
        n = _check_x_header(arc, path, shape, input_name, want)
        if n == 0:
            raise DataFileError(f"'{path}': x holds no samples; give at least one sample {want}")
        rows = n if limit is None else min(limit, n)
        need = nbytes_of((rows,) + tuple(shape), np.dtype(np.float32))
        if need > budget:
            raise DataFileError(f"'{path}': x declares {n:,} samples; reading {rows:,} would need {need:,} bytes, "
                                f"above the memory budget of {budget:,} for this {arc.size:,}-byte file; "
                                "use --samples to read fewer")
        try:
            x = arc.read("x", lambda s, d: None, budget, rows=rows)
        except ArchiveError as e:
            raise DataFileError(f"'{path}': {e}") from None
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise DataFileError(f"'{path}': x must be finite numbers; it holds NaN or Inf in the first {rows} samples")
        y = _read_labels(arc, path, n, rows, classes, budget) if "y" in names else None
    return x.astype(np.float32), y


def _check_x_header(arc: NpyArchive, path: Path, shape, input_name: str, want: str) -> int:
    try:
        xs, _fortran, xd, _ = arc.header("x")
    except ArchiveError as e:
        raise DataFileError(f"'{path}': x {e}") from None
    if xd.kind not in X_KINDS:
        raise DataFileError(f"'{path}': x holds {xd} values; expected numbers (float or integer) {want}")
    if len(xs) != len(shape) + 1 or tuple(xs[1:]) != tuple(shape):
        raise DataFileError(f"'{path}': x has shape {tuple(xs)}; the network's input '{input_name}' expects {want}")
    return int(xs[0])


def _read_labels(arc: NpyArchive, path: Path, n: int, rows: int, classes: int | None, budget: int) -> np.ndarray:
    what = f"integer class labels y ({n},)" + ("" if classes is None else f" in 0..{classes - 1}")
    try:
        ys, _fortran, yd, _ = arc.header("y")
    except ArchiveError as e:
        raise DataFileError(f"'{path}': y (labels) {e}") from None
    if yd.kind not in "iuf":
        raise DataFileError(f"'{path}': labels y hold {yd} values; expected {what}")
    if not (len(ys) == 1 or (len(ys) == 2 and ys[1] == 1)):
        raise DataFileError(f"'{path}': labels y have shape {tuple(ys)}; expected {what} (one label per sample, "
                            "not one-hot)")
    if ys[0] != n:
        raise DataFileError(f"'{path}': y has {ys[0]} labels but x has {n} samples")
    try:
        y = arc.read("y", lambda s, d: None, budget, rows=rows).reshape(-1)
    except ArchiveError as e:
        raise DataFileError(f"'{path}': labels {e}") from None
    if yd.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            bad = y[~(np.isfinite(y) & (y == np.round(y)))][0]
            raise DataFileError(f"'{path}': label {bad} is not an integer; expected {what}")
    y = y.astype(np.int64)
    if classes is not None and y.size and (y.min() < 0 or y.max() >= classes):
        bad = int(y[(y < 0) | (y >= classes)][0])
        raise DataFileError(f"'{path}': label {bad} is outside the network's {classes} classes; expected {what}")
    return y


def random_inputs(net: Network, n: int, seed: int = 0) -> np.ndarray:
    """Uniform random inputs over the network's input range (``n`` >= 1)."""
    check_samples(n)
    inp = net.inputs[0]
    rng = np.random.default_rng(seed)
    lo, hi = inp.qmin * inp.scale, inp.qmax * inp.scale
    return rng.uniform(lo, hi, size=(n,) + tuple(inp.shape)).astype(np.float32)
