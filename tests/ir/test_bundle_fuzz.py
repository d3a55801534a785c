"""Fuzzing the bundle loader: mutated bundles must load or fail with one ``BundleError`` line.

Three bounded hypothesis searches (they run in CI, derandomized): byte-level damage to a bundle file;
structural damage to its header (any value replaced by another JSON value, keys removed or added),
re-sealed so the schema is what is tested, not only the digest; and damage to its arrays (values,
dtypes, shapes), re-sealed. What is never acceptable is any other exception (KeyError, TypeError,
OverflowError, RecursionError, MemoryError, a raw zipfile/numpy error...), a multi-line message, a slow
example or memory growth.
"""

import io
import json
import resource
import time
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from snnc.ir import BundleError, read_bundle
from snnc.ir.bundle import HEADER_KEY, to_bytes
from snnc.ir.digest import seal


def _nets():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("snnc_ir_test_nodes_fuzz", Path(__file__).with_name("test_nodes.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_m = _nets()
BASES = [to_bytes(_m.small_net(), {"onnx_model": np.frombuffer(b"model", np.uint8)}), to_bytes(_m.small_diff_net()),
         to_bytes(_m.small_graded_net()), to_bytes(_m.small_mixed_net())]
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
SLOW = 5.0


def _members(raw: bytes):
    z = np.load(io.BytesIO(raw), allow_pickle=False)
    arrays = {k: z[k] for k in z.files}
    return json.loads(bytes(arrays.pop(HEADER_KEY)).decode()), arrays


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def _write(path, header, arrays):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{HEADER_KEY}.npy", _npy(np.frombuffer(json.dumps(header).encode(), np.uint8)))
        for k, v in arrays.items():
            zf.writestr(f"{k}.npy", _npy(v))


def _load_or_bundle_error(path):
    t0 = time.perf_counter()
    try:
        b = read_bundle(path)
        for k in b.extras:
            b.extras[k]
    except BundleError as e:
        msg = str(e)
        assert msg.strip() and "\n" not in msg, f"an error must be one line: {msg!r}"
    assert time.perf_counter() - t0 < SLOW, "loading a small bundle must be fast"


JSON = st.recursive(st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=False)
                    | st.text(max_size=8), lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)


def _paths(obj, prefix=()):
    """Every (path) into a JSON value."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _delete(obj, path):
    for k in path[:-1]:
        obj = obj[k]
    del obj[path[-1]]


@SETTINGS
@given(data=st.data())
def test_byte_damage(tmp_path, data):
    b = bytearray(data.draw(st.sampled_from(BASES)))
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        i = data.draw(st.integers(0, len(b) - 1))
        if kind == "flip":
            b[i] = data.draw(st.integers(0, 255))
        elif kind == "cut":
            del b[i:i + data.draw(st.integers(1, 64))]
        else:
            b[i:i] = bytes(data.draw(st.lists(st.integers(0, 255), min_size=1, max_size=8)))
        if not b:
            break
    p = tmp_path / "b.snnc"
    p.write_bytes(bytes(b))
    _load_or_bundle_error(p)


@SETTINGS
@given(data=st.data())
def test_header_damage_resealed(tmp_path, data):
    header, arrays = _members(data.draw(st.sampled_from(BASES)))
    header.pop("members", None)
    header.pop("digest", None)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(header) if p]
        path = data.draw(st.sampled_from(paths))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        try:
            if action == "replace":
                _set(header, path, data.draw(JSON))
            elif action == "delete":
                _delete(header, path)
            else:
                parent = header
                for k in path[:-1]:
                    parent = parent[k]
                if isinstance(parent, dict):
                    parent[data.draw(st.text(max_size=6))] = data.draw(JSON)
                elif isinstance(parent, list):
                    parent.append(data.draw(JSON))
        except (KeyError, IndexError, TypeError):
            continue  # the path vanished with an earlier mutation
    if isinstance(header, dict):
        try:
            seal(header, arrays)
        except (TypeError, ValueError):
            pass  # not JSON-writable as canonical JSON: stays unsealed (the digest check refuses it)
    p = tmp_path / "b.snnc"
    _write(p, header, arrays)
    _load_or_bundle_error(p)


DTYPES = [np.int64, np.int32, np.int8, np.uint8, np.float64, np.float32, np.bool_, ">i8"]


@SETTINGS
@given(data=st.data())
def test_array_damage_resealed(tmp_path, data):
    header, arrays = _members(data.draw(st.sampled_from(BASES)))
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(sorted(arrays)))
        a = arrays[key]
        kind = data.draw(st.sampled_from(["value", "dtype", "shape", "huge", "empty"]))
        if kind == "value" and a.size:
            a = a.copy()
            a.reshape(-1)[data.draw(st.integers(0, a.size - 1))] = data.draw(
                st.integers(int(np.iinfo(a.dtype).min), int(np.iinfo(a.dtype).max)) if a.dtype.kind in "iu"
                else st.floats(allow_nan=True))
        elif kind == "dtype":
            a = a.astype(data.draw(st.sampled_from(DTYPES)))
        elif kind == "shape":
            a = a.reshape(-1)[: data.draw(st.integers(0, max(a.size, 1)))]
            a = a.reshape((1,) + a.shape) if data.draw(st.booleans()) else a
        elif kind == "huge":
            a = np.zeros(data.draw(st.integers(1, 4096)), np.int64)
        else:
            a = a.reshape(-1)[:0]
        arrays[key] = a
    seal(header, arrays)
    p = tmp_path / "b.snnc"
    _write(p, header, arrays)
    _load_or_bundle_error(p)


def test_memory_stays_bounded_over_the_fuzz():
    """Run after the searches above (same process): the peak RSS of this test process stays moderate."""
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < 4096, f"peak RSS {peak_mb:.0f} MB"
