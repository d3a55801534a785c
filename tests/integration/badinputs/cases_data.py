"""Data files (``--data``, ``--calib``): lying headers, wrong shapes and types, bad labels, bombs."""

from __future__ import annotations

import os
import zipfile

import numpy as np

from .build import array_npy, npy_bytes, write_zip, zeros_member_stream
from .core import Case, Ctx, Result, Run

MB = 1 << 20


def rss_below(limit_mb: int):
    def check(res: Result, ctx: Ctx) -> str | None:
        if res.peak_rss > limit_mb * MB:
            return f"peak RSS {res.peak_rss / MB:.0f} MB for 4 samples (limit {limit_mb} MB): the whole file was loaded"
        return None
    return check


def verify_run(data: str, samples: int | None = 4, expect: int = 2, mention: str | None = None, check=None,
               cmd: str = "verify", timeout: float = 60.0) -> Run:
    args = [cmd, "mlp.snnc", "--data", data] + ([] if samples is None else ["--samples", str(samples)])
    return Run(args, expect=expect, mention=mention or data, check=check, timeout=timeout)


def npz_case(cid, what, arrays=None, raw=None, expect=2, mention=None, samples=4, phase2=None, check=None,
             cmd="verify", timeout=60.0):
    """``arrays``: dict for np.savez (or a callable ctx -> dict); ``raw(ctx)``: writes d.npz itself."""
    def make(ctx: Ctx) -> Run:
        ctx.copy("mlp.snnc")
        if raw is not None:
            raw(ctx)
        else:
            a = arrays(ctx) if callable(arrays) else arrays
            np.savez(ctx.p("d.npz"), **a)
        return verify_run("d.npz", samples, expect, mention, check, cmd, timeout)
    return Case(f"data/{cid}", "data files", what, make, phase2)


def _x(n=8, dtype=np.float32):
    return np.random.default_rng(1).uniform(0, 1, (n, 6)).astype(dtype)


def _y(n=8):
    return np.arange(n) % 3


def _lying_member(ctx, shape, data=b"\0" * 96, descr="<f4"):
    write_zip(ctx.p("d.npz"), [("x.npy", npy_bytes(descr, shape, data))])


def _object_x(ctx):
    write_zip(ctx.p("d.npz"), [("x.npy", array_npy(np.array([{"a": 1}] * 8, dtype=object)))])


def _bomb(nbytes):
    def raw(ctx):
        n = nbytes // 24
        src = ctx.shared(f"bomb{nbytes >> 20}M.npz", lambda p: zeros_member_stream(
            p, [("x.npy", "<f4", (n, 6), n * 24), ("y.npy", "<i8", (n,), n * 8)]))
        os.replace(src, ctx.p("d.npz"))
    return raw


