"""The bundle header's schema: every value has the JSON type its IR field declares, nothing is coerced.

The schema is derived from the IR's dataclasses (their type annotations), so a new node type or field
is covered without touching this file: ``int`` fields take JSON integers only (``4.9``, ``"4"`` and
``true`` are errors), ``float`` fields take numbers, ``tuple[int, ...]`` fields take lists of integers
(``"888"`` is an error, not (8, 8, 8)), ``int | None`` an integer or null, ``np.ndarray`` fields are
archive members with a declared dtype and shape, neuron models and codings are ``{"type", "fields"}``.
Integers must fit in int64. Errors are ``BundleError`` lines naming the bundle, the entry and the field.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .coding import CODINGS
from .errors import BundleError
from .limits import Limits
from .neurons import NEURON_MODELS, NeuronModel
from .nodes import NODE_TYPES
from .projections import PROJECTION_TYPES
from .validation import STORAGE_DTYPES

FORMAT = "snnc-bundle"
VERSION = 2
TOP_KEYS = ("format", "version", "timesteps", "coding", "metadata", "nodes", "projections", "extra", "members",
            "digest")
INT64_MAX = (1 << 63) - 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# dtypes a member may have: the IR's arrays are little-endian int64 (float64 for real-valued fields);
# embedded extras (the source model) may be any plain numeric type. Never objects, strings or records.
INT_DTYPE, FLOAT_DTYPE = "<i8", "<f8"
# a projection's weights are stored in the narrowest of these that holds them (ir/validation.storage_array)
NARROW_INT_DTYPES = tuple(np.dtype(d).newbyteorder("<").str for d in STORAGE_DTYPES)
EXTRA_KINDS = "biuf"


@dataclass(frozen=True)
class MemberSpec:
    """An archive member as the header declares it."""

    key: str
    dtype: np.dtype
    shape: tuple[int, ...]
    sha256: str

    @property
    def nbytes(self) -> int:
        n = self.dtype.itemsize
        for s in self.shape:
            n *= s
        return n


class Checker:
    """Validates one header; ``where`` prefixes every message with the bundle's path."""

    def __init__(self, path: Path | str, limits: Limits):
        self.path, self.limits = path, limits

    def fail(self, what: str) -> BundleError:
        return BundleError(f"'{self.path}': {what}")

    # ---- scalar types ------------------------------------------------------------------------
    def int_(self, v: Any, where: str, lo: int | None = None, hi: int | None = None) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(f"{where} must be an integer, got {_show(v)}")
        if not -INT64_MAX - 1 <= v <= INT64_MAX:
            raise self.fail(f"{where} = {_show(v)} does not fit in 64 bits")
        if lo is not None and v < lo or hi is not None and v > hi:
            rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise self.fail(f"{where} must be {rng}, got {v}")
        return v

    def float_(self, v: Any, where: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise self.fail(f"{where} must be a number, got {_show(v)}")
        return v

    def str_(self, v: Any, where: str) -> str:
        if not isinstance(v, str):
            raise self.fail(f"{where} must be a string, got {_show(v)}")
        return v

    def bool_(self, v: Any, where: str) -> bool:
        if not isinstance(v, bool):
            raise self.fail(f"{where} must be true or false, got {_show(v)}")
        return v

    def dict_(self, v: Any, where: str) -> dict:
        if not isinstance(v, dict):
            raise self.fail(f"{where} must be a JSON object, got {_show(v)}")
        return v

    def list_(self, v: Any, where: str, max_len: int | None = None) -> list:
        if not isinstance(v, list):
            raise self.fail(f"{where} must be a list, got {_show(v)}")
        if max_len is not None and len(v) > max_len:
            raise self.fail(f"{where} has {len(v)} entries; at most {max_len} are allowed")
        return v

    def keys(self, d: dict, where: str, allowed, required=()) -> None:
        unknown = sorted(set(d) - set(allowed))
        if unknown:
            raise self.fail(f"{where} has unknown key(s) {unknown[:5]}; allowed: {sorted(allowed)}")
        missing = [k for k in required if k not in d]
        if missing:
            raise self.fail(f"{where} lacks {missing}")

    # ---- typed values from annotations -----------------------------------------------------
    def value(self, v: Any, tp: Any, where: str) -> Any:
        """``v`` checked against annotation ``tp``; lists become tuples for tuple fields."""
        origin = typing.get_origin(tp)
        if tp is int:
            return self.int_(v, where)
        if tp is float:
            return self.float_(v, where)
        if tp is str:
            return self.str_(v, where)
        if tp is bool:
            return self.bool_(v, where)
        if origin in (typing.Union, types.UnionType):
            args = typing.get_args(tp)
            if v is None and type(None) in args:
                return None
            inner = [a for a in args if a is not type(None)]
            if len(inner) == 1:
                return self.value(v, inner[0], where)
        if origin is tuple:
            args = typing.get_args(tp)
            items = self.list_(v, where, max_len=64)
            if len(args) == 2 and args[1] is Ellipsis:
                return tuple(self.value(x, args[0], f"{where}[{i}]") for i, x in enumerate(items))
            if len(items) != len(args):
                raise self.fail(f"{where} must be a list of {len(args)} values, got {len(items)}")
            return tuple(self.value(x, a, f"{where}[{i}]") for i, (x, a) in enumerate(zip(items, args)))
        raise self.fail(f"{where}: this snnc cannot read a field of type {tp}")  # pragma: no cover

    def model(self, entry: Any, registry: dict[str, type], where: str) -> Any:
        """A neuron model or coding: ``{"type": name, "fields": {...}}`` -> an instance."""
        entry = self.dict_(entry, where)
        self.keys(entry, where, ("type", "fields"), ("type",))
        tname = entry["type"]
        cls = registry.get(tname) if isinstance(tname, str) else None
        if cls is None:
            raise self.fail(f"{where}: unknown type {_name(tname)}; this snnc knows {sorted(registry)}")
        fields = self.dict_(entry.get("fields", {}), f"{where}.fields")
        spec = scalar_fields(cls)
        self.keys(fields, f"{where} ({tname}) fields", spec)
        kwargs = {k: self.value(v, spec[k], f"{where}.{k}") for k, v in fields.items()}
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as e:  # IRValidationError is a ValueError
            raise self.fail(f"{where}: {e}") from None


def _show(v: Any) -> str:
    if isinstance(v, str):
        s = repr(v[:40] + ("..." if len(v) > 40 else ""))
        return f"the string {s}"
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "a JSON object"
    if isinstance(v, int) and abs(v) >= 10 ** 20:
        return f"an integer of {len(str(abs(v)))} digits"
    return repr(v)


def _name(v: Any) -> str:
    return repr(v[:60]) if isinstance(v, str) else _show(v)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def array_fields(cls: type) -> dict[str, tuple[str, ...]]:
    """{field: the dtypes its member may have} for the ``np.ndarray`` fields of an IR dataclass
    (float64 where the field's default is a float array, int64 for other integers, and any of
    ``NARROW_INT_DTYPES`` for the fields the class stores narrowed, ``narrow_arrays``)."""
    out = {}
    narrow = getattr(cls, "narrow_arrays", ())
    for f in dataclasses.fields(cls):
        if _hints(cls)[f.name] is np.ndarray:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            kind = np.asarray(default).dtype.kind if default is not None else "i"
            out[f.name] = (FLOAT_DTYPE,) if kind == "f" else NARROW_INT_DTYPES if f.name in narrow else (INT_DTYPE,)
    return out


def scalar_fields(cls: type) -> dict[str, Any]:
    """{field: annotation} for the fields stored in the header (not arrays, not neuron models)."""
    return {f.name: _hints(cls)[f.name] for f in dataclasses.fields(cls)
            if _hints(cls)[f.name] is not np.ndarray and _hints(cls)[f.name] is not NeuronModel}


def model_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if _hints(cls)[f.name] is NeuronModel]


