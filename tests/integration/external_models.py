"""The corpus of "models nobody here wrote" (issue 13), as deterministic generators.

Every case is a model file made the way its tool makes it, the data it is evaluated on, and what
family it belongs to:

* ``ort_*``      onnxruntime's ``quantize_static`` (QDQ) of a float model with a calibration reader on
  examples/digits/calib.npz: U8S8 per-channel, U8U8 and S8S8 of the digits MLP and CNN, and U8S8 of the
  SpikingJelly-style 28x28 CNN. quantize_static is deterministic for a given float model and data.
* ``sj_cnn28``   the SpikingJelly ann2snn MNIST CNN layout (float, plain ReLU) on digits upsampled to
  28x28 (average pools over odd maps).
* ``brevitas_*`` Brevitas' own export_qonnx / export_onnx_qcdq of CNNs built from its blocks (committed
  files, made by examples/external/train_external.py): BipolarQuant weights, TruncAvgPool2d (floor and
  round), signed QuantHardTanh, a batch-4 export, Softmax / LogSoftmax / Sigmoid heads.
* ``brevitas_*_u8data``: a model whose input range is 0..1, evaluated on uint8 pixels 0..255.
* ``qcfs_vgg16_myfloor``: the QCFS authors' VGG-16 with their ``MyFloor`` activation (re-written here
  from its published definition), narrow (channels / 8), L = 4, random weights with batch-norm statistics
  and thresholds calibrated on data (realistic activations), made with torch at call time.

``build(case, tmp)`` writes the model (and its data) into ``tmp`` and returns their paths. The
"before" table of docs comes from ``benchmarks/external_before.py``, which runs the CLI on each.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
EXT = REPO / "examples" / "external"
DIGITS = REPO / "examples" / "digits"


def _train_module():
    spec = importlib.util.spec_from_file_location("snnc_external_train", EXT / "train_external.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("snnc_external_train", mod)
    spec.loader.exec_module(mod)
    return mod


def digits28(x: np.ndarray) -> np.ndarray:
    """The 8x8 digits upsampled to 28x28 (the SpikingJelly-style CNN's input), deterministic numpy."""
    return _train_module().digits28(x)


@dataclass(frozen=True)
class Case:
    name: str
    family: str               # ort-qdq | float-relu | brevitas-qonnx | brevitas-qcdq | qcfs
    description: str
    data: str = "digits"      # digits | digits28 | digits_u8 | vgg32
    compile_args: tuple = ()  # extra `snnc compile` arguments the case needs (e.g. --calib for plain ReLU)
    needs: tuple = ()         # python packages the generator imports (skipped when missing)
    meta: dict = field(default_factory=dict, compare=False)


ORT_VARIANTS = {
    # variant: (activation type, weight type, per-channel)
    "u8s8_pc": ("QUInt8", "QInt8", True),
    "u8u8": ("QUInt8", "QUInt8", False),
    "s8s8": ("QInt8", "QInt8", False),
}

CASES: list[Case] = []
for _float, _data in (("digits_mlp", "digits"), ("relu_cnn", "digits")):
    for _v in ORT_VARIANTS:
        CASES.append(Case(f"ort_{_float}_{_v}", "ort-qdq", f"onnxruntime quantize_static {_v} of {_float}",
                          _data, needs=("onnxruntime",), meta={"float": _float, "variant": _v}))
CASES.append(Case("ort_sj_cnn28_u8s8_pc", "ort-qdq", "onnxruntime quantize_static u8s8_pc of sj_cnn28", "digits28",
                  needs=("onnxruntime",), meta={"float": "sj_cnn28", "variant": "u8s8_pc"}))
CASES.append(Case("sj_cnn28", "float-relu", "SpikingJelly ann2snn MNIST CNN layout, float ReLU, 28x28", "digits28",
                  compile_args=("--calib", "{calib28}", "--neuron", "multi-threshold:4", "--timesteps", "8")))
for _b in ("brevitas_bnn_qonnx", "brevitas_trunc_qcdq", "brevitas_trunc_round_qonnx", "brevitas_signed_qonnx",
           "brevitas_signed_qcdq", "brevitas_batch4_qonnx", "brevitas_batch4_qcdq", "brevitas_softmax_qonnx",
           "brevitas_logsoftmax_qcdq", "brevitas_sigmoid_qonnx"):
    CASES.append(Case(_b, "brevitas-qonnx" if _b.endswith("qonnx") else "brevitas-qcdq",
                      f"Brevitas export ({_b[len('brevitas_'):]})", meta={"file": f"{_b}.onnx"}))
CASES.append(Case("brevitas_batch4_qonnx_u8data", "brevitas-qonnx",
                  "Brevitas batch-4 export (input range 0..1) on uint8 pixels 0..255", "digits_u8",
                  meta={"file": "brevitas_batch4_qonnx.onnx"}))
CASES.append(Case("qcfs_vgg16_myfloor", "qcfs", "QCFS authors' VGG-16 with MyFloor, channels/8, L=4, random "
                  "weights, calibrated batch norm", "vgg32", needs=("torch",)))

BY_NAME = {c.name: c for c in CASES}


# ---- data --------------------------------------------------------------------------------------------
def data_file(kind: str, tmp: Path) -> Path:
    """The evaluation data of a case as an .npz (x, y) in ``tmp`` (digits: the shipped test split)."""
    if kind == "digits":
        return DIGITS / "test.npz"
    out = tmp / f"{kind}.npz"
    if out.is_file():
        return out
    z = np.load(DIGITS / "test.npz")
    if kind == "digits28":
        np.savez_compressed(out, x=digits28(z["x"]), y=z["y"])
    elif kind == "digits_u8":
        np.savez_compressed(out, x=np.round(z["x"] * 255).astype(np.uint8), y=z["y"])
    elif kind == "vgg32":
        np.savez_compressed(out, x=vgg_inputs(z["x"]), y=z["y"])
    else:
        raise KeyError(kind)
    return out


def calib_file(kind: str, tmp: Path) -> Path:
    """Calibration inputs (x only) for a data kind: examples/digits/calib.npz, upsampled for 28x28."""
    if kind == "digits":
        return DIGITS / "calib.npz"
    out = tmp / f"calib_{kind}.npz"
    if not out.is_file():
        x = np.load(DIGITS / "calib.npz")["x"]
        np.savez_compressed(out, x=digits28(x) if kind == "digits28" else vgg_inputs(x))
    return out


def vgg_inputs(x8: np.ndarray) -> np.ndarray:
    """8x8 digits as (N, 3, 32, 32) images in [0, 1] (each pixel a 4x4 block, three equal channels)."""
    x = np.kron(x8[:, 0], np.ones((4, 4), np.float32))
    return np.repeat(x[:, None], 3, axis=1).astype(np.float32)


# ---- models ------------------------------------------------------------------------------------------
def float_model(name: str) -> Path:
    return DIGITS / "relu_cnn.onnx" if name == "relu_cnn" else EXT / f"{name}.onnx"


def ort_quantize(float_path: Path, variant: str, calib: Path, out: Path) -> Path:
    """onnxruntime's quantize_static, QDQ format, MinMax calibration over ``calib``'s x."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    act, wt, per_channel = ORT_VARIANTS[variant]
    model = onnx.load(str(float_path))
    inp = model.graph.input[0].name
    x = np.load(calib)["x"].astype(np.float32)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{inp: x[i:i + 32]} for i in range(0, len(x), 32)])

        def get_next(self):
            return next(self.it, None)

    quantize_static(str(float_path), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    activation_type=getattr(QuantType, act), weight_type=getattr(QuantType, wt))
    return out


def qcfs_vgg16_myfloor(out: Path, data: Path, seed: int = 0, width_div: int = 8, L: int = 4) -> Path:
    """The QCFS authors' VGG-16 (cfg 'VGG16': 64,64,M,128,128,M,256x3,M,512x3,M,512x3,M with AvgPool2d as
    'M', Conv3x3 pad 1 + BatchNorm2d + activation, classifier Linear(512, 4096)-act-Linear(4096, 4096)-act-
    Linear(4096, classes)), channels divided by ``width_div``, with their ``MyFloor`` activation
    (y = up * clamp(floor(x / up * t + 0.5) / t, 0, 1), t = L). Kaiming-normal conv weights (fan_out), as
    their init; batch-norm running statistics set to the statistics of the real inputs in ``data`` (layer by
    layer) and each MyFloor's ``up`` to the 99.9th percentile of its input there, so activations are
    realistic. Exported with torch's legacy exporter."""
    import torch
    from torch import nn

    class MyFloor(nn.Module):  # QCFS (Bu et al. 2022), Models/layer.py: the clip-floor activation, t = L
        def __init__(self, up: float = 8.0, t: int = 32):
            super().__init__()
            self.up = nn.Parameter(torch.tensor([up]))
            self.t = t

        def forward(self, x):
            x = x / self.up
            x = torch.floor(x * self.t + 0.5) / self.t
            x = torch.clamp(x, 0, 1)
            return x * self.up

    torch.manual_seed(seed)
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.AvgPool2d(2, 2))
        else:
            v //= width_div
            conv = nn.Conv2d(c, v, 3, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            layers += [conv, nn.BatchNorm2d(v), MyFloor(t=L)]
            c = v
    hid = 4096 // width_div
    layers += [nn.Flatten(), nn.Linear(c, hid), MyFloor(t=L), nn.Linear(hid, hid), MyFloor(t=L), nn.Linear(hid, 10)]
    for m in layers:
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.bias)
    model = nn.Sequential(*layers).eval()
    x = torch.from_numpy(np.load(data)["x"][:256])
    with torch.no_grad():
        h = x
        for m in model:
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(h.mean(dim=(0, 2, 3)))
                m.running_var.copy_(h.var(dim=(0, 2, 3)))
                m.weight.copy_(1.0 + 0.1 * torch.randn_like(m.weight))
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
            if isinstance(m, MyFloor):
                m.up.copy_(torch.quantile(h.flatten(), 0.999).clamp(min=1e-3).reshape(1))
            h = m(h)
        torch.onnx.export(model, (x[:1],), str(out), dynamo=False, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
    return out


def build(case: Case | str, tmp: Path) -> tuple[Path, Path]:
    """(model path, data path) of ``case``, generated into ``tmp`` where needed (cached there)."""
    case = BY_NAME[case] if isinstance(case, str) else case
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    data = data_file(case.data, tmp)
    if case.family == "ort-qdq":
        out = tmp / f"{case.name}.onnx"
        if not out.is_file():
            ort_quantize(float_model(case.meta["float"]), case.meta["variant"],
                         calib_file("digits28" if case.data == "digits28" else "digits", tmp), out)
        return out, data
    if case.family == "qcfs":
        out = tmp / f"{case.name}.onnx"
        if not out.is_file():
            qcfs_vgg16_myfloor(out, data)
        return out, data
    if case.name == "sj_cnn28":
        return EXT / "sj_cnn28.onnx", data
    return EXT / case.meta["file"], data


def compile_args(case: Case, tmp: Path) -> list[str]:
    """The case's extra `snnc compile` arguments with its files filled in."""
    return [a.format(calib28=str(calib_file("digits28", tmp))) for a in case.compile_args]
