"""What snnc does with the "models nobody here wrote" (tests/integration/external_models.py): runs the
user commands a new user would run on each and records exit codes, messages, tracebacks and the
EXACT-while-unfaithful cases.

    .venv/bin/python benchmarks/external_corpus.py [--out benchmarks/results/external_before.json]
        [--only NAME ...] [--samples N] [--markdown docs/external_before.md]

Per case: ``snnc compile MODEL -o B`` (plus the case's own arguments), ``snnc inspect B`` (the smallest
weight range of any projection), ``snnc verify B --against ann --data D [--samples N]`` and ``snnc eval
MODEL --data D --timesteps T --samples N``. A run "crashed" when stderr holds a Python traceback. A run is
flagged EXACT-while-unfaithful when verify printed EXACT (or exited 0 at T = L) while the integer ANN's
predictions agree with the user's model's on fewer than 99 % of samples or the SNN's accuracy is more
than 2 points below the user's model's.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
import external_models as corpus  # noqa: E402

SNNC = [str(Path(sys.executable).with_name("snnc"))]


def _run(args: list[str], timeout: int = 900) -> dict:
    t0 = time.perf_counter()
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    try:
        p = subprocess.run(SNNC + args, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"args": args, "rc": None, "timeout": True, "seconds": round(time.perf_counter() - t0, 1)}
    err = p.stderr
    tb = "Traceback (most recent call last)" in err
    lines = [ln for ln in err.splitlines() if ln.strip() and "it/s]" not in ln and "%|" not in ln]
    start = next((i for i, ln in enumerate(lines) if ln.startswith("error")), None)
    if tb:
        msg = lines[-1]
    elif start is not None:  # the error and its indented continuation lines
        msg = "\n".join(lines[start:])
    else:
        msg = "\n".join(ln for ln in lines if ln.startswith(("warning", "WARNING")))
    return {"args": args, "rc": p.returncode, "seconds": round(time.perf_counter() - t0, 1), "traceback": tb,
            "stderr_last": msg[:1200], "stdout": p.stdout[-2500:]}


def _acc(stdout: str) -> dict:
    m = re.search(r"accuracy: snn ([\d.na/]+), integer ANN ([\d.na/]+), float ANN ([\d.na/]+)", stdout)
    a = re.search(r"integer vs float ANN ([\d.na/]+)", stdout)
    f = lambda v: None if v in (None, "n/a") else float(v)  # noqa: E731
    out = {"snn": f(m.group(1)), "ann_int": f(m.group(2)), "ann_float": f(m.group(3))} if m else {}
    if a:
        out["int_vs_float_agreement"] = f(a.group(1))
    return out


def _weight_ranges(stdout: str) -> list[str]:
    return re.findall(r"^\s+(\S+)\s+\S+\s+W\([^)]*\) in \[(-?\d+), (-?\d+)\]", stdout, flags=re.M)


def run_case(case: corpus.Case, tmp: Path, samples: int | None) -> dict:
    model, data = corpus.build(case, tmp)
    bundle = tmp / f"{case.name}.snnc"
    rec = {"case": case.name, "family": case.family, "description": case.description, "model": model.name,
           "data": case.data}
    c = _run(["compile", str(model), "-o", str(bundle), *corpus.compile_args(case, tmp)])
    rec["compile"] = c
    if c["rc"] == 0:
        ins = _run(["inspect", str(bundle)])
        zero = [name for name, lo, hi in _weight_ranges(ins.get("stdout", "")) if int(lo) == 0 and int(hi) == 0]
        rec["inspect"] = {"rc": ins["rc"], "all_zero_projections": zero}
        v = _run(["verify", str(bundle), "--against", "ann", "--data", str(data)]
                 + (["--samples", str(samples)] if samples else []))
        v["exact_printed"] = "EXACT:" in v.get("stdout", "") and "NOT EXACT" not in v.get("stdout", "")
        v["accuracy"] = _acc(v.get("stdout", ""))
        rec["verify"] = v
        v7 = _run(["verify", str(bundle), "--against", "ann", "--data", str(data), "--samples", "7"])
        rec["verify_samples7"] = {k: v7.get(k) for k in ("rc", "traceback", "stderr_last")}
    e = _run(["eval", str(model), "--data", str(data), "--timesteps", "8", "--samples", str(samples or 64),
              *[a for a in corpus.compile_args(case, tmp) if a != "--timesteps" and not a.isdigit()]])
    rec["eval"] = {k: e.get(k) for k in ("rc", "traceback", "stderr_last", "seconds")}
    acc = rec.get("verify", {}).get("accuracy", {})
    agree = acc.get("int_vs_float_agreement")
    rec["exact_while_unfaithful"] = bool(
        rec.get("verify", {}).get("exact_printed")
        and ((agree is not None and agree < 0.99)
             or (acc.get("snn") is not None and acc.get("ann_float") is not None
                 and acc["snn"] < acc["ann_float"] - 0.02)))
    return rec


def _cell(r: dict | None) -> str:
    if not r:
        return "—"
    if r.get("timeout"):
        return "timeout"
    s = f"{r['rc']}"
    if r.get("traceback"):
        s += " (traceback)"
    return s


def markdown(results: list[dict], commit: str) -> str:
    out = [f"<!-- generated by benchmarks/external_corpus.py at commit {commit}; do not edit -->", "",
           "| case | compile | verify --against ann | verify --samples 7 | eval | accuracy snn / int / float "
           "(int vs float) | all-zero weights | EXACT while unfaithful | first message |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        v = r.get("verify") or {}
        a = v.get("accuracy") or {}
        fmt = lambda x: "n/a" if x is None else f"{x:.4f}"  # noqa: E731
        acc = (f"{fmt(a.get('snn'))} / {fmt(a.get('ann_int'))} / {fmt(a.get('ann_float'))} "
               f"({fmt(a.get('int_vs_float_agreement'))})") if a else "—"
        msg = next((x.get("stderr_last") for x in (r.get("compile"), v, r.get("eval")) if x and x.get("stderr_last")),
                   "") or ""
        msg = " ".join(msg.replace("|", "\\|").split())[:240]
        zero = ", ".join(r.get("inspect", {}).get("all_zero_projections", [])) or "—"
        vcell = _cell(v) + (" EXACT" if v.get("exact_printed") else "")
        out.append(f"| {r['case']} | {_cell(r['compile'])} | {vcell} | {_cell(r.get('verify_samples7'))} | "
                   f"{_cell(r.get('eval'))} | {acc} | {zero} | {'**yes**' if r['exact_while_unfaithful'] else 'no'} "
                   f"| {msg} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "external_before.json")
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--samples", type=int, default=None, help="verify/eval on the first N samples (default all)")
    ap.add_argument("--label", default=None, help="what code ran (default: the commit; e.g. 'fc79249 (before)')")
    args = ap.parse_args(argv)
    commit = args.label or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                          cwd=ROOT).stdout.strip()
    cases = [c for c in corpus.CASES if args.only is None or c.name in args.only]
    results = []
    with tempfile.TemporaryDirectory() as d:
        for c in cases:
            missing = [m for m in c.needs if __import__("importlib.util").util.find_spec(m) is None]
            if missing:
                print(f"skip {c.name}: needs {missing}", file=sys.stderr)
                continue
            print(f"{c.name} ...", file=sys.stderr, flush=True)
            results.append(run_case(c, Path(d), args.samples))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"commit": commit, "results": results}, indent=1) + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(results, commit))
    print(markdown(results, commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
