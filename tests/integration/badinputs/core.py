"""The bad-input corpus runner: one case = files written into a fresh folder + one ``snnc`` command run
in a subprocess under a memory limit and a timeout, judged on what a user would see.

A case passes when: the exit status is the expected one (2 for a user error), stderr holds exactly one
non-empty line (for an error) that names what the case expects it to name, there is no traceback, no
file appeared that the case does not allow, and no file already there changed (inputs, special files,
neighbours). The memory limit is the budget itself: RLIMIT_AS = max(1 GiB, 50 x the size of the case's
files) (docs/reliability.md, "Resource budget"); peak RSS is recorded.

Outcomes, worst first: hang, memory, traceback, silently wrong, wrong exit code, files left,
files touched, not one line, vague message, pass.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

GiB = 1 << 30
OUTCOMES = ("hang", "memory", "traceback", "silently wrong", "wrong exit code", "files left", "files touched",
            "not one line", "vague message", "pass")
FAILURES = OUTCOMES[:-1]
FIXTURE_LOCK = threading.Lock()


def snnc_command() -> list[str]:
    return [sys.executable, "-m", "snnc"]


@dataclass
class Ctx:
    """What a case's ``make`` gets: its own folder and the shared fixtures (``fx``: name -> path)."""

    dir: Path
    fx: dict[str, Path]

    def copy(self, name: str, as_name: str | None = None) -> Path:
        dst = self.dir / (as_name or self.fx[name].name)
        shutil.copyfile(self.fx[name], dst)
        return dst

    def p(self, name: str) -> Path:
        return self.dir / name

    def shared(self, name: str, build: Callable[[Path], object]) -> Path:
        """A generated input shared by cases (built once per run, e.g. a compressed bomb), copied here."""
        src = next(iter(self.fx.values())).parent / name
        with FIXTURE_LOCK:
            if not src.exists():
                tmp = src.with_name(name + ".part")
                build(tmp)
                os.replace(tmp, src)
        dst = self.dir / name
        shutil.copyfile(src, dst)
        return dst


@dataclass
class Run:
    """What ``make`` returns: the command (after ``snnc``) and how to run it."""

    args: list[str]
    expect: int = 2                        # exit status (negative: killed by that signal)
    outputs: tuple[str, ...] = ()          # files/folders (relative) the command may create or change
    mention: str | None = None             # a word the one-line message must contain (file, option, node)
    check: Callable[["Result", Ctx], str | None] | None = None   # extra check on success: a problem or None
    env: dict[str, str] = field(default_factory=dict)
    umask: int | None = None
    fsize: int | None = None               # RLIMIT_FSIZE (bytes): a full disk without a mount
    mount: tuple[str, str] | None = None   # ("tmpfs", dir) or ("ro", dir): run in a private mount namespace
    timeout: float = 30.0
    one_line: bool = True
    driver: Callable[["Run", Ctx, int], "Result"] | None = None       # signal cases drive the process themselves


@dataclass
class Result:
    rc: int | None
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int = 0                      # bytes (VmHWM sampled every 10 ms until exit)
    timed_out: bool = False
    listing: list[str] | None = None       # what a private mount held after the run


@dataclass
class Case:
    id: str
    category: str
    what: str
    make: Callable[[Ctx], Run]
    phase2: str | None = None              # why it still fails after phase 1: the file/function to change
    needs: str | None = None               # a capability: "mount", "mknod", "nonroot-ro"


@dataclass
class Verdict:
    case: Case
    outcome: str
    detail: str
    result: Result | None
    memory_limit: int = 0

    def to_dict(self) -> dict:
        r = self.result
        msg = "" if r is None else next((ln for ln in r.stderr.splitlines() if ln.strip()), "")
        return {"id": self.case.id, "category": self.case.category, "what": self.case.what,
                "outcome": self.outcome, "detail": self.detail, "rc": None if r is None else r.rc,
                "message": msg[:300], "stderr_lines": 0 if r is None else len([x for x in r.stderr.splitlines() if x.strip()]),
                "seconds": None if r is None else round(r.seconds, 2),
                "peak_rss_mb": None if r is None else round(r.peak_rss / 2**20, 1),
                "memory_limit_mb": round(self.memory_limit / 2**20), "phase2": self.case.phase2}


