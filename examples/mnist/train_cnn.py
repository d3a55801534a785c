"""Train the digits CNN recipes on MNIST 5k at 28x28 and export them to ONNX for snnc.

Usage (from the repository root)::

    .venv/bin/python examples/mnist/train_cnn.py --model qcfs_cnn      # one of the models below
    .venv/bin/python examples/mnist/train_cnn.py --model sj_cnn --epochs 1 --limit 256 --out-dir /tmp/m

Models (``--model``), every one trained on the 4,000 training images of ``mnist5k.npz`` with the
digits examples' optimiser (examples/digits/train.py ``fit``: Adam, one-cycle schedule, seeded
batch order, ``torch.set_num_threads(--threads)``, CPU):

* ``qcfs_cnn``: examples/digits/train.py's QCFS CNN (``qcfs.make_digits_cnn(input_size=28)``):
  Conv(1->8)-BN-QCFS, Conv(8->16)-BN-QCFS, AvgPool 2 (28 -> 14), Linear(3136->64)-QCFS, Linear(64->10);
* ``qcfs_resnet``: examples/digits/train_resnet.py's QCFS ResNet (widths 16, 32; blocks 1, 2;
  global average pool), unchanged (it takes any input size);
* ``relu_cnn``: examples/digits/train_relu.py's CNN with plain float ReLUs (``make_relu_cnn(28)``),
  the input of the training-free conversion (paper 004);
* ``sj_cnn``: SpikingJelly's ann2snn MNIST CNN (``spikingjelly/activation_based/ann2snn/sample_models/
  mnist_cnn.py``, the model of its ``examples/cnn_mnist.py``): three blocks Conv(3x3, no padding)-BN-
  ReLU-AvgPool(2), 28 -> 26 -> 13 -> 11 -> 5 -> 3 -> 1, Flatten, Linear(32->10). A model nobody here
  designed; its pools run over odd maps (11x11 and 3x3), trained as a plain float ReLU net.

Writes ``<model>.onnx`` (``--name`` overrides the stem; legacy exporter, opset 17, input ``x`` (batch,1,28,28), output ``logits``)
and ``<model>.json`` (settings, torch and onnxruntime test accuracy, and what snnc measures) into
``--out-dir``. The snnc check (skipped with ``--no-check``):

* QCFS models: ``snnc compile`` defaults (T = L, layerwise), verified against the quantized ANN on the
  test split (as examples/digits/train_resnet.py ``snnc_check``): exactness and the three accuracies;
* plain ReLU models: training-free, ``--calib calib.npz --neuron multi-threshold:4 --coding
  differential --timesteps 4``, measured against the float ANN (``verify_training_free``); a model
  the compiler refuses gets the refusal's message in ``snnc.refused``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent
for _p in (HERE, EXAMPLES / "digits", EXAMPLES / "models"):
    sys.path.insert(0, str(_p))
import mnist5k  # noqa: E402
import qcfs  # noqa: E402
import train as digits_train  # noqa: E402  (examples/digits/train.py: fit, accuracy)
import train_relu  # noqa: E402
import train_resnet  # noqa: E402

log = logging.getLogger("mnist.train_cnn")

WIDE_STATE = HERE / "state32.toml"  # a 32-bit state over loihi, where its 24-bit state refuses T = L
TRAINING_FREE = {"calib": "calib.npz", "neuron": "multi-threshold", "mt_n": 4, "coding": "differential", "timesteps": 4}


def make_sj_cnn() -> nn.Sequential:
    """SpikingJelly's ann2snn MNIST CNN (sample_models/mnist_cnn.py ``CNN.network``), (N,1,28,28) -> (N,10)."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2, 2),
        nn.Conv2d(32, 32, 3, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2, 2),
        nn.Conv2d(32, 32, 3, 1), nn.BatchNorm2d(32), nn.ReLU(), nn.AvgPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(32, 10),
    )


@dataclass(frozen=True)
class Recipe:
    """One model: how to build it, whether it is QCFS (quantized) or plain ReLU, its training defaults."""

    description: str
    build: Callable[[argparse.Namespace], nn.Module]
    quantized: bool
    epochs: int
    lr: float = 1e-2
    batch_size: int = 64

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.lr <= 0 or self.batch_size < 1:
            raise ValueError(f"bad training defaults for {self.description}")


