"""Train and export the "models nobody here wrote" corpus (issue 13): float models that onnxruntime
quantizes, a SpikingJelly-style 28x28 CNN, and Brevitas models exported by Brevitas itself.

Usage (from the repository root; about a minute on 2 CPU threads)::

    .venv/bin/python examples/external/train_external.py            # everything
    .venv/bin/python examples/external/train_external.py --only mlp sj_cnn28

Writes next to this file (all small, committed):

* ``digits_mlp.onnx``   float MLP 64-128-64-10 (ReLU) on scikit-learn's 8x8 digits; onnxruntime's
  ``quantize_static`` makes its QDQ variants at test time (tests/integration/external_models.py).
* ``sj_cnn28.onnx``     SpikingJelly's ann2snn MNIST CNN layout (3 x [Conv3x3 no pad, BN eps 1e-3, ReLU,
  AvgPool 2x2], Linear(32, 10), ReLU) on the digits upsampled to 28x28 (``digits28``): average pools over
  26, 11 and 3-wide maps (13, 5 and 1 after pooling: odd sizes).
* ``brevitas_*.onnx``   Brevitas 0.13 ``export_qonnx`` / ``export_onnx_qcdq`` of small digits CNNs built from
  Brevitas' own blocks (BipolarQuant weights, QuantReLU, TruncAvgPool2d, signed QuantHardTanh, a batch-4
  export, Softmax / LogSoftmax / Sigmoid heads). Brevitas' dynamo export fixes the batch to the example's.
* ``external.json``     training settings and accuracies (float torch and onnxruntime on test.npz).

Training is seeded and deterministic on one machine and torch version.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "digits"))
sys.path.insert(0, str(HERE.parent / "models"))
import train as qtrain  # noqa: E402  (examples/digits/train.py: the shipped split, fit, accuracy)

log = logging.getLogger("external.train")


def upsample_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Bilinear interpolation matrix (n_out, n_in), half-pixel centres (align_corners=False)."""
    a = np.zeros((n_out, n_in))
    for o in range(n_out):
        c = (o + 0.5) * n_in / n_out - 0.5
        lo = int(np.floor(c))
        f = c - lo
        for i, wgt in ((lo, 1 - f), (lo + 1, f)):
            a[o, min(max(i, 0), n_in - 1)] += wgt
    return a


def digits28(x: np.ndarray) -> np.ndarray:
    """8x8 digits (N, 1, 8, 8) in [0, 1] -> (N, 1, 28, 28) in [0, 1], bilinear (deterministic numpy)."""
    a = upsample_matrix(x.shape[-1], 28)
    return np.clip(np.einsum("yi,ncij,xj->ncyx", a, x.astype(np.float64), a), 0, 1).astype(np.float32)


def make_mlp() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def make_sj_cnn28() -> nn.Sequential:
    """SpikingJelly's ann2snn MNIST example network (its layer list; written here, not imported)."""
    layers = []
    c_in = 1
    for _ in range(3):
        layers += [nn.Conv2d(c_in, 32, 3, 1), nn.BatchNorm2d(32, eps=1e-3), nn.ReLU(), nn.AvgPool2d(2, 2)]
        c_in = 32
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(32, 10), nn.ReLU())


def export_float(model: nn.Module, path: Path, shape) -> None:
    import qcfs

    qcfs.export_onnx(model, path, input_shape=shape)


def ort_accuracy(path: Path, x: np.ndarray, y: np.ndarray) -> float | None:
    """onnxruntime's accuracy on (x, y), the batch chunked and padded for a fixed-batch model; None when
    onnxruntime cannot load the model (QONNX custom ops)."""
    import onnxruntime as ort

    try:
        s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - QONNX's custom domains are not onnxruntime ops
        return None
    inp = s.get_inputs()[0]
    b = inp.shape[0] if isinstance(inp.shape[0], int) else len(x)
    preds = []
    for i in range(0, len(x), b):
        xb = x[i:i + b]
        pad = b - len(xb)
        if pad:
            xb = np.concatenate([xb, np.zeros((pad,) + xb.shape[1:], xb.dtype)])
        preds.append(s.run(None, {inp.name: xb})[0].reshape(b, -1)[:b - pad].argmax(1))
    return float(np.mean(np.concatenate(preds) == y))


def _round(v):
    return None if v is None else round(v, 4)


# ---- Brevitas models ------------------------------------------------------------------------------
BREVITAS = {
    # name: (builder options, export format, export batch)
    "brevitas_bnn_qonnx": ({"binary": True, "trunc": "floor"}, "qonnx", 2),
    "brevitas_trunc_qcdq": ({"trunc": "floor"}, "qcdq", 2),  # QCDQ has no binary weights
    "brevitas_trunc_round_qonnx": ({"trunc": "round"}, "qonnx", 2),
    "brevitas_signed_qonnx": ({"signed": True}, "qonnx", 2),
    "brevitas_signed_qcdq": ({"signed": True}, "qcdq", 2),
    "brevitas_batch4_qonnx": ({}, "qonnx", 4),
    "brevitas_batch4_qcdq": ({}, "qcdq", 4),
    "brevitas_softmax_qonnx": ({"head": "softmax"}, "qonnx", 2),
    "brevitas_logsoftmax_qcdq": ({"head": "logsoftmax"}, "qcdq", 2),
    "brevitas_sigmoid_qonnx": ({"head": "sigmoid"}, "qonnx", 2),
}


