"""Output paths (``-o``, ``--plot``, ``report -o``) and signals during a write.

Special files are made inside the case's own folder (``os.mknod``/``os.mkfifo``/a bound socket); no
case ever names a real ``/dev`` node. A full disk is a 64 KB tmpfs (56 KB filled) mounted in a private mount namespace
(``unshare -m``) or, where that is not allowed, RLIMIT_FSIZE; a read-only folder is a read-only bind
mount in the same way.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import time

from .core import Case, Ctx, Result, Run, finish, start

COMPILE = ["compile", "mlp.onnx", "-o"]
CNN = ["compile", "cnn.onnx", "-o"]


def _mode_is(rel: str, mode: int):
    def check(res: Result, ctx: Ctx) -> str | None:
        got = stat.S_IMODE(os.stat(ctx.p(rel)).st_mode)
        return None if got == mode else f"'{rel}' has mode {oct(got)}, expected {oct(mode)}"
    return check


def _is_bundle(rel: str):
    def check(res: Result, ctx: Ctx) -> str | None:
        p = ctx.p(rel)
        if not p.is_file() or p.read_bytes()[:2] != b"PK":
            return f"'{rel}' was not written as a bundle"
        return None
    return check


def out_case(cid, what, setup, args, expect=2, mention=None, outputs=(), files=("mlp.onnx",), check=None,
             phase2=None, needs=None, **run_kw):
    def make(ctx: Ctx) -> Run:
        for f in files:
            ctx.copy(f)
        if setup is not None:
            setup(ctx)
        return Run(list(args), expect=expect, mention=mention, outputs=outputs, check=check, **run_kw)
    return Case(f"output/{cid}", "output paths", what, make, phase2, needs)


def _mknod(ctx):
    os.mknod(ctx.p("dev"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))


def _sock(ctx):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(ctx.p("sock")))
    s.close()


def _existing(mode):
    def setup(ctx):
        ctx.copy("mlp.snnc", "out.snnc")
        os.chmod(ctx.p("out.snnc"), mode)
    return setup


def _mkdir(*names):
    def setup(ctx):
        for n in names:
            ctx.p(n).mkdir()
    return setup


REPORT = ["report", "mlp.snnc", "--data", "mlp.npz", "--samples", "2", "-o"]
MAP = ["map", "mlp.snnc", "--plot"]
EVAL = ["eval", "mlp.onnx", "--data", "mlp.npz", "--timesteps", "2", "--samples", "2", "--plot"]
RFILES = ("mlp.snnc", "mlp.npz")
EFILES = ("mlp.onnx", "mlp.npz")

OUTPUT_CASES = [
    out_case("char-device", "-o names a character device (made in the case folder)", _mknod, COMPILE + ["dev"],
             mention="dev", needs="mknod"),
    out_case("fifo", "-o names a FIFO", lambda c: os.mkfifo(c.p("pipe")), COMPILE + ["pipe"], mention="pipe"),
    out_case("socket", "-o names a socket", _sock, COMPILE + ["sock"], mention="sock"),
    out_case("directory", "-o names a folder", _mkdir("d"), COMPILE + ["d"], mention="d"),
    out_case("input-itself", "-o is the input model", None, COMPILE + ["mlp.onnx"], mention="mlp.onnx"),
    out_case("input-via-symlink", "-o is a symlink to the input model",
             lambda c: os.symlink("mlp.onnx", c.p("link.snnc")), COMPILE + ["link.snnc"], mention="link.snnc"),
    out_case("calib-itself", "-o is the calibration file",
             None, ["compile", "relu.onnx", "--calib", "calib.npz", "--neuron", "multi-threshold:2", "--timesteps", "4",
                    "-o", "calib.npz"], mention="calib.npz", files=("relu.onnx", "calib.npz")),
    out_case("empty", "-o \"\"", None, COMPILE + [""], mention="empty"),
    out_case("trailing-slash", "-o new/ (a folder name)", None, COMPILE + ["new/"], mention="new/"),
    out_case("parent-is-file", "-o mlp.onnx/out.snnc", None, COMPILE + ["mlp.onnx/out.snnc"], mention="mlp.onnx"),
    out_case("name-too-long", "-o a 300-character name", None, COMPILE + ["x" * 300 + ".snnc"], mention="too long"),
    out_case("dangling-symlink", "-o a symlink to a missing file",
             lambda c: os.symlink("nowhere/x.snnc", c.p("link.snnc")), COMPILE + ["link.snnc"], mention="link.snnc"),
    out_case("missing-parent", "-o a/b/c/out.snnc (folders created on success)", None, COMPILE + ["a/b/c/out.snnc"],
             expect=0, outputs=("a",), check=_is_bundle("a/b/c/out.snnc")),
    out_case("missing-parent-failure", "-o a/b/out.snnc for a model that fails: no folder left",
             lambda c: c.p("bad.onnx").write_bytes(b"junk"), ["compile", "bad.onnx", "-o", "a/b/out.snnc"],
             mention="bad.onnx"),
    out_case("overwrite-keeps-0664", "-o over an existing 0664 bundle keeps 0664", _existing(0o664),
             COMPILE + ["out.snnc"], expect=0, outputs=("out.snnc",), files=("mlp.onnx",),
             check=_mode_is("out.snnc", 0o664)),
    out_case("umask-002", "a new bundle under umask 002 is 0664", None, COMPILE + ["out.snnc"], expect=0,
             outputs=("out.snnc",), check=_mode_is("out.snnc", 0o664), umask=0o002),
    out_case("umask-077", "a new bundle under umask 077 is 0600", None, COMPILE + ["out.snnc"], expect=0,
             outputs=("out.snnc",), check=_mode_is("out.snnc", 0o600), umask=0o077),
    out_case("symlink-to-regular", "-o a symlink to an existing bundle writes the bundle it points to",
             lambda c: (c.copy("mlp.snnc", "real.snnc"), os.symlink("real.snnc", c.p("link.snnc"))),
             COMPILE + ["link.snnc"], expect=0, outputs=("real.snnc",), check=_is_bundle("real.snnc")),
    out_case("read-only-folder", "-o into a read-only folder", _mkdir("ro"), COMPILE + ["ro/out.snnc"],
             mention="ro/out.snnc", mount=("ro", "ro"), needs="mount"),
    out_case("disk-full", "-o onto a full disk (a 64 KB tmpfs, 56 KB used)", _mkdir("full"), CNN + ["full/out.snnc"],
             mention="full/out.snnc", mount=("tmpfs", "full"), needs="mount", files=("cnn.onnx",)),
    out_case("file-size-limit", "-o with RLIMIT_FSIZE 40 KB (EFBIG)", None, CNN + ["out.snnc"], mention="out.snnc",
             fsize=40_000, files=("cnn.onnx",)),
    # report folders
    out_case("report-onto-file", "report -o an existing file", None, REPORT + ["mlp.npz"], mention="mlp.npz",
             files=RFILES),
    out_case("report-onto-fifo", "report -o a FIFO", lambda c: os.mkfifo(c.p("pipe")), REPORT + ["pipe"],
             mention="pipe", files=RFILES),
    out_case("report-folder-holds-input", "report -o . (the folder holding the bundle)", None, REPORT + ["."],
             mention=".", files=RFILES),
    out_case("report-missing-parent", "report -o a/b/rep (folders created on success)", None, REPORT + ["a/b/rep"],
             expect=0, outputs=("a",), files=RFILES, timeout=60),
    out_case("report-read-only", "report -o into a read-only folder", _mkdir("ro"), REPORT + ["ro/rep"],
             mention="ro/rep", mount=("ro", "ro"), needs="mount", files=RFILES),
    out_case("report-disk-full", "report -o onto a full disk", _mkdir("full"), REPORT + ["full/rep"],
             mention="full/rep", mount=("tmpfs", "full"), needs="mount", files=RFILES, timeout=60),
    out_case("report-file-size-limit", "report -o with RLIMIT_FSIZE 20 KB", None, REPORT + ["rep"], mention="rep",
             fsize=20_000, files=RFILES, timeout=60),
    # plots
    out_case("map-plot-directory", "map --plot a folder", _mkdir("d"), MAP + ["d"], mention="d", files=RFILES),
    out_case("map-plot-fifo", "map --plot a FIFO", lambda c: os.mkfifo(c.p("pipe")), MAP + ["pipe"], mention="pipe",
             files=RFILES),
    out_case("map-plot-input", "map --plot the bundle itself", None, MAP + ["mlp.snnc"], mention="mlp.snnc",
             files=RFILES),
    out_case("map-plot-missing-parent", "map --plot a/b/u.png (folders created on success)", None, MAP + ["a/b/u.png"],
             expect=0, outputs=("a",), files=RFILES),
    out_case("map-plot-read-only", "map --plot into a read-only folder", _mkdir("ro"), MAP + ["ro/u.png"],
             mention="ro/u.png", mount=("ro", "ro"), needs="mount", files=RFILES),
    out_case("map-plot-disk-full", "map --plot onto a full disk", _mkdir("full"), MAP + ["full/u.png"],
             mention="full/u.png", mount=("tmpfs", "full"), needs="mount", files=RFILES),
    out_case("map-plot-file-size-limit", "map --plot with RLIMIT_FSIZE 10 KB", None, MAP + ["u.png"], mention="u.png",
             fsize=10_000, files=RFILES),
    out_case("eval-plot-directory", "eval --plot a folder", _mkdir("d"), EVAL + ["d"], mention="d", files=EFILES),
    out_case("eval-plot-fifo", "eval --plot a FIFO", lambda c: os.mkfifo(c.p("pipe")), EVAL + ["pipe"], mention="pipe",
             files=EFILES),
    out_case("eval-plot-input", "eval --plot the data file", None, EVAL + ["mlp.npz"], mention="mlp.npz", files=EFILES),
    out_case("eval-plot-missing-parent", "eval --plot a/b/acc.png (folders created on success)", None,
             EVAL + ["a/b/acc.png"], expect=0, outputs=("a",), files=EFILES, timeout=60),
    out_case("eval-plot-disk-full", "eval --plot onto a full disk", _mkdir("full"), EVAL + ["full/acc.png"],
             mention="full/acc.png", mount=("tmpfs", "full"), needs="mount", files=EFILES, timeout=60),
    out_case("eval-plot-file-size-limit", "eval --plot with RLIMIT_FSIZE 10 KB", None, EVAL + ["acc.png"],
             mention="acc.png", fsize=10_000, files=EFILES, timeout=60),
]


# ---- signals ---------------------------------------------------------------------------------------------
def _temp_files(ctx: Ctx, name: str) -> list[str]:
    return [p.name for p in ctx.dir.iterdir() if p.name.startswith(f".{name}.") and p.name != f".{name}"]


def _interrupt(sig: int, rerun: bool):
    """Start the compile, wait for its temporary file to appear, send ``sig``; optionally run a second
    compile to the same output afterwards (what a later run cleans)."""
    def driver(run: Run, ctx: Ctx, mem: int) -> Result:
        t0 = time.perf_counter()
        p = start(run, ctx, mem)
        seen = False
        while p.poll() is None and time.perf_counter() - t0 < run.timeout:
            if _temp_files(ctx, "out.snnc"):
                seen = True
                time.sleep(0.05)
                os.kill(p.pid, sig)
                break
            time.sleep(0.002)
        res = finish(p, run.timeout, t0)
        if not seen:
            res.stderr += "\n(the write finished before the signal could be sent: not exercised)"
        if rerun:
            again = Run(["compile", "mlp.onnx", "-o", "out.snnc"], timeout=60)
            r2 = finish(start(again, ctx, mem), 60, time.perf_counter())
            res.stderr += "" if r2.rc == 0 else f"\nrerun failed: {r2.stderr.strip()[-200:]}"
            res.rc = r2.rc  # the case is judged on the rerun (what a later run leaves)
        return res
    return driver


def sig_case(cid, what, sig, expect, rerun=False, phase2=None):
    def make(ctx: Ctx) -> Run:
        ctx.copy("big.onnx")
        ctx.copy("mlp.onnx")
        return Run(["compile", "big.onnx", "-o", "out.snnc"], expect=expect, one_line=False, timeout=180,
                   outputs=("out.snnc",) if rerun else (), driver=_interrupt(sig, rerun))
    return Case(f"signal/{cid}", "signals", what, make, phase2)


SIGNAL_CASES = [
    sig_case("sigterm-during-write", "SIGTERM while the bundle is written: dies by SIGTERM, no temporary file",
             signal.SIGTERM, -signal.SIGTERM),
    sig_case("sighup-during-write", "SIGHUP while the bundle is written: dies by SIGHUP, no temporary file",
             signal.SIGHUP, -signal.SIGHUP),
    sig_case("sigint-during-write", "Ctrl-C while the bundle is written: exit 130, no temporary file",
             signal.SIGINT, 130),
    sig_case("kill9-then-rerun", "kill -9 while the bundle is written, then compile again: nothing left over",
             signal.SIGKILL, 0, rerun=True),
]
