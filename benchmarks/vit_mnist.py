"""The MNIST ViT (examples/mnist/vit_mnist_*.onnx, both torch exporters) converted training-free
(paper 004's transformer setting: multi-threshold neurons with n = 8 thresholds, threshold scale c = 4,
differential coding) at T = 2, 4, 8, 16, and the same settings with rate coding: the SNN's accuracy in the
reference simulator on the MNIST 5k test images against the float model's, the prediction agreement, the
energy ratio E_SNN / E_ANN of paper 004 Eq. 31 (horowitz2014: E_MAC 4.6 pJ, E_AC 0.9 pJ) from the reference
simulator's operation counts, and per layer (graded units and multi-threshold populations) the relative rms
error of its value against the float model's.

    .venv/bin/python benchmarks/vit_mnist.py [--out benchmarks/results/vit_mnist.json] [--doc-only] [--samples N]
        [--timesteps 2 4 8 16] [--models dynamo legacy] [--codings differential rate] [--frac-bits 8 7 6 5 4]
        [--merge] [--combine PART.json ...] [--lava N]

F (the differential coding's fractional bits, also the graded units' G) is the first of ``--frac-bits``
with which the network compiles: a larger T needs a smaller F for the multi-threshold populations'
states to fit Loihi's 24-bit width. ``--merge`` replaces only the rows run (model, T, coding) in an existing
--out file; ``--combine`` merges the rows of part files (runs made side by side) into --out and writes the doc.

Energy (paper 004 Eq. 31, E_SNN = E_MAC MAC_SNN + E_AC AC_SNN, E_ANN = E_MAC MAC_ANN, the convention of
``snnc stats`` / ``snnc eval`` with compiler/energy/horowitz2014.toml): MAC_SNN is the graded input pixels times
the synapses they reach (sent once under differential coding, every step under rate coding); AC_SNN is every
spike of a multi-threshold population times the synapses it reaches, plus every non-zero message a graded unit
(LayerNorm, softmax, GELU, Q K^T, A V) sends times the synapses it reaches. The graded units' own arithmetic
runs on the target's embedded processors, not on neuro cores: it is left out (``graded_ac_per_sample`` gives the
part of AC_SNN that graded units send). MAC_ANN is the ONNX graph's MACs (every MatMul/Gemm/Conv, the attention
products included).
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
from snnc.compiler.tools.stats import add_ops
from snnc.compiler.tools.verify_float import ir_layout, unit_value
from snnc.compiler.analysis.macs import macs_per_op
from snnc.compiler.analysis.unit_ops import network_unit_ops
from snnc.compiler.energy import load_energy_model
from snnc.compiler.integerize_units import RATE_FRAC_BITS
from snnc.ir import GradedFunctionUnit, Input, Schedule

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT / "examples" / "mnist"
sys.path.insert(0, str(ROOT / "benchmarks"))
import vit_mnist_lava  # noqa: E402


ENERGY_MODEL = "horowitz2014"


def config(T: int, frac_bits: str, coding: str = "differential") -> CompileConfig:
    return CompileConfig(neuron=NeuronKind.MULTI_THRESHOLD, mt_n=8, threshold_scale=4.0,
                         coding=CodingKind(coding), timesteps=T, calibration_data=str(MNIST / "calib.npz"),
                         frac_bits=frac_bits)


def energy(net, ops: dict, n: int, ann_macs: int) -> dict:
    """Eq. 31 from the summed operation counts ``ops`` of ``n`` samples (see the module docstring)."""
    em = load_energy_model(ENERGY_MODEL)
    sent = {k: int(o.sops_out.sum()) for k, o in ops.items()}
    mac = sum(v for k, v in sent.items() if isinstance(net.node(k), Input)) / n
    graded = sum(v for k, v in sent.items() if isinstance(net.node(k), GradedFunctionUnit)) / n
    ac = sum(v for k, v in sent.items() if not isinstance(net.node(k), Input)) / n
    e_ann = ann_macs * em.ann_energy_per_mac_j
    e_snn = mac * em.energy_per_input_op_j + ac * em.energy_per_sop_j
    return {"ann_macs": ann_macs, "mac_per_sample": mac, "ac_per_sample": ac, "graded_ac_per_sample": graded,
            "energy_ratio": e_snn / e_ann, "energy_ratio_without_graded": (e_snn - graded * em.energy_per_sop_j) / e_ann,
            **unit_arithmetic(net, ann_macs)}


def unit_arithmetic(net, ann_macs: int) -> dict:
    """The graded units' own arithmetic per image (compiler/analysis/unit_ops.py: multiplications and divisions
    as MACs, additions and comparisons as adds, over the T steps), priced with E_MAC and E_AC, over E_ANN."""
    em = load_energy_model(ENERGY_MODEL)
    u = network_unit_ops(net)
    e = u.macs * em.ann_energy_per_mac_j + u.adds * em.energy_per_sop_j
    return {"unit_macs_per_sample": u.macs, "unit_adds_per_sample": u.adds,
            "unit_energy_ratio": e / (ann_macs * em.ann_energy_per_mac_j)}


def ann_macs(g) -> int:
    """MAC_ANN of the float graph (compiler/analysis/macs.py: convolutions, linear layers, token-wise linear
    layers on every token and the attention products)."""
    return int(sum(macs_per_op(g).values()))


def compile_row(model: Path, T: int, F: str, coding: str):
    """(integer network, float graph) of one row's setting."""
    rec = run_pipeline(CompileContext(config(T, F, coding), reference_runner, str(model)), "import", "bounds").records
    return rec.integer.network, rec.model.graph


