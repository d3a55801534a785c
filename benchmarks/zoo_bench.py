"""Model zoo benchmark: VGG-16, ResNet-18 and ResNet-20 with QCFS activations (random weights,
calibrated; examples/models/vgg.py and resnet.py), full width.

* 32x32: export (legacy exporter), compile for loihi, verify layerwise at T = L against the
  integer ANN on ``--samples`` random inputs (exactness), with times.
* 224x224: export and compile only (times). A model that does not fit loihi (the mapper refuses
  it, e.g. a fan-in larger than a core's synapse memory) is compiled for loihi2 and both are
  recorded. Each model runs in its own process under a memory
  limit (``--mem-gb``, default: 90% of the machine), so a model that needs more memory than the
  machine has is recorded as such instead of stopping the benchmark.

Writes benchmarks/results/zoo.json, merging: rows of the models and sizes run are replaced, the
other rows are kept. Each row records its placement (cores, chips, lower bound, readouts split into
partial accumulators, docs/mapping.md).

    .venv/bin/python benchmarks/zoo_bench.py [--sizes 32,224] [--models vgg16,resnet18,resnet20]
        [--samples 2] [--mem-gb 20] [--out benchmarks/results/zoo.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "models"))
log = logging.getLogger("zoo_bench")

MODELS = ("vgg16", "resnet18", "resnet20")


def build(name: str, size: int):
    import resnet
    import vgg

    if name == "vgg16":  # the papers' CIFAR classifier at 32x32 (512-4096-4096-10); 7x7x512 -> 4096 at 224
        return vgg.make_vgg16(num_classes=10 if size == 32 else 1000, input_size=size)
    if name == "resnet18":  # CIFAR stem at 32x32, ImageNet stem (average pooled) at 224x224
        return resnet.make_resnet18(num_classes=10 if size == 32 else 1000, input_size=size)
    return resnet.make_resnet20(num_classes=10, input_size=size)


def compile_timed(imported, config, phases: dict):
    """Compile ``imported`` under ``config`` through the pipeline; adds the seconds of its lowering and
    integerize stages (``lower_integerize``) and of its mapping stage (``placement``) to ``phases``."""
    from snnc.compiler.pipeline import CompileContext, Records, run_pipeline

    run = run_pipeline(CompileContext(config), "calibrate", "mapping", Records(model=imported))
    for t in run.timings:
        key = {"lowering": "lower_integerize", "integerize": "lower_integerize", "mapping": "placement"}.get(t.stage)
        if key:
            phases[key] = phases.get(key, 0.0) + t.seconds
    return run.records.compiled.network


def placement_summary(pl: dict) -> dict:
    """Cores, chips and lower bound of a placement, and the readouts split into partial accumulators."""
    keys = ("target", "cores_used", "chips_used", "lower_bound_cores", "granularity", "packing", "chip_placement")
    out = {k: pl.get(k) for k in keys}
    out["split_readouts"] = {p["name"]: {"partials": p["split"]["partials"], "cores": len(p["split"]["cores"])}
                             for p in pl.get("populations", []) if p.get("split")}
    return out


def merge_results(path: Path, out: dict) -> dict:
    """``out`` with the rows of an existing results file kept: a row of the same (model, input) is
    replaced in place, other rows stay, new rows are appended (a partial run updates only its rows)."""
    if not path.exists():
        return out
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        log.warning("%s is not valid JSON (%s): writing a fresh file", path, e)
        return out
    rows = list(old.get("results", []))
    index = {(r.get("model"), tuple(r.get("input", ()))): i for i, r in enumerate(rows)}
    for r in out["results"]:
        key = (r.get("model"), tuple(r.get("input", ())))
        if key in index:
            rows[index[key]] = r
        else:
            rows.append(r)
    return {**old, **{k: v for k, v in out.items() if k != "results"}, "results": rows}


def run_one(name: str, size: int, samples: int, mem_bytes: int | None, queue) -> None:
    """One model in a child process; puts a result dict on ``queue``."""
    if mem_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    res: dict = {"model": name, "input": [3, size, size]}
    try:
        import torch

        from snnc.ir import Schedule
        from snnc.compiler.api import import_model
        from snnc.compiler.config import CompileConfig
        from snnc.compiler.metadata import layer_records
        from snnc.compiler.errors import SnncError
        from snnc.compiler.tools.verify import verify_against_ann

        torch.set_num_threads(max(1, os.cpu_count() or 1))
        phases: dict = {}
        t0 = time.perf_counter()
        model = build(name, size)
        res["parameters"] = int(sum(p.numel() for p in model.parameters()))
        res["build_seconds"] = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as d:
            import vgg

            path = Path(d) / f"{name}_{size}.onnx"
            t0 = time.perf_counter()
            vgg.export_onnx(model, path, "legacy", input_shape=(1, 3, size, size))
            res["export_seconds"] = time.perf_counter() - t0
            del model
            t0 = time.perf_counter()
            imported = import_model(path)
            res["import_seconds"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            res["target"] = "loihi"
            try:
                net = compile_timed(imported, CompileConfig(), phases)
            except SnncError as e:  # e.g. a core too small for a fan-in: record it, try the larger target
                res["loihi_error"] = f"{type(e).__name__}: {e}"
                res["target"] = "loihi2"
                t0 = time.perf_counter()
                net = compile_timed(imported, CompileConfig(target="loihi2"), phases)
            res["lower_integerize_map_seconds"] = time.perf_counter() - t0
            res["phases_seconds"] = dict(phases)
            res["compile_seconds"] = res["import_seconds"] + res["lower_integerize_map_seconds"]
            res["placement"] = placement_summary(net.metadata.get("placement") or {})
            res.update(populations=len(net.populations), projections=len(net.projections),
                       neurons=int(sum(p.size for p in net.populations)),
                       synapses=int(sum(p.num_synapses for p in net.projections)),
                       residual_joins=sum(1 for r in layer_records(net) if r.onnx_linears),
                       timesteps=net.timesteps)
            if samples:
                x = np.random.default_rng(0).random((samples, 3, size, size)).astype(np.float32)
                t0 = time.perf_counter()
                rep = verify_against_ann(net, x, None, Schedule.LAYERWISE, imported.raw)
                res["verify"] = {"samples": samples, "seconds": time.perf_counter() - t0, "exact": rep.exact,
                                 "neurons_compared": rep.neurons_compared, "neurons_mismatched": rep.neurons_mismatched,
                                 "snn_vs_ann_int": rep.prediction_agreement["snn_vs_ann_int"],
                                 "ann_int_vs_ann_float": rep.prediction_agreement["ann_int_vs_ann_float"]}
        res["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        res["status"] = "ok"
    except MemoryError:
        res["status"] = "out of memory"
        res["error"] = f"MemoryError under the {mem_bytes / 2**30:.1f} GiB limit" if mem_bytes else "MemoryError"
    except Exception as e:  # recorded, the benchmark goes on
        res["phases_seconds"] = dict(phases) if "phases" in locals() else {}
        res["status"] = "placement refused" if type(e).__name__ == "MappingError" else "error"
        res["error"] = f"{type(e).__name__}: {e}"
        res["traceback"] = traceback.format_exc(limit=6)
    queue.put(res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "zoo.json"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--sizes", default="32,224")
    ap.add_argument("--samples", type=int, default=2, help="random inputs verified at 32x32 (224x224: compile only)")
    ap.add_argument("--mem-gb", type=float, default=None, help="memory limit per model (default: 90%% of the machine)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    mem = int(args.mem_gb * 2**30) if args.mem_gb else int(0.9 * total)
    from snnc import __version__

    out = {"snnc_version": __version__, "schedule": "layerwise", "exporter": "legacy",
           "weights": "random (Kaiming), calibrated on 8 random inputs (BN statistics, lambda = 99th percentile)",
           "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform(),
                       "memory_gb": round(total / 2**30, 1), "memory_limit_gb": round(mem / 2**30, 1)},
           "results": []}
    ctx = mp.get_context("spawn")
    for size in [int(s) for s in args.sizes.split(",")]:
        for name in args.models.split(","):
            q = ctx.Queue()
            p = ctx.Process(target=run_one, args=(name, size, args.samples if size == 32 else 0, mem, q))
            t0 = time.perf_counter()
            p.start()
            p.join()
            try:
                res = q.get(timeout=5)
            except Exception:
                res = {"model": name, "input": [3, size, size], "status": "killed",
                       "error": f"the process ended with exit code {p.exitcode} (out of memory?)"}
            res["wall_seconds"] = time.perf_counter() - t0
            out["results"].append(res)
            v = res.get("verify", {})
            log.info("%-9s %3d  %-13s %-7s compile %6.1f s  pops %3s  exact %s  %s", name, size, res["status"],
                     res.get("target", "-"), res.get("compile_seconds", float("nan")), res.get("populations", "-"),
                     v.get("exact", "-"), res.get("error", ""))
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merge_results(path, out), indent=2) + "\n")
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