# ---- capabilities ----------------------------------------------------------------------------------
def can(what: str) -> bool:
    if what == "mount":
        if shutil.which("unshare") is None or shutil.which("mount") is None:
            return False
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d && umount $d && rmdir $d"],
                           capture_output=True)
        return r.returncode == 0
    if what == "mknod":
        import tempfile

        d = tempfile.mkdtemp()
        try:
            os.mknod(os.path.join(d, "null"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            return True
        except (OSError, AttributeError):
            return False
        finally:
            shutil.rmtree(d, ignore_errors=True)
    if what == "nonroot-ro":
        return os.geteuid() != 0
    raise ValueError(what)


# ---- snapshots -------------------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (not following links): kind, mode, size, content digest of files."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            try:
                st = os.lstat(p)
            except OSError:
                continue
            digest = ""
            if stat.S_ISREG(st.st_mode):
                if st.st_size <= 64 << 20:
                    h = hashlib.sha256()
                    with open(p, "rb") as fh:
                        for chunk in iter(lambda: fh.read(1 << 20), b""):
                            h.update(chunk)
                    digest = h.hexdigest()
                else:
                    digest = f"mtime:{st.st_mtime_ns}"
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(p)
            out[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size, digest)
    return out


def _allowed(rel: str, outputs: tuple[str, ...]) -> bool:
    return any(rel == o or rel.startswith(o.rstrip("/") + "/") for o in outputs)


def dir_size(root: Path) -> int:
    n = 0
    for dirpath, _, filenames in os.walk(root):
        for f in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                n += st.st_size
    return n


# ---- running ---------------------------------------------------------------------------------------
def memory_limit(input_bytes: int) -> int:
    return max(GiB, 50 * input_bytes)


def _preexec(mem: int, umask: int | None, fsize: int | None):
    def fn():
        os.setsid()
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):  # not inherited from a nohup'ed runner
            signal.signal(sig, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if fsize is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death (inherited over exec)
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        if umask is not None:
            os.umask(umask)
    return fn


def base_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "Agg", "COLUMNS": "200", "TQDM_DISABLE": "1"})
    env.update(extra)
    return env


def command(run: Run, ctx: Ctx) -> list[str]:
    cmd = snnc_command() + list(run.args)
    if run.mount is not None:
        kind, d = run.mount
        setup = ("mount -t tmpfs -o size=64k,mode=0777 tmpfs \"$D\" && (yes | head -c 57344 > \"$D/.filler\")"
                 if kind == "tmpfs"
                 else "mount --bind \"$D\" \"$D\" && mount -o remount,bind,ro \"$D\"")
        script = (f"{setup} || exit 97; \"$@\"; rc=$?; ls -A \"$D\" | grep -vx .filler > \"$D.listing\"; "
                  "if [ $rc -gt 128 ]; then kill -$((rc - 128)) $$; fi; exit $rc")
        cmd = ["unshare", "-m", "--propagation", "private", "env", f"D={d}", "sh", "-c", script, "sh"] + cmd
    return cmd


def start(run: Run, ctx: Ctx, mem: int) -> subprocess.Popen:
    return subprocess.Popen(command(run, ctx), cwd=ctx.dir, env=base_env(run.env), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_preexec(mem, run.umask, run.fsize))


