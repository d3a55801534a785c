"""Train a plain float ReLU CNN on sklearn's 8x8 digits (no quantized activation) for snnc's
training-free conversion (paper 004), export it to ONNX and write a calibration split.

Usage (from the repository root)::

    .venv/bin/python examples/digits/train_relu.py

Writes ``relu_cnn.onnx`` (+ ``relu_cnn.json`` with settings and accuracies) and ``calib.npz``
(``x`` only: 256 images from the *training* split, for thresholds) next to this file. The test split
is the same as ``test.npz`` (same seed), which the script checks.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "models"))
import qcfs  # noqa: E402
import train as qtrain  # noqa: E402

log = logging.getLogger("digits.train_relu")


def make_relu_cnn(input_size: int = 8) -> nn.Sequential:
    """The digits CNN of examples/models/qcfs.py with plain ReLUs: (N, 1, 8, 8) -> (N, 10);
    ``input_size`` (even) builds it for (N, 1, s, s) images (examples/mnist: 28)."""
    if input_size < 2 or input_size % 2:
        raise ValueError(f"input_size must be even and >= 2 (one 2x2 average pool), got {input_size}")
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(16 * (input_size // 2) ** 2, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--calib", type=int, default=256, help="calibration images taken from the training split")
    p.add_argument("--out-dir", type=Path, default=HERE)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    x_tr, x_te, y_tr, y_te = qtrain.load_shipped_split(args.seed)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    model = make_relu_cnn()
    secs = qtrain.fit(model, xt, yt, args.epochs, args.lr, args.batch_size, args.seed)
    acc = qtrain.accuracy(model, torch.from_numpy(x_te), torch.from_numpy(y_te))
    log.info("test accuracy %.4f (%.1f s)", acc, secs)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / "relu_cnn.onnx"
    qcfs.export_onnx(model, out)
    rng = np.random.default_rng(args.seed)
    calib = x_tr[np.sort(rng.choice(len(x_tr), size=min(args.calib, len(x_tr)), replace=False))]
    np.savez_compressed(args.out_dir / "calib.npz", x=calib.astype(np.float32))
    import onnxruntime as ort

    logits = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x_te})[0]
    info = {"model": "relu_cnn", "epochs": args.epochs, "seed": args.seed, "lr": args.lr, "batch_size": args.batch_size,
            "train_seconds": round(secs, 2), "test_accuracy": round(acc, 4),
            "onnxruntime_test_accuracy": round(float(np.mean(logits.argmax(1) == y_te)), 4),
            "n_test": int(len(y_te)), "n_calib": int(len(calib))}
    (args.out_dir / "relu_cnn.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("wrote %s, calib.npz (%d images), relu_cnn.json", out, len(calib))
    return 0


if __name__ == "__main__":
    sys.exit(main())