def run(model: Path, T: int, frac_bits: list[str], x: np.ndarray, y: np.ndarray, batch: int = 100,
        coding: str = "differential") -> dict:
    t0 = time.perf_counter()
    refused = {}
    for F in frac_bits:
        try:
            rec = run_pipeline(CompileContext(config(T, F, coding), reference_runner, str(model)), "import",
                               "bounds").records
            break
        except SnncError as err:
            refused[F] = str(err)
    else:
        return {"T": T, "coding": coding, "refused": refused}
    net, g = rec.integer.network, rec.model.graph
    t1 = time.perf_counter()
    holds = {r.layer: r.onnx_activation for r in rec.integer.layers if r.onnx_activation}
    err2 = dict.fromkeys(holds, 0.0)
    ref2 = dict.fromkeys(holds, 0.0)
    pred, fpred, ops, ops100 = [], [], None, None
    for i in tqdm(range(0, len(x), batch), desc=f"{model.stem} {coding} T={T}", file=sys.stderr, leave=False):
        xb = x[i:i + batch]
        res = simulate(net, xb, Schedule.PIPELINED, count_ops=True)
        ops = res.ops if ops is None else add_ops(ops, res.ops)
        if i + batch == 100:
            ops100 = energy(net, ops, 100, ann_macs(g))["energy_ratio"]
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
    return {"T": T, "coding": coding, "frac_bits": getattr(net.coding, "frac_bits", None),
            "refused_frac_bits": refused, "samples": int(len(x)),
            "snn_accuracy": float(np.mean(pred == y)), "float_accuracy": float(np.mean(fpred == y)),
            "agreement": float(np.mean(pred == fpred)), "predictions_first_100": pred[:100].tolist(),
            "energy": energy(net, ops, len(x), ann_macs(g)),
            "energy_ratio_first_100": ops100,
            "layers": {k: {"holds": holds[k], "rel_rms": float(np.sqrt(err2[k] / ref2[k])) if ref2[k] else 0.0}
                       for k in holds},
            "compile_seconds": round(t1 - t0, 1), "simulate_seconds": round(time.perf_counter() - t1, 1)}


def _key(r: dict) -> tuple:
    return r["T"], r.get("coding", "differential")


