"""The bundle codec as an adversary sees it: deterministic bytes, the digest, the schema (no coercion),
the limits checked before anything is decompressed, lazy extras."""

import hashlib
import io
import json
import struct
import zipfile

import numpy as np
import pytest

from snnc.ir import BundleError, load, load_with_extras, read_bundle, save
from snnc.ir.bundle import HEADER_KEY, VERSION, load_header, to_bytes
from snnc.ir.digest import header_digest, seal
from snnc.ir.limits import Limits


def _nets():
    """The IR test networks of test_nodes.py (every node type, neuron model and coding)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("snnc_ir_test_nodes", Path(__file__).with_name("test_nodes.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_m = _nets()
small_net, small_diff_net, small_graded_net, small_mixed_net = (_m.small_net, _m.small_diff_net, _m.small_graded_net,
                                                                _m.small_mixed_net)


def members(path):
    """(header dict, {key: array}) read with numpy alone."""
    z = np.load(path, allow_pickle=False)
    arrays = {k: z[k] for k in z.files}
    return json.loads(bytes(arrays.pop(HEADER_KEY)).decode()), arrays


def npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=True)
    return buf.getvalue()


def npy_header(descr, shape):
    hdr = repr({"descr": descr, "fortran_order": False, "shape": tuple(shape)}).encode()
    hdr += b" " * (64 - (10 + len(hdr) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr


def write(path, header, arrays, reseal=True, header_bytes=None):
    if reseal:
        seal(header, arrays)
    hb = header_bytes if header_bytes is not None else json.dumps(header).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{HEADER_KEY}.npy", npy(np.frombuffer(hb, np.uint8)))
        for k, v in arrays.items():
            zf.writestr(f"{k}.npy", npy(v))
    return path


@pytest.fixture
def bundle(tmp_path):
    net = small_net()
    net.metadata = {"note": "test", "placement": {"cores": 3, "seconds": {"partition": 0.25}}}
    return save(net, tmp_path / "n.snnc", {"onnx_model": np.frombuffer(b"model bytes", np.uint8)})


def test_identical_networks_give_identical_bytes_and_timings_are_not_written(tmp_path):
    a, b = small_net(), small_net()
    a.metadata["placement"] = {"cores": 3, "seconds": {"partition": 0.1}}
    b.metadata["placement"] = {"cores": 3, "seconds": {"partition": 0.9}}
    pa, pb = save(a, tmp_path / "a.snnc"), save(b, tmp_path / "b.snnc")
    assert pa.read_bytes() == pb.read_bytes() == to_bytes(a)
    h, _ = members(pa)
    assert h["metadata"]["placement"] == {"cores": 3}
    for make in (small_diff_net, small_graded_net, small_mixed_net):
        assert to_bytes(make()) == to_bytes(make())


def test_the_digest_seals_header_and_every_array(bundle, tmp_path):
    h, a = members(bundle)
    assert h["version"] == VERSION and h["digest"] == header_digest(h)
    assert set(h["members"]) == set(a)
    for k, v in a.items():
        assert h["members"][k]["sha256"] == hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
    # a weight changed within range, not re-sealed
    key = h["projections"][0]["arrays"]["weight"]
    a[key] = a[key].copy()
    a[key].flat[0] += 1
    with pytest.raises(BundleError, match="does not match its digest"):
        load(write(tmp_path / "w.snnc", dict(h), a, reseal=False))
    # a header field changed, not re-sealed
    h2, a2 = members(bundle)
    h2["timesteps"] = 5
    with pytest.raises(BundleError, match="header does not match its digest"):
        load(write(tmp_path / "t.snnc", h2, a2, reseal=False))
    # the embedded model changed: found when it is read
    h3, a3 = members(bundle)
    a3["extra/onnx_model"] = np.frombuffer(b"MODEL BYTES", np.uint8)
    _, extras = load_with_extras(write(tmp_path / "m.snnc", h3, a3, reseal=False))
    with pytest.raises(BundleError, match="onnx_model.*does not match its digest"):
        extras["onnx_model"]


@pytest.mark.parametrize("edit,msg", [
    (lambda h: h.__setitem__("timesteps", 4.9), "timesteps must be an integer, got 4.9"),
    (lambda h: h.__setitem__("timesteps", "4"), "timesteps must be an integer, got the string '4'"),
    (lambda h: h.__setitem__("timesteps", True), "timesteps must be an integer, got true"),
    (lambda h: h.__setitem__("timesteps", [4]), "timesteps must be an integer, got a list"),
    (lambda h: h.__setitem__("timesteps", 10 ** 9), "timesteps must be in 1..65536"),
    (lambda h: h["projections"][0]["fields"].__setitem__("exponent", "7"), "exponent must be an integer"),
    (lambda h: h["nodes"][1]["fields"].__setitem__("shape", "888"), "shape must be a list"),
    (lambda h: h["nodes"][1]["fields"].__setitem__("shape", [2, 3.0, 3]), r"shape\[1\] must be an integer"),
    (lambda h: h["nodes"][1]["fields"].__setitem__("neuron", {"bogus": 1}), "unknown key"),
    (lambda h: h["nodes"][1]["fields"].__setitem__("neuron", {"type": "Izh"}), "unknown type 'Izh'"),
    (lambda h: h["nodes"][0]["fields"].__setitem__("scale", "0.5"), "scale must be a number"),
    (lambda h: h["nodes"][1]["fields"].__setitem__("gain", 2), "unknown key.*gain"),
    (lambda h: h["nodes"].__setitem__(1, [1, 2]), r"nodes\[1\] must be a JSON object, got a list"),
    (lambda h: h.__setitem__("nodes", "abc"), "nodes must be a list"),
    (lambda h: h.__setitem__("evil", 1), "unknown key.*evil"),
    (lambda h: h.pop("extra"), "lacks.*extra"),
    (lambda h: h.__setitem__("version", "1"), "version must be an integer, got the string '1'"),
    (lambda h: h.__setitem__("version", 1), f"is bundle version 1; this snnc reads version {VERSION}"),
    (lambda h: h.__setitem__("coding", {"type": "PhaseCoding"}), "unknown type 'PhaseCoding'"),
    (lambda h: h["nodes"][1].__setitem__("type", "Bogus"), "unknown type 'Bogus'"),
    (lambda h: h["nodes"][2]["fields"].__setitem__("name", h["nodes"][1]["fields"]["name"]), "duplicate"),
])
def test_the_schema_refuses_without_coercion_even_when_resealed(bundle, tmp_path, edit, msg):
    h, a = members(bundle)
    edit(h)
    p = write(tmp_path / "bad.snnc", h, a, reseal=isinstance(h.get("version"), int))
    with pytest.raises(BundleError, match=msg) as e:
        load(p)
    assert "\n" not in str(e.value) and "bad.snnc" in str(e.value)


@pytest.mark.parametrize("field,arr,msg", [
    ("weight", lambda w: w.astype(np.float64), r"weight must be stored as one of int8, int16, int32, int64 \(little-endian\), the bundle declares <f8"),
    ("weight", lambda w: w.astype(np.uint16), r"weight must be stored as one of .*declares <u2"),
    ("weight", lambda w: w.astype(">i4"), r"weight must be stored as one of .*declares >i4"),
])
def test_arrays_must_have_the_schema_dtype(bundle, tmp_path, field, arr, msg):
    h, a = members(bundle)
    key = h["projections"][0]["arrays"][field]
    a[key] = arr(a[key])
    with pytest.raises(BundleError, match=msg):
        load(write(tmp_path / "bad.snnc", h, a))


def test_node_arrays_stay_int64(bundle, tmp_path):
    """Only a projection's weights may be stored narrowed; a threshold stored as int32 is refused."""
    h, a = members(bundle)
    node = next(n for n in h["nodes"] if "threshold" in n["arrays"])
    key = node["arrays"]["threshold"]
    a[key] = a[key].astype(np.int32)
    with pytest.raises(BundleError, match=r"threshold must be stored as <i8, the bundle declares <i4"):
        load(write(tmp_path / "bad.snnc", h, a))


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64])
def test_weights_load_from_any_narrow_dtype(bundle, tmp_path, dtype):
    """A weight member stored as int8/16/32/64 loads to the same values, held as int16 (they fit)."""
    h, a = members(bundle)
    key = h["projections"][0]["arrays"]["weight"]
    want = a[key].astype(np.int64)
    a[key] = a[key].astype(dtype)
    net = load(write(tmp_path / "ok.snnc", h, a))
    got = net.projections[0].weight
    assert got.dtype == np.int16 and np.array_equal(got.astype(np.int64), want)


