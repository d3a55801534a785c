"""Paper 000's Tables 7 / 8 (SNN-α vs SNN-β per quantization step L) on MNIST 5k, from `snnc eval --json`.

    .venv/bin/python benchmarks/methods_mnist.py              # round L = 2..32, T = 1..32, all 1000 test images
    .venv/bin/python benchmarks/methods_mnist.py --from-json  # re-render the section from the committed JSON
    .venv/bin/python benchmarks/methods_mnist.py --quick --doc /tmp/r.md --json-dir /tmp/m

For each round-quantizer model of the MNIST 5k zoo (examples/mnist/zoo, examples/mnist/train_zoo.py) it runs

    snnc eval MODEL --data examples/mnist/test.npz --timesteps 1,2,4,8,16,32 --neuron if,dual-threshold
         --v0 half --schedule pipelined --json

on the `loihi` target (24-bit state). A time-step the 24-bit state refuses (the compiler names the layer and
the weight bits it would keep) is run again with `--profile examples/mnist/state32.toml` (a 32-bit
state, not a Loihi chip; paper 000 simulates in floating point) and its cells are marked ‡. One JSON per
model goes to benchmarks/results/methods_mnist/; the section between `<!-- methods-mnist:begin -->` and
`<!-- methods-mnist:end -->` of docs/results.md is rendered from it: accuracy and the unevenness error in
the shape of the paper's Tables 7 / 8, then the paper's claims checked against our numbers. Every number
and statement is computed from the JSON; the paper's own figures (VGG-16 on CIFAR, transcribed in
methods_results.py) are only quoted.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from methods_results import ALPHA_BETA, PAPER_000_VGG16  # noqa: E402
from sections import DOC, ROOT, Section, rel, run_eval, save_figure, tally, write_json  # noqa: E402

SECTION = Section("methods-mnist")
ZOO = ROOT / "examples/mnist/zoo"
DATA = ROOT / "examples/mnist/test.npz"
JSON_DIR = ROOT / "benchmarks/results/methods_mnist"
WIDE = ROOT / "examples/mnist/state32.toml"
NEURONS = ("if", "dual-threshold")
PLOT = "img/methods_mnist.png"  # relative to the document
FULL = dict(levels=(2, 4, 8, 16, 32), timesteps=(1, 2, 4, 8, 16, 32), samples=None)
QUICK = dict(levels=(2,), timesteps=(1, 2), samples=100)
KEEP = ("neuron", "v0", "schedule", "timesteps", "accuracy", "agreement_with_ann_int", "exact", "neurons_mismatched",
        "neurons_compared", "rate_error", "unevenness_error", "spikes_per_sample", "parameters_sha256", "error")

# Paper 000, VGG-16 rows of Table 7 (CIFAR-10) and Table 8 (CIFAR-100): {L: (ANN %, accuracy % at PAPER_T)}
PAPER_T = (1, 2, 4, 8, 16, 32, 64)
PAPER_VGG16 = {
    "CIFAR-10": {2: (94.71, (85.33, 94.35, 95.04, 95.05, 95.01, 95.05, 95.05)),
                 4: (95.23, (87.27, 93.53, 95.15, 95.41, 95.39, 95.48, 95.43)),
                 8: (95.41, (66.82, 91.40, 95.18, 95.37, 95.23, 95.28, 95.27)),
                 16: (95.59, (24.46, 89.65, 95.14, 95.45, 95.59, 95.56, 95.66)),
                 32: (95.59, (11.96, 88.12, 94.86, 95.43, 95.50, 95.55, 95.58))},
    "CIFAR-100": {2: (74.63, (65.70, 73.78, 75.70, 76.01, 76.06, 75.95, 76.01)),
                  4: (76.46, (58.39, 72.58, 76.50, 77.14, 77.29, 77.39, 77.28)),
                  8: (77.32, (46.37, 69.07, 76.03, 77.41, 77.44, 77.46, 77.45)),
                  16: (77.67, (32.32, 65.19, 75.24, 77.09, 77.66, 77.58, 77.50)),
                  32: (77.83, (21.73, 61.12, 75.32, 77.74, 77.75, 77.77, 77.82))},
}

log = logging.getLogger("methods_mnist")


def eval_model(L: int, grid: dict) -> dict:
    """One zoo model: the loihi run over the grid's T, then the refused T again with the 32-bit state."""
    path = ZOO / f"round_L{L}.onnx"
    base = [path, "--data", DATA, "--neuron", ",".join(NEURONS), "--v0", "half", "--schedule", "pipelined"]
    if grid["samples"]:
        base += ["--samples", str(grid["samples"])]
    t0 = time.perf_counter()
    rep = run_eval([*base, "--timesteps", ",".join(map(str, grid["timesteps"]))])
    results = [{**{k: r[k] for k in KEEP}, "profile": None} for r in rep["results"]]
    refused = sorted({r["timesteps"] for r in results if r["error"]})
    if refused:
        log.info("round_L%d: the 24-bit state refuses T = %s; again with %s", L, refused, rel(WIDE))
        wide = run_eval([*base, "--timesteps", ",".join(map(str, refused)), "--profile", WIDE])
        for k in ("sha256", "samples", "ann_float_accuracy"):
            if wide[k] != rep[k]:
                raise RuntimeError(f"round_L{L}: the two eval runs disagree on {k}: {wide[k]} vs {rep[k]}")
        results += [{**{k: r[k] for k in KEEP}, "profile": rel(WIDE)} for r in wide["results"]]
    # the integer ANN is the compiled network's integer weights, so it depends on the state width
    wide_int = wide["ann_int_accuracy"] if refused else None
    return {"model": rel(path), "sha256": rep["sha256"], "data": rel(DATA), "samples": rep["samples"], "levels": L,
            "quantizers": rep["quantizers"], "target": rep["target"], "wide_profile": rel(WIDE),
            "ann_float_accuracy": rep["ann_float_accuracy"], "ann_int_accuracy": rep["ann_int_accuracy"],
            "wide_ann_int_accuracy": wide_int, "timesteps": list(grid["timesteps"]), "seconds": round(time.perf_counter() - t0, 1), "results": results}


