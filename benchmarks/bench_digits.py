"""Benchmark on the shipped digits model: compile time, reference-simulator throughput for both
schedules, and the same inference on Lava (fixed_pt) vs the reference. Writes JSON.

    .venv/bin/python benchmarks/bench_digits.py [--out benchmarks/results/digits.json] [--lava-samples 8]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from snnc import __version__
from snnc.ir import Schedule
from snnc.backends.reference import simulate
from snnc.compiler.api import compile_model

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "digits" / "qcfs_cnn.onnx"
DATA = ROOT / "examples" / "digits" / "test.npz"
log = logging.getLogger("bench")


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "digits.json"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--lava-samples", type=int, default=8)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    x = np.load(DATA)["x"]
    result = {"snnc_version": __version__, "model": str(MODEL.relative_to(ROOT)), "samples": int(len(x)),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}}
    best, med = best_of(lambda: compile_model(MODEL), args.repeat)
    result["compile_seconds"] = {"best": best, "median": med}
    log.info("compile: best %.3f s", best)
    net, _ = compile_model(MODEL)
    result["timesteps"] = net.timesteps
    for sched in Schedule:
        best, med = best_of(lambda: simulate(net, x, schedule=sched), args.repeat)
        counted, _ = best_of(lambda: simulate(net, x, schedule=sched, count_ops=True), args.repeat)
        result[f"reference_{sched.value}"] = {"seconds": best, "samples_per_second": len(x) / best,
                                              "seconds_with_op_counting": counted,
                                              "op_counting_slowdown": counted / best}
        log.info("reference %s: %.0f samples/s; counting ops costs x%.2f", sched.value, len(x) / best, counted / best)
    try:
        from snnc.backends import get_backend

        lava = get_backend("lava")
    except Exception as e:  # Lava missing: record why, keep the rest of the benchmark
        result["lava"] = {"skipped": str(e)}
    else:
        n = args.lava_samples
        xs = x[:n]
        lava_res = {}
        for sched in Schedule:
            t0 = time.perf_counter()
            out = lava.run(net, xs, sched, record=True)
            t_lava = time.perf_counter() - t0
            t_ref, _ = best_of(lambda: simulate(net, xs, schedule=sched, record=True), args.repeat)
            ref = simulate(net, xs, schedule=sched, record=True)
            same = all(np.array_equal(ref.spikes[p.name], out.spikes[p.name]) for p in net.populations)
            lava_res[sched.value] = {"samples": n, "seconds_lava": t_lava, "seconds_reference": t_ref,
                                     "lava_over_reference": t_lava / t_ref, "identical": bool(same)}
            log.info("lava %s: %.2f s for %d samples (%.0fx the reference), identical=%s",
                     sched.value, t_lava, n, t_lava / t_ref, same)
        result["lava"] = lava_res
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(out)
    log.info("wrote %s", out)


if __name__ == "__main__":
    main()