RECIPES: dict[str, Recipe] = {
    "qcfs_cnn": Recipe(
        "examples/models/qcfs.py make_digits_cnn(input_size=28): Conv(1->8)-BN-QCFS, Conv(8->16)-BN-QCFS, "
        "AvgPool2d(2), Flatten, Linear(3136->64)-QCFS, Linear(64->10)",
        lambda a: qcfs.make_digits_cnn(a.quantizer, a.levels, a.lam_init, input_size=mnist5k.SIZE), True, 15),
    "qcfs_resnet": Recipe(
        "examples/digits/train_resnet.py make_digits_resnet: QCFSResNet(widths=(16, 32), blocks=(1, 2), "
        "stem=cifar, in_channels=1)",
        lambda a: train_resnet.make_digits_resnet(a.quantizer, a.levels, a.lam_init), True, 6),
    "relu_cnn": Recipe(
        "examples/digits/train_relu.py make_relu_cnn(input_size=28): the qcfs_cnn recipe with plain ReLUs",
        lambda a: train_relu.make_relu_cnn(mnist5k.SIZE), False, 15),
    "sj_cnn": Recipe(
        "SpikingJelly ann2snn sample_models/mnist_cnn.py CNN: 3 x [Conv(3x3, no pad)-BN-ReLU-AvgPool2d(2)] "
        "(28->26->13->11->5->3->1), Flatten, Linear(32->10)",
        lambda a: make_sj_cnn(), False, 10),
}


def snnc_training_free(path: Path, x: np.ndarray, y: np.ndarray, calib: Path) -> dict:
    """Compile training-free (TRAINING_FREE settings) and measure against the float ANN; a refusal is
    recorded with its message (one line per reason), not raised."""
    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.errors import SnncError
    from snnc.compiler.tools.runner import reference_runner
    from snnc.compiler.tools.verify_float import verify_training_free

    s = TRAINING_FREE
    setting = (f"--calib {s['calib']} --neuron {s['neuron']}:{s['mt_n']} --coding {s['coding']} "
               f"--timesteps {s['timesteps']}")
    config = CompileConfig(calibration_data=str(calib), neuron=s["neuron"], mt_n=s["mt_n"], coding=s["coding"],
                           timesteps=s["timesteps"])
    t0 = time.perf_counter()
    try:
        net, raw = compile_model(path, config, runner=reference_runner)
    except SnncError as e:
        log.warning("snnc refuses %s: %s", path.name, e)
        return {"setting": setting, "compiled": False, "refused": str(e)}
    t_compile = time.perf_counter() - t0
    rep = verify_training_free(net, x, y, raw)
    return {"setting": setting, "compiled": True, "compile_seconds": round(t_compile, 3),
            "populations": len(net.populations), "projections": len(net.projections),
            "snn_accuracy": round(rep.accuracy["snn"], 4), "ann_float_accuracy": round(rep.accuracy["ann_float"], 4),
            "snn_vs_ann_float": round(rep.prediction_agreement["snn_vs_ann_float"], 4)}


def snnc_check_qcfs(path: Path, x: np.ndarray, y: np.ndarray) -> dict:
    """examples/digits/train_resnet.py's check (loihi, T = L, layerwise, against the integer ANN). Where the
    24-bit loihi state refuses T = L (fc1's 3136 inputs at L = 32), the refusal is recorded and the same check
    runs with the 32-bit state of ``state32.toml`` laid over loihi (``profile`` says which ran)."""
    from snnc.compiler.errors import StateOverflowError

    try:
        return {**train_resnet.snnc_check(path, x, y), "profile": None}
    except StateOverflowError as e:
        log.warning("snnc: loihi refuses %s at T = L (%s); checking with %s", path.name, e, WIDE_STATE.name)
        return {**train_resnet.snnc_check(path, x, y, profile=WIDE_STATE),
                "profile": str(WIDE_STATE.relative_to(EXAMPLES.parent)), "loihi_refused": str(e)}