def required_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]


@dataclass
class Entry:
    """A node or projection entry of the header, checked: its class, keyword arguments (arrays still
    to be read: ``arrays`` maps field -> member key)."""

    cls: type
    kwargs: dict[str, Any]
    arrays: dict[str, str]
    where: str


@dataclass
class Header:
    """A checked header."""

    raw: dict
    timesteps: int
    coding: Any
    metadata: dict
    nodes: list[Entry]
    projections: list[Entry]
    extra: list[str]
    members: dict[str, MemberSpec]


def check_top(c: Checker, h: Any) -> dict:
    """The checks that tell what the file is: an object, the format, the version."""
    if not isinstance(h, dict):
        raise c.fail(f"not an snnc bundle: its header is {_show(h)}, not a JSON object")
    fmt = h.get("format")
    if fmt != FORMAT:
        raise c.fail(f"not an snnc bundle (format {_show(fmt)}, expected '{FORMAT}')")
    ver = h.get("version")
    if isinstance(ver, bool) or not isinstance(ver, int):
        raise c.fail(f"bundle version must be an integer, got {_show(ver)}; recompile the model with this snnc")
    if ver != VERSION:
        raise c.fail(f"is bundle version {ver}; this snnc reads version {VERSION}. Recompile the model with this snnc")
    c.keys(h, "the header", TOP_KEYS, TOP_KEYS)
    return h


def check_members(c: Checker, members: Any) -> dict[str, MemberSpec]:
    members = c.dict_(members, "members")
    if len(members) > c.limits.max_members:
        raise c.fail(f"declares {len(members)} archive members; at most {c.limits.max_members} are allowed")
    out = {}
    for key, spec in members.items():
        where = f"member '{key[:80]}'"
        spec = c.dict_(spec, where)
        c.keys(spec, where, ("dtype", "shape", "sha256"), ("dtype", "shape", "sha256"))
        dt = c.str_(spec["dtype"], f"{where}.dtype")
        try:
            dtype = np.dtype(dt) if re.fullmatch(r"[<>|=]?[biuf][0-9]{1,2}", dt) else None
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in EXTRA_KINDS:
            raise c.fail(f"{where}.dtype {_show(dt)} is not a plain numeric dtype (e.g. '<i8')")
        shape = tuple(c.int_(s, f"{where}.shape[{i}]", 0) for i, s in
                      enumerate(c.list_(spec["shape"], f"{where}.shape", max_len=32)))
        sha = c.str_(spec["sha256"], f"{where}.sha256")
        if not _SHA256.match(sha):
            raise c.fail(f"{where}.sha256 must be 64 lowercase hex digits")
        out[key] = MemberSpec(key, dtype, shape, sha)
    return out