def test_member_table_must_match_the_archive(bundle, tmp_path):
    h, a = members(bundle)
    a["evil/payload"] = np.arange(3)
    with pytest.raises(BundleError, match="no entry uses"):
        load(write(tmp_path / "extra.snnc", h, a))
    h, a = members(bundle)
    seal(h, a)
    del a[h["nodes"][1]["arrays"]["threshold"]]
    with pytest.raises(BundleError, match="members missing"):
        load(write(tmp_path / "missing.snnc", h, a, reseal=False))


def test_strict_json_in_the_header(bundle, tmp_path):
    h, a = members(bundle)
    seal(h, a)
    text = json.dumps(h)
    for bad, msg in [(text.replace('"metadata": {', '"metadata": {"x": NaN, ', 1), "NaN is not a JSON number"),
                     (text.replace('"metadata": {', '"metadata": {"x": 1e400, ', 1), "overflows"),
                     (text.replace('"timesteps": ', '"timesteps": 9, "timesteps": ', 1), "duplicate key"),
                     (text.replace('"metadata": {', '"metadata": {"d": ' + "[" * 50000 + "]" * 50000 + ", ", 1),
                      "nested more than 64 levels"),
                     ("{not json", "corrupt bundle header")]:
        with pytest.raises(BundleError, match=msg):
            load(write(tmp_path / "j.snnc", h, a, reseal=False, header_bytes=bad.encode()))


