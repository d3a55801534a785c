"""JSON in and out, strictly: what snnc writes is always valid JSON (never NaN or Infinity), and what it
reads is refused, not guessed at, when it is not (NaN/Infinity constants, numbers that overflow a
float, duplicate keys, nesting deeper than a limit: Python's parser would recurse until it crashed).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
from typing import Any

import numpy as np

MAX_DEPTH = 64


class JSONError(ValueError):
    """Text that is not the strict JSON snnc reads; the message says what and where."""


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: numpy scalars and arrays, tuples, paths, enums and dataclasses
    converted; a float that is not finite becomes None (JSON has no NaN or Infinity)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, dict):
        return {str(k) if not isinstance(k, str) else k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    raise TypeError(f"{type(obj).__name__} is not JSON-serializable")


def to_json(obj: Any, indent: int | None = 2) -> str:
    """The JSON text of ``obj`` (via ``jsonable``); never contains NaN or Infinity."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def canonical_json(obj: Any) -> bytes:
    """Deterministic bytes of ``obj`` (sorted keys, no spaces, ASCII); refuses NaN/Infinity."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def nesting_depth(text: str, limit: int) -> int:
    """How deeply arrays/objects nest in JSON ``text`` (strings skipped); stops counting past ``limit``."""
    depth = best = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best = depth
                if best > limit:
                    return best
        elif ch in "]}":
            depth -= 1
    return best


def _no_constant(name: str):
    raise JSONError(f"{name} is not a JSON number")


def _finite_float(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise JSONError(f"number {s[:40]} overflows a 64-bit float")
    return v


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise JSONError(f"duplicate key {k[:60]!r}")
        out[k] = v
    return out


def loads_strict(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON strictly (see the module doc); raises ``JSONError`` with a one-line reason."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONError(f"not UTF-8 text (byte {e.start})") from None
    else:
        text = data
    depth = nesting_depth(text, max_depth)
    if depth > max_depth:
        raise JSONError(f"nested more than {max_depth} levels deep")
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite_float,
                          object_pairs_hook=_unique_keys)
    except JSONError:
        raise
    except json.JSONDecodeError as e:
        raise JSONError(f"{e.msg} at line {e.lineno} column {e.colno}") from None
    except (ValueError, RecursionError) as e:  # int('9' * 5000): Python's digit limit
        raise JSONError(str(e).splitlines()[0][:200]) from None
