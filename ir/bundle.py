"""The versioned single-file bundle (``.snnc``).

A bundle is a NumPy ``.npz`` archive, so it loads with numpy alone::

    z = numpy.load("m.snnc")          # allow_pickle stays False
    header = json.loads(bytes(z["__header__"]).decode())

``header`` holds ``format`` ("snnc-bundle"), ``version``, the network's scalars, the metadata and,
for every node and projection, ``{"type": class name, "fields": {...}, "arrays": {field: key}}``.
Array fields live in the archive under ``key``; ``members`` declares every member's dtype, shape and
SHA-256 and ``digest`` seals the header (``snnc.ir.digest``). (De)serialization is generic, keyed by
class name: a new node type only has to be registered in ``nodes.NODE_TYPES``/``projections.PROJECTION_TYPES``.

Writing (``save``) is atomic and safe (``snnc.ir.atomic``) and deterministic: identical networks give
identical bytes. Wall-clock timings are not part of a network and are not written: any metadata key
named ``seconds`` or ``timings`` is left out.

Reading (``read_bundle``) trusts nothing: the zip directory is checked before anything is
decompressed, the header against the schema (``snnc.ir.schema``, no coercion), its digest and every
array's against what was read, every size against the memory budget (``snnc.ir.limits``). Embedded
extras (the source model) are read only when asked for (``Bundle.extras``), so ``inspect`` never
decompresses them. Every failure is one ``BundleError`` line naming the file.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .archive import ArchiveError, NpyArchive, write_npz
from .atomic import write_file
from .digest import header_digest, seal
from .errors import BundleError, IRValidationError, OutputError
from .graph import Network
from .jsonio import JSONError, canonical_json, loads_strict
from .limits import DEFAULT_LIMITS, Limits
from .neurons import NeuronModel
from .schema import FORMAT, VERSION, Checker, Header, MemberSpec, check_header, check_top
from .validation import storage_array

HEADER_KEY = "__header__"
TIMING_KEYS = frozenset({"seconds", "timings"})

__all__ = ["FORMAT", "VERSION", "HEADER_KEY", "Bundle", "Extras", "save", "to_bytes", "read_bundle", "load",
           "load_header", "load_with_extras", "network_to_header"]


# ---- writing ---------------------------------------------------------------------------------------
def _without_timings(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _without_timings(x) for k, x in v.items() if k not in TIMING_KEYS}
    if isinstance(v, (list, tuple)):
        if not any(isinstance(x, (dict, list, tuple)) for x in v):  # a list of plain values (e.g. per piece)
            return list(v)
        return [_without_timings(x) for x in v]
    return v


def _le(arr: np.ndarray) -> np.ndarray:
    """C-contiguous and little-endian (the dtype the header declares)."""
    a = np.asarray(arr)
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and np.little_endian is False):
        a = a.astype(a.dtype.newbyteorder("<"))
    return a if a.flags.c_contiguous else a.copy(order="C")


def _encode_obj(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    array_keys: dict[str, str] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if v is None and f.default is None:
            continue  # an optional field left unset is not written (it loads as its default)
        if isinstance(v, np.ndarray):
            key = f"{prefix}/{f.name}"
            arrays[key] = _le(storage_array(v) if f.name in getattr(obj, "narrow_arrays", ()) else v)
            array_keys[f.name] = key
        elif isinstance(v, NeuronModel):
            fields[f.name] = {"type": type(v).__name__, "fields": dataclasses.asdict(v)}
        elif isinstance(v, tuple):
            fields[f.name] = list(v)
        else:
            fields[f.name] = v
    return {"type": type(obj).__name__, "fields": fields, "arrays": array_keys}


def network_to_header(net: Network, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The header of ``net`` (without ``extra``, ``members`` and ``digest``); fills ``arrays``."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "timesteps": net.timesteps,
        "coding": {"type": type(net.coding).__name__, "fields": dataclasses.asdict(net.coding)},
        "metadata": _without_timings(net.metadata),
        "nodes": [_encode_obj(n, f"nodes/{n.name}", arrays) for n in net.nodes],
        "projections": [_encode_obj(p, f"projections/{p.name}", arrays) for p in net.projections],
    }


def _pack(net: Network, extra_arrays: dict[str, np.ndarray] | None) -> tuple[bytes, dict[str, np.ndarray]]:
    arrays: dict[str, np.ndarray] = {}
    header = network_to_header(net, arrays)
    for k, v in (extra_arrays or {}).items():
        a = _le(v)
        if a.dtype.kind not in "biuf":
            raise BundleError(f"extra array '{k}' has dtype {a.dtype}; only plain numeric arrays can be embedded")
        arrays[f"extra/{k}"] = a
    header["extra"] = sorted(extra_arrays or {})
    try:
        seal(header, arrays)
        return canonical_json(header), arrays
    except (TypeError, ValueError) as e:
        raise BundleError(f"the network's metadata cannot be written as JSON ({e}); metadata must be plain "
                          "JSON values (no NaN, Infinity or objects)") from None


def _write(fh, header: bytes, arrays: dict[str, np.ndarray]) -> None:
    write_npz(fh, [(HEADER_KEY, np.frombuffer(header, dtype=np.uint8))] + list(arrays.items()))


def save(net: Network, path: str | os.PathLike, extra_arrays: dict[str, np.ndarray] | None = None, *,
         inputs=(), make_parents: bool = False) -> Path:
    """Write ``net`` to ``path`` atomically (``snnc.ir.atomic.write_file``). ``extra_arrays`` (e.g. the
    source model) ride along. ``inputs``: files the bundle must never replace (the model it came from);
    ``make_parents``: create missing folders once the bundle is written. Raises ``BundleError``."""
    header, arrays = _pack(net, extra_arrays)
    try:
        return write_file(path, lambda fh: _write(fh, header, arrays), inputs=inputs, what="bundle",
                          make_parents=make_parents)
    except OutputError as e:
        raise BundleError(str(e)) from None


def to_bytes(net: Network, extra_arrays: dict[str, np.ndarray] | None = None) -> bytes:
    """The bundle as bytes (for tests and in-memory use); the same bytes ``save`` writes."""
    header, arrays = _pack(net, extra_arrays)
    buf = io.BytesIO()
    _write(buf, header, arrays)
    return buf.getvalue()


# ---- reading ---------------------------------------------------------------------------------------
class Extras(Mapping):
    """The embedded arrays of a bundle (e.g. ``onnx_model``), read from the file only when one is asked
    for, with its size and digest checked; the keys are known without reading anything."""

    def __init__(self, path: Path, specs: dict[str, MemberSpec], limits: Limits):
        self._path, self._specs, self._limits = path, specs, limits
        self._read: dict[str, np.ndarray] = {}

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._specs:
            raise KeyError(key)
        if key not in self._read:
            with _open_archive(self._path, self._limits) as arc:
                self._read[key] = _read_member(arc, self._path, self._specs[key], self._limits.array_bytes(arc.size))
        return self._read[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __contains__(self, key: object) -> bool:  # from the header: ``Mapping``'s default would read the member
        return key in self._specs

    def __len__(self) -> int:
        return len(self._specs)

    def nbytes(self, key: str) -> int:
        """The size of extra ``key`` once read (from the header; nothing is read)."""
        return self._specs[key].nbytes

    @property
    def loaded(self) -> list[str]:
        """The extras read from the file so far."""
        return sorted(self._read)


@dataclass
class Bundle:
    """A bundle read and checked: its network, its header (a checked dict) and its lazy extras."""

    path: Path
    network: Network
    header: dict
    extras: Extras


def _fail(path: Path, what: str) -> BundleError:
    return BundleError(f"'{path}': {what}")


def _open_archive(path: Path, limits: Limits) -> NpyArchive:
    try:
        return NpyArchive(path, limits.max_members)
    except FileNotFoundError:
        raise BundleError(f"bundle '{path}' does not exist") from None
    except ArchiveError as e:
        raise _fail(path, f"not an snnc bundle: it {e}") from None
    except OSError as e:
        raise _fail(path, f"cannot be read ({e.strerror or e})") from None


def _read_member(arc: NpyArchive, path: Path, spec: MemberSpec, budget: int) -> np.ndarray:
    def check(shape, dtype):
        if dtype != spec.dtype or tuple(shape) != spec.shape:
            raise ArchiveError(f"member '{spec.key[:80]}' holds {tuple(shape)} {dtype.str}; the header declares "
                               f"{spec.shape} {spec.dtype.str}")

    try:
        return arc.read(spec.key, check, budget, sha256=spec.sha256)
    except ArchiveError as e:
        raise _fail(path, str(e)) from None


def _read_header(arc: NpyArchive, path: Path, limits: Limits) -> Header:
    names = set(arc.names)
    if HEADER_KEY not in names:
        raise _fail(path, f"not an snnc bundle (no {HEADER_KEY} entry)")
    info = arc.info(HEADER_KEY)
    if info.file_size > limits.max_header_bytes + 256:
        raise _fail(path, f"its header is {info.file_size:,} bytes; at most {limits.max_header_bytes:,} are read")

    def check(shape, dtype):
        if dtype != np.uint8 or len(shape) != 1:
            raise ArchiveError(f"its header must be a 1-D uint8 array, got {shape} {dtype}")

    try:
        raw = arc.read(HEADER_KEY, check, limits.max_header_bytes)
        h = loads_strict(raw.tobytes(), limits.max_json_depth)
    except ArchiveError as e:
        raise _fail(path, f"corrupt bundle header: {e}") from None
    except JSONError as e:
        raise _fail(path, f"corrupt bundle header: {e}") from None
    c = Checker(path, limits)
    check_top(c, h)
    digest = h.get("digest")
    if not isinstance(digest, str) or digest != header_digest(h):
        raise _fail(path, "the header does not match its digest: the file was changed after snnc wrote it "
                    "(recompile the model)")
    header = check_header(c, h)
    expected = {HEADER_KEY} | set(header.members)
    if names != expected:
        extra, missing = sorted(names - expected), sorted(expected - names)
        raise _fail(path, ("archive members missing: " + ", ".join(missing[:3])) if missing else
                    ("archive holds members the header does not declare: " + ", ".join(extra[:3])))
    declared = sum(s.nbytes for s in header.members.values())
    stored = sum(arc.info(k).file_size for k in header.members)
    if stored < declared:
        raise _fail(path, f"its members hold {stored:,} bytes but declare {declared:,} (truncated or lying headers)")
    budget = limits.array_bytes(arc.size)
    net_bytes = sum(header.members[k].nbytes for e in header.nodes + header.projections for k in e.arrays.values())
    if net_bytes > budget:
        raise _fail(path, f"its network arrays would need {net_bytes:,} bytes of memory; the limit for a "
                    f"{arc.size:,}-byte bundle is {budget:,}")
    return header


def read_bundle(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Bundle:
    """Read and check a bundle (see the module doc); raises ``BundleError`` (one line) otherwise."""
    path = Path(path)
    with _open_archive(path, limits) as arc:
        header = _read_header(arc, path, limits)
        budget = limits.array_bytes(arc.size)
        arrays = {k: _read_member(arc, path, header.members[k], budget)
                  for e in header.nodes + header.projections for k in e.arrays.values()}
    try:
        nodes = [_build(e, arrays) for e in header.nodes]
        projs = [_build(e, arrays) for e in header.projections]
        net = Network(nodes, projs, header.timesteps, header.metadata, header.coding)
    except IRValidationError as e:
        raise _fail(path, f"invalid network in bundle: {e}") from None
    extras = Extras(path, {k: header.members[f"extra/{k}"] for k in header.extra}, limits)
    return Bundle(path, net, header.raw, extras)


def _build(e, arrays: dict[str, np.ndarray]):
    kwargs = dict(e.kwargs)
    for fname, key in e.arrays.items():
        kwargs[fname] = arrays[key]
    try:
        return e.cls(**kwargs)
    except IRValidationError:
        raise
    except (TypeError, ValueError, OverflowError) as err:
        raise IRValidationError(e.where, str(err).splitlines()[0]) from None


def load_header(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """The checked header of a bundle (schema and digest); no array is read."""
    path = Path(path)
    with _open_archive(path, limits) as arc:
        return _read_header(arc, path, limits).raw


def load(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> Network:
    """Read a bundle written by :func:`save`; the network is re-validated."""
    return read_bundle(path, limits).network


def load_with_extras(path: str | os.PathLike, limits: Limits = DEFAULT_LIMITS) -> tuple[Network, Extras]:
    """(network, extras): ``extras`` is a mapping read lazily (see ``Extras``)."""
    b = read_bundle(path, limits)
    return b.network, b.extras

