"""Paper 004 at threshold scale c = 2 (Tables 3 and 4, the x2 rows of Tables 7 / 8) on digits and MNIST 5k.

    .venv/bin/python benchmarks/paper004_c2.py                      # full grid, 2 models (FULL, MODEL_GRIDS)
    .venv/bin/python benchmarks/paper004_c2.py --only mnist/relu_cnn  # one model; the others' JSON reused
    .venv/bin/python benchmarks/paper004_c2.py --from-json          # re-render docs from the committed JSON
    .venv/bin/python benchmarks/paper004_c2.py --quick --doc /tmp/r.md --json-dir /tmp/p

For each plain-ReLU model it runs, per thresholds-per-sign n and coding, the CLI

    snnc eval MODEL --data test.npz --calib calib.npz --threshold-scale 2 --neuron multi-threshold:n
         --thresholds iterate,percentile:99.9 --coding C --timesteps T_n --frac-bits auto --json

with the paper's time-steps for that n (T_BY_N: n = 1 up to T = 64 with Table 4's 48, n = 4 up to 32
with Table 3's 12, n = 8 up to 16, as in the paper's Tables 7 / 8), keeps one JSON per model in
benchmarks/results/paper004_c2/ and renders, between `<!-- paper004-c2:begin -->` /
`<!-- paper004-c2:end -->`, tables in the shape of the paper's Table 3 (differential vs rate coding,
n = 4), Table 4 (threshold iteration vs the 99.9 % large activation, n = 1 and n = 4) and the x2 rows
of Tables 7 / 8, then the paper's claims checked against our numbers. The paper's own figures for
the same cells (ResNet-34 on ImageNet, c = 2; PAPER below, transcribed from its Tables 3, 4, 7, 8)
are only used to compare directions (which coding / threshold method wins a cell); every number
and statement about our models is computed from the JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sections import DOC, ROOT, Section, rel, run_eval, save_figure, sign, tally, write_json  # noqa: E402

SECTION = Section("paper004-c2")
JSON_DIR = ROOT / "benchmarks/results/paper004_c2"
C = 2.0
CODINGS = ("differential", "rate")
METHODS = ("iterate", "percentile:99.9")
METHOD_LABEL = {"iterate": "threshold iteration", "percentile:99.9": "99.9 % large activation"}
FIELDS = ("accuracy", "energy_ratio", "energy_ratio_mac0", "spikes_per_sample", "ac_per_sample", "mac_per_sample",
          "state_bits_needed", "fits_target", "frac_bits", "parameters_sha256", "error")


@dataclass(frozen=True)
class DataSet:
    folder: str
    label: str

    @property
    def data(self) -> Path:
        return ROOT / self.folder / "test.npz"

    @property
    def calib(self) -> Path:
        return ROOT / self.folder / "calib.npz"


DATASETS = {"digits": DataSet("examples/digits", "digits (8×8)"), "mnist": DataSet("examples/mnist", "MNIST 5k (28×28)")}
FULL = dict(models=("digits/relu_cnn", "mnist/relu_cnn"),
            t_by_n={1: (2, 4, 8, 16, 32, 48, 64), 4: (2, 4, 8, 12, 16, 32), 8: (2, 4, 8, 16)}, samples=None)
# MNIST 5k at 28x28: the full grid (n = 1, 4, 8) on the first 200 images of examples/mnist/test.npz. Its cost
# is mostly compiling: differential coding's --frac-bits auto simulates the calibration set once per candidate F,
# per setting and T (~1 min at T = 64 on this shared 2-core machine); the torch backend runs the test images.
MODEL_GRIDS = {"mnist/relu_cnn": dict(samples=200)}
# the guard test's slice: one model, two T per n, every sample (so it compares with the committed JSON)
QUICK = dict(models=("digits/relu_cnn",), t_by_n={1: (8, 16), 4: (2, 4)}, samples=None)

TABLE3_T = (2, 4, 8, 12, 16)
TABLE4_T = {1: (8, 16, 32, 48, 64), 4: (2, 4, 8, 12, 16)}
TABLE78_T = (2, 4, 8, 16, 32, 64)

# Paper 004, ResNet-34 on ImageNet, c = 2: {(coding, method, n): {T: (accuracy %, energy ratio)}}.
# Table 3 (T = 2, 4, 8, 12, 16; n = 4), Table 4 (n = 1 at T = 8..64, n = 4 at T = 2..16), Tables 7 / 8
# (the "x2" rows: T = 2..64). Where two tables give a cell, they agree except Table 7's differential
# n = 4 at T = 8 (75.77) vs Tables 3 / 4 / 8 (75.78); 75.78 is used.
PAPER_ANN = 76.42
PAPER = {
    ("differential", "iterate", 1): {2: (0.10, 0.02), 4: (0.13, 0.05), 8: (0.31, 0.13), 16: (2.78, 0.25),
                                     32: (46.29, 0.46), 48: (68.57, 0.63), 64: (73.07, 0.77)},
    ("differential", "iterate", 4): {2: (46.10, 0.11), 4: (69.53, 0.20), 8: (75.78, 0.32), 12: (76.25, 0.41),
                                     16: (76.33, 0.48), 32: (76.43, 0.71)},
    ("differential", "iterate", 8): {2: (72.03, 0.17), 4: (76.24, 0.32), 8: (76.39, 0.50), 16: (76.41, 0.66)},
    ("rate", "iterate", 1): {2: (0.10, 0.02), 4: (0.10, 0.07), 8: (1.50, 0.17), 16: (41.08, 0.38), 32: (69.78, 0.77),
                             64: (74.95, 1.54)},
    ("rate", "iterate", 4): {2: (51.34, 0.13), 4: (71.22, 0.26), 8: (75.11, 0.53), 12: (75.62, 0.79), 16: (75.78, 1.05),
                             32: (75.92, 2.09)},
    ("rate", "iterate", 8): {2: (65.26, 0.19), 4: (74.24, 0.46), 8: (75.72, 0.73), 16: (75.96, 1.43)},
    ("differential", "percentile:99.9", 1): {2: (0.10, 0.02), 4: (0.10, 0.05), 8: (0.22, 0.13), 16: (0.93, 0.26),
                                             32: (31.32, 0.50), 48: (63.12, 0.71), 64: (71.36, 0.89)},
    ("differential", "percentile:99.9", 4): {2: (15.74, 0.11), 4: (50.97, 0.20), 8: (73.88, 0.35), 12: (75.79, 0.46),
                                             16: (76.12, 0.55), 32: (76.32, 0.86)},
    ("differential", "percentile:99.9", 8): {2: (67.92, 0.18), 4: (75.54, 0.32), 8: (76.25, 0.50), 16: (76.40, 0.71)},
}

log = logging.getLogger("paper004_c2")


# ---------------------------------------------------------------------------------------------
# Running


def eval_model(key: str, grid: dict, cache: Path | None = None) -> dict:
    """All eval runs of one model (one per n x coding), merged into one report. With ``cache`` (a folder),
    each run's report is kept there under its arguments and reused by a later call with the same arguments,
    so an interrupted grid resumes where it stopped."""
    ds_name, model = key.split("/")
    ds = DATASETS[ds_name]
    path = ROOT / ds.folder / f"{model}.onnx"
    t0 = time.perf_counter()
    reports = []
    runs = [(n, c) for n in grid["t_by_n"] for c in CODINGS]
    for i, (n, coding) in enumerate(runs, 1):
        log.info("[%s %d/%d] n = %d, %s coding, T = %s", key, i, len(runs), n, coding, grid["t_by_n"][n])
        args = [path, "--data", ds.data, "--calib", ds.calib, "--threshold-scale", f"{C:g}",
                "--neuron", f"multi-threshold:{n}", "--thresholds", ",".join(METHODS), "--coding", coding,
                "--timesteps", ",".join(map(str, grid["t_by_n"][n])), "--frac-bits", "auto", "--target", "loihi"]
        if grid["samples"]:
            args += ["--samples", str(grid["samples"])]
        reports.append(cached_eval(args, cache, f"{key.replace('/', '_')}_n{n}_{coding}"))
    first = reports[0]
    keep = ("model", "sha256", "data", "samples", "kind", "calibration", "threshold_scale", "threshold_scope",
            "frac_bits", "target", "state_bits", "ann_float_accuracy", "ann_macs", "energy")
    merged = {k: first[k] for k in keep}
    merged.update(model=rel(path), data=rel(ds.data), calibration=rel(ds.calib), dataset=ds_name,
                  t_by_n={str(n): list(ts) for n, ts in grid["t_by_n"].items()},
                  seconds=round(time.perf_counter() - t0, 1),
                  results=[{k: r[k] for k in ("neuron", "n", "coding", "thresholds", "timesteps", *FIELDS)}
                           for rep in reports for r in rep["results"]])
    for rep in reports[1:]:
        for k in ("sha256", "samples", "ann_float_accuracy", "ann_macs"):
            if rep[k] != first[k]:
                raise RuntimeError(f"{key}: the eval runs disagree on {k}: {rep[k]} vs {first[k]}")
    return merged


def cached_eval(args: list, cache: Path | None, stem: str) -> dict:
    """run_eval(args), or the report kept in ``cache`` for exactly these arguments."""
    argv = [rel(a) if isinstance(a, Path) else str(a) for a in args]
    path = None if cache is None else cache / f"{stem}.json"
    if path is not None and path.is_file():
        kept = json.loads(path.read_text())
        if kept.get("argv") == argv:
            log.info("reusing %s", path)
            return kept["report"]
    rep = run_eval(args)
    if path is not None:
        write_json(path, {"argv": argv, "report": rep})
    return rep


# ---------------------------------------------------------------------------------------------
# Rendering (pure functions of the JSON)


def find(rep: dict, n: int, coding: str, method: str, T: int) -> dict | None:
    for r in rep["results"]:
        if (r["n"], r["coding"], r["thresholds"], r["timesteps"]) == (n, coding, method, T):
            return r
    return None


def ok(*rs) -> bool:
    return all(r is not None and not r.get("error") for r in rs)


def _acc(r) -> str:
    if r is None:
        return "-"
    if r.get("error"):
        return "refused"
    return f"{100 * r['accuracy']:.2f}" + ("" if r["fits_target"] else "†")


def _en(r) -> str:
    return "-" if r is None else ("refused" if r.get("error") else f"{r['energy_ratio']:.3f}")


def _rows(rep: dict, rows: list[tuple[str, int, str, str]], Ts, head: str) -> list[str]:
    out = [f"| {head} | | " + " | ".join(f"T={t}" for t in Ts) + " |", "|---|---|" + "---:|" * len(Ts)]
    for label, n, coding, method in rows:
        rs = [find(rep, n, coding, method, t) for t in Ts]
        out.append(f"| {label} | Acc (%) | " + " | ".join(_acc(r) for r in rs) + " |")
        out.append("| | Energy ratio | " + " | ".join(_en(r) for r in rs) + " |")
    return out


def _paper_rows(rows: list[tuple[str, int, str, str]], Ts, head: str) -> list[str]:
    out = [f"| {head} | | " + " | ".join(f"T={t}" for t in Ts) + " |", "|---|---|" + "---:|" * len(Ts)]
    for label, n, coding, method in rows:
        cells = [PAPER.get((coding, method, n), {}).get(t) for t in Ts]
        out.append(f"| {label} | Acc (%) | " + " | ".join("-" if c is None else f"{c[0]:.2f}" for c in cells) + " |")
        out.append("| | Energy ratio | " + " | ".join("-" if c is None else f"{c[1]:.2f}" for c in cells) + " |")
    return out


def _t3_rows():
    return [(c, 4, c, "iterate") for c in CODINGS]


def _t4_rows(n):
    return [(f"{METHOD_LABEL[m]}, n = {n}", n, "differential", m) for m in METHODS]


def _t78_rows():
    return ([(f"{c}, {METHOD_LABEL['iterate']}, n = {n}", n, c, "iterate") for c in CODINGS for n in (1, 4, 8)]
            + [(f"differential, {METHOD_LABEL['percentile:99.9']}, n = {n}", n, "differential", "percentile:99.9")
               for n in (1, 4, 8)]
            + [(f"rate, {METHOD_LABEL['percentile:99.9']}, n = {n}", n, "rate", "percentile:99.9") for n in (1, 4, 8)])


def section_paper() -> list[str]:
    out = ["### The paper's figures for these cells (ResNet-34, ImageNet, float ANN 76.42 %, c = 2)", "",
           "Transcribed from paper 004's Tables 3, 4, 7 and 8, for reading our tables side by side; the paper has no "
           "rate coding with the 99.9 % thresholds.", "",
           "**Table 3** (n = 4, threshold iteration)", ""]
    out += _paper_rows(_t3_rows(), TABLE3_T, "coding")
    for n in (1, 4):
        out += ["", f"**Table 4** (n = {n}, differential coding)", ""]
        out += _paper_rows(_t4_rows(n), TABLE4_T[n], "thresholds")
    out += ["", "**Tables 7 / 8, ×2 rows**", ""]
    out += _paper_rows([r for r in _t78_rows() if (r[2], r[3], r[1]) in PAPER], TABLE78_T, "coding, thresholds, n")
    return out + [""]


def section_model(key: str, rep: dict) -> list[str]:
    ds = DATASETS[rep["dataset"]]
    out = [f"### {ds.label}: `{Path(rep['model']).name}`, float ANN {100 * rep['ann_float_accuracy']:.2f} %, "
           f"{rep['ann_macs']:,} ANN MACs per sample, {rep['samples']} test images", "",
           f"![{key}: accuracy and energy ratio vs T](img/paper004_c2_{rep['dataset']}_{Path(rep['model']).stem}.png)", "",
           "**Table 3 shape: differential vs rate coding** (n = 4, threshold iteration, c = 2)", ""]
    ran = {int(n) for n in rep["t_by_n"]}
    out += _rows(rep, _t3_rows(), TABLE3_T, "coding")
    for n in (1, 4):
        if n not in ran:
            continue
        out += ["", f"**Table 4 shape: threshold iteration vs the 99.9 % large activation** (n = {n}, differential "
                "coding, c = 2)", ""]
        out += _rows(rep, _t4_rows(n), TABLE4_T[n], "thresholds")
    out += ["", "**Tables 7 / 8, ×2 rows: coding × threshold method × n** (c = 2; `-` = not run, as in the paper: "
            "n = 4 up to T = 32, n = 8 up to T = 16" + ("" if ran >= {1, 4, 8} else
                                                          f"; this model: n = {', '.join(map(str, sorted(ran)))} only, "
                                                          f"T = {', '.join(str(t) for t in rep['t_by_n'][str(min(ran))])}")
            + ")", ""]
    out += _rows(rep, [r for r in _t78_rows() if r[1] in ran], TABLE78_T, "coding, thresholds, n")
    return out + [""]


def _cells(reports, a, b, Ts: dict):
    """(n, T, ours_a, ours_b) for every cell of Ts ({n: T list}) that both settings ran, in every model."""
    for rep in reports.values():
        for n, ts in Ts.items():
            for t in ts:
                ra, rb = find(rep, n, *a, t), find(rep, n, *b, t)
                if ok(ra, rb):
                    yield n, t, ra, rb


def _direction_claim(reports, label: str, a: tuple[str, str], b: tuple[str, str], Ts: dict) -> list[str]:
    """Setting a (coding, method) against setting b in every cell of Ts, on accuracy and on energy, for our
    models and for the paper's figures; and how often, cell by cell, our direction is the paper's."""
    ours = list(_cells(reports, a, b, Ts))
    if not ours:
        return [f"- **{label}: no comparison** (settings refused; see the tables)."]
    paper = {(n, t): (PAPER[(*a, n)][t], PAPER[(*b, n)][t]) for n, ts in Ts.items() for t in ts
             if t in PAPER.get((*a, n), {}) and t in PAPER.get((*b, n), {})}
    g, e, l_ = tally((ra["accuracy"], rb["accuracy"]) for _, _, ra, rb in ours)
    pg, pe, pl = tally((pa[0], pb[0]) for pa, pb in paper.values())
    eg, ee, el = tally((rb["energy_ratio"], ra["energy_ratio"]) for _, _, ra, rb in ours)
    qg, qe, ql = tally((pb[1], pa[1]) for pa, pb in paper.values())
    same_acc = same_en = both = 0
    for n, t, ra, rb in ours:
        if (n, t) in paper:
            pa, pb = paper[(n, t)]
            both += 1
            same_acc += sign(ra["accuracy"] - rb["accuracy"]) == sign(pa[0] - pb[0])
            same_en += sign(rb["energy_ratio"] - ra["energy_ratio"]) == sign(pb[1] - pa[1])
    verdict = lambda k: "agrees" if k == both else ("mostly agrees" if 2 * k > both else "disagrees")  # noqa: E731
    return [
        f"- **{label}, accuracy: {verdict(same_acc)} (our direction is the paper's in {same_acc} of {both} cells).** "
        f"The first is "
        f"more accurate in {g}, equal in {e}, less in {l_} of our {len(ours)} cells; in the paper's in {pg}, {pe}, {pl} "
        f"of {len(paper)}.",
        f"- **{label}, energy: {verdict(same_en)} (our direction is the paper's in {same_en} of {both} cells).** "
        f"The first costs less in "
        f"{eg}, the same in {ee}, more in {el} of our {len(ours)} cells (three decimals); in the paper's in {qg}, "
        f"{qe}, {ql} of {len(paper)} (two decimals).",
    ]


def _first_within(rep: dict, n, coding, method, gap_points: float):
    """Smallest T at which the setting is within gap_points of the float ANN (None: never in the grid)."""
    for t in sorted(int(x) for x in rep["t_by_n"].get(str(n), [])):
        r = find(rep, n, coding, method, t)
        if ok(r) and round(100 * (rep["ann_float_accuracy"] - r["accuracy"]), 9) <= gap_points:  # 0.99 - 0.98
            return t
    return None


def claims(reports: dict) -> list[str]:
    out = ["### Paper 004 at c = 2: the paper's claims against our numbers", ""]
    t78 = {n: TABLE78_T for n in (1, 4, 8)}
    out += _direction_claim(reports, "Table 3, differential vs rate coding (n = 4, threshold iteration, T = 2–16)",
                            ("differential", "iterate"), ("rate", "iterate"), {4: TABLE3_T})
    out += _direction_claim(reports, "Table 4, threshold iteration vs 99.9 % (differential; n = 1 at T = 8–64, "
                            "n = 4 at T = 2–16)", ("differential", "iterate"), ("differential", "percentile:99.9"),
                            TABLE4_T)
    out += _direction_claim(reports, "Tables 7 / 8 ×2, differential vs rate coding (threshold iteration; n = 1, 4, 8)",
                            ("differential", "iterate"), ("rate", "iterate"), t78)
    out += _direction_claim(reports, "Tables 7 / 8 ×2, threshold iteration vs 99.9 % (differential; n = 1, 4, 8)",
                            ("differential", "iterate"), ("differential", "percentile:99.9"), t78)
    # n = 1 needs long T (Table 4 top, Table 7)
    paper_t = next((t for t, (a, _) in sorted(PAPER[("differential", "iterate", 1)].items())
                    if PAPER_ANN - a <= 1.0), None)
    parts, order_kept = [], True
    for key, rep in reports.items():
        t1 = _first_within(rep, 1, "differential", "iterate", 1.0)
        t4 = _first_within(rep, 4, "differential", "iterate", 1.0)
        order_kept &= t4 is not None and (t1 is None or t4 <= t1)
        n1 = ("not run" if "1" not in rep["t_by_n"] else f"at T = {t1}" if t1 else
              f"never (≤ {max(rep['t_by_n']['1'])})")
        parts.append(f"{key}: n = 1 {n1}, n = 4 at T = {t4 if t4 else 'never'}")
    out.append("- **Within 1 point of the float ANN (differential, threshold iteration, c = 2), first T:** "
               + "; ".join(parts) + f". The paper's ResNet-34: n = 1 "
               + (f"at T = {paper_t}" if paper_t else "never up to T = 64 (73.07 % vs 76.42 %)")
               + ", n = 4 at T = 8 (75.78 %). "
               + ("The order (n = 4 no later than n = 1) is the paper's in every model." if order_kept else
                  "The paper's order (n = 4 sooner than n = 1) does not hold in every model."))
    # energy grows with T
    grow = rows = 0
    for rep in reports.values():
        for n in (1, 4, 8):
            for c in CODINGS:
                for m in METHODS:
                    rs = [find(rep, n, c, m, t) for t in rep["t_by_n"].get(str(n), [])]
                    if rs and ok(*rs):
                        rows += 1
                        e = [r["energy_ratio"] for r in rs]
                        grow += all(y > x for x, y in zip(e, e[1:]))
    out.append(f"- **The energy ratio grows with T (every row of the paper's tables): in {grow} of {rows} of our rows.**")
    out += _low_f_claim(reports)
    over = sum(1 for rep in reports.values() for r in rep["results"] if not r.get("error") and not r["fits_target"])
    refused = sum(1 for rep in reports.values() for r in rep["results"] if r.get("error"))
    widths = sorted({r["state_bits_needed"] for rep in reports.values() for r in rep["results"] if not r.get("error")})
    out.append(f"- **State width:** every run needed at most {max(widths) if widths else '-'} bits "
               f"(target {next(iter(reports.values()))['state_bits']}); {refused} setting(s) refused, "
               f"{over} ran wider than the target (†).")
    return out + [""]


def _low_f_claim(reports: dict, gap_points: float = 5.0) -> list[str]:
    """Differential cells far below the float ANN, against whether the F the state width left them drops steps."""
    parts = []
    for key, rep in reports.items():
        diff = [r for r in rep["results"] if r["coding"] == "differential" and ok(r)]
        if not diff:
            continue
        far = [r for r in diff if round(100 * (rep["ann_float_accuracy"] - r["accuracy"]), 9) > gap_points]
        near = [r for r in diff if r not in far]
        drops = lambda rs: sum(r["timesteps"] > 2 ** (r["frac_bits"] + 1) for r in rs)  # noqa: E731
        parts.append(f"{key}: {len(far)} of {len(diff)} cells, {drops(far)} of them with T > 2^(F+1); "
                     f"of the other {len(near)}, {drops(near)}")
    if not parts:
        return []
    return [f"- **Differential cells more than {gap_points:g} points below the float ANN, against the fractional "
            "bits F of 1/t that `--frac-bits auto` chose under the target's state width:** " + "; ".join(parts)
            + ". Differential coding scales step t's differences by R_t = round(2^F / t) (docs/ir.md), which is 0 "
            "for every t > 2^(F+1): with T > 2^(F+1) the last steps' differences are dropped."]


def render(reports: dict, quick: bool) -> str:
    rep0 = next(iter(reports.values()))
    seconds = sum(r["seconds"] for r in reports.values())
    samples = ", ".join(f"{DATASETS[r['dataset']].label} {r['samples']}" for r in
                        {r["dataset"]: r for r in reports.values()}.values())
    cmd = "benchmarks/paper004_c2.py" + (" --quick" if quick else "")
    lines = [SECTION.begin, "## Paper 004 at threshold scale c = 2: Tables 3, 4 and the ×2 rows of Tables 7 / 8", "",
             f"Generated by `{cmd}` from `snnc eval --json` ({len(reports)} plain-ReLU models; test images: {samples}; "
             f"calibration `calib.npz` of each data set, thresholds per {rep0['threshold_scope']} times c = "
             f"{rep0['threshold_scale']:g}, differential coding's F {rep0['frac_bits']}, pipelined, target "
             f"`{rep0['target']}` ({rep0['state_bits']}-bit state); {seconds:.0f} s of eval runs). JSON per model in "
             "`benchmarks/results/paper004_c2/`; regenerate one model with `--only dataset/model`.", "",
             "Energy ratio: paper 004 Eq. 31 as counted in the paper 004 section above (AC_SNN = every message × the "
             "synapses it reaches; MAC_SNN = the first layer's products with the real-valued input, which the paper "
             "sets to 0: `energy_ratio_mac0` in the JSON). † = the run needed a wider state than the target's; "
             "refused = the compiler refused the setting. The paper's ResNet-34 / ImageNet cells are quoted once, "
             "below, to compare directions; our nets are small and near their accuracy ceiling, so one test image "
             "is " + " and ".join(f"{100 / r['samples']:.2g} points on {DATASETS[r['dataset']].label.split(' (')[0]}"
                                  for r in {r["dataset"]: r for r in reports.values()}.values()) + ".", ""]
    lines += section_paper()
    for key, rep in reports.items():
        lines += section_model(key, rep)
    lines += claims(reports)
    lines.append(SECTION.end)
    return "\n".join(lines)


def plot(rep: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=110)
    colors = {("differential", "iterate"): "C0", ("rate", "iterate"): "C1", ("differential", "percentile:99.9"): "C2",
              ("rate", "percentile:99.9"): "C3"}
    for (c, m), col in colors.items():
        for n, ls in ((1, ":"), (4, "-"), (8, "--")):
            ts = [int(t) for t in rep["t_by_n"].get(str(n), [])]
            rs = [find(rep, n, c, m, t) for t in ts]
            pts = [(t, r) for t, r in zip(ts, rs) if ok(r)]
            if not pts:
                continue
            kw = dict(color=col, ls=ls, marker="o", ms=3, label=f"{c}, {METHOD_LABEL[m]}, n = {n}")
            ax.plot([t for t, _ in pts], [100 * r["accuracy"] for _, r in pts], **kw)
            ax2.plot([t for t, _ in pts], [r["energy_ratio"] for _, r in pts], **kw)
    ax.axhline(100 * rep["ann_float_accuracy"], color="k", lw=1, label="float ANN")
    for a, yl in ((ax, "accuracy (%)"), (ax2, "energy ratio E_SNN / E_ANN (Eq. 31)")):
        a.set_xscale("log", base=2)
        a.set_xticks([2, 4, 8, 16, 32, 64], ["2", "4", "8", "16", "32", "64"])
        a.set_xlabel("timesteps T")
        a.set_ylabel(yl)
        a.grid(alpha=0.3)
    ax.set_ylim(max(0, 100 * rep["ann_float_accuracy"] - 30), 100)
    ax.legend(fontsize=6, loc="lower right")
    fig.suptitle(f"{rep['model']} (c = {rep['threshold_scale']:g}, {rep['samples']} test images)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def json_name(key: str) -> str:
    return key.replace("/", "_") + ".json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="the guard test's slice (digits relu_cnn, 2 T per n)")
    p.add_argument("--only", default=None, help="comma-separated dataset/model keys to run; the others' JSON is reused")
    p.add_argument("--from-json", action="store_true", help="re-render from the JSON in --json-dir (no eval runs)")
    p.add_argument("--doc", type=Path, default=DOC)
    p.add_argument("--json-dir", type=Path, default=JSON_DIR)
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="keep each eval run's JSON here and reuse it on a rerun with the same arguments (resume)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    grid = QUICK if args.quick else FULL
    run = [] if args.from_json else list(grid["models"])
    if args.only and not args.from_json:
        run = [m for m in args.only.split(",") if m]
        unknown = sorted(set(run) - set(grid["models"]))
        if unknown:
            p.error(f"--only: unknown model(s) {unknown}; known: {list(grid['models'])}")
    reports = {}
    for key in grid["models"]:
        if key in run:
            reports[key] = eval_model(key, grid if args.quick else {**grid, **MODEL_GRIDS.get(key, {})},
                                      cache=args.cache_dir)
            write_json(args.json_dir / json_name(key), reports[key])
        else:
            path = args.json_dir / json_name(key)
            if not path.is_file():
                p.error(f"{path} is missing: run without --from-json / --only for {key}")
            reports[key] = json.loads(path.read_text())
    if not args.no_plots:
        img = args.doc.parent / "img"
        img.mkdir(parents=True, exist_ok=True)
        for key, rep in reports.items():
            plot(rep, img / f"paper004_c2_{rep['dataset']}_{Path(rep['model']).stem}.png")
    SECTION.write(args.doc, render(reports, args.quick))
    log.info("wrote %s", args.doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