# ---------------------------------------------------------------------------------------------
# Rendering (pure functions of the JSON)


def cell(rep: dict, neuron: str, T: int) -> dict | None:
    """The result for (neuron, T): the loihi run's, or the 32-bit state's where loihi refused it."""
    rows = [r for r in rep["results"] if r["neuron"] == neuron and r["timesteps"] == T]
    own = next((r for r in rows if r["profile"] is None), None)
    if own is not None and not own["error"]:
        return own
    wide = next((r for r in rows if r["profile"] is not None), None)
    return wide if wide is not None else own


def ok(r) -> bool:
    return r is not None and not r["error"]


def mark(r) -> str:
    return "‡" if r["profile"] else ""


def acc_text(r) -> str:
    return "-" if r is None else ("refused" if r["error"] else f"{100 * r['accuracy']:.2f}{mark(r)}")


def err_text(r) -> str:
    return "-" if r is None else ("refused" if r["error"] else f"{r['rate_error']:.4f}{mark(r)}")


def int_ann_text(rep: dict) -> str:
    """The integer ANN's accuracy (the T = L compile's weights): loihi's, else the 32-bit state's (‡)."""
    if rep["ann_int_accuracy"] is not None:
        return f"{100 * rep['ann_int_accuracy']:.2f}"
    return "-" if rep.get("wide_ann_int_accuracy") is None else f"{100 * rep['wide_ann_int_accuracy']:.2f}‡"


def tables(reports: dict) -> list[str]:
    Ts = next(iter(reports.values()))["timesteps"]
    head = " | ".join(f"T={t}" for t in Ts)
    out = ["**Accuracy (%)** (ANN: float / integer, i.e. the quantized ANN the SNN converges to)", "",
           f"| L | neuron | ANN | {head} |", "|---:|---|---:|" + "---:|" * len(Ts)]
    for L, rep in reports.items():
        ann = f"{100 * rep['ann_float_accuracy']:.2f} / {int_ann_text(rep)}"
        for n in NEURONS:
            out.append(f"| {L} | {ALPHA_BETA[n]} | {ann} | " + " | ".join(acc_text(cell(rep, n, t)) for t in Ts) + " |")
    out += ["", "**Unevenness error** (mean over the spiking layers of the mean |M/L − N/T|, units of λ)", "",
            f"| L | neuron | {head} |", "|---:|---|" + "---:|" * len(Ts)]
    for L, rep in reports.items():
        for n in NEURONS:
            out.append(f"| {L} | {ALPHA_BETA[n]} | " + " | ".join(err_text(cell(rep, n, t)) for t in Ts) + " |")
    return out + [""]


