"""Train a small plain float ReLU CNN *with max pooling* on sklearn's 8x8 digits for snnc's
training-free conversion with graded max-pool units (paper 004, Theorem 4.2; docs/training_free.md,
"Max pooling (graded units)"), and export it to ONNX.

Usage (from the repository root)::

    .venv/bin/python examples/digits/train_relu_maxpool.py             # train, export
    .venv/bin/python examples/digits/train_relu_maxpool.py --measure   # float ANN vs SNN table

Writes ``relu_maxpool_cnn.onnx`` (+ ``relu_maxpool_cnn.json`` with settings and accuracies) next to
this file. Calibration reuses ``calib.npz`` (same input format and seed as ``train_relu.py``: 256
training images); the test split is ``test.npz`` (checked). Deterministic (seeded, 2 threads).
Architecture: Conv-BN-ReLU-MaxPool(2) -> Conv-BN-ReLU-MaxPool(2) -> Flatten -> Linear.

``--measure`` trains nothing: it compiles the shipped model training-free (thresholds ``iterate``,
multi-threshold:4 neurons, pipelined; both MaxPools become graded units) for rate and differential
coding at T = 2, 4, 8 on target loihi and prints the float ANN's (onnxruntime) and the SNN's
(reference simulator) test accuracy. Differential coding's states hold values times 2^F; it is
also compiled with a profile raising loihi's ``state_bits`` to 48 (rows marked so).
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

log = logging.getLogger("digits.train_relu_maxpool")


def make_relu_maxpool_cnn() -> nn.Sequential:
    """(N, 1, 8, 8) -> (N, 10): two Conv-BN-ReLU-MaxPool stages (8x8 -> 4x4 -> 2x2) and a Linear."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10),
    )


def measure(model_path: Path, Ts=(2, 4, 8)) -> list[dict]:
    """Float ANN vs training-free SNN accuracy on test.npz (see the module docstring)."""
    import tempfile

    import onnxruntime as ort

    from snnc.backends.reference import simulate
    from snnc.compiler.analysis.bounds import network_bounds
    from snnc.compiler.tools.runner import reference_runner
    from snnc.compiler.api import compile_imported, import_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.errors import StateOverflowError

    z = np.load(HERE / "test.npz")
    x, y = z["x"], z["y"]
    float_acc = float(np.mean(ort.InferenceSession(str(model_path)).run(None, {"x": x})[0].argmax(1) == y))
    print(f"float ANN (onnxruntime): {100 * float_acc:.2f} % on {len(y)} test samples")
    imported = import_model(model_path)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wide = Path(tmp) / "state48.toml"
        wide.write_text("[numeric]\nstate_bits = 48\n")
        for coding, profile in (("rate", None), ("differential", None), ("differential", str(wide))):
            for T in Ts:
                cfg = CompileConfig(neuron="multi-threshold", mt_n=4, coding=coding, timesteps=T,
                                    calibration_data=str(HERE / "calib.npz"), thresholds="iterate",
                                    schedule="pipelined", profile=profile)
                try:
                    net = compile_imported(imported, cfg, runner=reference_runner)
                except StateOverflowError as e:   # loihi's 24-bit state too narrow
                    print(f"{coding:12s} T={T}: does not fit ({e})")
                    continue
                res = simulate(net, x, "pipelined")
                acc = float(np.mean(res.predictions() == y))
                bound = 1 + max(b.worst for b in network_bounds(net).values()).bit_length()
                used = 1 + max(int(v) for v in res.max_abs_state.values()).bit_length()
                rows.append({"coding": coding, "T": T, "snn_accuracy": acc, "float_accuracy": float_acc,
                             "state_bits_bound": bound, "state_bits_used": used,
                             "target": "loihi" + (" + state_bits 48" if profile else "")})
                F = getattr(net.coding, "frac_bits", None)
                rows[-1]["frac_bits"] = F
                print(f"{coding:12s} T={T}: SNN {100 * acc:.2f} %  (state: bound {bound} bits, used {used}; "
                      f"{rows[-1]['target']}{'' if F is None else f'; F = {F}'})")
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out-dir", type=Path, default=HERE)
    p.add_argument("--measure", action="store_true", help="only measure the shipped model (no training)")
    args = p.parse_args(argv)
    if args.measure:
        measure(args.out_dir / "relu_maxpool_cnn.onnx")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    x_tr, x_te, y_tr, y_te = qtrain.load_shipped_split(args.seed)
    model = make_relu_maxpool_cnn()
    secs = qtrain.fit(model, torch.from_numpy(x_tr), torch.from_numpy(y_tr), args.epochs, args.lr, args.batch_size,
                      args.seed)
    acc = qtrain.accuracy(model, torch.from_numpy(x_te), torch.from_numpy(y_te))
    log.info("test accuracy %.4f (%.1f s)", acc, secs)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / "relu_maxpool_cnn.onnx"
    qcfs.export_onnx(model, out)
    import onnxruntime as ort

    logits = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x_te})[0]
    info = {"model": "relu_maxpool_cnn", "epochs": args.epochs, "seed": args.seed, "lr": args.lr,
            "batch_size": args.batch_size, "train_seconds": round(secs, 2), "test_accuracy": round(acc, 4),
            "onnxruntime_test_accuracy": round(float(np.mean(logits.argmax(1) == y_te)), 4),
            "n_test": int(len(y_te)), "calibration": "calib.npz (train_relu.py)"}
    (args.out_dir / "relu_maxpool_cnn.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("wrote %s, relu_maxpool_cnn.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
