"""Strict JSON in, valid JSON out (snnc.ir.jsonio)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from snnc.ir.jsonio import JSONError, canonical_json, jsonable, loads_strict, nesting_depth, to_json


def _strict(text):
    def no(c):
        raise ValueError(c)
    return json.loads(text, parse_constant=no)


def test_to_json_is_always_valid_json():
    obj = {"nan": float("nan"), "inf": float("inf"), "ninf": -math.inf, "np": np.float32(np.nan), "i": np.int64(3),
           "arr": np.array([1.0, np.inf]), "t": (1, 2), "p": Path("a/b"), "s": {3, 1}, "ok": 0.5}
    out = _strict(to_json(obj))
    assert out == {"nan": None, "inf": None, "ninf": None, "np": None, "i": 3, "arr": [1.0, None], "t": [1, 2],
                   "p": "a/b", "s": [1, 3], "ok": 0.5}
    with pytest.raises(TypeError, match="object is not JSON-serializable"):
        jsonable(object())


def test_canonical_json_is_deterministic_and_refuses_nan():
    assert canonical_json({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


@pytest.mark.parametrize("text,msg", [
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": Infinity}', "Infinity is not a JSON number"),
    ('{"a": 1e400}', "overflows"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ("[" * 100 + "]" * 100, "nested more than 64"),
    ('{"a": ', "Expecting value"),
    (b"\xff\xfe", "not UTF-8"),
    ('{"a": ' + "9" * 5000 + "}", "digits|Exceeds"),
])
def test_loads_strict_refuses(text, msg):
    with pytest.raises(JSONError, match=msg):
        loads_strict(text)


def test_nesting_depth_skips_strings_and_stops_early():
    assert nesting_depth('{"a": "[[[[", "b": [1, [2]]}', 64) == 3
    assert nesting_depth("[" * 10 ** 6, 64) == 65  # stops counting past the limit
    assert loads_strict('{"a": "[[[["}') == {"a": "[[[["}