def claim_beta(reports: dict) -> str:
    """000: SNN-β (dual threshold) beats SNN-α (IF) at low latency, and lowers the unevenness error."""
    pairs, err_pairs, max_diff = [], [], 0
    for rep in reports.values():
        for t in rep["timesteps"]:
            a, b = cell(rep, "if", t), cell(rep, "dual-threshold", t)
            if t > 8 or not (ok(a) and ok(b)):
                continue
            pairs.append((b["accuracy"], a["accuracy"]))
            err_pairs.append((a["rate_error"], b["rate_error"]))
            max_diff = max(max_diff, round(abs(b["accuracy"] - a["accuracy"]) * rep["samples"]))
    better, same, worse = tally(pairs)
    e_lower, e_same, e_higher = tally(err_pairs)
    verdict = "agrees" if better > worse else ("does not show it" if better == worse else "disagrees")
    samples = next(iter(reports.values()))["samples"]
    return (f"- **000, SNN-β beats SNN-α at low latency (pipelined, T ≤ 8, round, V0 = θ/2): {verdict}. SNN-β is "
            f"more accurate in {better}, equal in {same}, less in {worse} of {len(pairs)} (L, T) cells, by at most "
            f"{max_diff} of {samples} test images; its unevenness error is lower in {e_lower}, equal in {e_same}, "
            f"higher in {e_higher}.** The paper reports gains of up to 19 points at T = 2 on CIFAR ResNets.")


def claim_levels(reports: dict) -> str:
    """000, Tables 7 / 8: at T <= 4 the accuracy falls as L grows; at large T every L gets there."""
    Ls = sorted(reports)
    Ts = reports[Ls[0]]["timesteps"]

    def acc(L, t):
        r = cell(reports[L], "dual-threshold", t)
        return r["accuracy"] if ok(r) else None

    paper = PAPER_000_VGG16["CIFAR-10"]
    parts, agree, low = [], [], [t for t in Ts if t <= 4]
    for t in low:
        seq = [(L, acc(L, t)) for L in Ls if acc(L, t) is not None]
        falls = sum(b < a for (_, a), (_, b) in zip(seq, seq[1:]))
        k = (1, 2, 4).index(t) if t in (1, 2, 4) else None
        p = (f"; paper: {paper[Ls[0]][k]:.2f} → {paper[Ls[-1]][k]:.2f} %" if k is not None and Ls[0] in paper
             and Ls[-1] in paper else "")
        parts.append(f"T = {t}: {100 * seq[0][1]:.2f} % at L = {seq[0][0]} → {100 * seq[-1][1]:.2f} % at "
                     f"L = {seq[-1][0]}, lower at {falls} of {len(seq) - 1} steps of L{p}")
        if seq[-1][1] < seq[0][1]:
            agree.append(t)
    verdict = ("agrees" if len(agree) == len(low) else
               (f"agrees at T = {', '.join(map(str, agree))}, not at T = "
                f"{', '.join(str(t) for t in low if t not in agree)}" if agree else "disagrees"))
    t_max = max(Ts)
    gaps = [(L, 100 * (reports[L]["ann_float_accuracy"] - acc(L, t_max))) for L in Ls if acc(L, t_max) is not None]
    wide = any(cell(reports[L], n, t_max) is not None and cell(reports[L], n, t_max)["profile"]
               for L in Ls for n in NEURONS)
    return (f"- **000, Tables 7 / 8 (the quantization step L; SNN-β, V0 = θ/2, pipelined): \"at ultra-low latency "
            f"the accuracy decreases when L increases\": {verdict}** (the largest L against the smallest). "
            + "; ".join(parts) + " (paper: its VGG-16 on CIFAR-10). "
            f"**At T = {t_max}{' (‡)' if wide else ''}, the SNN-β is "
            + ", ".join(f"{g:.2f}" for _, g in gaps)
            + f" points below the float ANN at L = {', '.join(str(L) for L, _ in gaps)}** (negative: above); the "
            f"paper's T = 4 column spans {min(v[2] for v in paper.values()):.2f}–{max(v[2] for v in paper.values()):.2f}"
            " % over L = 2..32. " + _best_l(Ls, Ts, acc) + " Its T = 64 column is not run here.")


