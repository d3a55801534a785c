"""Mapping benchmark: cores used vs the lower bound, and compile / mapping time, on Loihi.

Models (all on ``--target loihi`` unless ``--target`` says otherwise):
- digits: examples/digits/qcfs_cnn.onnx, compiled from ONNX;
- vgg16_cifar: the random-weight QCFS VGG-16 of examples/models/vgg.py (32x32, 100 classes,
  classifier 4096-4096), exported to a temporary ONNX and compiled (compile and mapping timed apart);
- vgg16_224: the same architecture at 224x224, built directly as the IR the compiler produces for it
  (each 2x2 average pooling folded into the next 3x3 convolution: 6x6, stride 2, padding 2; the last
  into fc1, which reads 512x14x14), weights all 1 (the mapper reads shapes only). ``--compile-224``
  exports and compiles the ONNX instead (slow, ~10 GB of memory);
- resnet18_224: the random-weight QCFS ResNet-18 of examples/models/resnet.py (ImageNet stem, average
  pooling, 1000 classes) at 224x224, exported to a temporary ONNX and compiled (residual additions:
  a population with two incoming projections);
- resnet20_224: the random-weight QCFS ResNet-20 (CIFAR architecture, 10 classes) at 224x224, exported
  and compiled: its readout (global average pooling folded into fc: 64x56x56 inputs per class) fits
  no core and is placed as partial accumulators (docs/mapping.md).

``--models`` runs some rows only; rows already in ``--out`` (same target) are kept, the rows run replace theirs.

    .venv/bin/python benchmarks/mapping_bench.py [--out benchmarks/results/mapping.json] [--models digits,resnet20_224]
        [--skip-224] [--compile-224]

Exit status 0 when every model's cores_used / lower_bound_cores is at most 1.15.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger("mapping_bench")

VGG16_CFG = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")


def vgg16_ir(size: int, classifier=(4096, 4096), num_classes: int = 100):
    """VGG-16 as snnc compiles it (pooling folded into the next linear op), all weights 1."""
    from snnc.ir import Conv2d, Dense, Input, Network, Population, Readout

    nodes, projs = [Input("input", (3, size, size))], []
    prev, c, h, pool, i = "input", 3, size, False, 0
    for v in VGG16_CFG:
        if v == "P":
            pool = True
            continue
        i += 1
        k, s, p, oh = (6, 2, 2, h // 2) if pool else (3, 1, 1, h)
        name = f"conv{i}"
        nodes.append(Population(name, (v, oh, oh)))
        projs.append(Conv2d(f"{prev}->{name}", prev, name, np.ones((v, c, k, k), np.int8), stride=(s, s),
                            padding=(p,) * 4, in_shape=(c, h, h), out_shape=(v, oh, oh)))
        prev, c, h, pool = name, v, oh, False
    # the last pooling folds into fc1: it reads the (512, h, h) output of conv13 directly
    fin_shape = (c, h, h)
    for j, width in enumerate(classifier):
        name = f"fc{j + 1}"
        nodes.append(Population(name, (width,)))
        n_in = int(np.prod(fin_shape))
        projs.append(Dense(f"{prev}->{name}", prev, name, np.ones((width, n_in), np.int8), in_shape=fin_shape,
                           out_shape=(width,)))
        prev, fin_shape = name, (width,)
    nodes.append(Readout("readout", (num_classes,)))
    projs.append(Dense(f"{prev}->readout", prev, "readout", np.ones((num_classes, fin_shape[0]), np.int8),
                       in_shape=fin_shape, out_shape=(num_classes,)))
    return Network(nodes, projs, 4)


def summary(net, compile_s: float | None, map_wall: float, source: str) -> dict:
    pl = net.metadata["placement"]
    return {
        "source": source,
        "target": pl["target"],
        "populations": len(net.populations) + len(net.readouts),
        "neurons": int(sum(n.size for n in net.populations) + sum(n.size for n in net.readouts)),
        "cores_used": pl["cores_used"], "chips_used": pl["chips_used"],
        "lower_bound_cores": pl["lower_bound_cores"],
        "ratio": pl["cores_used"] / pl["lower_bound_cores"],
        "lower_bound": pl["lower_bound"],
        "granularity": pl["granularity"], "packing": pl["packing"], "chip_placement": pl["chip_placement"],
        "inter_chip_traffic": pl["inter_chip_traffic"], "total_traffic": pl["total_traffic"],
        "split_readouts": {p["name"]: {"partials": p["split"]["partials"], "cores": len(p["split"]["cores"])}
                           for p in pl["populations"] if p.get("split")},
        "seconds": {"compile": compile_s, "mapping": map_wall, "partition": pl["seconds"]["partition"],
                    "chips": pl["seconds"]["chips"]},
    }


def compile_onnx(path: Path, target: str) -> dict:
    from snnc.compiler.api import compile_imported, import_model
    from snnc.compiler.config import CompileConfig

    t0 = time.perf_counter()
    imported = import_model(path)
    net = compile_imported(imported, CompileConfig(target=target))
    total = time.perf_counter() - t0
    m = net.metadata["placement"]["seconds"]
    mapping = m["partition"] + m["chips"]
    return summary(net, total - mapping, mapping, f"compiled from {path.name}")


def map_ir(net, target: str, source: str) -> dict:
    from snnc.compiler.mapping import map_network
    from snnc.compiler.targets import load_target

    t0 = time.perf_counter()
    net.metadata["placement"] = map_network(net, load_target(target))
    return summary(net, None, time.perf_counter() - t0, source)


def _export_compile(tmp: Path, name: str, model, size: int, target: str) -> dict:
    import vgg

    path = tmp / f"{name}.onnx"
    vgg.export_onnx(model, path, "legacy", input_shape=(1, 3, size, size))
    del model
    return compile_onnx(path, target)


def _vgg16_224(tmp: Path, args) -> dict:
    import vgg

    if args.compile_224:
        return _export_compile(tmp, "vgg16_224", vgg.make_vgg16(100, 224, (4096, 4096), seed=0), 224, args.target)
    t0 = time.perf_counter()
    net = vgg16_ir(224)
    build = time.perf_counter() - t0
    row = map_ir(net, args.target, "IR built in code (pooling folded as compiled)")
    row["seconds"]["build_ir"] = build
    return row


def _digits(tmp: Path, args) -> dict:
    return compile_onnx(ROOT / "examples" / "digits" / "qcfs_cnn.onnx", args.target)


def _vgg16_cifar(tmp: Path, args) -> dict:
    import vgg

    return _export_compile(tmp, "vgg16_32", vgg.make_vgg16(100, 32, (4096, 4096), seed=0), 32, args.target)


def _resnet18_224(tmp: Path, args) -> dict:
    import resnet

    return _export_compile(tmp, "resnet18_224", resnet.make_resnet18(num_classes=1000, input_size=224), 224, args.target)


def _resnet20_224(tmp: Path, args) -> dict:
    import resnet

    return _export_compile(tmp, "resnet20_224", resnet.make_resnet20(num_classes=10, input_size=224), 224, args.target)


ROWS = {  # name -> (a 224x224 row, builder(tmp, args))
    "digits": (False, _digits),
    "vgg16_cifar": (False, _vgg16_cifar),
    "vgg16_224": (True, _vgg16_224),
    "resnet18_224": (True, _resnet18_224),
    "resnet20_224": (True, _resnet20_224),
}


def merge_rows(path: Path, res: dict) -> dict:
    """``res`` with the rows of an existing results file for the same target kept (rows run replace
    theirs; the others stay)."""
    if not path.exists():
        return res
    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        log.warning("%s is not valid JSON (%s): writing a fresh file", path, e)
        return res
    if old.get("target") != res["target"]:
        log.warning("%s holds target %s, not %s: writing a fresh file", path, old.get("target"), res["target"])
        return res
    return {**old, **{k: v for k, v in res.items() if k != "models"}, "models": {**old.get("models", {}), **res["models"]}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mapping.json"))
    ap.add_argument("--target", default="loihi")
    ap.add_argument("--models", default=",".join(ROWS), help=f"rows to run (default all: {','.join(ROWS)})")
    ap.add_argument("--skip-224", action="store_true")
    ap.add_argument("--compile-224", action="store_true", help="export and compile the 224 ONNX (slow, memory-hungry)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "examples" / "models"))
    from snnc import __version__

    names = [n for n in args.models.split(",") if n]
    unknown = sorted(set(names) - set(ROWS))
    if unknown:
        ap.error(f"unknown rows {unknown}; known: {', '.join(ROWS)}")
    res: dict = {"snnc_version": __version__, "target": args.target,
                 "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
                 "models": {}}
    with tempfile.TemporaryDirectory(prefix="snnc_map_") as tmp:
        for name in names:
            big, fn = ROWS[name]
            if big and args.skip_224:
                continue
            res["models"][name] = fn(Path(tmp), args)
            log.info("%s: %s", name, res["models"][name])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merge_rows(out, res), indent=2) + "\n")
    log.info("wrote %s", out)
    ok = all(m.get("ratio", 0) <= 1.15 for m in res["models"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