def train(args: argparse.Namespace) -> dict:
    recipe = RECIPES[args.model]
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)

    x_tr, x_te, y_tr, y_te = mnist5k.load_split(args.split)
    if args.limit is not None:
        x_tr, y_tr = x_tr[: args.limit], y_tr[: args.limit]
    if args.test_limit is not None:
        x_te, y_te = x_te[: args.test_limit], y_te[: args.test_limit]
    log.info("%s: %d train / %d test images", args.model, len(y_tr), len(y_te))
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xe, ye = torch.from_numpy(x_te), torch.from_numpy(y_te)

    model = recipe.build(args)
    epochs = args.epochs or recipe.epochs
    lr = args.lr or recipe.lr
    train_s = digits_train.fit(model, xt, yt, epochs, lr, recipe.batch_size, args.seed)
    model.eval()
    test_acc, train_acc = digits_train.accuracy(model, xe, ye), digits_train.accuracy(model, xt, yt)
    log.info("%s: test accuracy %.4f, train %.4f (%.1f s)", args.model, test_acc, train_acc, train_s)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{args.name or args.model}.onnx"
    qcfs.export_onnx(model, out, exporter="legacy", input_shape=(1, 1, mnist5k.SIZE, mnist5k.SIZE))
    info = {"model": recipe.description, "data": "examples/mnist/mnist5k.npz", "epochs": epochs, "seed": args.seed,
            "lr": lr, "batch_size": recipe.batch_size, "threads": args.threads, "exporter": "legacy",
            "train_images": int(len(y_tr)), "train_seconds": round(train_s, 2),
            "parameters": int(sum(p.numel() for p in model.parameters()))}
    if recipe.quantized:
        info.update(quantizer=args.quantizer, levels=args.levels,
                    lam=[round(float(m.lam.detach()), 4) for m in model.modules() if isinstance(m, qcfs.QuantClip)])
    info.update(train_accuracy=round(train_acc, 4), test_accuracy=round(test_acc, 4), n_test=int(len(y_te)))

    import onnxruntime as ort

    logits = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(["logits"], {"x": x_te})[0]
    correct = int(np.sum(logits.argmax(1) == y_te))
    info["onnxruntime_test_correct"] = correct
    info["onnxruntime_test_accuracy"] = round(correct / len(y_te), 4)
    if info["onnxruntime_test_accuracy"] != info["test_accuracy"]:
        log.warning("onnxruntime accuracy %.4f differs from torch's %.4f", correct / len(y_te), test_acc)
    if args.check:
        info["snnc"] = (snnc_check_qcfs(out, x_te, y_te) if recipe.quantized
                        else snnc_training_free(out, x_te, y_te, args.calib))
        log.info("snnc: %s", info["snnc"])
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("wrote %s and %s", out, out.with_suffix(".json").name)
    return info


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(RECIPES), required=True)
    p.add_argument("--quantizer", choices=qcfs.QUANTIZERS, default="round", help="QCFS models (default round)")
    p.add_argument("--levels", type=int, default=4, help="QCFS models: quantization levels L (default 4)")
    p.add_argument("--lam-init", type=float, default=2.0, help="QCFS models: initial threshold lambda")
    p.add_argument("--epochs", type=int, default=None, help="default: the model's (qcfs_cnn 15, qcfs_resnet 6, "
                   "relu_cnn 15, sj_cnn 10)")
    p.add_argument("--lr", type=float, default=None, help="peak Adam learning rate (default 0.01)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--test-limit", type=int, default=None, help="measure on the first N test images only (smoke runs)")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images only (smoke runs)")
    p.add_argument("--split", type=Path, default=mnist5k.SPLIT, help="the MNIST 5k split (.npz, make_split.py)")
    p.add_argument("--calib", type=Path, default=mnist5k.CALIB, help="calibration images for plain ReLU models")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the snnc compile/verify check")
    p.add_argument("--out-dir", type=Path, default=HERE)
    p.add_argument("--name", default=None, help="file stem of the .onnx / .json written (default: the model's name; "
                   "train_zoo.py writes <quantizer>_L<levels>)")
    args = p.parse_args(argv)
    if args.levels < 1:
        p.error("--levels must be >= 1")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be >= 1")
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.test_limit is not None and args.test_limit < 1:
        p.error("--test-limit must be >= 1")
    if args.name is not None and (not args.name or "/" in args.name or args.name.startswith(".")):
        p.error(f"--name must be a plain file stem (no '/', not starting with '.'), got {args.name!r}")
    return args


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
