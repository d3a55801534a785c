"""Train the digits QCFS CNN for every quantizer x levels combination (the "zoo").

Usage (from the repository root)::

    .venv/bin/python examples/digits/train_zoo.py                   # 9 models -> examples/digits/zoo/
    .venv/bin/python examples/digits/train_zoo.py --epochs 1 --quantizers floor --levels 2 \
        --out-dir /tmp/zoo                                          # quick smoke run

Each model is trained in-process with ``train.py``'s ``train()`` (legacy exporter, seed 0, the
default epochs / lr / lam-init of train.py unless overridden in ``OVERRIDES``) and written as
``<out-dir>/<quantizer>_L<levels>.onnx`` plus ``<quantizer>_L<levels>.json`` (train.py's settings and
accuracies).  The held-out test split is written once, as ``<out-dir>/test.npz``, and must hold the
same ``x`` / ``y`` arrays as the shipped ``examples/digits/test.npz`` (same seed -> same split);
otherwise the script fails.  At the end it writes ``<out-dir>/index.json`` (one entry per model;
entries of models not retrained by this run are kept, so the zoo grows one run at a time, e.g.
``--levels 16 32``), ``<out-dir>/commands.json`` (the commands that made the zoo) and
``<out-dir>/README.md`` (generated from both).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SHIPPED_TEST = HERE / "test.npz"
DEFAULT_OUT = HERE / "zoo"
QUANTIZERS = ("floor", "round", "ceil")
LEVELS = (2, 4, 8)
SEED = 0
EXPORTER = "legacy"

# Per-model deviations from train.py's defaults, e.g. {("floor", 2): {"lam_init": 1.0}}.  Every
# override is recorded in that model's index.json entry under "overrides".  Empty: all 9 models use
# the same settings.
OVERRIDES: dict[tuple[str, int], dict] = {}

log = logging.getLogger("digits.train_zoo")


def _load_train_module():
    """Import examples/digits/train.py by path (under a name that cannot clash with other 'train's)."""
    name = "snnc_examples_digits_train"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "train.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _load_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(path) as d:
        return d["x"], d["y"]


def _same_arrays(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def check_split(path: Path | tuple[np.ndarray, np.ndarray], reference: Path = SHIPPED_TEST) -> None:
    """Raise RuntimeError unless ``path`` (an .npz or an (x, y) pair) holds exactly the x and y arrays
    of ``reference``."""
    x, y = path if isinstance(path, tuple) else _load_npz(path)
    xr, yr = _load_npz(reference)
    bad = [
        f"{k}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        for k, a, b in (("x", x, xr), ("y", y, yr))
        if not _same_arrays(a, b)
    ]
    if bad:
        raise RuntimeError(
            f"test split {'(computed)' if isinstance(path, tuple) else path} differs from the shipped split {reference} ({'; '.join(bad)}). "
            "The split comes from sklearn's train_test_split with seed "
            f"{SEED}; a different scikit-learn / numpy version may split differently. "
            "Refusing to build a zoo that is evaluated on a different test set."
        )


def model_name(quantizer: str, levels: int) -> str:
    return f"{quantizer}_L{levels}"


def train_zoo(args: argparse.Namespace) -> list[dict]:
    train_mod = _load_train_module()
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    combos = [(q, L) for q in args.quantizers for L in args.levels]
    n = len(combos)
    test_out = out_dir / "test.npz"
    # fail before training anything if this sklearn / numpy splits differently from the shipped split
    _, x_te, _, y_te = train_mod.load_split(SEED)
    check_split((x_te.astype(np.float32), y_te.astype(np.int64)))
    entries = []
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="digits_zoo_") as tmp:
        for i, (q, L) in enumerate(combos, 1):
            name = model_name(q, L)
            argv = [
                "--quantizer", q,
                "--levels", str(L),
                "--exporter", EXPORTER,
                "--seed", str(SEED),
                "--threads", str(args.threads),
                "--out", str(out_dir / f"{name}.onnx"),
                # train() always writes the split: the first model writes the zoo's copy, the others
                # a throw-away file that is only compared with it
                "--test-out", str(test_out if i == 1 else Path(tmp) / f"{name}.npz"),
            ]  # fmt: skip
            if args.epochs is not None:
                argv += ["--epochs", str(args.epochs)]
            overrides = OVERRIDES.get((q, L), {})
            for k, v in overrides.items():
                argv += [f"--{k.replace('_', '-')}", str(v)]
            targs = train_mod.parse_args(argv)
            log.info("[%d/%d] training %s (quantizer %s, L=%d, %d epochs%s)", i, n, name, q, L, targs.epochs,
                     f", overrides {overrides}" if overrides else "")  # fmt: skip
            info = train_mod.train(targs)
            if i == 1:
                check_split(test_out)
                log.info("test split %s is identical to the shipped %s", test_out, SHIPPED_TEST)
            else:
                check_split(Path(tmp) / f"{name}.npz", reference=test_out)
            entry = {
                "file": f"{name}.onnx",
                "quantizer": q,
                "levels": L,
                "test_accuracy": info["test_accuracy"],
                "onnxruntime_test_accuracy": info.get("onnxruntime_test_accuracy"),
                "lam": info["lam"],
                "train_seconds": info["train_seconds"],
            }
            if overrides:
                entry["overrides"] = dict(overrides)
            entries.append(entry)
            log.info("[%d/%d] %s: test accuracy torch %.4f, onnxruntime %s (%.1f s)", i, n, name,
                     entry["test_accuracy"], entry["onnxruntime_test_accuracy"], entry["train_seconds"])  # fmt: skip
    total = time.perf_counter() - t_all

    index = out_dir / "index.json"
    old = json.loads(index.read_text()) if index.is_file() else []
    merged = merge_index(old, entries)
    index.write_text(json.dumps(merged, indent=2) + "\n")
    log.info("wrote %s (%d models trained, %d in the index, %.1f s in all)", index, n, len(merged), total)
    commands = record_command(out_dir, args.argv, total)
    readme = out_dir / "README.md"
    readme.write_text(render_readme(json.loads(index.read_text()), args, commands))
    log.info("wrote %s", readme)
    return entries


def merge_index(old: list[dict], new: list[dict]) -> list[dict]:
    """The entries of ``old`` not retrained (by file), and ``new``; sorted by quantizer, then L."""
    by_file = {e["file"]: e for e in old}
    by_file.update({e["file"]: e for e in new})
    return sorted(by_file.values(), key=lambda e: (QUANTIZERS.index(e["quantizer"]), e["levels"]))


def record_command(out_dir: Path, argv: list[str], seconds: float) -> list[dict]:
    """Append this run's command (and its wall time) to ``<out_dir>/commands.json``; a repeated
    command replaces its earlier record. Returns the list."""
    path = out_dir / "commands.json"
    old = json.loads(path.read_text()) if path.is_file() else []
    cmd = _command(argv)
    records = [r for r in old if r["command"] != cmd] + [{"command": cmd, "seconds": round(seconds)}]
    path.write_text(json.dumps(records, indent=2) + "\n")
    return records


def _command(argv: list[str]) -> str:
    script = Path(__file__).resolve()
    try:
        script_s = str(script.relative_to(Path.cwd()))
    except ValueError:
        script_s = str(script)
    return " ".join([".venv/bin/python", script_s, *(shlex.quote(a) for a in argv)])


def render_readme(entries: list[dict], args: argparse.Namespace, commands: list[dict], out_dir: Path | None = None) -> str:
    """README of the zoo; every number in it comes from ``entries`` (the parsed index.json)."""
    import torch

    shipped, ours = HERE / "qcfs_cnn.onnx", Path(out_dir or args.out_dir) / "round_L4.onnx"
    same = shipped.is_file() and ours.is_file() and shipped.read_bytes() == ours.read_bytes()

    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    rows = [
        f"| `{e['file']}` | {e['quantizer']} | {e['levels']} | {fmt(e['test_accuracy'])} "
        f"| {fmt(e['onnxruntime_test_accuracy'])} | {', '.join(f'{v:g}' for v in e['lam'])} "
        f"| {e['train_seconds']:.1f} | {json.dumps(e['overrides']) if e.get('overrides') else ''} |"
        for e in entries
    ]
    qs = list(dict.fromkeys(e["quantizer"] for e in entries))
    ls = sorted({e["levels"] for e in entries})
    by = {(e["quantizer"], e["levels"]): e for e in entries}
    grid = [
        f"| {q} | " + " | ".join(fmt(by[q, L]["onnxruntime_test_accuracy"]) if (q, L) in by else "" for L in ls) + " |"
        for q in qs
    ]
    n_test = len(_load_npz(SHIPPED_TEST)[1])
    return "\n".join([
        "# Digits model zoo",
        "",
        "<!-- generated by examples/digits/train_zoo.py from index.json; do not edit by hand -->",
        "",
        "Trained QCFS CNNs for scikit-learn's 8x8 digits (the model of",
        "[`examples/models/qcfs.py`](../../models/qcfs.py), trained by",
        "[`examples/digits/train.py`](../train.py)), one per quantizer x quantization levels `L`.",
        f"All use the legacy ONNX exporter (opset 17), seed {SEED}, and train.py's default",
        "hyper-parameters unless the `overrides` column says otherwise.",
        "",
        "| file | content |",
        "| --- | --- |",
        "| `<quantizer>_L<L>.onnx` | model: input `x` float32 `(batch,1,8,8)`, output `logits` `(batch,10)` |",
        "| `<quantizer>_L<L>.json` | train.py's settings and accuracies of that model |",
        f"| `test.npz` | held-out test split ({n_test} images); identical arrays to `../test.npz` (checked) |",
        "| `index.json` | one entry per model: file, quantizer, levels, accuracies, learned `lam`, training time |",
        "",
        "## How they were made",
        "",
        *[f"    {c['command']}" for c in commands],
        "",
        f"(torch {torch.__version__}, {args.threads} CPU threads; "
        + "; ".join(f"{c['seconds']} s" for c in commands) + " for the run" + ("s" if len(commands) > 1 else "")
        + " above.)",
        "Training is deterministic: re-running the command reproduces the `.onnx` files byte for byte on",
        "the same machine / torch version"
        + (" (`round_L4.onnx` is byte-identical to the shipped `../qcfs_cnn.onnx`)." if same else "."),
        "The training times are wall-clock and depend on the load of the machine.",
        "",
        f"## Accuracy on the test split ({n_test} images)",
        "",
        "onnxruntime, whole split in one batch:",
        "",
        "| quantizer | " + " | ".join(f"L={L}" for L in ls) + " |",
        "| --- |" + " --- |" * len(ls),
        *grid,
        "",
        "| file | quantizer | L | torch eval | onnxruntime | learned lam | train s | overrides |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", default=str(DEFAULT_OUT), help="output folder (default examples/digits/zoo)")
    p.add_argument("--quantizers", nargs="+", choices=QUANTIZERS, default=list(QUANTIZERS))
    p.add_argument("--levels", nargs="+", type=int, default=list(LEVELS), help="levels L (default 2 4 8)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: train.py's)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = p.parse_args(argv)
    if any(L < 1 for L in args.levels):
        p.error("--levels must be >= 1")
    if args.epochs is not None and args.epochs < 1:
        p.error("--epochs must be >= 1")
    args.quantizers = list(dict.fromkeys(args.quantizers))
    args.levels = list(dict.fromkeys(args.levels))
    args.argv = argv
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    train_zoo(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
