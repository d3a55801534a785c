"""Which executor runs a QONNX model as the fidelity reference (docs/fidelity.md, "QONNX executor"):
snnc's expansion of Quant / BipolarQuant / Trunc into standard ONNX ops run by onnxruntime
(compiler/frontend/qonnx_ops.py), qonnx 1.0.0's own ``execute_onnx`` (numpy for its custom ops,
onnxruntime node by node for the rest), and qonnx's QONNX -> QCDQ conversion run by onnxruntime; plus the
same arithmetic in float64 instead of the spec's float32.

    .venv/bin/python benchmarks/qonnx_executors.py [--out benchmarks/results/qonnx_executors.json]
        [--markdown docs/qonnx_executors.md] [--samples 64]

Per Brevitas QONNX export of examples/external and each executor: whether it runs, seconds for the
samples, and how many values of every quantizer output differ from qonnx's executor (the spec's own code).
Float64: the quantizer outputs of the expansion computed with every tensor in float64 (an executor that
"does the arithmetic better"); the count is how many levels float64 moves at rounding boundaries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["brevitas_bnn_qonnx", "brevitas_trunc_round_qonnx", "brevitas_batch4_qonnx", "brevitas_softmax_qonnx"]


def _quant_outputs(model: onnx.ModelProto) -> list[str]:
    return [n.output[0] for n in model.graph.node if n.op_type in ("Quant", "BipolarQuant", "Trunc")]


def _float64(model: onnx.ModelProto) -> onnx.ModelProto:
    """The expanded model with every float32 tensor in float64 (initializers, the graph input, Constants)."""
    from onnx import TensorProto, numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for vi in list(m.graph.input) + list(m.graph.output):
        if vi.type.tensor_type.elem_type == TensorProto.FLOAT:
            vi.type.tensor_type.elem_type = TensorProto.DOUBLE
    del m.graph.value_info[:]
    return m


def run(name: str, x: np.ndarray) -> dict:
    from snnc.compiler.fidelity import reference_executor

    path = ROOT / "examples" / "external" / f"{name}.onnx"
    model = onnx.load(str(path))
    names = _quant_outputs(model)
    rec = {"model": name, "quantizer_outputs": len(names), "executors": {}}
    t0 = time.perf_counter()
    ours = reference_executor(model).run(x, names)
    rec["executors"]["snnc expand + onnxruntime"] = {"runs": True, "seconds": round(time.perf_counter() - t0, 3)}
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
    except ImportError:
        rec["executors"]["qonnx execute_onnx"] = {"runs": False, "why": "qonnx not installed"}
        return rec
    mw = ModelWrapper(str(path))
    B = mw.graph.input[0].type.tensor_type.shape.dim[0].dim_value or len(x)
    t0 = time.perf_counter()
    ref = {t: [] for t in names}
    for i in range(0, len(x) - len(x) % B, B):
        ctx = execute_onnx(mw, {mw.graph.input[0].name: x[i:i + B]}, return_full_exec_context=True)
        for t in names:
            ref[t].append(ctx[t] if ctx[t].shape[0] == B else ctx[t][None])
    n = len(x) - len(x) % B
    ref = {t: np.concatenate(v) for t, v in ref.items()}
    rec["executors"]["qonnx execute_onnx"] = {"runs": True, "seconds": round(time.perf_counter() - t0, 3)}

    def differ(vals: dict) -> int:
        tot = 0
        for t in names:
            a, b = ref[t], vals[t]
            if a.shape[0] != b.shape[0]:  # weights (no batch axis) are returned once per chunk by qonnx
                a = a[:1].reshape(b.shape) if a.size == b.size * (a.shape[0] // max(b.shape[0], 1)) else a
            tot += int(np.count_nonzero(np.asarray(a, np.float64).reshape(-1)[:b.size] != np.asarray(
                b, np.float64).reshape(-1)[:a.size]))
        return tot

    rec["executors"]["snnc expand + onnxruntime"]["values_differing_from_qonnx"] = differ(
        {t: v[:n] if v.shape[0] == len(x) else v for t, v in ours.items()})
    try:
        from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ

        q = mw.transform(QuantToQCDQ())
        left = sorted({nd.op_type for nd in q.graph.node if nd.domain not in ("", "ai.onnx")})
        if left:
            rec["executors"]["qonnx QuantToQCDQ + onnxruntime"] = {
                "runs": False, "why": f"custom ops left after the conversion: {left}"}
        else:
            import onnxruntime as ort

            s = ort.InferenceSession(q.model.SerializeToString(), providers=["CPUExecutionProvider"])
            s.run(None, {s.get_inputs()[0].name: x[:B]})
            rec["executors"]["qonnx QuantToQCDQ + onnxruntime"] = {"runs": True}
    except Exception as e:  # noqa: BLE001 - record why the conversion does not give a runnable model
        rec["executors"]["qonnx QuantToQCDQ + onnxruntime"] = {"runs": False, "why": f"{type(e).__name__}: {e}"[:200]}
    # float64: each activation Quant applied to its (float32) input with the spec's steps in float64
    from onnx import numpy_helper

    from snnc.compiler.frontend import qonnx_ops

    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    acts = [nd for nd in model.graph.node if nd.op_type == "Quant" and nd.input[0] not in consts]
    ins = reference_executor(model).run(x, [nd.input[0] for nd in acts])
    moved = total = 0
    for nd in acts:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in nd.attribute}
        s, z, b = (consts[i] for i in nd.input[1:4])
        args = (bool(a.get("signed", 1)), bool(a.get("narrow", 0)), a.get("rounding_mode", "ROUND"))
        y32 = qonnx_ops.quant(ins[nd.input[0]].astype(np.float32), s.astype(np.float32), z.astype(np.float32),
                              b.astype(np.float32), *args)
        y64 = qonnx_ops.quant(ins[nd.input[0]].astype(np.float64), s.astype(np.float64), z.astype(np.float64),
                              b.astype(np.float64), *args)
        moved += int(np.count_nonzero(np.round(y32.astype(np.float64) / s) != np.round(y64 / s)))
        total += y32.size
    rec["executors"]["activation Quant steps in float64 (same inputs)"] = {
        "runs": True, "values_differing_from_qonnx": moved, "of": total}
    return rec


def markdown(results: list[dict]) -> str:
    out = ["<!-- generated by benchmarks/qonnx_executors.py; do not edit -->", "",
           "| model | executor | runs | seconds | values differing from qonnx's executor |", "|---|---|---|---|---|"]
    for r in results:
        for i, (k, v) in enumerate(r["executors"].items()):
            out.append(f"| {r['model'] if i == 0 else ''} | {k} | {'yes' if v.get('runs') else 'no: ' + v.get('why', '')} "
                       f"| {v.get('seconds', '')} | {v.get('values_differing_from_qonnx', '')} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "qonnx_executors.json")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--samples", type=int, default=64)
    args = ap.parse_args(argv)
    x = np.load(ROOT / "examples" / "digits" / "test.npz")["x"][:args.samples]
    results = [run(m, x) for m in MODELS]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": args.samples, "results": results}, indent=1) + "\n")
    md = markdown(results)
    if args.markdown:
        args.markdown.write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
