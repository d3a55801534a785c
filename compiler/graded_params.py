"""The integers of a transformer graded unit from its float definition (compile time).

A unit's integer function (``snnc.ir.graded``; docs/ir.md, "Graded units") is fixed by tables and
constants; this module makes them from the float function, the port's scale s_in (the real value of
one unit of m is q = s_in 2^-G) and the output's scale s_out (y stands for y 2^-G s_out):

* ``elementwise_table``: GELU / SiLU knots over the port's provable range [m_lo, m_hi], at most
  ``max_knots`` intervals of 2^k each: table[j] = round(f(q (lo + j 2^k)) 2^G / s_out).
* ``exp_table``: exp at E bits on z in [lo, 0], lo <= -(E + 1) ln 2 / q (below it exp rounds to 0 at
  E bits): table[j] = round(exp(q (lo + j 2^k)) 2^E), table[K] = 2^E.
* ``layernorm_constants``: Gamma = round(gamma sqrt(D) 2^G / s_out), Beta = round(beta 2^G / s_out),
  eps_D = round(D^3 eps / q^2) (the unit centres D m - sum m), and the widest norm_bits / sqrt_bits the
  unit's int64 products allow.
* ``matmul_shift``: the rounding shift of a product of two ports whose output scale is nearest to a
  wanted one (the scale it gives is exact: s_out = s_a s_b 2^(shift - G)).

Rounding of the float values here is half up (floor(v + 1/2)); the integers are then the definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from snnc.ir.graded import LIMIT

MAX_KNOTS = 4096
EXP_BITS = 16


def gelu(x: np.ndarray) -> np.ndarray:
    """GELU(x) = x Phi(x) = x (1 + erf(x / sqrt 2)) / 2 (the exact, erf-based form)."""
    from scipy.special import erf

    x = np.asarray(x, np.float64)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def silu(x: np.ndarray) -> np.ndarray:
    """SiLU(x) = x sigmoid(x)."""
    from scipy.special import expit

    x = np.asarray(x, np.float64)
    return x * expit(x)


#: the elementwise functions a ``GradedElementwise`` unit can be built from
ELEMENTWISE: dict[str, Callable[[np.ndarray], np.ndarray]] = {"gelu": gelu, "silu": silu}


class UnitParameterError(ValueError):
    """The unit's integers cannot be made within int64 at this scale (the integerizer tries a coarser one)."""


def half_up(v) -> np.ndarray:
    return np.floor(np.asarray(v, np.float64) + 0.5).astype(np.int64)


def _knot_shift(span: int, max_knots: int) -> int:
    """The smallest k with ceil(span / 2^k) <= max_knots."""
    k = 0
    while (span + (1 << k) - 1) >> k > max_knots:
        k += 1
    return k


@dataclass(frozen=True)
class Table:
    table: np.ndarray
    lo: int
    shift: int


def elementwise_table(function: str, in_scale: float, out_scale: float, G: int, m_lo: int, m_hi: int,
                      max_knots: int = MAX_KNOTS) -> Table:
    """Knots of ``function`` over the port range [m_lo, m_hi] (integers, units of q = in_scale 2^-G)."""
    f = ELEMENTWISE[function]
    m_lo, m_hi = int(m_lo), int(m_hi)
    if m_hi <= m_lo:
        m_hi = m_lo + 1
    k = _knot_shift(m_hi - m_lo, max_knots)
    K = max(1, (m_hi - m_lo + (1 << k) - 1) >> k)
    m = m_lo + (np.arange(K + 1, dtype=np.float64) * float(1 << k))
    x = m * (in_scale * 2.0**-G)
    t = half_up(f(x) * 2.0**G / out_scale)
    if int(np.abs(np.diff(t)).max(initial=0)) << k >= LIMIT or int(np.abs(t).max()) >= LIMIT:
        raise UnitParameterError(f"{function} table steps overflow int64 at this scale")
    return Table(t, m_lo, k)


def exp_table(in_scale: float, G: int, exp_bits: int = EXP_BITS, max_knots: int = MAX_KNOTS) -> Table:
    """exp at ``exp_bits`` bits on z <= 0 (units of q = in_scale 2^-G); 0 below the table."""
    q = in_scale * 2.0**-G
    z_min = -(exp_bits + 1) * math.log(2.0) / q            # exp below this rounds to 0 at exp_bits bits
    span = max(1, int(math.ceil(-z_min)))
    k = _knot_shift(span, max_knots)
    K = max(1, (span + (1 << k) - 1) >> k)
    lo = -K * (1 << k)
    z = lo + np.arange(K + 1, dtype=np.float64) * float(1 << k)
    t = half_up(np.exp(z * q) * 2.0**exp_bits)
    t[-1] = 1 << exp_bits                                   # exp(0) exactly
    t = np.maximum.accumulate(t)                            # exp is increasing; rounding keeps it so
    return Table(t, lo, k)


@dataclass(frozen=True)
class LayerNormConstants:
    gamma: np.ndarray
    beta: np.ndarray
    eps: int
    norm_bits: int
    sqrt_bits: int


def layernorm_constants(gamma: np.ndarray, beta: np.ndarray, eps: float, in_scale: float, out_scale: float, G: int,
                        norm_bits: int = 24, max_sqrt_bits: int = 16) -> LayerNormConstants:
    """Gamma, Beta, eps_D and the widest (norm_bits, sqrt_bits) with every product below 2^62."""
    gamma, beta = np.asarray(gamma, np.float64).reshape(-1), np.asarray(beta, np.float64).reshape(-1)
    D = gamma.size
    q = in_scale * 2.0**-G
    G_int = half_up(gamma * math.sqrt(D) * 2.0**G / out_scale)
    B_int = half_up(beta * 2.0**G / out_scale)
    eps_d = float(D) ** 3 * float(eps) / (q * q)
    if not eps_d < LIMIT:
        raise UnitParameterError(f"eps D^3 / q^2 = {eps_d:.3g} does not fit int64 at this scale")
    eps_d = int(half_up(eps_d))
    gmax = int(np.abs(G_int).max(initial=0))
    for A in range(norm_bits, 7, -1):
        for P in range(max_sqrt_bits, -1, -1):
            if ((D << (2 * A)) + eps_d) << (2 * P) < LIMIT and gmax << (A + P + 1) < LIMIT:
                return LayerNormConstants(G_int, B_int, eps_d, A, P)
    raise UnitParameterError("LayerNorm constants do not fit int64 at this scale")


def matmul_shift(a_scale: float, b_scale: float, want_out_scale: float, G: int) -> tuple[int, float]:
    """(shift, out_scale): y = round(P / 2^shift) with out_scale = a_scale b_scale 2^(shift - G) exactly,
    shift >= 0 the nearest to the wanted output scale."""
    shift = max(0, int(round(G + math.log2(want_out_scale / (a_scale * b_scale)))))
    return shift, a_scale * b_scale * 2.0 ** (shift - G)
