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
  a population with two incoming projections).

    .venv/bin/python benchmarks/mapping_bench.py [--out benchmarks/results/mapping.json] [--skip-224] [--compile-224]

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mapping.json"))
    ap.add_argument("--target", default="loihi")
    ap.add_argument("--skip-224", action="store_true")
    ap.add_argument("--compile-224", action="store_true", help="export and compile the 224 ONNX (slow, memory-hungry)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path.insert(0, str(ROOT / "examples" / "models"))
    from snnc import __version__

    res: dict = {"snnc_version": __version__, "target": args.target,
                 "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
                 "models": {}}
    res["models"]["digits"] = compile_onnx(ROOT / "examples" / "digits" / "qcfs_cnn.onnx", args.target)
    log.info("digits: %s", res["models"]["digits"])
    import vgg

    with tempfile.TemporaryDirectory(prefix="snnc_map_") as tmp:
        onnx_path = Path(tmp) / "vgg16_32.onnx"
        vgg.export_onnx(vgg.make_vgg16(100, 32, (4096, 4096), seed=0), onnx_path, "legacy", input_shape=(1, 3, 32, 32))
        res["models"]["vgg16_cifar"] = compile_onnx(onnx_path, args.target)
        log.info("vgg16_cifar: %s", res["models"]["vgg16_cifar"])
        if not args.skip_224:
            if args.compile_224:
                p224 = Path(tmp) / "vgg16_224.onnx"
                vgg.export_onnx(vgg.make_vgg16(100, 224, (4096, 4096), seed=0), p224, "legacy",
                                input_shape=(1, 3, 224, 224))
                res["models"]["vgg16_224"] = compile_onnx(p224, args.target)
            else:
                t0 = time.perf_counter()
                net = vgg16_ir(224)
                build = time.perf_counter() - t0
                res["models"]["vgg16_224"] = map_ir(net, args.target, "IR built in code (pooling folded as compiled)")
                res["models"]["vgg16_224"]["seconds"]["build_ir"] = build
                del net
            log.info("vgg16_224: %s", res["models"]["vgg16_224"])
        if not args.skip_224:
            import resnet

            p18 = Path(tmp) / "resnet18_224.onnx"
            resnet.export_onnx(resnet.make_resnet18(num_classes=1000, input_size=224), p18, "legacy",
                               input_shape=(1, 3, 224, 224))
            res["models"]["resnet18_224"] = compile_onnx(p18, args.target)
            log.info("resnet18_224: %s", res["models"]["resnet18_224"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    log.info("wrote %s", out)
    ok = all(m.get("ratio", 0) <= 1.15 for m in res["models"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
