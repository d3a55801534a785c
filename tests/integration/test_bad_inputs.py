"""The bad-input corpus (issue 14): every case runs `snnc` in a subprocess under a memory limit and a
timeout and must end as a user would want it to (tests/integration/badinputs/core.py): the expected
exit status, one line naming the file/option/node, no traceback, no file left, nothing else touched.

The selected cases run once per session, a few at a time (each is a subprocess); each test then
checks its case's verdict. Cases whose fix needs the command layer (the CLI is being rewired by the
redesign, issue 15) or the frontend are expected failures naming what phase 2 changes
(badinputs/phase2.py); strict, so a case that starts passing must lose its mark. docs/reliability.md
shows the whole table (benchmarks/reliability.py).
"""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

import badinputs
from badinputs.build import build_fixtures


def _params():
    out = []
    for c in badinputs.ALL_CASES:
        marks = [pytest.mark.xfail(reason=f"phase 2: {c.phase2}", strict=True)] if c.phase2 else []
        if c.category == "signals" or "bomb" in c.id or c.id.endswith(("-5000", "100k-members")):
            marks.append(pytest.mark.slow)
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


@pytest.fixture(scope="session")
def verdicts(request, tmp_path_factory):
    """{case id: Verdict} for the cases this session selected (unavailable capabilities: None)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cases = [item.callspec.params["case"] for item in request.session.items
             if getattr(item, "originalname", None) == "test_bad_input" and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("corpus")
    fx = build_fixtures(root / "_fixtures", big=any(c.category == "signals" for c in cases))
    caps = {k: badinputs.can(k) for k in {c.needs for c in cases if c.needs}}
    todo = [c for c in cases if not c.needs or caps[c.needs]]
    jobs = int(os.environ.get("SNNC_CORPUS_JOBS", min(4, os.cpu_count() or 1)))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = dict(zip([c.id for c in todo], pool.map(lambda c: badinputs.run_case(c, root / "cases", fx), todo)))
    return {c.id: done.get(c.id) for c in cases}


@pytest.mark.parametrize("case", _params())
def test_bad_input(case, verdicts):
    v = verdicts[case.id]
    if v is None:
        pytest.skip(f"needs {case.needs} (not available here)")
    r = v.result
    assert v.outcome == "pass", (f"{case.id} ({case.what}): {v.outcome}: {v.detail}\n"
                                 f"exit {r.rc if r else None}; stderr: {(r.stderr if r else '')[-1500:]}")
