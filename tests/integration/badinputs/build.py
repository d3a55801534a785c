"""Generators for the corpus: small valid models and data files (the fixtures every case starts from),
raw ONNX/npy/zip writers that can lie, and a bundle editor that can re-seal what it changed (so a
changed bundle tests the schema and the format checks, not only the digest)."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "digits"
QONNX = "qonnx.custom_op.general"


# ---- ONNX ------------------------------------------------------------------------------------------
def qcfs(prefix: str, x: str, out: str, lam: float, L: int) -> tuple[list, list]:
    """The QCFS activation (clip(floor(x L / lam + 1/2), 0, L) lam / L) as ONNX nodes."""
    c = lambda n, v: numpy_helper.from_array(np.array(v, np.float32), f"{prefix}_{n}")  # noqa: E731
    inits = [c("L", float(L)), c("lam", lam), c("half", 0.5), c("lo", 0.0), c("hi", float(L))]
    p = prefix
    nodes = [
        helper.make_node("Mul", [x, f"{p}_L"], [f"{p}_m"], name=f"{p}_mul"),
        helper.make_node("Div", [f"{p}_m", f"{p}_lam"], [f"{p}_d"], name=f"{p}_div"),
        helper.make_node("Add", [f"{p}_d", f"{p}_half"], [f"{p}_a"], name=f"{p}_add"),
        helper.make_node("Floor", [f"{p}_a"], [f"{p}_f"], name=f"{p}_floor"),
        helper.make_node("Clip", [f"{p}_f", f"{p}_lo", f"{p}_hi"], [f"{p}_c"], name=f"{p}_clip"),
        helper.make_node("Mul", [f"{p}_c", f"{p}_lam"], [f"{p}_m2"], name=f"{p}_mul2"),
        helper.make_node("Div", [f"{p}_m2", f"{p}_L"], [out], name=f"{p}_div2"),
    ]
    return nodes, inits


def mlp(seed: int = 0, n_in: int = 6, hidden=(8,), n_out: int = 3, L: int = 4, opset: int = 17,
        input_shape=None, pre_nodes=None) -> onnx.ModelProto:
    """x (N, n_in) -> [Gemm -> QCFS]* -> Gemm. ``pre_nodes(x) -> (nodes, inits, new_x)`` adds nodes first."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev, width = "x", n_in
    if pre_nodes is not None:
        pn, pi, prev = pre_nodes("x")
        nodes += pn
        inits += pi
    for i, h in enumerate(hidden):
        w = rng.normal(0, 1 / np.sqrt(width), (h, width)).astype(np.float32)
        b = rng.normal(0, 0.1, h).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], name=f"gemm{i}", transB=1))
        qn, qi = qcfs(f"act{i}", f"g{i}", f"a{i}", float(rng.uniform(0.5, 2.0)), L)
        nodes += qn
        inits += qi
        prev, width = f"a{i}", h
    w = rng.normal(0, 1 / np.sqrt(width), (n_out, width)).astype(np.float32)
    inits += [numpy_helper.from_array(w, "wo"), numpy_helper.from_array(np.zeros(n_out, np.float32), "bo")]
    nodes.append(helper.make_node("Gemm", [prev, "wo", "bo"], ["y"], name="readout", transB=1))
    shape = input_shape or ["N", n_in]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n_out])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def qonnx_mlp(bits=3, w_bits=4, scale=0.25, w_scale=None, zero=0.0, signed=0, narrow=0, mode="ROUND",
              attr_override=None) -> onnx.ModelProto:
    """x (N, 6) -> Gemm(Quant(w)) -> Relu -> Quant -> Gemm(Quant(w)): QONNX, parameters as given."""
    rng = np.random.default_rng(1)
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    def quant(p, x, out, s, z, b, sg, nr, md):
        attrs = dict(signed=sg, narrow=nr, rounding_mode=md)
        attrs.update((attr_override or {}).get(p, {}))
        nodes.append(helper.make_node("Quant", [x, init(f"{p}_s", np.asarray(s, np.float32)),
                                                init(f"{p}_z", np.float32(z)), init(f"{p}_b", np.float32(b))],
                                      [out], name=f"{p}_quant", domain=QONNX, **attrs))

    prev, width = "x", 6
    for i, h in enumerate((8, 3)):
        w = rng.normal(0, 1 / np.sqrt(width), (h, width)).astype(np.float32)
        ws = w_scale if w_scale is not None else (np.abs(w).max(axis=1, keepdims=True) / 7).astype(np.float32)
        init(f"w{i}", w)
        quant(f"w{i}", f"w{i}", f"wq{i}", ws, 0.0, w_bits, 1, 1, "ROUND")
        init(f"b{i}", rng.normal(0, 0.1, h).astype(np.float32))
        nodes.append(helper.make_node("Gemm", [prev, f"wq{i}", f"b{i}"], [f"g{i}"], name=f"gemm{i}", transB=1))
        if i == 1:
            break
        nodes.append(helper.make_node("Relu", [f"g{i}"], [f"r{i}"], name=f"relu{i}"))
        quant(f"a{i}", f"r{i}", f"a{i}", scale, zero, bits, signed, narrow, mode)
        prev, width = f"a{i}", h
    g = helper.make_graph(nodes, "qonnx_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                          [helper.make_tensor_value_info("g1", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(QONNX, 1)])


def qdq_mlp(scale=0.2, zp=0, zp_dtype=np.uint8, w_scale=None) -> onnx.ModelProto:
    """x -> Gemm(DQ(int8 w)) -> Relu -> QuantizeLinear/DequantizeLinear -> Gemm."""
    rng = np.random.default_rng(2)
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
        return name

    prev, width = "x", 6
    for i, h in enumerate((8, 3)):
        w = rng.normal(0, 1 / np.sqrt(width), (h, width))
        ws = np.float32(np.abs(w).max() / 127) if w_scale is None else np.float32(w_scale)
        init(f"w{i}q", np.clip(np.rint(w / (np.abs(w).max() / 127)), -127, 127).astype(np.int8))
        init(f"w{i}s", ws)
        init(f"w{i}z", np.int8(0))
        nodes.append(helper.make_node("DequantizeLinear", [f"w{i}q", f"w{i}s", f"w{i}z"], [f"w{i}"], name=f"dqw{i}"))
        init(f"b{i}", np.zeros(h, np.float32))
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [f"g{i}"], name=f"gemm{i}", transB=1))
        if i == 1:
            break
        nodes.append(helper.make_node("Relu", [f"g{i}"], [f"r{i}"], name=f"relu{i}"))
        init("as", np.float32(scale))
        init("az", np.asarray(zp, zp_dtype))
        nodes.append(helper.make_node("QuantizeLinear", ["r0", "as", "az"], ["q0"], name="q0"))
        nodes.append(helper.make_node("DequantizeLinear", ["q0", "as", "az"], ["a0"], name="dq0"))
        prev, width = "a0", h
    g = helper.make_graph(nodes, "qdq_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                          [helper.make_tensor_value_info("g1", TensorProto.FLOAT, ["N", 3])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def save_onnx(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


# ---- npy / npz / zip -----------------------------------------------------------------------------------
def npy_bytes(descr: str, shape: tuple, data: bytes, fortran: bool = False) -> bytes:
    """A .npy file whose header says ``descr``/``shape`` whatever ``data`` holds (a header that can lie)."""
    hdr = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode("latin1")
    pad = 64 - (10 + len(hdr) + 1) % 64
    hdr = hdr + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr + data


def array_npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def write_zip(path: Path, members: list[tuple[str, bytes]], compress: bool = True) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def deflated(name: str) -> zipfile.ZipInfo:
    """A member that is compressed (a bare ZipInfo is stored uncompressed, whatever the archive's default)."""
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _stream_zeros(zf: zipfile.ZipFile, name: str, descr: str, shape: tuple, nbytes: int) -> None:
    with zf.open(deflated(name), "w", force_zip64=True) as out:
        out.write(npy_bytes(descr, shape, b""))
        chunk = bytes(1 << 22)
        left = nbytes
        while left > 0:
            out.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)


