"""Golden networks: the compiled IR of every kind of model snnc takes, as digests.

A refactoring must leave every compiled network identical, array for array and field for field
(issue 15). ``digest(net)`` hashes the IR (nodes, projections, T, coding: every field and every
array with its dtype and shape), the placement (cores, chips; timings excluded) and the per-layer
records separately, so a change that only touches the metadata's layout is told apart from one
that changes the network.

Regenerate (only when a change is *meant* to move a network, and say why in the commit):

    .venv/bin/python tests/integration/golden_networks.py --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = HERE / "golden_networks.json"
EX = REPO / "examples" / "digits"


def _canon(v):
    """JSON-able canonical form: arrays as (dtype, shape, sha256), dict keys sorted by json.dumps. An
    integer array is hashed as its int64 values (the IR holds weights as int32 where they fit: the
    values, not the storage, are what must not move)."""
    if isinstance(v, np.ndarray):
        a = np.ascontiguousarray(v, np.int64 if v.dtype.kind in "iu" else None)
        return {"dtype": str(a.dtype), "shape": list(a.shape), "sha256": hashlib.sha256(a.tobytes()).hexdigest()}
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return repr(float(v))  # exact: repr round-trips a float
    return v


def _h(obj) -> str:
    return hashlib.sha256(json.dumps(_canon(obj), sort_keys=True).encode()).hexdigest()


def _drop_timing(d):
    if isinstance(d, dict):
        return {k: _drop_timing(v) for k, v in d.items() if k not in ("seconds", "time", "timings")}
    if isinstance(d, list):
        return [_drop_timing(v) for v in d]
    return d


def digest(net) -> dict:
    """{"ir": ..., "placement": ..., "layers": ...} sha256 digests of a compiled network."""
    import dataclasses

    def obj(o):
        return {"type": type(o).__name__, **{f.name: getattr(o, f.name) for f in dataclasses.fields(o)}}

    def neuron_as_dict(d):
        n = d.get("neuron")
        if n is not None:
            d["neuron"] = {"type": type(n).__name__, **dataclasses.asdict(n)}
        return d

    ir = {
        "timesteps": net.timesteps,
        "coding": {"type": type(net.coding).__name__, **dataclasses.asdict(net.coding)},
        "nodes": [neuron_as_dict(obj(n)) for n in net.nodes],
        "projections": [obj(p) for p in net.projections],
    }
    md = net.metadata
    return {"ir": _h(ir), "placement": _h(_drop_timing(md.get("placement"))), "layers": _h(md.get("layers"))}


# ---- the models ---------------------------------------------------------------------------------
def _tests_module(name: str, rel: str):
    import importlib.util

    sys.path.insert(0, str(REPO / "tests"))
    spec = importlib.util.spec_from_file_location(name, REPO / "tests" / rel)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def cases(tmp: Path):
    """(case name, model path, CompileConfig kwargs) for every golden network; builds the generated
    models into ``tmp``."""
    import onnx

    sys.path.insert(0, str(REPO / "tests"))
    from snnc_testutil import brevitas_cnn, export_brevitas, make_mlp_onnx

    out = []
    for q in ("floor", "round", "ceil"):
        for L in (2, 4, 8):
            out.append((f"zoo_{q}_L{L}", EX / "zoo" / f"{q}_L{L}.onnx", {}))
    out += [
        ("qcfs_cnn", EX / "qcfs_cnn.onnx", {}),
        ("qcfs_cnn_dual_T2", EX / "qcfs_cnn.onnx", {"neuron": "dual-threshold", "timesteps": 2}),
        ("qcfs_cnn_v0zero_T8", EX / "qcfs_cnn.onnx", {"v0": "zero", "timesteps": 8}),
        ("qcfs_cnn_loihi2", EX / "qcfs_cnn.onnx", {"target": "loihi2"}),
        ("resnet_digits", EX / "resnet_digits.onnx", {}),
        ("resnet_digits_pipelined", EX / "resnet_digits.onnx", {"schedule": "pipelined"}),
    ]
    calib = str(EX / "calib.npz")
    tf = {"neuron": "multi-threshold", "calibration_data": calib, "schedule": "pipelined"}
    out += [
        ("relu_cnn_mt4_diff_T4", EX / "relu_cnn.onnx", {**tf, "mt_n": 4, "coding": "differential", "timesteps": 4}),
        ("relu_cnn_mt4_rate_T4", EX / "relu_cnn.onnx", {**tf, "mt_n": 4, "coding": "rate", "timesteps": 4}),
        ("relu_cnn_mt1_rate_T8_layer", EX / "relu_cnn.onnx",
         {**tf, "mt_n": 1, "timesteps": 8, "threshold_scope": "layer", "thresholds": "percentile:99.9"}),
        ("relu_maxpool_cnn_mt4_diff_T4", EX / "relu_maxpool_cnn.onnx",
         {**tf, "mt_n": 4, "coding": "differential", "timesteps": 4}),
        ("relu_maxpool_cnn_mt4_rate_T2", EX / "relu_maxpool_cnn.onnx", {**tf, "mt_n": 4, "timesteps": 2}),
        ("relu_resnet_mt4_diff_T4_F8", EX / "relu_resnet.onnx",
         {**tf, "mt_n": 4, "coding": "differential", "timesteps": 4, "frac_bits": 8}),
    ]
    # QDQ (onnx.helper-built, as onnxruntime's quantize_static and Brevitas' QCDQ write them)
    qdq = _tests_module("snnc_golden_qdq", "integration/test_qdq.py")
    # issue 13: an L = 255 model at T = 255 leaves Loihi's 24-bit state no room for its weights (they rounded
    # to 0) and is now refused; T = 2 keeps all 8 weight bits (rates rescaled). (A profile file with a wider
    # state would put its temporary path into the placement record.)
    for name, model, kw in [
        ("qdq_mlp_uint8_pc", qdq.make_qdq_mlp(act="uint8", per_channel=True), {"timesteps": 2}),
        ("qdq_mlp_int8_clip", qdq.make_qdq_mlp(act="int8", per_channel=False, clip=(0, 3)), {}),
        ("qdq_mlp_uint8_intinit_clip15", qdq.make_qdq_mlp(act="uint8", per_channel=True, int_init=True, clip=(0, 15)),
         {}),
        ("qdq_cnn", qdq.make_qdq_cnn(), {}),
    ]:
        p = tmp / f"{name}.onnx"
        onnx.save(model, p)
        out.append((name, p, kw))
    # mixed quantization levels
    for name, Ls in (("mixed_mlp_8_3", (8, 3)), ("mixed_mlp_2_5_3", (2, 5, 3))):
        p = tmp / f"{name}.onnx"
        onnx.save(make_mlp_onnx(seed=1, L=list(Ls), hidden=(12, 8, 6)[:len(Ls)]), p)
        out.append((name, p, {}))
    # Brevitas QONNX and QCDQ exports (one L and mixed 4/2 bits)
    try:
        import brevitas  # noqa: F401
        import onnxoptimizer  # noqa: F401
    except ImportError:
        return out
    for bits in ((3, 3), (4, 2)):
        for fmt in ("qonnx", "qcdq"):
            net, torch = brevitas_cnn(bits)
            p = tmp / f"brevitas_{fmt}_{bits[0]}{bits[1]}.onnx"
            export_brevitas(net, torch, fmt, p)
            out.append((f"brevitas_{fmt}_{bits[0]}{bits[1]}", p, {}))
    return out


def compute(tmp: Path) -> dict:
    from snnc.compiler.api import compile_model
    from snnc.compiler.config import CompileConfig
    from snnc.compiler.tools.runner import reference_runner

    res = {}
    for name, path, kw in cases(tmp):
        net, _ = compile_model(path, CompileConfig(**kw), runner=reference_runner)
        res[name] = digest(net)
    return res


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        got = compute(Path(d))
    if "--write" in sys.argv:
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN} ({len(got)} networks)")
    else:
        want = json.loads(GOLDEN.read_text())
        bad = {k: (want.get(k), v) for k, v in got.items() if want.get(k) != v}
        print(json.dumps(bad, indent=1) if bad else f"all {len(got)} networks identical")
