"""onnxruntime QDQ models (quantize_static U8S8 per-channel, U8U8, S8S8 of the digits MLP and CNN) through
snnc: what the default compile does, the T the refusal points to, and at that T the accuracies of
onnxruntime, snnc's integer ANN and the SNN, and the levels that differ from the model (issue 13).

    .venv/bin/python benchmarks/ort_qdq_fidelity.py [--out benchmarks/results/ort_qdq_fidelity.json]
        [--markdown docs/ort_qdq_fidelity.md] [--only NAME ...]

Per model: onnxruntime's accuracy with its default session (fused integer kernels) and as the fidelity
reference runs it (graph optimizations off: the ONNX float semantics); ``snnc compile`` at the default
T = L = 255 (refused or not, and the message); T_floor, the largest T at which every layer keeps at least
the weight floor and T_full, the largest at which no layer loses a weight bit (both
``integerize.fitting_timesteps``; none when the target cannot hold the model's integers at any T). At each: integer-ANN accuracy (tau = L), layerwise SNN accuracy, the
levels that differ from the model end to end, and the verdict (compiler/fidelity).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import external_models as corpus  # noqa: E402

from snnc.backends.reference import run_integer_ann, simulate  # noqa: E402
from snnc.compiler.api import compile_imported, import_model  # noqa: E402
from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.compiler.errors import SnncError  # noqa: E402
from snnc.compiler.fidelity import (IntegerRun, activation_probes, fidelity_verdict, layer_bits,  # noqa: E402
                                    measure_fidelity, probe_tensor_sizes, reference_executor, weight_kind)
from snnc.compiler.integerize import fitting_timesteps  # noqa: E402
from snnc.compiler.weight_precision import WeightPrecisionError  # noqa: E402
from snnc.compiler.pipeline import CompileContext, Records, run_pipeline  # noqa: E402
from snnc.compiler.tools.verify import network_levels, reference_network  # noqa: E402
from snnc.ir import apply_projection  # noqa: E402

CASES = [c.name for c in corpus.CASES if c.family == "ort-qdq" and c.data == "digits"]


def ort_accuracy(path: Path, x, y, optimized: bool) -> float:
    import onnxruntime as ort

    so = ort.SessionOptions()
    if not optimized:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    out = s.run(None, {s.get_inputs()[0].name: x})[0]
    return float(np.mean(out.reshape(len(x), -1).argmax(1) == y))


def evaluate(imported, raw: bytes, T: int, x, y) -> dict:
    net = compile_imported(imported, CompileConfig(timesteps=T))
    L = network_levels(net)
    ref = reference_network(net)
    ex = reference_executor(raw)
    probes = activation_probes(net, ex.model, probe_tensor_sizes(ex, x[:1], net, ex.model))

    def irun(xb):
        r = run_integer_ann(ref, xb, timesteps=L)
        return IntegerRun(r.levels, r.predictions())

    res = measure_fidelity(ref, ex, probes, x, y, irun, L, apply_projection,
                           lambda xb: simulate(net, xb, "layerwise").predictions())
    model = onnx.load_from_string(raw)
    bits = layer_bits(net, model)
    v = fidelity_verdict(res, weight_kind(model), None, layer_bits=bits)
    return {"T": T, "accuracy_int": res.accuracy["int"], "accuracy_snn": res.accuracy["snn"],
            "accuracy_model_reference": res.accuracy["user"], "levels_compared": res.levels_compared,
            "levels_mismatched": res.levels_mismatched, "local_unexplained": res.local_unexplained,
            "verdict": v.message(), "ok": v.ok,
            "weight_bits": {b.layer: [b.kept, b.needed] for b in bits}}


def integerize_at(imported, T: int, min_weight_bits: int | None):
    """The model lowered and integerized for loihi at T with that weight-bit floor."""
    ctx = CompileContext(CompileConfig(timesteps=T), min_weight_bits=min_weight_bits)
    return run_pipeline(ctx, "calibrate", "integerize", Records(model=imported)).records.integer


def run_case(name: str, tmp: Path) -> dict:
    path, data = corpus.build(name, tmp)
    z = np.load(data)
    x, y = z["x"].astype(np.float32), z["y"]
    rec = {"case": name, "ort_accuracy": ort_accuracy(path, x, y, True),
           "ort_accuracy_reference": ort_accuracy(path, x, y, False)}
    imported = import_model(path)
    raw = imported.raw
    try:
        compile_imported(imported, CompileConfig())
        rec["default"] = "compiled"
    except SnncError as e:
        rec["default"] = str(e)
    L = 255
    try:
        t_floor, _ = fitting_timesteps(lambda t, floor: integerize_at(imported, t, floor), L)
    except WeightPrecisionError as e:
        rec["t_floor_error"] = str(e)
        return rec
    try:
        t_full, _ = fitting_timesteps(lambda t, floor: integerize_at(imported, t, floor), L, keep_all_bits=True)
    except WeightPrecisionError as e:  # e.g. 9-bit weights (uint8 with a zero point) on 8-bit synapses
        rec["t_full_error"] = str(e)
        t_full = None
    rec["at"] = [evaluate(imported, raw, t, x, y) for t in dict.fromkeys(v for v in (t_floor, t_full) if v)]
    rec["t_floor"], rec["t_full"] = t_floor, t_full
    return rec


def markdown(results: list[dict]) -> str:
    out = ["<!-- generated by benchmarks/ort_qdq_fidelity.py; do not edit -->", "",
           "| model | onnxruntime accuracy | default `snnc compile` (T = L = 255) | T | integer ANN accuracy | "
           "SNN accuracy | levels differing from the model | verdict |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        dflt = "compiles" if r["default"] == "compiled" else "refused: " + r["default"].split(";")[0][:110]
        for i, a in enumerate(r.get("at", [])):
            tag = ("T_floor" if a["T"] == r["t_floor"] else "") + (" T_full" if a["T"] == r["t_full"] else "")
            out.append(f"| {r['case'] if i == 0 else ''} | {r['ort_accuracy']:.4f} | {dflt if i == 0 else ''} | "
                       f"{a['T']} ({tag.strip()}) | {a['accuracy_int']:.4f} | {a['accuracy_snn']:.4f} | "
                       f"{a['levels_mismatched']} of {a['levels_compared']} | {a['verdict'].split(':')[0]} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "ort_qdq_fidelity.json")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    results = []
    with tempfile.TemporaryDirectory() as d:
        for name in CASES:
            if args.only and name not in args.only:
                continue
            print(name, file=sys.stderr, flush=True)
            results.append(run_case(name, Path(d)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results}, indent=1) + "\n")
    md = markdown(results)
    if args.markdown:
        args.markdown.write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
