"""Bundles: broken, hostile and tampered ``.snnc`` files (``snnc inspect / verify / simulate``).

Changed bundles are re-sealed (their digest recomputed, as an attacker would) unless the case is about
the digest, so each case reaches the check it is about: the schema, the target's formats, the limits.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

from .build import array_npy, deflated, edit_bundle, first_of, node_entry, npy_bytes, read_raw_bundle, write_zip
from .core import Case, Ctx, Run

B = "b.snnc"


def bundle_run(cmd: str, expect: int = 2, mention: str | None = B, timeout: float = 30.0) -> Run:
    args = {"inspect": ["inspect", B],
            "verify": ["verify", B, "--data", "mlp.npz", "--samples", "4"],
            "simulate": ["simulate", B, "--data", "mlp.npz", "--samples", "2"],
            "stats": ["stats", B, "--data", "mlp.npz", "--samples", "2"],
            "map": ["map", B]}[cmd]
    return Run(args, expect=expect, mention=mention, timeout=timeout)


def edit_case(cid, what, edit, cmd="inspect", reseal=True, expect=2, mention=B, phase2=None, timeout=30.0):
    def make(ctx: Ctx) -> Run:
        ctx.copy("mlp.npz")
        edit_bundle(ctx.fx["mlp.snnc"], ctx.p(B), edit, reseal)
        return bundle_run(cmd, expect, mention, timeout)
    return Case(f"bundle/{cid}", "bundles", what, make, phase2)


def raw_case(cid, what, write, cmd="inspect", expect=2, mention=B, phase2=None, timeout=30.0):
    def make(ctx: Ctx) -> Run:
        ctx.copy("mlp.npz")
        write(ctx)
        return bundle_run(cmd, expect, mention, timeout)
    return Case(f"bundle/{cid}", "bundles", what, make, phase2)


# ---- edits ---------------------------------------------------------------------------------------------
def pop(h):
    return first_of(h, "Population")


def dense(h, i=0):
    return [e for e in h["projections"] if e["type"] == "Dense"][i]


def set_field(getter, field, value):
    def edit(h, a):
        getter(h)["fields"][field] = value
    return edit


def set_array(getter, field, fn):
    def edit(h, a):
        key = getter(h)["arrays"][field]
        a[key] = fn(a[key])
    return edit


def set_top(key, value):
    def edit(h, a):
        h[key] = value
    return edit


def whole_header(value):
    return lambda h, a: value


def _weight_1000(w):
    w = w.astype(np.int64)  # stored narrowed (int8 here): widen first, or 1000 would wrap
    w.flat[0] = 1000
    return w


def _weight_within_range(w):
    w = w.copy()
    w.flat[0] = w.flat[0] + (1 if w.flat[0] < 100 else -1)
    return w


def _missing_extra(h, a):
    del a["extra/onnx_model"]
    h.get("members", {}).pop("extra/onnx_model", None)


def _missing_array(h, a):
    key = pop(h)["arrays"]["threshold"]
    del a[key]


def _unexpected_member(h, a):
    a["evil/payload"] = np.arange(10)


def _dup_names(h, a):
    h["nodes"][1]["fields"]["name"] = h["nodes"][0]["fields"]["name"]


def _dangling_projection(h, a):
    dense(h)["fields"]["source"] = "nobody"


def _no_target(h, a):
    del h["metadata"]["target"]


def _target_state_80(h, a):
    h["metadata"]["target"]["numeric"]["state_bits"] = 80


def _target_weight_bits_32(h, a):
    h["metadata"]["target"]["numeric"]["weight_bits"] = 32
    w = dense(h)["arrays"]["weight"]
    a[w] = _weight_1000(a[w])


def _readout_scale(v):
    return set_field(lambda h: first_of(h, "Readout"), "scale", v)


# ---- raw writers ---------------------------------------------------------------------------------------
def _members(ctx):
    h, a = read_raw_bundle(ctx.fx["mlp.snnc"])
    return h, a


def _write_header_bytes(data: bytes, keep_arrays=True):
    def write(ctx):
        h, a = _members(ctx)
        members = [("__header__.npy", array_npy(np.frombuffer(data, np.uint8)))]
        if keep_arrays:
            members += [(f"{k}.npy", array_npy(v)) for k, v in a.items()]
        write_zip(ctx.p(B), members)
    return write


def _header_text_edit(fn):
    """Rewrite the header's JSON text with ``fn(text)`` (for what json.dumps cannot write); not re-sealed."""
    def write(ctx):
        h, a = _members(ctx)
        text = fn(json.dumps(h))
        members = [("__header__.npy", array_npy(np.frombuffer(text.encode(), np.uint8)))]
        members += [(f"{k}.npy", array_npy(v)) for k, v in a.items()]
        write_zip(ctx.p(B), members)
    return write