def _save(out: dict, path: str) -> None:
    tmp = Path(path).with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "vit_mnist.json"))
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--timesteps", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--models", nargs="+", default=["dynamo", "legacy"])
    ap.add_argument("--codings", nargs="+", default=["differential", "rate"], choices=["differential", "rate"])
    ap.add_argument("--frac-bits", nargs="+", default=["8", "7", "6", "5", "4"])
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--combine", nargs="+", metavar="PART", help="merge the rows of these result files into --out")
    ap.add_argument("--doc-only", action="store_true", help="regenerate docs/vit_mnist.md from --out")
    ap.add_argument("--lava", type=int, metavar="N", help="run the dynamo ViT on Lava against the reference on the "
                    "first N test images at each --timesteps (F the first of --frac-bits), differential coding; "
                    "writes benchmarks/results/vit_mnist_lava.json and the doc")
    ap.add_argument("--unit-ops", action="store_true", help="add the graded units' own arithmetic to every row of "
                    "--out (each row's network compiled again at its T, F and coding; no simulation) and write the doc")
    a = ap.parse_args(argv)
    if a.unit_ops:
        out = json.loads(Path(a.out).read_text())
        for m, rows in out["models"].items():
            for r in tqdm([r for r in rows if r.get("energy")], desc=f"{m} unit ops", file=sys.stderr):
                net, _ = compile_row(MNIST / f"vit_mnist_{m}.onnx", r["T"], str(r["frac_bits"] or 8), r["coding"])
                r["energy"].update(unit_arithmetic(net, r["energy"]["ann_macs"]))
                _save(out, a.out)
        write_doc(out)
        return 0
    if a.lava:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        x = np.load(MNIST / "test.npz")["x"][:a.lava]
        rows = vit_mnist_lava.run_rows(MNIST / "vit_mnist_dynamo.onnx", config, a.timesteps, a.frac_bits[0], x,
                                       lambda msg: print(msg, file=sys.stderr))
        vit_mnist_lava.save(rows)
        write_doc(json.loads(Path(a.out).read_text()))
        return 0 if all(r["identical"] for r in rows) else 1
    if a.doc_only:
        write_doc(json.loads(Path(a.out).read_text()))
        return 0
    if a.combine:
        out = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
        for part in a.combine:
            d = json.loads(Path(part).read_text())
            out["setting"] = d["setting"]
            for m, rows in d["models"].items():
                new = {_key(r) for r in rows}
                keep = [r for r in out.setdefault("models", {}).get(m, []) if _key(r) not in new]
                out["models"][m] = sorted(keep + rows, key=_key)
        _save(out, a.out)
        write_doc(out)
        return 0
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    d = np.load(MNIST / "test.npz")
    x, y = d["x"][:a.samples], d["y"][:a.samples]
    out = {"setting": "training-free, multi-threshold:8, threshold scale 4, F the first of "
                      f"{a.frac_bits} that compiles, thresholds calibrated on examples/mnist/calib.npz (256 training "
                      "images), target loihi", "models": {}}
    if a.merge and Path(a.out).exists():
        out = json.loads(Path(a.out).read_text())
    for m in a.models:
        path = MNIST / f"vit_mnist_{m}.onnx"
        for coding in a.codings:
            for T in a.timesteps:
                r = run(path, T, a.frac_bits, x, y, coding=coding)
                keep = [q for q in out["models"].get(m, []) if _key(q) != _key(r)]
                out["models"][m] = sorted(keep + [r], key=_key)
                _save(out, a.out)   # after every row: a long run keeps what it measured
                print(f"{m} {coding} T={r['T']}: " + (
                    f"refused: {r['refused']}" if "refused" in r else
                    f"snn {r['snn_accuracy']:.4f} float {r['float_accuracy']:.4f} agreement {r['agreement']:.4f} "
                    f"E_SNN/E_ANN {r['energy']['energy_ratio']:.4f}"), file=sys.stderr)
    write_doc(out)
    return 0


DOC = ROOT / "docs" / "vit_mnist.md"