def zeros_member_stream(path: Path, members: list[tuple[str, str, tuple, int]]) -> Path:
    """A zip whose members (name, descr, shape, nbytes) are .npy files of zero bytes, written in a stream
    (they compress ~1000:1, so a small file declares huge arrays)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, descr, shape, nbytes in members:
            _stream_zeros(zf, name, descr, shape, nbytes)
    return path


# ---- bundles ---------------------------------------------------------------------------------------
def read_raw_bundle(path: Path) -> tuple[object, dict[str, np.ndarray]]:
    """(header as parsed JSON, {member key: array}) of a bundle, whatever its version."""
    z = np.load(path, allow_pickle=False)
    arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays.pop("__header__")).decode())
    return header, arrays


def _seal(header, arrays):
    """Re-seal like the writer does (version 2+), so the change is not caught by the digest alone."""
    try:
        from snnc.ir.digest import seal
    except ImportError:  # the bundle format before digests
        return header
    if isinstance(header, dict) and isinstance(header.get("version"), int) and header.get("version", 1) >= 2:
        return seal(header, arrays)
    return header


def write_raw_bundle(path: Path, header, arrays: dict[str, np.ndarray], reseal: bool = True,
                     header_bytes: bytes | None = None) -> Path:
    if reseal:
        header = _seal(header, arrays)
    hb = header_bytes if header_bytes is not None else json.dumps(header).encode()
    members = [("__header__.npy", array_npy(np.frombuffer(hb, np.uint8)))]
    members += [(f"{k}.npy", array_npy(v)) for k, v in arrays.items()]
    return write_zip(path, members)


def edit_bundle(src: Path, dst: Path, edit, reseal: bool = True) -> Path:
    """Copy bundle ``src`` to ``dst`` with ``edit(header, arrays)`` applied (in place, or returning a new
    header)."""
    header, arrays = read_raw_bundle(src)
    new = edit(header, arrays)
    return write_raw_bundle(dst, header if new is None else new, arrays, reseal)


def node_entry(header: dict, name: str) -> dict:
    for e in header["nodes"] + header["projections"]:
        if e["fields"].get("name") == name:
            return e
    raise KeyError(name)


def first_of(header: dict, tname: str) -> dict:
    return next(e for e in header["nodes"] + header["projections"] if e["type"] == tname)


# ---- fixtures --------------------------------------------------------------------------------------
def run_snnc(args: list[str], cwd: Path) -> None:
    import sys

    r = subprocess.run([sys.executable, "-m", "snnc"] + args, cwd=cwd, capture_output=True, text=True,
                       env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    if r.returncode != 0:
        raise RuntimeError(f"fixture: snnc {' '.join(args)} failed: {r.stderr[-2000:]}")


def build_fixtures(root: Path, big: bool = False) -> dict[str, Path]:
    """The valid inputs every case starts from (compiled once per run)."""
    root.mkdir(parents=True, exist_ok=True)
    fx: dict[str, Path] = {}
    fx["mlp.onnx"] = save_onnx(mlp(), root / "mlp.onnx")
    rng = np.random.default_rng(0)
    np.savez(root / "mlp.npz", x=rng.uniform(0, 1, (24, 6)).astype(np.float32), y=rng.integers(0, 3, 24))
    fx["mlp.npz"] = root / "mlp.npz"
    run_snnc(["compile", "mlp.onnx", "-o", "mlp.snnc"], root)
    fx["mlp.snnc"] = root / "mlp.snnc"
    shutil.copyfile(EXAMPLES / "qcfs_cnn.onnx", root / "cnn.onnx")
    fx["cnn.onnx"] = root / "cnn.onnx"
    z = np.load(EXAMPLES / "test.npz")
    np.savez(root / "digits.npz", x=z["x"][:24], y=z["y"][:24])
    fx["digits.npz"] = root / "digits.npz"
    run_snnc(["compile", "cnn.onnx", "-o", "cnn.snnc"], root)
    fx["cnn.snnc"] = root / "cnn.snnc"
    shutil.copyfile(EXAMPLES / "relu_cnn.onnx", root / "relu.onnx")
    fx["relu.onnx"] = root / "relu.onnx"
    c = np.load(EXAMPLES / "calib.npz")
    np.savez(root / "calib.npz", x=c["x"][:32])
    fx["calib.npz"] = root / "calib.npz"
    if big:
        fx["big.onnx"] = save_onnx(mlp(seed=5, n_in=512, hidden=(2048, 2048), n_out=10), root / "big.onnx")
    return fx