def _best_l(Ls, Ts, acc) -> str:
    """The paper recommends L = 4 or 8 (good at small and at large T); which L scores best here, per T."""
    best = {t: max((L for L in Ls if acc(L, t) is not None), key=lambda L: (acc(L, t), -L), default=None) for t in Ts}
    hits = [t for t, L in best.items() if L in (4, 8)]
    return ("The paper recommends L = 4 or 8; the most accurate L (smallest on ties) per T here: "
            + ", ".join(f"T = {t}: {L}" for t, L in best.items()) + f" (4 or 8 at {len(hits)} of {len(best)} T).")


def claim_beyond_l(reports: dict) -> str:
    """000, Tables 7 / 8: past T = L the paper's accuracy holds (its VGG-16 rows lose at most a few tenths)."""
    paper_drop = max(row[PAPER_T.index(L)] - min(row[PAPER_T.index(L) + 1:])
                     for table in PAPER_VGG16.values() for L, (_, row) in table.items())
    drops, n = [], 0
    for L, rep in reports.items():
        for neuron in NEURONS:
            at_l = cell(rep, neuron, L)
            later = [(t, cell(rep, neuron, t)) for t in rep["timesteps"] if t > L]
            later = [(t, r) for t, r in later if ok(r)]
            if not ok(at_l) or not later:
                continue
            n += 1
            t, worst = min(later, key=lambda tr: (tr[1]["accuracy"], tr[0]))
            if 100 * (at_l["accuracy"] - worst["accuracy"]) > paper_drop:
                drops.append(f"L = {L} {ALPHA_BETA[neuron].split(' ')[0]}: {100 * at_l['accuracy']:.2f} % at T = L → "
                             f"{100 * worst['accuracy']:.2f} % at T = {t} (unevenness error {at_l['rate_error']:.4f} → "
                             f"{worst['rate_error']:.4f})")
    if not n:
        return "- **000, more steps than L: no row of the grid has T > L.**"
    verdict = "agrees" if not drops else ("disagrees" if len(drops) == n else "agrees in part")
    return (f"- **000, Tables 7 / 8: past T = L the accuracy holds (the paper's VGG-16 rows lose at most "
            f"{paper_drop:.2f} points at a larger T); here {verdict}: {n - len(drops)} of {n} (L, neuron) rows lose "
            f"no more than that.**" + (" Rows that fall: " + "; ".join(drops) + ". With T > L the SNN's levels (θ/T) are finer "
                             "than the ANN's (θ/L), so its rates need not stay on the levels the ANN was trained on." if drops
                             else ""))


def claim_exactness(reports: dict) -> str:
    """Pipelined, T = L: how far the converted network is from the quantized ANN (paper 003's exactness is layerwise)."""
    parts, exact, n = [], 0, 0
    for L, rep in reports.items():
        r = cell(rep, "if", L)
        if ok(r):
            n += 1
            exact += r["exact"]
            parts.append(f"L = {L}: {r['neurons_mismatched']:,} of {r['neurons_compared']:,}")
    if not parts:
        return "- **Pipelined at T = L: not in the grid.**"
    return ("- **Pipelined at T = L, SNN-α spike counts that differ from the quantized ANN's levels:** "
            + "; ".join(parts) + f" (exact in {exact} of {n} models). Paper 003's exactness at T = L is a statement "
            "about the layerwise schedule; the zoo's own check (`snnc verify --against ann`, layerwise, T = L, all "
            "1000 test images; examples/mnist/zoo/README.md) is exact for every model.")


