"""Train a small QCFS ResNet on sklearn's 8x8 digits and export it to ONNX for snnc.

Usage (from the repository root)::

    .venv/bin/python examples/digits/train_resnet.py            # round, L=4, legacy exporter

The network (examples/models/resnet.py, ``QCFSResNet``)::

    x (N,1,8,8) -> conv3x3(1->16) + BN + QuantClip                                  stem
                -> BasicBlock(16->16)            identity shortcut                  8x8
                -> BasicBlock(16->32, stride 2)  1x1 conv + BN shortcut             4x4
                -> BasicBlock(32->32)            identity shortcut                  4x4
                -> global average pool -> Linear(32->10)

Every block is act(bn2(conv2(h)) + shortcut(x)): the residual add before the activation, as in
QCFS. Same data split, optimiser and schedule as train.py (the CNN example). Writes the model
(``--out``), and next to it a JSON with the settings, the torch / onnxruntime accuracies and what
snnc measures on the compiled network (layerwise, T = L): exactness, SNN and integer-ANN accuracy.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "models"))
sys.path.insert(0, str(HERE))
import qcfs  # noqa: E402
import resnet  # noqa: E402
from train import accuracy, fit, load_split  # noqa: E402

log = logging.getLogger("digits.train_resnet")


def make_digits_resnet(quantizer: str = "round", levels: int = 4, lam_init: float = 2.0,
                       widths=(16, 32), blocks=(1, 2)) -> resnet.QCFSResNet:
    model = resnet.QCFSResNet(widths, blocks, num_classes=10, stem="cifar", levels=levels, quantizer=quantizer,
                              in_channels=1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, qcfs.QuantClip):
                m.lam.fill_(lam_init)
    return model


def snnc_check(path: Path, x: np.ndarray, y: np.ndarray, profile: Path | None = None) -> dict:
    """Compile for loihi (with ``profile`` laid over it, if given), verify layerwise at T = L against the integer
    ANN, on the test split."""
    from snnc.ir import Schedule
    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.tools.verify import verify_against_ann

    t0 = time.perf_counter()
    net, raw = compile_model(path, CompileConfig(profile=None if profile is None else str(profile)))
    t_compile = time.perf_counter() - t0
    rep = verify_against_ann(net, x, y, Schedule.LAYERWISE, raw)
    return {
        "compile_seconds": round(t_compile, 3), "timesteps": net.timesteps, "populations": len(net.populations),
        "projections": len(net.projections), "exact": rep.exact, "neurons_compared": rep.neurons_compared,
        "neurons_mismatched": rep.neurons_mismatched, "snn_accuracy": round(rep.accuracy["snn"], 4),
        "ann_int_accuracy": round(rep.accuracy["ann_int"], 4), "ann_float_accuracy": round(rep.accuracy["ann_float"], 4),
        "ann_int_vs_ann_float": round(rep.prediction_agreement["ann_int_vs_ann_float"], 4),
    }


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    x_tr, x_te, y_tr, y_te = load_split(args.seed)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    xe, ye = torch.from_numpy(x_te), torch.from_numpy(y_te)

    model = make_digits_resnet(args.quantizer, args.levels, args.lam_init)
    train_s = fit(model, xt, yt, args.epochs, args.lr, args.batch_size, args.seed)

    model.eval()
    test_acc, train_acc = accuracy(model, xe, ye), accuracy(model, xt, yt)
    lams = [round(float(m.lam.detach()), 4) for m in model.modules() if isinstance(m, qcfs.QuantClip)]
    log.info("eval (quantized) accuracy: train %.4f  test %.4f (%.1f s)", train_acc, test_acc, train_s)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    qcfs.export_onnx(model, out, exporter=args.exporter)
    info = {
        "model": "QCFSResNet(widths=(16, 32), blocks=(1, 2), stem=cifar, in_channels=1)",
        "quantizer": args.quantizer, "levels": args.levels, "exporter": args.exporter, "epochs": args.epochs,
        "seed": args.seed, "lr": args.lr, "batch_size": args.batch_size, "train_seconds": round(train_s, 2),
        "parameters": int(sum(p.numel() for p in model.parameters())), "lam": lams,
        "train_accuracy": round(train_acc, 4), "test_accuracy": round(test_acc, 4), "n_test": int(len(y_te)),
    }
    import onnxruntime as ort

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"x": x_te.astype(np.float32)})[0]
    info["onnxruntime_test_accuracy"] = round(float(np.mean(logits.argmax(1) == y_te)), 4)
    info["snnc"] = snnc_check(out, x_te.astype(np.float32), y_te)
    log.info("snnc: %s", info["snnc"])
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("wrote %s and %s", out, out.with_suffix(".json"))
    return info


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quantizer", choices=qcfs.QUANTIZERS, default="round")
    p.add_argument("--levels", type=int, default=4)
    p.add_argument("--exporter", choices=qcfs.EXPORTERS, default="legacy")
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lam-init", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(HERE / "resnet_digits.onnx"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    train(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