def write_doc(data: dict, path: Path = DOC, lava: dict | None = None) -> str:
    """docs/vit_mnist.md from the benchmark's JSON (``lava``: the Lava comparison's JSON; None reads
    benchmarks/results/vit_mnist_lava.json when it exists)."""
    if lava is None and vit_mnist_lava.LAVA_JSON.exists():
        lava = json.loads(vit_mnist_lava.LAVA_JSON.read_text())
    em = load_energy_model(ENERGY_MODEL)
    lines = ["# The MNIST ViT, training-free (paper 004's transformer setting)", "",
             "Generated by `benchmarks/vit_mnist.py` from `benchmarks/results/vit_mnist.json` (do not edit by hand; "
             "`tests/benchmarks/test_vit_mnist.py` regenerates it and reruns T = 2 on 100 images, both codings).", "",
             f"Setting: {data['setting']}. The model: `examples/mnist/vit_mnist_{{legacy,dynamo}}.onnx` "
             "(examples/mnist/train_vit.py: 28x28, patches 7x7, 17 tokens, dim 64, 4 blocks of 4 heads, MLP 128, "
             "class-token readout). LayerNorm, softmax, GELU and the two attention products run as graded units "
             "(docs/transformer_units.md) on the target's embedded processors; every LayerNorm, GELU and A V "
             "output is re-encoded by signed multi-threshold neurons on the neuro cores. Accuracy on the first "
             "`samples` images of the MNIST-5k test split (examples/mnist/test.npz, 1000 images), the SNN in the reference "
             "simulator (pipelined); the float model on the same images.", "",
             f"Energy ratio: paper 004 Eq. 31, E_SNN / E_ANN = (E_MAC MAC_SNN + E_AC AC_SNN) / (E_MAC MAC_ANN) with "
             f"the `{em.name}` model of compiler/energy (E_MAC {em.ann_energy_per_mac_j * 1e12:g} pJ, "
             f"E_AC {em.energy_per_sop_j * 1e12:g} pJ; the convention of `snnc stats` and `snnc eval`), from the "
             "reference simulator's operation counts per test image. MAC_SNN: the graded input pixels times the "
             "synapses they reach (sent once under differential coding, every step under rate coding). AC_SNN: "
             "every multi-threshold spike times the synapses it reaches, plus every non-zero message a graded unit "
             "sends times the synapses it reaches (the *graded ACs* column: counted as ACs like spikes). The graded "
             "units' own arithmetic (LayerNorm, softmax, GELU, Q K^T, A V on the embedded processors) is not a "
             "neuro-core operation: it is left out of E_SNN / E_ANN and shown on its own (*units' arithmetic / "
             "E_ANN*: compiler/analysis/unit_ops.py counts it per image over the T steps from the IR's integer "
             "definitions, each multiplication or division a MAC at E_MAC, each addition, comparison or variable "
             "shift an add at E_AC; docs/cost.md; it does not depend on the images). MAC_ANN: every MAC of the float graph, token-wise linear "
             "layers and the attention products included (the benchmark counts these itself: "
             "compiler/analysis/macs.py counts Conv and Linear only, 50,816 MACs for this model). "
             "*Eq. 31, MAC_SNN = 0*: the paper's approximation, AC_SNN E_AC / (MAC_ANN E_MAC).", ""]
    if data.get("note"):
        lines += [data["note"], ""]
    if data.get("paper_comparison"):
        lines += [data["paper_comparison"], ""]
    for m, rows in data["models"].items():
        lines += [f"## `vit_mnist_{m}.onnx`", "",
                  "| coding | T | F | samples | SNN accuracy | float accuracy | SNN - float (points) | prediction agreement "
                  "| E_SNN / E_ANN | Eq. 31, MAC_SNN = 0 | ACs / image | graded ACs / image | MACs / image (input) "
                  "| units' MACs / image | units' adds / image | units' arithmetic / E_ANN |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
                  "| ---: |"]
        for r in sorted(rows, key=lambda r: (r.get("coding", "differential") != "differential", r["T"])):
            coding = r.get("coding", "differential")
            if "refused" in r:
                why = r["refused"] if isinstance(r["refused"], str) else "; ".join(
                    f"F = {k}: {v}" for k, v in r["refused"].items())
                lines.append(f"| {coding} | {r['T']} | - | | refused | | | {why[:160]} | | | | | | | | |")
                continue
            e = r.get("energy")
            en = ("| - | - | - | - | - | - | - | - |" if e is None else
                  f"| {e['energy_ratio']:.3f} | "
                  f"{e['ac_per_sample'] * em.energy_per_sop_j / (e['ann_macs'] * em.ann_energy_per_mac_j):.3f} | "
                  f"{e['ac_per_sample']:,.0f} | {e['graded_ac_per_sample']:,.0f} | {e['mac_per_sample']:,.0f} | " + (
                      "- | - | - |" if "unit_energy_ratio" not in e else
                      f"{e['unit_macs_per_sample']:,} | {e['unit_adds_per_sample']:,} | {e['unit_energy_ratio']:.3f} |"))
            F = "-" if r["frac_bits"] is None else r["frac_bits"]
            lines.append(f"| {coding} | {r['T']} | {F} | {r['samples']} | {100 * r['snn_accuracy']:.1f} % | "
                         f"{100 * r['float_accuracy']:.1f} % | {100 * (r['snn_accuracy'] - r['float_accuracy']):+.1f} | "
                         f"{100 * r['agreement']:.1f} % " + en)
        lines.append("")
        e = next((r["energy"] for r in rows if "energy" in r), None)
        if e is not None:
            lines += [f"MAC_ANN = {e['ann_macs']:,} per image (E_ANN = {e['ann_macs'] * em.ann_energy_per_mac_j * 1e6:.2f} "
                      "uJ).", ""]
        done = [r for r in rows if "layers" in r and r.get("coding", "differential") == "differential"]
        if done:
            last = max(done, key=lambda r: r["T"])
            worst = sorted(last["layers"].items(), key=lambda kv: -kv[1]["rel_rms"])[:8]
            lines += [f"Per layer, differential coding at T = {last['T']}: relative rms error of the value each layer "
                      "holds against the float model's tensor (the eight largest):", "",
                      "| layer | holds (float tensor) | rel rms |", "| --- | --- | ---: |"]
            lines += [f"| {k} | `{v['holds']}` | {v['rel_rms']:.4f} |" for k, v in worst]
            lines.append("")
    lines += vit_mnist_lava.render(lava)
    text = "\n".join(lines)
    Path(path).write_text(text)
    return text


if __name__ == "__main__":
    sys.exit(main())