def _deep_metadata(ctx):
    return _header_text_edit(lambda t: t.replace('"metadata": {', '"metadata": {"deep": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1))(ctx)


def _nan_metadata(ctx):
    return _header_text_edit(lambda t: t.replace('"metadata": {', '"metadata": {"bad": NaN, ', 1))(ctx)


def _dup_key(ctx):
    return _header_text_edit(lambda t: t.replace('"timesteps": ', '"timesteps": 1000000000, "timesteps": ', 1))(ctx)


def _object_member(ctx):
    h, a = _members(ctx)
    key = pop(h)["arrays"]["threshold"]
    members = [("__header__.npy", array_npy(np.frombuffer(json.dumps(h).encode(), np.uint8)))]
    members += [(f"{k}.npy", array_npy(np.array([{"x": 1}] * 8, dtype=object) if k == key else v)) for k, v in a.items()]
    write_zip(ctx.p(B), members)


def _lying_member(ctx):
    h, a = _members(ctx)
    key = pop(h)["arrays"]["threshold"]
    members = [("__header__.npy", array_npy(np.frombuffer(json.dumps(h).encode(), np.uint8)))]
    members += [(f"{k}.npy", npy_bytes("<i8", (10 ** 9,), b"\0" * 64) if k == key else array_npy(v))
                for k, v in a.items()]
    write_zip(ctx.p(B), members)


def _float_header(ctx):
    h, a = _members(ctx)
    hb = np.frombuffer(json.dumps(h).encode(), np.uint8).astype(np.float32)
    write_zip(ctx.p(B), [("__header__.npy", array_npy(hb))] + [(f"{k}.npy", array_npy(v)) for k, v in a.items()])


def _many_members(ctx):
    h, a = _members(ctx)
    with zipfile.ZipFile(ctx.p(B), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__header__.npy", array_npy(np.frombuffer(json.dumps(h).encode(), np.uint8)))
        for k, v in a.items():
            zf.writestr(f"{k}.npy", array_npy(v))
        for i in range(100_000):
            zf.writestr(f"junk/{i}.npy", b"")


def _huge_header(ctx):
    """A 70 MB header (a long metadata string) that compresses to a few hundred KB."""
    h, a = _members(ctx)
    h["metadata"]["padding"] = "A" * (70 << 20)
    from .build import write_raw_bundle

    write_raw_bundle(ctx.p(B), h, a)


def _zip_bomb_extra(ctx):
    """The embedded model replaced by 2 GiB of zeros (a ~2 MB file): declared, digested and sealed."""
    h, a = _members(ctx)
    n = 2 << 30
    chunk = bytes(1 << 22)
    if isinstance(h.get("version"), int) and h["version"] >= 2:
        from snnc.ir.digest import header_digest, member_entry
        sha = hashlib.sha256()
        for _ in range(n // len(chunk)):
            sha.update(chunk)
        h["members"] = {k: member_entry(v) for k, v in a.items() if k != "extra/onnx_model"}
        h["members"]["extra/onnx_model"] = {"dtype": "|u1", "shape": [n], "sha256": sha.hexdigest()}
        h["digest"] = header_digest(h)
    with zipfile.ZipFile(ctx.p(B), "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__header__.npy", array_npy(np.frombuffer(json.dumps(h).encode(), np.uint8)))
        for k, v in a.items():
            if k != "extra/onnx_model":
                zf.writestr(f"{k}.npy", array_npy(v))
        with zf.open(deflated("extra/onnx_model.npy"), "w", force_zip64=True) as out:
            out.write(npy_bytes("|u1", (n,), b""))
            for _ in range(n // len(chunk)):
                out.write(chunk)


def _fifo(ctx):
    os.mkfifo(ctx.p(B))


BUNDLE_CASES = [
    edit_case("valid-inspect", "the valid bundle, inspect", lambda h, a: None, expect=0, mention=None),
    edit_case("valid-verify", "the valid bundle, verify", lambda h, a: None, "verify", expect=0, mention=None),
    raw_case("empty-file", "a 0-byte bundle", lambda ctx: ctx.p(B).write_bytes(b"")),
    raw_case("random-bytes", "random bytes", lambda ctx: ctx.p(B).write_bytes(np.random.default_rng(0).bytes(5000))),
    raw_case("missing", "the bundle does not exist", lambda ctx: None),
    raw_case("directory", "the bundle path is a folder", lambda ctx: ctx.p(B).mkdir()),
    raw_case("fifo", "the bundle path is a FIFO", _fifo, timeout=20),
    raw_case("zip-no-header", "a zip without the header member",
             lambda ctx: write_zip(ctx.p(B), [("x.npy", array_npy(np.zeros(3)))])),
    raw_case("header-not-json", "the header is not JSON", _write_header_bytes(b"{not json")),
    raw_case("header-not-utf8", "the header is not UTF-8", _write_header_bytes(b"\xff\xfe{}")),
    raw_case("header-float-array", "the header member is a float32 array", _float_header),
    edit_case("header-list", "the header is []", whole_header([])),
    edit_case("header-string", "the header is a string", whole_header("snnc")),
    edit_case("nodes-string", "nodes is \"abc\"", set_top("nodes", "abc")),
    edit_case("node-is-list", "a node is a list", lambda h, a: h["nodes"].__setitem__(1, [1, 2, 3])),
    edit_case("neuron-bogus", "neuron {\"bogus\": 1}", set_field(pop, "neuron", {"bogus": 1})),
    edit_case("neuron-unknown-type", "neuron type Izhikevich", set_field(pop, "neuron", {"type": "Izhikevich"})),
    edit_case("neuron-field-string", "MultiThreshold n \"4\"",
              set_field(pop, "neuron", {"type": "MultiThreshold", "fields": {"n": "4"}})),
    edit_case("timesteps-list", "timesteps [4]", set_top("timesteps", [4])),
    edit_case("timesteps-4.9", "timesteps 4.9", set_top("timesteps", 4.9)),
    edit_case("timesteps-string", "timesteps \"4\"", set_top("timesteps", "4")),
    edit_case("timesteps-zero", "timesteps 0", set_top("timesteps", 0)),
    edit_case("timesteps-true", "timesteps true", set_top("timesteps", True)),
    edit_case("timesteps-1e9", "timesteps 10^9, simulate", set_top("timesteps", 10 ** 9), "simulate", timeout=30),
    edit_case("timesteps-2^70", "timesteps 2^70", set_top("timesteps", 2 ** 70)),
    edit_case("version-string", "version \"1\" (a string)", set_top("version", "1"), mention="version"),
    edit_case("version-99", "version 99", set_top("version", 99), mention="version"),
    edit_case("format-other", "format \"zip\"", set_top("format", "zip")),
    edit_case("unknown-top-key", "an unknown header key", set_top("evil", 1), mention="evil"),
    edit_case("unknown-node-type", "a node of type Bogus", lambda h, a: h["nodes"][1].__setitem__("type", "Bogus"),
              mention="Bogus"),
    edit_case("unknown-field", "a Population field 'gain'", set_field(pop, "gain", 3), mention="gain"),
    edit_case("shape-string", "shape \"888\"", set_field(pop, "shape", "888"), mention="shape"),
    edit_case("shape-zero", "shape [0]", set_field(pop, "shape", [0]), mention="shape"),
    edit_case("shape-huge", "a population of shape (10^6, 10^6)", set_field(pop, "shape", [10 ** 6, 10 ** 6])),
    edit_case("exponent-string", "exponent \"7\"", set_field(dense, "exponent", "7"), mention="exponent"),
    edit_case("exponent-float", "exponent 2.5", set_field(dense, "exponent", 2.5), mention="exponent"),
    edit_case("input-scale-string", "input scale \"0.1\"", set_field(lambda h: h["nodes"][0], "scale", "0.1"),
              mention="scale"),
    edit_case("readout-scale-negative", "readout scale -1", _readout_scale(-1.0), mention="scale"),
    edit_case("pop-timesteps-1e9", "a population's own timesteps 10^9", set_field(pop, "timesteps", 10 ** 9),
              "simulate", timeout=15),
    edit_case("coding-unknown", "coding type Phase", set_top("coding", {"type": "PhaseCoding", "fields": {}})),
    edit_case("duplicate-names", "two nodes with one name", _dup_names),
    edit_case("dangling-projection", "a projection from a node that does not exist", _dangling_projection),
    edit_case("missing-array", "an array member missing", _missing_array),
    edit_case("missing-extra", "the embedded model listed but missing (verify)", _missing_extra, "verify"),
    edit_case("unexpected-member", "an extra member nobody declares", _unexpected_member),
    raw_case("object-member", "a member holding pickled objects", _object_member),
    raw_case("lying-member", "a member declaring 10^9 int64 with 64 bytes", _lying_member),
    raw_case("deep-nesting", "metadata nested 100,000 levels", _deep_metadata),
    raw_case("nan-in-header", "a NaN literal in the header", _nan_metadata),
    raw_case("duplicate-key", "the header sets timesteps twice", _dup_key),
    raw_case("100k-members", "a bundle with 100,000 members", _many_members, timeout=60),
    raw_case("huge-header", "a 70 MB header (compresses to ~100 KB)", _huge_header, timeout=60),
    raw_case("bomb-extra-inspect", "a 2 MB bundle whose model decompresses to 2 GiB, inspect", _zip_bomb_extra,
             expect=0, mention=None, timeout=60),
    raw_case("bomb-extra-verify", "a 2 MB bundle whose model decompresses to 2 GiB, verify", _zip_bomb_extra,
             "verify", mention="onnx_model", timeout=60),
    # the target's formats (what the compiler proves: weights, exponents, bias, threshold, state)
    edit_case("weight-1000", "a weight of 1000 (8-bit target)", set_array(dense, "weight", _weight_1000), "verify",
              mention="weight"),
    edit_case("exponent-9", "exponent 9 (the target allows 0..7)", set_field(dense, "exponent", 9), "verify",
              mention="exponent"),
    edit_case("bias-1e9", "a bias of 10^9", set_array(pop, "bias", lambda b: np.full_like(b, 10 ** 9)), "verify",
              mention="bias"),
    edit_case("threshold-2^30", "a threshold of 2^30", set_array(pop, "threshold", lambda t: np.full_like(t, 2 ** 30)),
              "verify", mention="threshold"),
    edit_case("threshold-2^62", "a threshold of 2^62 (int64 overflow in T*theta)",
              set_array(pop, "threshold", lambda t: np.full_like(t, 2 ** 62)), "simulate", mention="threshold"),
    edit_case("v0-2^40", "an initial potential of 2^40", set_array(pop, "v0", lambda v: np.full_like(v, 2 ** 40)),
              "verify", mention="v0"),
    edit_case("weight-float-1e30", "a float64 weight of 1e30",
              set_array(dense, "weight", lambda w: np.where(np.arange(w.size).reshape(w.shape) == 0, 1e30, w.astype(np.float64))),
              "verify", mention="weight"),
    edit_case("weight-int32", "weights stored as int32 (since issue 16 a valid narrow storage: the same weights)",
              set_array(dense, "weight", lambda w: w.astype(np.int32)), expect=0, mention=None),
    edit_case("target-state-80", "the stored target claims 80-bit state", _target_state_80, "verify",
              mention="state_bits"),
    edit_case("target-weight-bits-32", "the stored target claims 32-bit weights, a weight 1000",
              _target_weight_bits_32, "verify", mention="weight_bits"),
    edit_case("weight-changed-in-range", "one weight changed by 1 (within range), not re-sealed",
              set_array(dense, "weight", _weight_within_range), "verify", reseal=False, mention="digest"),
    edit_case("threshold-changed-in-range", "a threshold changed by 1, not re-sealed",
              set_array(pop, "threshold", lambda t: t + 1), "verify", reseal=False, mention="digest"),
    edit_case("metadata-changed", "the recorded source sha256 changed, not re-sealed",
              lambda h, a: h["metadata"]["source_model"].__setitem__("sha256", "0" * 64), "inspect", reseal=False,
              mention="digest"),
]