def _many_members(ctx):
    with zipfile.ZipFile(ctx.p("d.npz"), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", array_npy(_x()))
        for i in range(100_000):
            zf.writestr(f"junk{i}.npy", b"")


def _fifo(ctx):
    os.mkfifo(ctx.p("d.npz"))


def _not_zip(ctx):
    ctx.p("d.npz").write_bytes(b"not a zip file at all" * 10)


def _npy_file(ctx):
    np.save(ctx.p("d.npz.npy"), _x())
    os.rename(ctx.p("d.npz.npy"), ctx.p("d.npz"))


def _fortran(ctx):
    write_zip(ctx.p("d.npz"), [("x.npy", array_npy(np.asfortranarray(_x()))), ("y.npy", array_npy(_y()))])


def _calib_case(cid, what, arrays, mention="c.npz", phase2=None):
    def make(ctx: Ctx) -> Run:
        ctx.copy("relu.onnx")
        np.savez(ctx.p("c.npz"), **arrays)
        return Run(["compile", "relu.onnx", "--calib", "c.npz", "--neuron", "multi-threshold:2", "--timesteps", "4",
                    "-o", "out.snnc"], mention=mention)
    return Case(f"data/{cid}", "data files", what, make, phase2)


DATA_CASES = [
    npz_case("valid", "a valid data file (8 samples)", {"x": _x(), "y": _y()}, expect=0),
    # pixels 0..255 against the model's 0..1: counted, warned, clipped, and the verdict cannot be EXACT
    # (the user's model sees other inputs than the SNN): exit 1, the warning names the range
    npz_case("uint8-x", "x as uint8 pixel values", {"x": (_x() * 255).astype(np.uint8), "y": _y()}, expect=1,
             mention="outside the input"),
    npz_case("float16-x", "x as float16", {"x": _x(dtype=np.float16), "y": _y()}, expect=0),
    npz_case("big-endian-x", "x as big-endian float32", {"x": _x().astype(">f4"), "y": _y()}, expect=0),
    npz_case("fortran-x", "x stored in Fortran order", raw=_fortran, expect=0),
    npz_case("samples-beyond-n", "--samples 1000 with 8 samples", {"x": _x(), "y": _y()}, expect=0, samples=1000),
    npz_case("float-integral-labels", "labels 0.0, 1.0, 2.0 as float64", {"x": _x(), "y": _y().astype(np.float64)},
             expect=0),
    npz_case("missing", "the data file does not exist", raw=lambda ctx: None, mention="d.npz"),
    npz_case("not-a-zip", "a text file named .npz", raw=_not_zip),
    npz_case("npy-not-npz", "a .npy file (one array) where an .npz is expected", raw=_npy_file),
    npz_case("fifo", "the data path is a FIFO", raw=_fifo, timeout=20),
    npz_case("directory", "the data path is a folder", raw=lambda ctx: ctx.p("d.npz").mkdir()),
    npz_case("no-x", "an .npz without x", {"data": _x()}),
    npz_case("x-wrong-shape", "x of shape (8, 7) for a 6-input network", {"x": np.zeros((8, 7), np.float32)}),
    npz_case("x-extra-axis", "x of shape (8, 1, 6)", {"x": np.zeros((8, 1, 6), np.float32)}),
    npz_case("x-scalar", "x is a scalar", {"x": np.float32(1.0)}),
    npz_case("x-empty", "x with 0 samples", {"x": np.zeros((0, 6), np.float32)}),
    npz_case("x-empty-simulate", "x with 0 samples (simulate)", {"x": np.zeros((0, 6), np.float32)}, cmd="simulate"),
    npz_case("x-object", "x is an object array (a pickle)", raw=_object_x),
    npz_case("x-strings", "x holds strings", {"x": np.array([["a"] * 6] * 8)}),
    npz_case("x-bool", "x holds booleans", {"x": np.zeros((8, 6), bool)}),
    npz_case("x-complex", "x holds complex numbers", {"x": np.zeros((8, 6), np.complex64)}),
    npz_case("x-nan", "x holds a NaN", {"x": np.where(np.eye(8, 6) > 0, np.nan, 0.5).astype(np.float32)}),
    npz_case("x-inf", "x holds an inf", {"x": np.where(np.eye(8, 6) > 0, np.inf, 0.5).astype(np.float32)}),
    npz_case("x-structured", "x is a structured (record) array",
             {"x": np.zeros(8, dtype=[("a", "<f4", (6,))])}),
    npz_case("y-nan", "labels hold a NaN", {"x": _x(), "y": np.array([0, 1, np.nan, 2, 0, 1, 2, 0])}, mention="label"),
    npz_case("y-strings", "labels are strings", {"x": _x(), "y": np.array(list("abcabcab"))}, mention="label"),
    npz_case("y-out-of-range", "label 7 for a 3-class network", {"x": _x(), "y": np.array([0, 1, 7, 2, 0, 1, 2, 0])},
             mention="label"),
    npz_case("y-negative", "label -1", {"x": _x(), "y": np.array([0, 1, -1, 2, 0, 1, 2, 0])}, mention="label"),
    npz_case("y-fractional", "label 1.5", {"x": _x(), "y": np.array([0, 1.5, 1, 2, 0, 1, 2, 0])}, mention="label"),
    npz_case("y-wrong-length", "5 labels for 8 samples", {"x": _x(), "y": np.array([0, 1, 2, 0, 1])}),
    npz_case("y-one-hot", "labels one-hot (8, 3)", {"x": _x(), "y": np.eye(3)[_y()]}, mention="label"),
    npz_case("lying-header-short", "x.npy declares (10^9, 6) float32, holds 96 bytes",
             raw=lambda ctx: _lying_member(ctx, (10 ** 9, 6))),
    npz_case("lying-header-all", "x.npy declares (10^9, 6) float32, holds 96 bytes (all samples)",
             raw=lambda ctx: _lying_member(ctx, (10 ** 9, 6)), samples=None),
    npz_case("lying-header-short-data", "x.npy declares (8, 6) float32, holds 40 bytes",
             raw=lambda ctx: _lying_member(ctx, (8, 6), b"\0" * 40)),
    npz_case("header-negative-dim", "x.npy declares shape (-8, 6)", raw=lambda ctx: _lying_member(ctx, (-8, 6))),
    npz_case("bomb-486KB-4-samples", "a 0.5 MB npz whose x is 500 MB of zeros, --samples 4",
             raw=_bomb(500 * MB), expect=0, check=rss_below(400)),
    npz_case("bomb-3MB-4-samples", "a 3 MB npz whose x is 2 GB of zeros, --samples 4", raw=_bomb(2 << 30),
             expect=0, check=rss_below(400), timeout=120),
    npz_case("bomb-3MB-all", "a 3 MB npz whose x is 2 GB of zeros, all samples", raw=_bomb(2 << 30), samples=None,
             timeout=120),
    npz_case("100k-members", "an npz with 100,000 members", raw=_many_members, timeout=60),
    _calib_case("calib-nan", "calibration x holds a NaN", {"x": np.full((4, 1, 8, 8), np.nan, np.float32)}),
    _calib_case("calib-empty", "calibration x with 0 samples", {"x": np.zeros((0, 1, 8, 8), np.float32)}),
    _calib_case("calib-wrong-shape", "calibration x of shape (4, 6)", {"x": np.zeros((4, 6), np.float32)}),
]