def test_limits_are_checked_before_decompressing(bundle, tmp_path):
    h, a = members(bundle)
    key = h["nodes"][1]["arrays"]["threshold"]
    # a member whose .npy header lies about its size
    with zipfile.ZipFile(tmp_path / "lie.snnc", "w") as zf:
        zf.writestr(f"{HEADER_KEY}.npy", npy(np.frombuffer(json.dumps(seal(h, a)).encode(), np.uint8)))
        for k, v in a.items():
            zf.writestr(f"{k}.npy", npy(v) if k != key else npy(v)[:-8])
    with pytest.raises(BundleError, match="truncated|holds"):
        load(tmp_path / "lie.snnc")
    # a declared size beyond the budget is refused from the header alone
    tiny = Limits(array_share=1e-9)
    with pytest.raises(BundleError, match="would need .* bytes of memory"):
        load(bundle, tiny)
    with pytest.raises(BundleError, match="at most 2 are allowed"):
        load(bundle, Limits(max_members=2))
    with pytest.raises(BundleError, match="header.* bytes"):
        load(bundle, Limits(max_header_bytes=16))


def test_extras_are_lazy_and_checked(bundle, tmp_path):
    b = read_bundle(bundle)
    assert list(b.extras) == ["onnx_model"] and b.extras.nbytes("onnx_model") == len(b"model bytes")
    assert b.extras.loaded == []  # nothing read until asked for
    assert "onnx_model" in b.extras and "other" not in b.extras and b.extras.loaded == []  # membership reads nothing
    assert bytes(b.extras["onnx_model"]) == b"model bytes" and b.extras.loaded == ["onnx_model"]
    # a 1 GiB embedded model (a ~1 MB file): inspect-style loading never reads it, asking for it is refused
    h, a = members(bundle)
    n = 1 << 30
    chunk = bytes(1 << 22)
    sha = hashlib.sha256()
    for _ in range(n // len(chunk)):
        sha.update(chunk)
    h["members"] = {k: {"dtype": v.dtype.str, "shape": list(v.shape),
                        "sha256": hashlib.sha256(v.tobytes()).hexdigest()} for k, v in a.items()}
    h["members"]["extra/onnx_model"] = {"dtype": "|u1", "shape": [n], "sha256": sha.hexdigest()}
    h["digest"] = header_digest(h)
    p = tmp_path / "bomb.snnc"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{HEADER_KEY}.npy", npy(np.frombuffer(json.dumps(h).encode(), np.uint8)))
        for k, v in a.items():
            if k != "extra/onnx_model":
                zf.writestr(f"{k}.npy", npy(v))
        with zf.open("extra/onnx_model.npy", "w", force_zip64=True) as out:
            out.write(npy_header("|u1", (n,)))
            for _ in range(n // len(chunk)):
                out.write(chunk)
    assert p.stat().st_size < 8 << 20
    net, extras = load_with_extras(p)  # inspect: the network, never the model
    assert net.timesteps == 4 and extras.nbytes("onnx_model") == n
    with pytest.raises(BundleError, match="would need .* bytes of memory"):
        extras["onnx_model"]


def test_load_header_reads_no_array(bundle, monkeypatch):
    from snnc.ir import archive

    calls = []
    real = archive.NpyArchive.read
    monkeypatch.setattr(archive.NpyArchive, "read", lambda self, name, *a, **k: calls.append(name) or real(self, name, *a, **k))
    h = load_header(bundle)
    assert h["format"] == "snnc-bundle" and calls == [HEADER_KEY]


@pytest.mark.parametrize("content,msg", [(b"", "not an snnc bundle"), (b"PK\x05\x06" + b"\0" * 18, "not an snnc bundle"),
                                         (b"junk" * 100, "not an snnc bundle")])
def test_garbage_files(tmp_path, content, msg):
    p = tmp_path / "g.snnc"
    p.write_bytes(content)
    with pytest.raises(BundleError, match=msg):
        load(p)


def test_special_paths_are_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "fifo.snnc")
    with pytest.raises(BundleError, match="FIFO"):
        load(tmp_path / "fifo.snnc")
    (tmp_path / "dir.snnc").mkdir()
    with pytest.raises(BundleError, match="folder"):
        load(tmp_path / "dir.snnc")
    with pytest.raises(BundleError, match="does not exist"):
        load(tmp_path / "missing.snnc")


def test_save_refuses_unsafe_destinations_by_name(tmp_path):
    import os

    (tmp_path / "m.onnx").write_bytes(b"model")
    with pytest.raises(BundleError, match="is the input"):
        save(small_net(), tmp_path / "m.onnx", inputs=[tmp_path / "m.onnx"])
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(BundleError, match="FIFO"):
        save(small_net(), tmp_path / "pipe")
    save(small_net(), tmp_path / "a" / "b.snnc", make_parents=True)
    assert load(tmp_path / "a" / "b.snnc").timesteps == 4


def test_weights_are_stored_narrowed_and_load_back(tmp_path):
    """A bundle stores each weight array in the narrowest dtype that holds it (int8 here) and loading gives
    the network's weights back, value for value."""
    net = small_net()
    h, a = members(save(net, tmp_path / "n.snnc"))
    for p in h["projections"]:
        arr = a[p["arrays"]["weight"]]
        assert arr.dtype == np.int8
        assert h["members"][p["arrays"]["weight"]]["dtype"] == "|i1"
    back = load(tmp_path / "n.snnc")
    for p, q in zip(net.projections, back.projections):
        assert np.array_equal(p.weight.astype(np.int64), q.weight.astype(np.int64)) and q.weight.dtype == p.weight.dtype
