"""Integer primitives of the graded units, batched over int64 arrays; every rounding is explicit.

* ``round_shift(v, s)``: round(v / 2^s), halves up: floor((v + 2^(s-1)) / 2^s) (s = 0: v).
* ``round_div(a, b)``: round(a / b), halves up, b > 0: floor((2a + b) / (2b)).
* ``isqrt(v)``: floor(sqrt(v)) for 0 <= v < 2^62, exact (a float estimate corrected in integers).
* ``bit_length(v)``: the number of bits of |v| (0 for 0), elementwise.
* ``interpolate(table, lo, k, m)``: the piecewise-linear function through the knots
  (lo + j 2^k, table[j]), j = 0..K, in integers: with u = m - lo, i = min(u >> k, K - 1) and
  r = u - i 2^k, ``table[i] + floor((table[i+1] - table[i]) * r / 2^k)``. Defined for
  lo <= m <= lo + K 2^k (the caller checks the range).

These are the arithmetic of docs/ir.md, "Graded units"; every backend computes a unit's output with
them (``snnc.ir.graded.functions``), so a backend that disagrees with the reference disagrees in its
wiring or timing, not in the arithmetic.
"""

from __future__ import annotations

import numpy as np

INT = np.int64


def round_shift(v: np.ndarray, s: int) -> np.ndarray:
    """round(v / 2^s), halves up, for s >= 0."""
    v = np.asarray(v, INT)
    if s <= 0:
        return v
    return (v + (INT(1) << (s - 1))) >> s


def round_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """round(a / b), halves up, for b > 0 (elementwise, broadcast)."""
    a, b = np.asarray(a, INT), np.asarray(b, INT)
    return np.floor_divide(2 * a + b, 2 * b)


def isqrt(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) elementwise for integers 0 <= v < 2^62: a float64 estimate, then corrected so
    that r^2 <= v < (r + 1)^2 holds in integers (the estimate is within a few units of the root)."""
    v = np.asarray(v, INT)
    if np.any(v < 0) or np.any(v >= (INT(1) << 62)):
        raise ValueError("isqrt is defined for 0 <= v < 2^62")
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(INT)
    for _ in range(4):   # each pass moves r by at most one towards the root; two passes suffice in practice
        r = np.where(r * r > v, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return r


def bit_length(v: np.ndarray) -> np.ndarray:
    """Bits of |v| (0 for 0), elementwise, exactly (no float rounding at powers of two)."""
    a = np.abs(np.asarray(v, INT))
    out = np.zeros(a.shape, INT)
    for b in range(62, -1, -1):
        hit = (out == 0) & (a >= (INT(1) << b))
        out = np.where(hit, b + 1, out)
    return out


def interpolate(table: np.ndarray, lo: int, k: int, m: np.ndarray) -> np.ndarray:
    """The piecewise-linear interpolation of ``table`` (knots every 2^k from ``lo``) at m, in integers
    (module docstring). The caller guarantees lo <= m <= lo + K 2^k, K = len(table) - 1."""
    table = np.asarray(table, INT)
    K = len(table) - 1
    u = np.asarray(m, INT) - INT(lo)
    i = np.minimum(u >> k, K - 1)
    r = u - (i << k)
    lo_v = table[i]
    return lo_v + (((table[i + 1] - lo_v) * r) >> k)