def check_entry(c: Checker, e: Any, registry: dict[str, type], where: str, members: dict[str, MemberSpec]) -> Entry:
    e = c.dict_(e, where)
    c.keys(e, where, ("type", "fields", "arrays"), ("type", "fields", "arrays"))
    tname = e["type"]
    cls = registry.get(tname) if isinstance(tname, str) else None
    if cls is None:
        raise c.fail(f"{where}: unknown type {_name(tname)}; this snnc knows {sorted(registry)}")
    fields = c.dict_(e["fields"], f"{where}.fields")
    arrays = c.dict_(e["arrays"], f"{where}.arrays")
    name = fields.get("name")
    where = f"{tname} '{name[:60]}'" if isinstance(name, str) else where
    scal, arr, mods = scalar_fields(cls), array_fields(cls), model_fields(cls)
    c.keys(fields, f"{where} fields", list(scal) + mods)
    c.keys(arrays, f"{where} arrays", arr)
    kwargs = {k: c.value(v, scal[k], f"{where}.{k}") for k, v in fields.items() if k in scal}
    for k in mods:
        if k in fields:
            kwargs[k] = c.model(fields[k], NEURON_MODELS, f"{where}.{k}")
    missing = [f for f in required_fields(cls) if f not in kwargs and f not in arrays]
    if missing:
        raise c.fail(f"{where} lacks {missing}")
    for fname, key in arrays.items():
        key = c.str_(key, f"{where}.arrays.{fname}")
        spec = members.get(key)
        if spec is None:
            raise c.fail(f"{where}.{fname}: member '{key[:80]}' is not declared in 'members'")
        if spec.dtype.str not in arr[fname]:
            want = arr[fname][0] if len(arr[fname]) == 1 else \
                "one of " + ", ".join(np.dtype(d).name for d in arr[fname]) + " (little-endian)"
            raise c.fail(f"{where}.{fname} must be stored as {want}, the bundle declares {spec.dtype.str}")
    return Entry(cls, kwargs, dict(arrays), where)


def check_header(c: Checker, h: dict) -> Header:
    """Everything below the top: types, names, the member table; raises ``BundleError``."""
    T = c.int_(h["timesteps"], "timesteps", 1, c.limits.max_timesteps)
    coding = c.model(h["coding"], CODINGS, "coding")
    metadata = c.dict_(h["metadata"], "metadata")
    members = check_members(c, h["members"])
    nodes = c.list_(h["nodes"], "nodes", c.limits.max_nodes)
    projs = c.list_(h["projections"], "projections", c.limits.max_nodes)
    if len(nodes) + len(projs) > c.limits.max_nodes:
        raise c.fail(f"has {len(nodes) + len(projs)} nodes and projections; at most {c.limits.max_nodes} are allowed")
    node_entries = [check_entry(c, e, NODE_TYPES, f"nodes[{i}]", members) for i, e in enumerate(nodes)]
    proj_entries = [check_entry(c, e, PROJECTION_TYPES, f"projections[{i}]", members) for i, e in enumerate(projs)]
    neurons = 0
    for e in node_entries:
        n = 1
        for s in e.kwargs.get("shape", ()):
            n *= max(int(s), 1)
        neurons += n
    if neurons > c.limits.max_neurons:
        raise c.fail(f"its nodes hold {neurons:,} values; at most {c.limits.max_neurons:,} are allowed")
    extra = c.list_(h["extra"], "extra", c.limits.max_members)
    for i, k in enumerate(extra):
        c.str_(k, f"extra[{i}]")
        if f"extra/{k}" not in members:
            raise c.fail(f"extra '{k[:80]}' is not declared in 'members'")
    if len(set(extra)) != len(extra):
        raise c.fail("'extra' lists a name twice")
    used = [k for e in node_entries + proj_entries for k in e.arrays.values()] + [f"extra/{k}" for k in extra]
    if len(set(used)) != len(used):
        raise c.fail("two arrays share one archive member")
    unused = sorted(set(members) - set(used))
    if unused:
        raise c.fail(f"declares archive members no entry uses: {unused[:3]}")
    for k in extra:
        if members[f"extra/{k}"].dtype.kind not in EXTRA_KINDS:  # pragma: no cover - check_members refuses first
            raise c.fail(f"extra '{k}' has dtype {members[f'extra/{k}'].dtype}")
    return Header(h, T, coding, metadata, node_entries, proj_entries, list(extra), members)