def _vm_hwm(pid: int) -> int:
    """Peak resident memory of ``pid`` since its exec (VmHWM, bytes; 0 if unknown). The child's own
    ru_maxrss would include the forking parent's pages (a large pytest process), VmHWM does not."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def finish(p: subprocess.Popen, timeout: float, t0: float) -> Result:
    """Collect output and wait (with rusage) up to ``timeout``; kill the process group on timeout."""
    out: dict[str, bytes] = {}

    def pump(name, stream):
        out[name] = stream.read()

    threads = [threading.Thread(target=pump, args=(n, s), daemon=True) for n, s in (("o", p.stdout), ("e", p.stderr))]
    for t in threads:
        t.start()
    timed_out = False
    rusage = None
    status = None
    hwm = 0
    while True:
        hwm = _vm_hwm(p.pid) or hwm  # the last reading: VmHWM restarts at exec (the first may predate it)
        pid, status, rusage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() - t0 > timeout:
            timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            pid, status, rusage = os.wait4(p.pid, 0)
            break
        time.sleep(0.01)
    p.returncode = os.waitstatus_to_exitcode(status)
    for t in threads:
        t.join(5)
    return Result(p.returncode, out.get("o", b"").decode(errors="replace"), out.get("e", b"").decode(errors="replace"),
                  time.perf_counter() - t0, hwm or (int(rusage.ru_maxrss) * 1024 if rusage else 0), timed_out)


def execute(run: Run, ctx: Ctx, mem: int) -> Result:
    t0 = time.perf_counter()
    p = start(run, ctx, mem)
    res = finish(p, run.timeout, t0)
    if run.mount is not None:
        lst = ctx.dir / f"{run.mount[1]}.listing"
        if lst.exists():
            res.listing = [x for x in lst.read_text().splitlines() if x]
            lst.unlink()
    return res


def judge(case: Case, run: Run, res: Result, before: dict, after: dict, ctx: Ctx) -> tuple[str, str]:
    err = res.stderr
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if res.timed_out:
        return "hang", f"still running after {run.timeout:.0f}s"
    if "MemoryError" in err or "Cannot allocate memory" in err or "std::bad_alloc" in err or (res.rc in (-9, -6, -11) and res.rc != run.expect):
        return "memory", f"exit {res.rc}: " + (lines[-1][:160] if lines else "killed")
    if "Traceback (most recent call last)" in err:
        return "traceback", lines[-1][:200] if lines else "traceback"
    if run.expect == 0:
        if res.rc != 0:
            return "wrong exit code", f"exit {res.rc} for an input that must work: " + (lines[-1][:160] if lines else "")
        problem = run.check(res, ctx) if run.check else None
        if problem:
            return "silently wrong", problem
    else:
        if res.rc == 0:
            return "silently wrong", "exit 0: accepted"
        if res.rc != run.expect:
            why = "killed by signal " + str(-res.rc) if res.rc is not None and res.rc < 0 else f"exit {res.rc}"
            return "wrong exit code", f"{why}, expected {run.expect}: " + (lines[-1][:160] if lines else "")
        if run.check:
            problem = run.check(res, ctx)
            if problem:
                return "silently wrong", problem
    new = sorted(k for k in after if k not in before and not _allowed(k, run.outputs))
    if res.listing:
        new += [f"(in the mount) {x}" for x in res.listing if not _allowed(x, run.outputs)]
    if new:
        return "files left", ", ".join(new[:4])
    changed = sorted(k for k in before if not _allowed(k, run.outputs) and after.get(k) != before[k])
    if changed:
        gone = [k for k in changed if k not in after]
        return "files touched", ", ".join((f"{k} (removed)" if k in gone else k) for k in changed[:4])
    if run.expect != 0 and run.one_line:
        if len(lines) != 1:
            return "not one line", f"{len(lines)} lines on stderr: " + " | ".join(x[:60] for x in lines[:3])
        if run.mention and run.mention.lower() not in lines[0].lower():
            return "vague message", f"does not name '{run.mention}': {lines[0][:160]}"
    return "pass", ""


def run_case(case: Case, root: Path, fx: dict[str, Path]) -> Verdict:
    d = root / case.id.replace("/", "__")
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    ctx = Ctx(d, fx)
    run = case.make(ctx)
    mem = memory_limit(dir_size(d))
    before = snapshot(d)
    res = run.driver(run, ctx, mem) if run.driver else execute(run, ctx, mem)
    after = snapshot(d)
    outcome, detail = judge(case, run, res, before, after, ctx)
    return Verdict(case, outcome, detail, res, mem)
