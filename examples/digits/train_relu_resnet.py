"""Train a small plain-ReLU ResNet on sklearn's 8x8 digits for snnc's training-free conversion
(paper 004) and export it to ONNX.

Usage (from the repository root)::

    .venv/bin/python examples/digits/train_relu_resnet.py

The network (``ReluResNet``; the shape of examples/digits/train_resnet.py's QCFS ResNet, with
plain ReLUs and no quantized activation)::

    x (N,1,8,8) -> conv3x3(1->16) + BN + ReLU                                       stem
                -> BasicBlock(16->16)            identity shortcut                  8x8
                -> BasicBlock(16->32, stride 2)  1x1 conv + BN shortcut             4x4
                -> BasicBlock(32->32)            identity shortcut                  4x4
                -> AvgPool2d(4) (global average) -> Flatten -> Linear(32->10)

``--arch resnet20`` trains instead the model zoo's CIFAR ResNet-20 (examples/models/resnet.py,
``build_resnet20(activation="relu", in_channels=1, width=0.5)``: 3 stages x 3 blocks, 8-16-32
channels, 19 ReLU layers) and writes ``relu_resnet20.onnx`` / ``relu_resnet20.json``.

Every block is relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)): the residual add before the
second ReLU. Average pooling only (no max pool). Same data split, optimiser and schedule as
train.py / train_relu.py (``fit``, ``load_split``, seed 0): the test split is examples/digits/test.npz
(checked) and the calibration split examples/digits/calib.npz (written by train_relu.py from the
training split) serves this model too. Writes ``relu_resnet.onnx`` and ``relu_resnet.json``
(settings, the torch and onnxruntime test accuracies, and a training-free snnc check) next to this
file (``--out-dir``).
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
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "models"))
import qcfs  # noqa: E402
import train as qtrain  # noqa: E402

log = logging.getLogger("digits.train_relu_resnet")


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(h)) + self.shortcut(x))


class ReluResNet(nn.Module):
    """Stem, stages of BasicBlocks (the first block of every stage but the first has stride 2),
    global average pooling (AvgPool2d over the whole map), Linear."""

    def __init__(self, widths=(16, 32), blocks=(1, 2), num_classes: int = 10, in_channels: int = 1,
                 input_size: int = 8) -> None:
        super().__init__()
        w0 = int(widths[0])
        self.stem = nn.Sequential(nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU())
        stages, cin, size = [], w0, input_size
        for i, (w, n) in enumerate(zip(widths, blocks)):
            for j in range(int(n)):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(BasicBlock(cin, int(w), stride))
                cin, size = int(w), (size + stride - 1) // stride
        self.layers = nn.Sequential(*stages)
        self.pool = nn.AvgPool2d(size)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.layers(self.stem(x)))))


def count_blocks(model: nn.Module) -> dict:
    blocks = [m for m in model.modules() if hasattr(m, "shortcut")]  # this file's or the zoo's BasicBlock
    proj = sum(isinstance(b.shortcut, nn.Sequential) for b in blocks)
    return {"identity": len(blocks) - proj, "projection": proj}


def snnc_check(path: Path, calib: Path, x: np.ndarray, y: np.ndarray, T: int = 4, n: int = 4) -> dict:
    """Training-free conversion (iterate thresholds, multi-threshold:n, rate coding, T steps,
    pipelined) and its accuracy on the test split, in the reference simulator."""
    from snnc.backends.reference import simulate
    from snnc.compiler.api import compile_imported, import_model
    from snnc.compiler.tools.runner import reference_runner
    from snnc.compiler.config import CompileConfig

    t0 = time.perf_counter()
    net = compile_imported(import_model(path), CompileConfig(
        neuron="multi-threshold", mt_n=n, coding="rate", timesteps=T, calibration_data=str(calib),
        schedule="pipelined"), runner=reference_runner)
    t_compile = time.perf_counter() - t0
    acc = float(np.mean(simulate(net, x, "pipelined").predictions() == y))
    return {"setting": f"--calib calib.npz --thresholds iterate --neuron multi-threshold:{n} --coding rate "
                       f"--timesteps {T}", "compile_seconds": round(t_compile, 3),
            "populations": len(net.populations), "projections": len(net.projections), "snn_accuracy": round(acc, 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out-dir", type=Path, default=HERE)
    p.add_argument("--calib", type=Path, default=HERE / "calib.npz", help="calibration .npz for the snnc check")
    p.add_argument("--no-check", action="store_true", help="skip the training-free snnc check")
    p.add_argument("--arch", choices=("small", "resnet20"), default="small",
                   help="small: ReluResNet (relu_resnet.onnx); resnet20: the zoo's ResNet-20 at width 0.5 "
                        "with plain ReLUs (relu_resnet20.onnx)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    x_tr, x_te, y_tr, y_te = qtrain.load_shipped_split(args.seed)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    if args.arch == "resnet20":
        import resnet as zoo

        model, stem, desc = zoo.build_resnet20(10, width=0.5, in_channels=1, activation="relu"), "relu_resnet20", \
            "examples/models/resnet.py build_resnet20(width=0.5, in_channels=1, activation='relu')"
    else:
        model, stem, desc = ReluResNet(), "relu_resnet", \
            "ReluResNet(widths=(16, 32), blocks=(1, 2), AvgPool2d head, plain ReLU)"
    secs = qtrain.fit(model, xt, yt, args.epochs, args.lr, args.batch_size, args.seed)
    acc = qtrain.accuracy(model, torch.from_numpy(x_te), torch.from_numpy(y_te))
    log.info("test accuracy %.4f (%.1f s)", acc, secs)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{stem}.onnx"
    qcfs.export_onnx(model, out)
    import onnxruntime as ort

    logits = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x_te})[0]
    info = {"model": desc, "blocks": count_blocks(model),
            "parameters": int(sum(p.numel() for p in model.parameters())), "epochs": args.epochs, "seed": args.seed,
            "lr": args.lr, "batch_size": args.batch_size, "train_seconds": round(secs, 2),
            "test_accuracy": round(acc, 4),
            "onnxruntime_test_accuracy": round(float(np.mean(logits.argmax(1) == y_te)), 4),
            "n_test": int(len(y_te))}
    if not args.no_check and args.calib.is_file():
        info["snnc"] = snnc_check(out, args.calib, x_te, y_te)
        log.info("snnc: %s", info["snnc"])
    (args.out_dir / f"{stem}.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("wrote %s and %s.json", out, stem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