def render(reports: dict, quick: bool) -> str:
    rep0 = next(iter(reports.values()))
    cmd = "benchmarks/methods_mnist.py" + (" --quick" if quick else "")
    seconds = sum(r["seconds"] for r in reports.values())
    wide_ts = sorted({r["timesteps"] for rep in reports.values() for r in rep["results"] if r["profile"]})
    reasons = sorted({r["error"].split(";")[0] for rep in reports.values() for r in rep["results"]
                      if r["error"] and r["profile"] is None})
    lines = [SECTION.begin, "## Paper 000, Tables 7 / 8 shape on MNIST 5k: SNN-α vs SNN-β per quantization step L", "",
             f"Generated by `{cmd}` from `snnc eval --json` ({len(reports)} round-quantizer model(s) of "
             f"`examples/mnist/zoo`, L = {', '.join(map(str, reports))}; the first {rep0['samples']} test images of "
             f"`{rep0['data']}`; V0 = θ/2, **pipelined** schedule (paper 000's SNN); target `{rep0['target']}`; "
             f"{seconds:.0f} s of eval runs). JSON per model in `benchmarks/results/methods_mnist/`; `--from-json` "
             "re-renders this section, and `tests/benchmarks/test_methods_mnist.py` re-runs a slice.", ""]
    if wide_ts:
        lines += [f"‡ = run with `--profile {rep0['wide_profile']}` (a 32-bit neuron state, not a Loihi chip): the "
                  f"24-bit `loihi` state refuses T = {', '.join(map(str, wide_ts))} for "
                  + ("these models" if len(reasons) != 1 else "them") + " (" + "; ".join(
                      f"\"{x}\"" for x in reasons[:2]) + (" ..." if len(reasons) > 2 else "") + ").", ""]
    lines += [f"![accuracy vs T per L]({PLOT})", ""]
    lines += tables(reports)
    lines += ["### Paper 000 on MNIST 5k: the paper's claims against our numbers", "",
              claim_beta(reports), claim_levels(reports), claim_beyond_l(reports), claim_exactness(reports), "",
              SECTION.end]
    return "\n".join(lines)


def plot(reports: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for i, (L, rep) in enumerate(reports.items()):
        for n, ls in (("if", ":"), ("dual-threshold", "-")):
            pts = [(t, cell(rep, n, t)) for t in rep["timesteps"]]
            pts = [(t, r) for t, r in pts if ok(r)]
            ax.plot([t for t, _ in pts], [100 * r["accuracy"] for _, r in pts], color=f"C{i}", ls=ls, marker="o", ms=3,
                    label=f"L = {L}, {ALPHA_BETA[n]}")
    ax.axhline(100 * max(r["ann_float_accuracy"] for r in reports.values()), color="k", lw=1, label="float ANN (best L)")
    ax.set_xscale("log", base=2)
    ts = next(iter(reports.values()))["timesteps"]
    ax.set_xticks(ts, [str(t) for t in ts])
    ax.set_xlabel("timesteps T")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower right", ncol=2)
    rep0 = next(iter(reports.values()))
    ax.set_title(f"MNIST 5k QCFS CNN, round, V0 = θ/2, pipelined ({rep0['samples']} test images)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="reduced grid (L = 2, T = 1, 2, 100 test images)")
    p.add_argument("--from-json", action="store_true", help="render the section from --json-dir; run nothing")
    p.add_argument("--only", default=None, help="comma-separated L to run; the others' JSON is reused")
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--json-dir", type=Path, default=JSON_DIR)
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    grid = QUICK if args.quick else FULL
    run = [] if args.from_json else list(grid["levels"])
    if args.only and not args.from_json:
        run = [int(x) for x in args.only.split(",") if x]
        if set(run) - set(grid["levels"]):
            p.error(f"--only: unknown L {sorted(set(run) - set(grid['levels']))}; known: {list(grid['levels'])}")
    for L in run:
        log.info("round_L%d", L)
        write_json(args.json_dir / f"round_L{L}.json", eval_model(L, grid))
    reports = {}
    for L in grid["levels"]:
        path = args.json_dir / f"round_L{L}.json"
        if not path.is_file():
            p.error(f"{path} is missing: run without --from-json / --only for L = {L}")
        reports[L] = json.loads(path.read_text())
    if not args.no_plots:
        img = args.doc.parent / PLOT
        img.parent.mkdir(parents=True, exist_ok=True)
        plot(reports, img)
    SECTION.write(args.doc, render(reports, args.quick))
    log.info("wrote %s", args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
