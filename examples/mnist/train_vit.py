"""Train a small Vision Transformer (examples/models/vit.py) on MNIST 5k (28x28) or on scikit-learn's
8x8 digits, and export it with both torch exporters.

Usage (from the repository root)::

    .venv/bin/python examples/mnist/train_vit.py                     # MNIST 5k: examples/mnist/vit_mnist_*
    .venv/bin/python examples/mnist/train_vit.py --dataset digits    # digits:   examples/digits/vit_digits_*
    .venv/bin/python examples/mnist/train_vit.py --epochs 1 --limit 256 --out-dir /tmp/vit   # smoke run

Defaults per data set (every one can be overridden):

| | MNIST 5k (28x28) | digits (8x8) |
| --- | --- | --- |
| patch (tokens) | 7 (16 + class token) | 2 (16 + class token) |
| dim / depth / heads / MLP | 64 / 4 / 4 / 128 | 48 / 3 / 4 / 96 |
| epochs / batch / peak lr | 50 / 64 / 1e-3 | 100 / 64 / 3e-3 |
| augmentation | random shift +-2 px | random shift +-1 px |

(``--rotate`` / ``--scale`` add random rotation and zoom; on MNIST 5k they slowed training more
than they helped within a few CPU minutes.)

Training: AdamW (weight decay 0.05 on matrices, none on biases, norms and embeddings), linear warm-up
then cosine decay (per step), label smoothing 0.1, seeded batch order and augmentation
(``torch.Generator``), ``torch.set_num_threads(--threads)`` (1), CPU: the same command gives the same
model on the same machine and torch version.

Writes ``<stem>_legacy.onnx`` (``torch.onnx.export(dynamo=False)``) and ``<stem>_dynamo.onnx``
(``dynamo=True``, weights inlined: one file), opset ``--opset`` (17), input ``x`` (batch, 1, S, S),
output ``logits`` (batch, 10), dynamic batch; and ``<stem>.json`` with the settings, the torch test
accuracy and, per export, onnxruntime's test accuracy, its largest |logit difference| from torch and
whether every prediction agrees.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent
for _p in (HERE, EXAMPLES / "digits", EXAMPLES / "models"):
    sys.path.insert(0, str(_p))
import mnist5k  # noqa: E402
import qcfs  # noqa: E402  (export_onnx)
import vit  # noqa: E402

log = logging.getLogger("mnist.train_vit")

DATASETS = ("mnist", "digits")
DEFAULTS = {
    "mnist": dict(patch=7, dim=64, depth=4, heads=4, mlp_dim=128, epochs=50, batch_size=64, lr=1e-3,
                  rotate=0.0, scale=0.0, shift=2, out_dir=HERE, stem="vit_mnist"),
    "digits": dict(patch=2, dim=48, depth=3, heads=4, mlp_dim=96, epochs=100, batch_size=64, lr=3e-3,
                   rotate=0.0, scale=0.0, shift=1, out_dir=EXAMPLES / "digits", stem="vit_digits"),
}


def load_data(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, x_test, y_train, y_test), float32 (N, 1, S, S) in [0, 1] and int64."""
    if dataset == "mnist":
        return mnist5k.load_split()
    import train as digits_train  # examples/digits/train.py

    return digits_train.load_shipped_split(0)


