"""How far the integer ANN (8-bit weights) drifts from the float ANN, layer by layer.

For each activation layer: the fraction of neurons whose integer level equals the float model's
level, both computed from the same quantized input. Runs on the trained digits model and on a
random-weight VGG-16 variant (10 classes, 64-64 classifier). Writes JSON.

    .venv/bin/python benchmarks/int_vs_float_layers.py [--out benchmarks/results/int_vs_float_layers.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from snnc.backends.reference import run_integer_ann
from snnc.compiler.api import compile_model
from snnc.compiler.frontend.onnx_loader import import_onnx
from snnc.compiler.frontend.float_graph import QuantAct
from snnc.compiler.passes import default_passes, run_passes
from snnc.compiler.tools.verify import float_ann_outputs

ROOT = Path(__file__).resolve().parents[1]


def per_layer(path, x):
    net, raw = compile_model(path)
    g, _ = import_onnx(path)
    run_passes(g, default_passes())
    inp = net.inputs[0]
    vals = g.run(inp.quantize(x) * inp.scale)
    ann = run_integer_ann(net, x)
    acts = [o for o in g.ops if isinstance(o, QuantAct)]
    layers = []
    for pop, q in zip(net.populations, acts):
        lf = np.rint(vals[q.name] / q.gamma).astype(np.int64)
        li = ann.levels[pop.name]
        layers.append({"layer": pop.name, "level_agreement": float(np.mean(lf == li)),
                       "mean_abs_level_diff": float(np.abs(lf - li).mean())})
    yf = float_ann_outputs(raw, x.astype(np.float32))
    yi = ann.readout["readout"] * net.node("readout").scale
    return {"layers": layers, "prediction_agreement": float(np.mean(yf.argmax(1) == yi.argmax(1))),
            "logit_correlation": float(np.corrcoef(yf.ravel(), yi.ravel())[0, 1])}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "int_vs_float_layers.json"))
    args = ap.parse_args()
    res = {"digits_trained": per_layer(ROOT / "examples/digits/qcfs_cnn.onnx", np.load(ROOT / "examples/digits/test.npz")["x"])}
    sys.path.insert(0, str(ROOT / "examples" / "models"))
    import vgg  # noqa: E402

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "vgg_small.onnx"
        vgg.export_onnx(vgg.make_vgg16(num_classes=10, input_size=32, classifier=(64, 64)), p,
                        exporter="legacy", input_shape=(1, 3, 32, 32))
        x = np.random.default_rng(0).random((16, 3, 32, 32)).astype(np.float32)
        res["vgg16_random_weights"] = per_layer(p, x)
    Path(args.out).write_text(json.dumps(res, indent=2))
    for k, v in res.items():
        print(k, "prediction agreement", v["prediction_agreement"], "logit corr %.3f" % v["logit_correlation"])
        print("  ", " ".join(f"{L['layer']}:{L['level_agreement']:.3f}" for L in v["layers"]))


if __name__ == "__main__":
    main()
