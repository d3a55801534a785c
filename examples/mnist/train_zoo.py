"""Train the MNIST 5k QCFS CNN for several quantizers x quantization levels L (the MNIST "zoo").

Usage (from the repository root)::

    .venv/bin/python examples/mnist/train_zoo.py                      # the 7 models below -> examples/mnist/zoo/
    .venv/bin/python examples/mnist/train_zoo.py --models round_L2 --epochs 1 --limit 256 --out-dir /tmp/z

Every model is ``train_cnn.py --model qcfs_cnn --quantizer Q --levels L --name Q_L<L>`` (the QCFS CNN
recipe of examples/mnist/train_cnn.py at 28x28, its default epochs, seed 0, legacy exporter), run
in-process, so the recipe lives in one place. The default set is what the papers' tables need:

* round x L = 2, 4, 8, 16, 32: paper 000's Tables 7 / 8 (the quantization step L);
* floor and ceil at L = 8: paper 003's single-layer input-timing experiment (Appendix A.1) at its T = 8,
  next to round_L8.

Each model is written as ``<out-dir>/<quantizer>_L<L>.onnx`` with its sidecar ``.json``
(train_cnn.py's: settings, torch / onnxruntime accuracy, and ``snnc``: compiled at T = L and
verified layerwise against the quantized ANN on the 1000 test images). ``index.json`` gets one
entry per model; entries of models not retrained this run are kept, so the zoo can grow one model
at a time. ``README.md`` is generated from index.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import re
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "zoo"
QUANTIZERS = ("floor", "round", "ceil")
DEFAULT_MODELS = ("round_L2", "round_L4", "round_L8", "round_L16", "round_L32", "floor_L8", "ceil_L8")
SEED = 0
NAME = re.compile(r"^(floor|round|ceil)_L([1-9][0-9]*)$")

log = logging.getLogger("mnist.train_zoo")


def _train_cnn():
    """examples/mnist/train_cnn.py, imported by path under a name that cannot clash."""
    name = "snnc_examples_mnist_train_cnn"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "train_cnn.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def parse_model(name: str) -> tuple[str, int]:
    m = NAME.match(name)
    if not m:
        raise ValueError(f"model name {name!r}: expected <floor|round|ceil>_L<levels>, e.g. round_L8")
    return m.group(1), int(m.group(2))


def entry_of(info: dict, name: str) -> dict:
    """index.json entry from a train_cnn.py sidecar."""
    q, L = parse_model(name)
    s = info.get("snnc", {})
    return {"file": f"{name}.onnx", "quantizer": q, "levels": L, "epochs": info["epochs"],
            "test_accuracy": info["test_accuracy"], "onnxruntime_test_accuracy": info["onnxruntime_test_accuracy"],
            "lam": info["lam"], "train_seconds": info["train_seconds"],
            "snnc_exact": s.get("exact"), "snnc_neurons_mismatched": s.get("neurons_mismatched"),
            "snnc_neurons_compared": s.get("neurons_compared"), "snnc_accuracy": s.get("snn_accuracy"),
            "n_test": info["n_test"],
            "ann_int_accuracy": s.get("ann_int_accuracy"), "snnc_profile": s.get("profile")}


def merge_index(old: list[dict], new: list[dict]) -> list[dict]:
    """Entries of ``old`` not retrained (by file) followed by ``new``, sorted by quantizer then L."""
    by_file = {e["file"]: e for e in old}
    by_file.update({e["file"]: e for e in new})
    return sorted(by_file.values(), key=lambda e: (QUANTIZERS.index(e["quantizer"]), e["levels"]))


def train_zoo(args: argparse.Namespace) -> list[dict]:
    tc = _train_cnn()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    new, t_all = [], time.perf_counter()
    for i, name in enumerate(args.models, 1):
        q, L = parse_model(name)
        argv = ["--model", "qcfs_cnn", "--quantizer", q, "--levels", str(L), "--name", name, "--seed", str(SEED),
                "--threads", str(args.threads), "--out-dir", str(out_dir)]
        if args.epochs is not None:
            argv += ["--epochs", str(args.epochs)]
        if args.limit is not None:
            argv += ["--limit", str(args.limit)]
        if args.test_limit is not None:
            argv += ["--test-limit", str(args.test_limit)]
        log.info("[%d/%d] %s: train_cnn.py %s", i, len(args.models), name, " ".join(argv))
        info = tc.train(tc.parse_args(argv))
        e = entry_of(info, name)
        if e["snnc_exact"] is not True:
            raise RuntimeError(f"{name}: snnc verify --against ann (layerwise, T = L) is not exact: "
                               f"{e['snnc_neurons_mismatched']} of {e['snnc_neurons_compared']} counts differ")
        new.append(e)
        log.info("[%d/%d] %s: test accuracy %.4f, SNN exact on %d test images", i, len(args.models), name,
                 e["test_accuracy"], info["n_test"])
    index_path = out_dir / "index.json"
    old = json.loads(index_path.read_text()) if index_path.is_file() else []
    index = merge_index(old, new)
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    commands = _commands(out_dir, args.argv)
    (out_dir / "commands.json").write_text(json.dumps(commands, indent=2) + "\n")
    (out_dir / "README.md").write_text(render_readme(index, commands, out_dir))
    log.info("wrote %s (%d models; %.0f s this run)", index_path, len(index), time.perf_counter() - t_all)
    return index


def _commands(out_dir: Path, argv: list[str]) -> list[str]:
    """The commands that made the zoo (this one appended to the ones recorded before)."""
    path = out_dir / "commands.json"
    old = json.loads(path.read_text()) if path.is_file() else []
    cmd = " ".join([".venv/bin/python examples/mnist/train_zoo.py", *(shlex.quote(a) for a in argv)])
    return [c for c in old if c != cmd] + [cmd]


def render_readme(index: list[dict], commands: list[str], out_dir: Path = DEFAULT_OUT) -> str:
    """README of the zoo; every number comes from ``index`` (the parsed index.json)."""
    shipped, ours = HERE / "qcfs_cnn.onnx", Path(out_dir) / "round_L4.onnx"
    same = shipped.is_file() and ours.is_file() and shipped.read_bytes() == ours.read_bytes()
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    rows = [f"| `{e['file']}` | {e['quantizer']} | {e['levels']} | {e['epochs']} | {fmt(e['test_accuracy'])} "
            f"| {fmt(e['onnxruntime_test_accuracy'])} | {fmt(e['ann_int_accuracy'])} | "
            + ("**EXACT**" if e["snnc_exact"] else "not exact") + ("‡" if e.get("snnc_profile") else "")
            + f" ({e['snnc_neurons_mismatched']:,} of {e['snnc_neurons_compared']:,} counts differ) "
            f"| {', '.join(f'{v:g}' for v in e['lam'])} | {e['train_seconds']:.0f} |" for e in index]
    return "\n".join([
        "# MNIST 5k QCFS model zoo",
        "",
        "<!-- generated by examples/mnist/train_zoo.py from index.json; do not edit by hand -->",
        "",
        "The QCFS CNN of [`train_cnn.py`](../train_cnn.py) (`--model qcfs_cnn`: Conv(1->8)-BN-QCFS,",
        "Conv(8->16)-BN-QCFS, AvgPool 2, Linear(3136->64)-QCFS, Linear(64->10), 28x28 input) trained on the",
        "4,000 training images of `../mnist5k.npz` for several quantizers and quantization levels L: paper",
        "000's Tables 7 / 8 need round at L = 2..32, paper 003's input-timing experiment floor / round / ceil",
        "at L = 8. Seed 0, legacy exporter (opset 17), train_cnn.py's defaults; measured on the 1,000 test",
        "images of `../test.npz`.",
        "",
        "| file | content |",
        "| --- | --- |",
        "| `<quantizer>_L<L>.onnx` | model: input `x` float32 `(batch,1,28,28)`, output `logits` `(batch,10)` |",
        "| `<quantizer>_L<L>.json` | train_cnn.py's sidecar: settings, accuracies, the snnc check |",
        "| `index.json` | one entry per model (below) |",
        "| `commands.json` | the commands that made the zoo |",
        "",
        "## How they were made",
        "",
        *[f"    {c}" for c in commands],
        "",
        "Training is deterministic (seeded initialisation and batch order, `torch.set_num_threads`",
        "explicit, CPU)" + (": `round_L4.onnx` is byte-identical to the shipped `../qcfs_cnn.onnx`, trained"
                            " separately by `train_cnn.py --model qcfs_cnn`." if same else "."),
        "Training times are wall-clock on a 2-core machine shared with other jobs (upper bounds).",
        "",
        f"## Models ({_n_test(index)} test images)",
        "",
        "\"snnc\": `snnc compile` defaults (T = L, layerwise, loihi target) and `verify --against ann` on the",
        "same test images: the SNN's spike counts against the quantized (integer) ANN's levels.",
        *(["‡ = the 24-bit `loihi` state refuses T = L for this model (its sidecar's `snnc.loihi_refused` says "
           "why); checked with `" + next(e["snnc_profile"] for e in index if e.get("snnc_profile"))
           + "` (a 32-bit state) laid over loihi."] if any(e.get("snnc_profile") for e in index) else []),
        "",
        "| file | quantizer | L | epochs | torch | onnxruntime | integer ANN | snnc verify (T = L, layerwise) "
        "| learned lam | train s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ])


def _n_test(index: list[dict]) -> str:
    ns = sorted({e["n_test"] for e in index})
    return " / ".join(f"{n:,}" for n in ns)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help="<quantizer>_L<levels> names (default: %(default)s)")
    p.add_argument("--out-dir", default=str(DEFAULT_OUT), help="output folder (default examples/mnist/zoo)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: train_cnn.py's, 15)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--limit", type=int, default=None, help="train on the first N training images (smoke runs)")
    p.add_argument("--test-limit", type=int, default=None, help="measure on the first N test images (smoke runs)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    for name in args.models:
        try:
            parse_model(name)
        except ValueError as e:
            p.error(f"--models: {e}")
    args.models = list(dict.fromkeys(args.models))
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    train_zoo(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