def augment(x: torch.Tensor, gen: torch.Generator, rotate: float, scale: float, shift: int) -> torch.Tensor:
    """Random affine per image (rotation +-``rotate`` degrees, zoom 1 +- ``scale``, shift +- ``shift``
    pixels), bilinear, zeros outside; the identity when all three are 0."""
    if rotate == 0 and scale == 0 and shift == 0:
        return x
    n, size = x.shape[0], x.shape[-1]
    u = torch.rand(n, 4, generator=gen) * 2 - 1
    ang = u[:, 0] * math.radians(rotate)
    zoom = 1 + u[:, 1] * scale
    shift_px = torch.round(u[:, 2:] * shift)  # whole pixels
    cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift_px[:, 0] * 2 / size], 1),
                         torch.stack([sin, cos, shift_px[:, 1] * 2 / size], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on Linear/Conv weight matrices only."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.ndim >= 2 and "pos" not in name and "cls_token" not in name else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def fit(model: nn.Module, xt: torch.Tensor, yt: torch.Tensor, args: argparse.Namespace) -> float:
    """AdamW, warm-up + cosine per step, label smoothing; returns the training time in seconds."""
    opt = torch.optim.AdamW(param_groups(model, args.weight_decay), lr=args.lr, betas=(0.9, 0.999))
    steps_per_epoch = (len(yt) + args.batch_size - 1) // args.batch_size
    total = args.epochs * steps_per_epoch
    warm = max(1, min(total // 10, 5 * steps_per_epoch))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
    gen = torch.Generator().manual_seed(args.seed)
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(yt), generator=gen)
        tot, correct = 0.0, 0
        for i in range(0, len(yt), args.batch_size):
            idx = perm[i: i + args.batch_size]
            xb = augment(xt[idx], gen, args.rotate, args.scale, args.shift)
            out = model(xb)
            loss = loss_fn(out, yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            tot += float(loss.detach()) * len(idx)
            correct += int((out.argmax(1) == yt[idx]).sum())
        log.info("epoch %3d/%d  loss %.4f  train acc %.4f  (%.0f s)", epoch, args.epochs, tot / len(yt),
                 correct / len(yt), time.perf_counter() - t0)
    return time.perf_counter() - t0


@torch.no_grad()
def logits_of(model: nn.Module, x: np.ndarray, batch: int = 500) -> np.ndarray:
    model.eval()
    return np.concatenate([model(torch.from_numpy(x[i: i + batch])).numpy() for i in range(0, len(x), batch)])


def export(model: nn.Module, path: Path, exporter: str, size: int, opset: int) -> None:
    qcfs.export_onnx(model, path, exporter=exporter, input_shape=(2, 1, size, size), opset=opset, external_data=False)


def check_onnx(path: Path, x: np.ndarray, y: np.ndarray, ref: np.ndarray) -> dict:
    """onnxruntime on the whole test split (one batch) against the torch logits ``ref``."""
    import onnx
    import onnxruntime as ort

    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(["logits"], {"x": x})[0]
    correct = int(np.sum(got.argmax(1) == y))
    m = onnx.load(str(path))
    return {"file": path.name, "opset": int(next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))),
            "nodes": len(m.graph.node), "onnxruntime_test_correct": correct,
            "onnxruntime_test_accuracy": round(correct / len(y), 4),
            "max_abs_logit_diff_vs_torch": float(np.max(np.abs(got - ref))),
            "predictions_equal_torch": bool(np.array_equal(got.argmax(1), ref.argmax(1)))}


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    x_tr, x_te, y_tr, y_te = load_data(args.dataset)
    if args.limit is not None:
        x_tr, y_tr = x_tr[: args.limit], y_tr[: args.limit]
    if args.test_limit is not None:
        x_te, y_te = x_te[: args.test_limit], y_te[: args.test_limit]
    size = x_tr.shape[-1]
    log.info("%s: %d train / %d test images, %dx%d", args.dataset, len(y_tr), len(y_te), size, size)
    model = vit.ViT(image_size=size, patch=args.patch, in_channels=1, num_classes=10, dim=args.dim, depth=args.depth,
                    heads=args.heads, mlp_dim=args.mlp_dim, readout=args.readout)
    n_params = int(sum(p.numel() for p in model.parameters()))
    log.info("ViT: %d tokens, %d parameters", model.patches + (args.readout == "cls"), n_params)
    train_s = fit(model, torch.from_numpy(x_tr), torch.from_numpy(y_tr), args)
    ref = logits_of(model, x_te)
    test_correct = int(np.sum(ref.argmax(1) == y_te))
    log.info("torch test accuracy %.4f (%.1f s training)", test_correct / len(y_te), train_s)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    info = {"model": "examples/models/vit.py ViT", "dataset": args.dataset,
            "config": {"image_size": size, "patch": args.patch, "tokens": model.patches + (args.readout == "cls"),
                       "dim": args.dim, "depth": args.depth, "heads": args.heads, "mlp_dim": args.mlp_dim,
                       "readout": args.readout},
            "parameters": n_params,
            "training": {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
                         "weight_decay": args.weight_decay, "label_smoothing": args.label_smoothing,
                         "augment": {"rotate_deg": args.rotate, "scale": args.scale, "shift_px": args.shift},
                         "seed": args.seed, "threads": args.threads, "train_images": int(len(y_tr))},
            "train_seconds": round(train_s, 2), "torch_version": torch.__version__,
            "test_correct": test_correct, "test_accuracy": round(test_correct / len(y_te), 4), "n_test": int(len(y_te)),
            "exports": {}}
    for exporter in qcfs.EXPORTERS:
        path = args.out_dir / f"{args.stem}_{exporter}.onnx"
        export(model, path, exporter, size, args.opset)
        info["exports"][exporter] = check_onnx(path, x_te, y_te, ref)
        log.info("%s: %s", exporter, info["exports"][exporter])
    meta = args.out_dir / f"{args.stem}.json"
    meta.write_text(json.dumps(info, indent=2) + "\n")
    log.info("wrote %s", meta)
    return info


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--patch", type=int)
    p.add_argument("--dim", type=int)
    p.add_argument("--depth", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--mlp-dim", type=int)
    p.add_argument("--readout", choices=vit.READOUTS, default="cls")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--rotate", type=float, help="augmentation: rotation range in degrees")
    p.add_argument("--scale", type=float, help="augmentation: zoom range (1 +- scale)")
    p.add_argument("--shift", type=int, help="augmentation: shift range in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--test-limit", type=int, default=None, help="measure on the first N test images only (smoke runs)")
    p.add_argument("--limit", type=int, help="train on the first N training images only (smoke runs)")
    p.add_argument("--out-dir", type=Path)
    p.add_argument("--stem", help="output names: <stem>_legacy.onnx, <stem>_dynamo.onnx, <stem>.json")
    args = p.parse_args(argv)
    for k, v in DEFAULTS[args.dataset].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    for k in ("patch", "dim", "depth", "heads", "mlp_dim", "epochs", "batch_size"):
        if getattr(args, k) < 1:
            p.error(f"--{k.replace('_', '-')} must be >= 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.test_limit is not None and args.test_limit < 1:
        p.error("--test-limit must be >= 1")
    if args.lr <= 0 or args.rotate < 0 or args.scale < 0 or args.shift < 0:
        p.error("--lr must be > 0 and --rotate, --scale, --shift >= 0")
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
