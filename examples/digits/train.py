"""Train the QCFS digits CNN (sklearn 8x8 digits) and export it to ONNX for snnc.

Usage (from the repository root)::

    .venv/bin/python examples/digits/train.py                      # round, L=4, legacy exporter
    .venv/bin/python examples/digits/train.py --quantizer floor --levels 8 --exporter dynamo \
        --out /tmp/floor8.onnx --test-out /tmp/test.npz

Writes the ONNX model (``--out``; plus ``<out>.data`` with ``--exporter dynamo``), a JSON with the
training settings and accuracies next to it (``<out stem>.json``) and the held-out test split
(``--test-out``, keys ``x`` float32 (N,1,8,8) in [0,1] and ``y`` int64).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "models"))
import qcfs  # noqa: E402

log = logging.getLogger("digits.train")


def load_split(seed: int = 0, test_size: float = 0.2):
    """sklearn digits as float32 (N,1,8,8) in [0,1] / int64 labels, stratified deterministic split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None, :, :]
    y = d.target.astype(np.int64)
    return train_test_split(x, y, test_size=test_size, stratify=y, random_state=seed)


@torch.no_grad()
def load_shipped_split(seed: int = 0):
    """``load_split(seed)``, checked against the shipped examples/digits/test.npz (the test split every
    example and benchmark is measured on): a different scikit-learn could shuffle differently."""
    x_tr, x_te, y_tr, y_te = load_split(seed)
    shipped = np.load(HERE / "test.npz")
    if not (np.array_equal(shipped["x"], x_te) and np.array_equal(shipped["y"], y_te)):
        raise SystemExit("error: the test split differs from examples/digits/test.npz (different sklearn?)")
    return x_tr, x_te, y_tr, y_te


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return int((model(x).argmax(1) == y).sum()) / len(y)


def fit(model: nn.Module, xt: torch.Tensor, yt: torch.Tensor, epochs: int, lr: float, batch_size: int,
        seed: int) -> float:
    """Adam with a one-cycle schedule, cross-entropy, seeded shuffles; thresholds lambda of QuantClip
    layers (if any) kept positive. Returns the training time in seconds."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (len(yt) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        tot_loss, correct = 0.0, 0
        for i in range(0, len(yt), batch_size):
            idx = perm[i : i + batch_size]
            xb, yb = xt[idx], yt[idx]
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            qcfs.clamp_all_lams_(model, 1e-3)
            tot_loss += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yb).sum())
        log.info("epoch %3d/%d  loss %.4f  train acc %.4f", epoch, epochs, tot_loss / len(yt), correct / len(yt))
    return time.perf_counter() - t0


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    x_tr, x_te, y_tr, y_te = load_split(args.seed)
    log.info("digits: %d train / %d test samples", len(y_tr), len(y_te))
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xe, ye = torch.from_numpy(x_te), torch.from_numpy(y_te)

    model = qcfs.make_digits_cnn(args.quantizer, args.levels, lam_init=args.lam_init)
    train_s = fit(model, xt, yt, args.epochs, args.lr, args.batch_size, args.seed)

    model.eval()
    test_acc = accuracy(model, xe, ye)
    train_acc = accuracy(model, xt, yt)
    lams = [round(float(m.lam.detach()), 4) for m in model.modules() if isinstance(m, qcfs.QuantClip)]
    log.info("training took %.1f s", train_s)
    log.info("eval (quantized) accuracy: train %.4f  test %.4f", train_acc, test_acc)
    log.info("learned thresholds lam: %s", lams)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    qcfs.export_onnx(model, out, exporter=args.exporter)
    log.info("wrote %s%s", out, f" (+ {out.name}.data)" if args.exporter == "dynamo" else "")

    test_out = Path(args.test_out)
    test_out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(test_out, x=x_te.astype(np.float32), y=y_te.astype(np.int64))
    log.info("wrote %s (x %s float32, y %s int64)", test_out, x_te.shape, y_te.shape)

    info = {
        "quantizer": args.quantizer,
        "levels": args.levels,
        "exporter": args.exporter,
        "epochs": args.epochs,
        "seed": args.seed,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "train_seconds": round(train_s, 2),
        "lam": lams,
        "train_accuracy": round(train_acc, 4),
        "test_accuracy": round(test_acc, 4),
        "n_test": int(len(y_te)),
    }
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        logits = sess.run(["logits"], {"x": x_te.astype(np.float32)})[0]
        ort_acc = int((logits.argmax(1) == y_te).sum()) / len(y_te)
        info["onnxruntime_test_accuracy"] = round(ort_acc, 4)
        log.info("onnxruntime test accuracy (batch %d): %.4f", len(y_te), ort_acc)
        if ort_acc != test_acc:
            log.warning("onnxruntime accuracy differs from torch eval accuracy (%.4f)", test_acc)
    except ImportError:
        log.info("onnxruntime not installed; skipping the ONNX check")

    meta = out.with_suffix(".json")
    meta.write_text(json.dumps(info, indent=2) + "\n")
    log.info("wrote %s", meta)
    return info


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quantizer", choices=qcfs.QUANTIZERS, default="round")
    p.add_argument("--levels", type=int, default=4, help="quantization levels L (default 4)")
    p.add_argument("--exporter", choices=qcfs.EXPORTERS, default="legacy")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-2, help="peak Adam learning rate (one-cycle schedule)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lam-init", type=float, default=2.0, help="initial threshold lambda of every QuantClip")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", default=str(HERE / "qcfs_cnn.onnx"), help="ONNX output path")
    p.add_argument("--test-out", default=str(HERE / "test.npz"), help="held-out test split (.npz)")
    args = p.parse_args(argv)
    if args.levels < 1:
        p.error("--levels must be >= 1")
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