def make_brevitas_cnn(binary: bool = False, trunc: str | None = None, signed: bool = False, head: str | None = None):
    """A digits CNN from Brevitas' blocks: QuantIdentity (uint8 input), QuantConv2d (BipolarQuant weights
    when ``binary``, else 4-bit), QuantReLU 4-bit (QuantHardTanh, signed, when ``signed``), QuantConv2d,
    QuantReLU, 2x2 pool (TruncAvgPool2d with ``trunc`` = floor | round, else torch's AvgPool2d),
    QuantLinear, optional Softmax / LogSoftmax / Sigmoid ``head``."""
    from brevitas.nn import QuantConv2d, QuantHardTanh, QuantIdentity, QuantLinear, QuantReLU, TruncAvgPool2d
    from brevitas.quant import SignedBinaryWeightPerTensorConst, Uint8ActPerTensorFloat
    from brevitas.quant.scaled_int import RoundTo8bit, TruncTo8bit

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
            wq = {"weight_quant": SignedBinaryWeightPerTensorConst} if binary else {"weight_bit_width": 4}
            self.conv1 = QuantConv2d(1, 8, 3, padding=1, bias=False, **wq)
            self.act1 = (QuantHardTanh(bit_width=4, min_val=-1.0, max_val=1.0, return_quant_tensor=True) if signed
                         else QuantReLU(bit_width=4, return_quant_tensor=True))
            self.conv2 = QuantConv2d(8, 16, 3, padding=1, bias=True, weight_bit_width=4)
            self.act2 = QuantReLU(bit_width=4, return_quant_tensor=True)
            if trunc is None:
                self.pool = nn.AvgPool2d(2)
            else:
                self.pool = TruncAvgPool2d(2, trunc_quant=TruncTo8bit if trunc == "floor" else RoundTo8bit,
                                           bit_width=4, return_quant_tensor=False)
            self.fc = QuantLinear(16 * 4 * 4, 10, bias=True, weight_bit_width=4)
            self.head = {None: nn.Identity(), "softmax": nn.Softmax(dim=1), "logsoftmax": nn.LogSoftmax(dim=1),
                         "sigmoid": nn.Sigmoid()}[head]

        def forward(self, x):
            x = self.act2(self.conv2(self.act1(self.conv1(self.inp(x)))))
            x = self.pool(x)
            x = x.value if hasattr(x, "value") else x
            return self.head(self.fc(x.flatten(1)))

    return Net()


def export_brevitas(model: nn.Module, fmt: str, batch: int, path: Path) -> None:
    from brevitas.export import export_onnx_qcdq, export_qonnx

    quiet = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        (export_qonnx if fmt == "qonnx" else export_onnx_qcdq)(model, torch.zeros(batch, 1, 8, 8),
                                                                export_path=str(path))
    import onnx

    m = onnx.load(str(path), load_external_data=True)  # the exporter may write the weights to path.data
    data = Path(str(path) + ".data")
    onnx.save(m, str(path), save_as_external_data=False)
    if data.is_file():
        data.unlink()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="*", default=None, help="mlp, sj_cnn28, brevitas (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out-dir", type=Path, default=HERE)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)
    only = set(args.only or ("mlp", "sj_cnn28", "brevitas"))
    x_tr, x_te, y_tr, y_te = qtrain.load_shipped_split(args.seed)
    info_path = args.out_dir / "external.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}

    def run(name, model, xtr, xte, epochs, lr, shape, export):
        torch.manual_seed(args.seed)
        secs = qtrain.fit(model, torch.from_numpy(xtr), torch.from_numpy(y_tr), epochs, lr, 64, args.seed)
        acc = qtrain.accuracy(model, torch.from_numpy(xte), torch.from_numpy(y_te))
        path = args.out_dir / f"{name}.onnx"
        export(model, path)
        info[name] = {"epochs": epochs, "lr": lr, "seed": args.seed, "train_seconds": round(secs, 1),
                      "torch_test_accuracy": round(acc, 4),
                      "onnxruntime_test_accuracy": _round(ort_accuracy(path, xte, y_te))}
        log.info("%s: %s", name, info[name])

    if "mlp" in only:
        torch.manual_seed(args.seed)
        run("digits_mlp", make_mlp(), x_tr, x_te, 30, 1e-2, (1, 1, 8, 8),
            lambda m, path: export_float(m, path, (1, 1, 8, 8)))
    if "sj_cnn28" in only:
        torch.manual_seed(args.seed)
        run("sj_cnn28", make_sj_cnn28(), digits28(x_tr), digits28(x_te), 15, 2e-3, (1, 1, 28, 28),
            lambda m, path: export_float(m, path, (1, 1, 28, 28)))
    if "brevitas" in only:
        for name, (opts, fmt, batch) in BREVITAS.items():
            torch.manual_seed(args.seed)
            model = make_brevitas_cnn(**opts)
            run(name, model, x_tr, x_te, 8, 1e-2, (batch, 1, 8, 8),
                lambda m, path, fmt=fmt, batch=batch: export_brevitas(m, fmt, batch, path))
    info_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    log.info("wrote %s", info_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
