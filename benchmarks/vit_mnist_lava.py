"""The whole MNIST ViT (examples/mnist/vit_mnist_dynamo.onnx, training-free: multi-threshold:8, threshold
scale 4, differential coding) on Lava's CPU simulator against the reference simulator, message for message:
every multi-threshold population's graded spikes and every graded unit's messages (LayerNorm, softmax, GELU,
Q K^T, A V) at every step, and the readout's final values (``snnc verify --against lava``'s library call,
``compiler/tools/verify.verify_against_backend``).

    .venv/bin/python benchmarks/vit_mnist.py --lava 3 --timesteps 2 4     # writes benchmarks/results/vit_mnist_lava.json

``render`` turns the JSON into the "On Lava" section of docs/vit_mnist.md (benchmarks/vit_mnist.py writes
the doc). Lava's CPU simulator runs every process in its own OS process and takes seconds per step: a few
images only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from snnc.compiler.pipeline import CompileContext, run_pipeline
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.tools.verify import verify_against_backend
from snnc.ir import GradedFunctionUnit, Network, Schedule

ROOT = Path(__file__).resolve().parents[1]
LAVA_JSON = ROOT / "benchmarks" / "results" / "vit_mnist_lava.json"


def compile_vit(model: Path, config) -> Network:
    return run_pipeline(CompileContext(config, reference_runner, str(model)), "import", "bounds").records.integer.network


def expected_messages(net: Network, images: int) -> tuple[int, int]:
    """(population spikes, graded-unit messages) a full comparison of ``images`` images covers: every
    element of every population / graded function unit at each of its T steps."""
    T = net.timesteps
    pops = sum(int(np.prod(p.shape)) for p in net.populations) * T * images
    units = sum(int(np.prod(n.shape)) for n in net.nodes if isinstance(n, GradedFunctionUnit)) * T * images
    return pops, units


def compare(net: Network, x: np.ndarray) -> dict:
    """Lava against the reference on images ``x``: what was compared, the mismatches, the first one."""
    from snnc.backends.lava.backend import LavaBackend

    t0 = time.perf_counter()
    rep = verify_against_backend(net, x, LavaBackend(), Schedule.PIPELINED)
    units = [n.name for n in net.nodes if isinstance(n, GradedFunctionUnit)]
    return {"images": int(len(x)), "populations": len(net.populations), "graded_units": len(units),
            "readouts": len(net.readouts), "population_spikes_compared": rep.spikes_compared,
            "unit_messages_compared": rep.unit_messages_compared, "units_compared": rep.units_compared,
            "units_unchecked": rep.units_unchecked, "mismatches": rep.mismatches,
            "first_difference": rep.first_mismatch, "identical": bool(rep.exact and not rep.units_unchecked),
            "seconds_lava": round(rep.seconds_backend, 1), "seconds_reference": round(rep.seconds_reference, 2),
            "seconds_total": round(time.perf_counter() - t0, 1), "lava_version": rep.extra.get("lava_version"),
            "run_config": rep.extra.get("run_config")}


def run_rows(model: Path, config_of, timesteps: list[int], frac_bits: str, x: np.ndarray, log) -> list[dict]:
    rows = []
    for T in timesteps:
        net = compile_vit(model, config_of(T, frac_bits))
        r = {"model": model.name, "coding": "differential", "T": T, "frac_bits": net.coding.frac_bits}
        r.update(compare(net, x))
        log(f"lava {model.name} T={T}: {r['population_spikes_compared'] + r['unit_messages_compared']} messages, "
            f"{r['mismatches']} mismatches, identical {r['identical']} ({r['seconds_lava']} s)")
        rows.append(r)
    return rows


def save(rows: list[dict], path: Path = LAVA_JSON) -> dict:
    """Merge ``rows`` into the JSON at ``path`` (replacing rows of the same model and T) and write it."""
    old = json.loads(path.read_text()) if path.exists() else {"rows": []}
    keep = [r for r in old["rows"] if (r["model"], r["T"]) not in {(q["model"], q["T"]) for q in rows}]
    out = {"what": "the MNIST ViT on Lava against the reference simulator (benchmarks/vit_mnist_lava.py)",
           "rows": sorted(keep + rows, key=lambda r: (r["model"], r["T"]))}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    tmp.replace(path)
    return out


def render(data: dict | None) -> list[str]:
    """The doc's "On Lava" section (empty without results)."""
    if not data or not data.get("rows"):
        return []
    lines = ["## On Lava, message for message", "",
             "The same compiled network (differential coding) on Lava's CPU simulator "
             f"(lava-nc {data['rows'][0]['lava_version']}, `{data['rows'][0]['run_config']}`) against the reference "
             "simulator, on the first test images (`snnc verify --against lava`'s comparison; "
             "`benchmarks/vit_mnist.py --lava N`): every multi-threshold population's graded spikes and every "
             "graded unit's messages at every step, and the readout's final values. Lava's Conv holds `groups` as "
             "int8, so the 128-channel re-encodings of the MLP (groups = 128) run as Lava Sparse matrices, and "
             "every projection out of a graded unit is a Dense or Sparse whose int32 currents are guarded at run "
             "time (backends/lava/widths.py).", "",
             "| model | T | F | images | populations | graded units | spikes compared | unit messages compared "
             "| mismatches | identical | first difference | Lava s | reference s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: |"]
    for r in data["rows"]:
        lines.append(f"| `{r['model']}` | {r['T']} | {r['frac_bits']} | {r['images']} | {r['populations']} | "
                     f"{r['graded_units']} | {r['population_spikes_compared']:,} | {r['unit_messages_compared']:,} | "
                     f"{r['mismatches']:,} | {'yes' if r['identical'] else 'NO'} | {r['first_difference'] or '-'} | "
                     f"{r['seconds_lava']:.0f} | {r['seconds_reference']:.2f} |")
    return lines + [""]
