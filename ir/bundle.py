"""The versioned single-file bundle (``.snnc``).

A bundle is a NumPy ``.npz`` archive, so it loads with numpy alone::

    z = numpy.load("m.snnc")          # allow_pickle stays False
    header = json.loads(bytes(z["__header__"]).decode())

``header`` holds ``format`` ("snnc-bundle"), ``version``, the network's scalars, the metadata
and, for every node and projection, ``{"type": class name, "fields": {...}, "arrays": {field: key}}``.
Array fields live in the archive under ``key``. (De)serialization is generic, keyed by class name:
a new node type only has to be registered in ``nodes.NODE_TYPES``/``projections.PROJECTION_TYPES``.
Writes are atomic (temporary file in the target folder, then rename).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import BundleError, IRValidationError
from .graph import Network
from .coding import CODINGS, Coding, RateCoding
from .neurons import NEURON_MODELS, NeuronModel
from .nodes import NODE_TYPES
from .projections import PROJECTION_TYPES

FORMAT = "snnc-bundle"
VERSION = 1
HEADER_KEY = "__header__"


def _encode_obj(obj: Any, prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    array_keys: dict[str, str] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if v is None and f.default is None:
            continue  # an optional field left unset is not written (it loads as its default)
        if isinstance(v, np.ndarray):
            key = f"{prefix}/{f.name}"
            arrays[key] = v
            array_keys[f.name] = key
        elif isinstance(v, NeuronModel):
            fields[f.name] = {"type": type(v).__name__, "fields": dataclasses.asdict(v)}
        elif isinstance(v, tuple):
            fields[f.name] = list(v)
        else:
            fields[f.name] = v
    return {"type": type(obj).__name__, "fields": fields, "arrays": array_keys}


def _decode_obj(entry: dict[str, Any], registry: dict[str, type], data) -> Any:
    tname = entry.get("type")
    cls = registry.get(tname)
    if cls is None:
        raise BundleError(f"unknown type '{tname}' in bundle; this snnc knows {sorted(registry)}")
    kwargs = dict(entry.get("fields", {}))
    for fname, key in entry.get("arrays", {}).items():
        if key not in data:
            raise BundleError(f"bundle is missing array '{key}' of {tname} '{kwargs.get('name')}'")
        kwargs[fname] = data[key]
    if "neuron" in kwargs and isinstance(kwargs["neuron"], dict):
        n = kwargs["neuron"]
        ncls = NEURON_MODELS.get(n.get("type"))
        if ncls is None:
            raise BundleError(f"unknown neuron model '{n.get('type')}'; known: {sorted(NEURON_MODELS)}")
        kwargs["neuron"] = ncls(**n.get("fields", {}))
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise BundleError(f"{tname} '{kwargs.get('name')}' in bundle has unexpected fields: {e}") from None


def _decode_coding(header: dict[str, Any]) -> Coding:
    """The network's coding; bundles written before codings existed are rate coded."""
    c = header.get("coding")
    if c is None:
        return RateCoding()
    cls = CODINGS.get(c.get("type"))
    if cls is None:
        raise BundleError(f"unknown coding '{c.get('type')}'; known: {sorted(CODINGS)}")
    return cls(**c.get("fields", {}))


def network_to_header(net: Network, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "timesteps": net.timesteps,
        "coding": {"type": type(net.coding).__name__, "fields": dataclasses.asdict(net.coding)},
        "metadata": net.metadata,
        "nodes": [_encode_obj(n, f"nodes/{n.name}", arrays) for n in net.nodes],
        "projections": [_encode_obj(p, f"projections/{p.name}", arrays) for p in net.projections],
    }


def _pack(net: Network, extra_arrays: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    header = network_to_header(net, arrays)
    for k, v in (extra_arrays or {}).items():
        arrays[f"extra/{k}"] = v
    header["extra"] = sorted(extra_arrays or {})
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    return arrays


def save(net: Network, path: str | os.PathLike, extra_arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``net`` to ``path`` atomically. ``extra_arrays`` (e.g. the source model) ride along."""
    path = Path(path)
    arrays = _pack(net, extra_arrays)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise BundleError(f"cannot write '{path}': '{folder}' {what}")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise BundleError(f"cannot write '{path}': {e.strerror} (is the folder writable?)") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _read_npz(path: Path):
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise BundleError(f"bundle '{path}' does not exist") from None
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise BundleError(f"'{path}' is not an snnc bundle (not a readable .npz archive: {e})") from None
    if not hasattr(data, "files") or HEADER_KEY not in data.files:
        raise BundleError(f"'{path}' is not an snnc bundle (no {HEADER_KEY} entry)")
    return data


def load_header(path: str | os.PathLike) -> dict[str, Any]:
    data = _read_npz(Path(path))
    return _parse_header(Path(path), data)


def _parse_header(path: Path, data) -> dict[str, Any]:
    try:
        header = json.loads(bytes(data[HEADER_KEY]).decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise BundleError(f"'{path}': corrupt bundle header ({e})") from None
    if header.get("format") != FORMAT:
        raise BundleError(f"'{path}' is not an snnc bundle (format {header.get('format')!r})")
    if header.get("version") != VERSION:
        raise BundleError(
            f"'{path}' is bundle version {header.get('version')}; this snnc reads version {VERSION}. "
            "Recompile the model with this snnc."
        )
    return header


def load(path: str | os.PathLike) -> Network:
    """Read a bundle written by :func:`save`; the network is re-validated."""
    net, _ = load_with_extras(path)
    return net


def load_with_extras(path: str | os.PathLike) -> tuple[Network, dict[str, np.ndarray]]:
    path = Path(path)
    data = _read_npz(path)
    with data:
        header = _parse_header(path, data)
        try:
            nodes = [_decode_obj(e, NODE_TYPES, data) for e in header["nodes"]]
            projs = [_decode_obj(e, PROJECTION_TYPES, data) for e in header["projections"]]
            net = Network(nodes, projs, header["timesteps"], header.get("metadata", {}), _decode_coding(header))
        except IRValidationError as e:
            raise BundleError(f"'{path}': invalid network in bundle: {e}") from None
        except KeyError as e:
            raise BundleError(f"'{path}': bundle header lacks {e}") from None
        extras = {k: np.array(data[f"extra/{k}"]) for k in header.get("extra", [])}
    return net, extras


def to_bytes(net: Network) -> bytes:
    """The bundle as bytes (for tests and in-memory use)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **_pack(net, None))
    return buf.getvalue()
