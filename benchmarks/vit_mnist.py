"""The MNIST ViT (examples/mnist/vit_mnist_*.onnx, both torch exporters) converted training-free
(paper 004's transformer setting: multi-threshold neurons with n = 8 thresholds, threshold scale c = 4,
differential coding) at T = 2, 4, 8, 16: the SNN's accuracy in the reference simulator on the MNIST 5k
test images against the float model's, the prediction agreement, and per layer (graded units and
multi-threshold populations) the relative rms error of its value against the float model's.

    .venv/bin/python benchmarks/vit_mnist.py [--out benchmarks/results/vit_mnist.json] [--doc-only] [--samples N]
        [--timesteps 2 4 8 16] [--models dynamo legacy] [--frac-bits 8 7 6 5 4] [--merge]

F (the differential coding's fractional bits, also the graded units' G) is the first of ``--frac-bits``
with which the network compiles: a larger T needs a smaller F for the multi-threshold populations'
states to fit Loihi's 24-bit width. ``--merge`` replaces only the rows run in an existing --out file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from snnc.backends.reference import simulate
from snnc.compiler.config import CodingKind, CompileConfig, NeuronKind
from snnc.compiler.errors import SnncError
from snnc.compiler.pipeline import CompileContext, run_pipeline
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.tools.verify_float import ir_layout, unit_value
from snnc.ir import GradedFunctionUnit, Schedule

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "examples" / "mnist"


def config(T: int, frac_bits: str) -> CompileConfig:
    return CompileConfig(neuron=NeuronKind.MULTI_THRESHOLD, mt_n=8, threshold_scale=4.0,
                         coding=CodingKind.DIFFERENTIAL, timesteps=T, calibration_data=str(MNIST / "calib.npz"),
                         frac_bits=frac_bits)


def run(model: Path, T: int, frac_bits: list[str], x: np.ndarray, y: np.ndarray, batch: int = 100) -> dict:
    t0 = time.perf_counter()
    refused = {}
    for F in frac_bits:
        try:
            rec = run_pipeline(CompileContext(config(T, F), reference_runner, str(model)), "import",
                               "bounds").records
            break
        except SnncError as err:
            refused[F] = str(err)
    else:
        return {"T": T, "refused": refused}
    net, g = rec.integer.network, rec.model.graph
    t1 = time.perf_counter()
    holds = {r.layer: r.onnx_activation for r in rec.integer.layers if r.onnx_activation}
    err2 = dict.fromkeys(holds, 0.0)
    ref2 = dict.fromkeys(holds, 0.0)
    pred, fpred = [], []
    for i in tqdm(range(0, len(x), batch), desc=f"{model.stem} T={T}", file=sys.stderr, leave=False):
        xb = x[i:i + batch]
        res = simulate(net, xb, Schedule.PIPELINED)
        vals = g.run(xb)
        pred.append(res.predictions())
        fpred.append(vals[g.output].argmax(axis=1))
        for name, t in holds.items():
            node = net.node(name)
            a = unit_value(node, res, net) if isinstance(node, GradedFunctionUnit) else res.activation(net, name)
            f = ir_layout(vals[t]).reshape(a.shape)
            err2[name] += float(np.sum((a - f) ** 2))
            ref2[name] += float(np.sum(f * f))
    pred, fpred = np.concatenate(pred), np.concatenate(fpred)
    return {"T": T, "frac_bits": net.coding.frac_bits, "refused_frac_bits": refused, "samples": int(len(x)),
            "snn_accuracy": float(np.mean(pred == y)), "float_accuracy": float(np.mean(fpred == y)),
            "agreement": float(np.mean(pred == fpred)), "predictions_first_100": pred[:100].tolist(),
            "layers": {k: {"holds": holds[k], "rel_rms": float(np.sqrt(err2[k] / ref2[k])) if ref2[k] else 0.0}
                       for k in holds},
            "compile_seconds": round(t1 - t0, 1), "simulate_seconds": round(time.perf_counter() - t1, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vit_mnist.json"))
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--timesteps", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--models", nargs="+", default=["dynamo", "legacy"])
    ap.add_argument("--frac-bits", nargs="+", default=["8", "7", "6", "5", "4"])
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--doc-only", action="store_true", help="regenerate docs/vit_mnist.md from --out")
    a = ap.parse_args(argv)
    if a.doc_only:
        write_doc(json.loads(Path(a.out).read_text()))
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    d = np.load(MNIST / "test.npz")
    x, y = d["x"][:a.samples], d["y"][:a.samples]
    out = {"setting": "training-free, multi-threshold:8, threshold scale 4, differential coding, F the first of "
                      f"{a.frac_bits} that compiles, thresholds calibrated on examples/mnist/calib.npz (256 training "
                      "images), target loihi", "models": {}}
    if a.merge and Path(a.out).exists():
        out["models"] = json.loads(Path(a.out).read_text())["models"]
    for m in a.models:
        path = MNIST / f"vit_mnist_{m}.onnx"
        rows = [run(path, T, a.frac_bits, x, y) for T in a.timesteps]
        keep = [r for r in out["models"].get(m, []) if r["T"] not in a.timesteps]
        out["models"][m] = sorted(keep + rows, key=lambda r: r["T"])
        for r in rows:
            print(f"{m} T={r['T']}: " + (f"refused: {r['refused']}" if "refused" in r else
                                         f"snn {r['snn_accuracy']:.4f} float {r['float_accuracy']:.4f} "
                                         f"agreement {r['agreement']:.4f}"), file=sys.stderr)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    write_doc(out)
    return 0


DOC = ROOT / "docs" / "vit_mnist.md"


def write_doc(data: dict, path: Path = DOC) -> str:
    """docs/vit_mnist.md from the benchmark's JSON."""
    lines = ["# The MNIST ViT, training-free (paper 004's transformer setting)", "",
             "Generated by `benchmarks/vit_mnist.py` from `benchmarks/results/vit_mnist.json` (do not edit by hand; "
             "`tests/benchmarks/test_vit_mnist.py` regenerates it and reruns T = 2 on 100 images).", "",
             f"Setting: {data['setting']}. The model: `examples/mnist/vit_mnist_{{legacy,dynamo}}.onnx` "
             "(examples/mnist/train_vit.py: 28x28, patches 7x7, 17 tokens, dim 64, 4 blocks of 4 heads, MLP 128, "
             "class-token readout). LayerNorm, softmax, GELU and the two attention products run as graded units "
             "(docs/transformer_units.md) on the target's embedded processors; every LayerNorm, GELU and A V "
             "output is re-encoded by signed multi-threshold neurons on the neuro cores. Accuracy on the MNIST 5k "
             "test split (examples/mnist/test.npz), the SNN in the reference simulator (pipelined).", ""]
    if data.get("note"):
        lines += [data["note"], ""]
    for m, rows in data["models"].items():
        lines += [f"## `vit_mnist_{m}.onnx`", "",
                  "| T | F | SNN accuracy | float accuracy | SNN - float (points) | prediction agreement |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for r in rows:
            if "refused" in r:
                why = r["refused"] if isinstance(r["refused"], str) else "; ".join(
                    f"F = {k}: {v}" for k, v in r["refused"].items())
                lines.append(f"| {r['T']} | - | refused | | | {why[:160]} |")
                continue
            lines.append(f"| {r['T']} | {r['frac_bits']} | {100 * r['snn_accuracy']:.1f} % | "
                         f"{100 * r['float_accuracy']:.1f} % | {100 * (r['snn_accuracy'] - r['float_accuracy']):+.1f} | "
                         f"{100 * r['agreement']:.1f} % |")
        lines.append("")
        done = [r for r in rows if "layers" in r]
        if done:
            last = done[-1]
            worst = sorted(last["layers"].items(), key=lambda kv: -kv[1]["rel_rms"])[:8]
            lines += [f"Per layer at T = {last['T']}: relative rms error of the value each layer holds against the "
                      "float model's tensor (the eight largest):", "",
                      "| layer | holds (float tensor) | rel rms |", "| --- | --- | ---: |"]
            lines += [f"| {k} | `{v['holds']}` | {v['rel_rms']:.4f} |" for k, v in worst]
            lines.append("")
    text = "\n".join(lines)
    Path(path).write_text(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
