"""The "models nobody here wrote" (tests/integration/external_models.py) through the library after issue 13,
phase 1: compile (at the default T; where the weights would lose their bits, at the T that keeps them, as
the refusal suggests), then the three-way comparison with the model run by its own executor and the
verdict (compiler/fidelity). The command layer (verify / eval) is wired to this in phase 2; this is what it
will report. Compare docs/external_before.md (the CLI before the change).

    .venv/bin/python benchmarks/external_fidelity.py [--out benchmarks/results/external_fidelity.json]
        [--markdown docs/external_fidelity.md] [--only NAME ...] [--samples N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import external_models as corpus  # noqa: E402

from snnc.backends.reference import run_integer_ann, simulate  # noqa: E402
from snnc.compiler.api import import_model  # noqa: E402
from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.compiler.errors import SnncError  # noqa: E402
from snnc.compiler.fidelity import (IntegerRun, ReferenceModelError, activation_probes, fidelity_verdict,  # noqa: E402
                                    layer_bits, measure_fidelity, probe_tensor_sizes, reference_executor,
                                    weight_kind)
from snnc.compiler.integerize import fitting_timesteps  # noqa: E402
from snnc.compiler.weight_precision import WeightPrecisionError  # noqa: E402
from snnc.compiler.pipeline import CompileContext, Records, run_pipeline  # noqa: E402
from snnc.compiler.tools.runner import reference_runner  # noqa: E402
from snnc.compiler.tools.verify import network_levels, reference_network  # noqa: E402
from snnc.ir import apply_projection  # noqa: E402

ARGS = {"--calib": "calibration_data", "--neuron": "neuron", "--timesteps": "timesteps"}


def compile_at(imported, kw: dict, min_weight_bits: int | None = None):
    """The imported model compiled under ``kw`` with that weight-bit floor (fitting_timesteps's lower_at)."""
    ctx = CompileContext(CompileConfig(**kw), reference_runner, min_weight_bits=min_weight_bits)
    return run_pipeline(ctx, "calibrate", "mapping", Records(model=imported)).records.compiled.network


def _config(case, tmp) -> dict:
    args = corpus.compile_args(case, tmp)
    kw = {}
    for k, v in zip(args[::2], args[1::2]):
        if k == "--neuron" and v.startswith("multi-threshold"):
            kw.update(neuron="multi-threshold", mt_n=int(v.split(":")[1]), schedule="pipelined")
        else:
            kw[ARGS[k]] = int(v) if k == "--timesteps" else v
    return kw


def run_case(case, tmp: Path, samples: int | None) -> dict:
    path, data = corpus.build(case, tmp)
    z = np.load(data)
    x = z["x"][:samples].astype(np.float32)
    y = z["y"][:samples]
    rec = {"case": case.name, "family": case.family}
    try:
        imported = import_model(path)
    except SnncError as e:
        rec["compile"] = f"refused: {e}"
        return rec
    kw = _config(case, tmp)
    try:
        net = compile_at(imported, kw)
        rec["compile"] = f"compiled, T={net.timesteps}"
    except WeightPrecisionError as e:
        rec["refusal"] = str(e)
        L = e.timesteps
        try:
            T, net = fitting_timesteps(lambda t, floor: compile_at(imported, {**kw, "timesteps": t}, floor), L,
                                       keep_all_bits=True)
            how = "keeps every weight bit"
        except WeightPrecisionError:
            T, net = fitting_timesteps(lambda t, floor: compile_at(imported, {**kw, "timesteps": t}, floor), L)
            how = "passes the weight floor (no T keeps every bit)"
        rec["compile"] = f"refused at T={L}; --timesteps {T} {how}"
    except SnncError as e:
        rec["compile"] = f"refused: {e}"
        return rec
    if kw.get("neuron") == "multi-threshold":
        rec["verdict"] = "training-free network: measured against the float ANN (verify_float), no levels to compare"
        return rec
    model = onnx.load_from_string(imported.raw)
    try:
        ex = reference_executor(imported.raw, path.name)
    except ReferenceModelError as e:
        rec["verdict"] = fidelity_verdict(None, weight_kind(model), None).message() + f" ({e})"
        return rec
    probes = activation_probes(net, model, probe_tensor_sizes(ex, x[:1], net, model))
    L = network_levels(net)
    ref = reference_network(net)

    def irun(xb):
        r = run_integer_ann(ref, xb, timesteps=L)
        return IntegerRun(r.levels, r.predictions())

    sched = "layerwise"
    res = measure_fidelity(ref, ex, probes, x, y, irun, L, apply_projection,
                           lambda xb: simulate(net, xb, sched).predictions())
    exact = None if net.timesteps != L else bool(res.prediction_agreement["int_vs_snn"] == 1.0)
    if exact:  # N == M_int, count for count (the layerwise theorem; checked here, not assumed)
        for i in range(0, len(x), 256):
            xb = x[i:i + 256]
            ann = run_integer_ann(ref, xb, timesteps=L)
            snn = simulate(net, xb, sched)
            exact &= all(np.array_equal(ann.levels[p.name], snn.counts[p.name]) for p in net.populations)
    v = fidelity_verdict(res, weight_kind(model), exact, layer_bits=layer_bits(net, model))
    rec.update(T=net.timesteps, L=L, accuracy=res.accuracy, levels_compared=res.levels_compared,
               levels_mismatched=res.levels_mismatched, worst_layer_agreement=res.worst_layer_agreement,
               prediction_agreement=res.prediction_agreement, verdict=v.message(), exit_code=v.exit_code)
    return rec


def markdown(rows: list[dict]) -> str:
    out = ["<!-- generated by benchmarks/external_fidelity.py; do not edit -->", "",
           "| case | compile | accuracy model / integer ANN / SNN | levels differing from the model | verdict | exit |",
           "|---|---|---|---|---|---|"]
    f = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    for r in rows:
        a = r.get("accuracy")
        acc = f"{f(a['user'])} / {f(a['int'])} / {f(a['snn'])}" if a else "—"
        lv = f"{r['levels_mismatched']} of {r['levels_compared']}" if "levels_compared" in r else "—"
        comp = " ".join(r["compile"].split())[:200].replace("|", "\\|")
        verdict = " ".join(r.get("verdict", "—").split())[:300].replace("|", "\\|")
        out.append(f"| {r['case']} | {comp} | {acc} | {lv} | {verdict} | {r.get('exit_code', '—')} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "external_fidelity.json")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for c in corpus.CASES:
            if args.only and c.name not in args.only:
                continue
            missing = [m for m in c.needs if __import__("importlib.util").util.find_spec(m) is None]
            if missing:
                continue
            print(c.name, file=sys.stderr, flush=True)
            rows.append(run_case(c, Path(d), args.samples))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"samples": args.samples, "rows": rows}, indent=1) + "\n")
    md = markdown(rows)
    if args.markdown:
        args.markdown.write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
