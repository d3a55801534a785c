"""Compile-time bounds of the transformer's graded units (``snnc.ir.graded``; docs/ir.md, "Graded
units", states what is proven here).

Ports. A port's running value is, per element and step t (intervals by ``project_into``):

    differential:  m_t in offset + sum_s P_s(cum_s,t)            (cum: msg R_t of spiking sources, d of units)
    rate:          m_t = S_t R_t + offset,  S_t in sum_s P_s(cum_s,t)   (R_t = round(2^G / t) > 0)

The unit's function reads m over t = 1..T; its output y is bounded per element by:

* elementwise: the table's range. The interpolation between two knots stays within them (floor of a
  fraction of their difference), so y lies in [min table, max table]; the port range must lie within
  the table's [lo, hi] (the compiler builds the table from this very bound).
* LayerNorm: |y_i - Beta_i| <= |Gamma_i|: the shifted centred values satisfy |c'_i| <= sqrt(V), so
  |c'_i| 2^P <= floor(2^P sqrt(V)) = r and |Gamma_i c'_i 2^P / r| <= |Gamma_i| (rounding keeps it).
* softmax: 0 <= y <= out_one (e_i <= sum e).
* matmul: |y| <= round(X / 2^shift) with X = sum_k |A|max |B|max per output (interval products);
  when port A is a softmax's output (differential coding, ``_softmax_rows``: every row of A's view is
  one whole softmax row, read through non-negative per-channel weights w with exponent 0 and no
  offset), X = w_max (out_one + ceil(K/2)) |B|max: the rounded probabilities of a row sum to at most
  out_one + K/2 (each is at most half a unit above e_i out_one / sum e), and m_A = w y exactly.

Intermediates (D |m| in LayerNorm, e out_one in softmax, X in matmul) must stay below 2^62 (the
units' int64 arithmetic); their bounds are reported as named states. The envelope consumers
accumulate is what the unit has sent: differential y_t (t >= 1; step d_t = y_t - y_(t-1)), rate
C_t = round(t y_t / 2^G).
"""

from __future__ import annotations

import numpy as np

from snnc.ir import (Conv2d, DifferentialCoding, GradedElementwise, GradedLayerNorm, GradedMatMul, GradedSoftmax,
                     RateCoding)
from snnc.ir.graded import LIMIT, reciprocal, round_shift

from ..errors import StateOverflowError
from .envelopes import BoundInput, Envelope, StateBound, amax, project_into


def _offset(node, port: str) -> np.ndarray:
    off = np.asarray(node.port_offset(port), np.int64)
    shape = node.port_shape(port)
    if off.ndim == 1 and len(shape) > 1 and off.shape != tuple(shape):
        off = off.reshape((-1,) + (1,) * (len(shape) - 1))
    return np.broadcast_to(off, shape)


def port_ranges(bi: BoundInput) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per port, the interval of m over the steps 1..T per element: (lo, hi), each of the port's shape."""
    node = bi.target
    out = {}
    for port in node.PORTS:
        shape = node.port_shape(port)
        inc = [p for p in bi.incoming if node.port_of(p.name) == port]
        lo, hi = project_into(bi, inc, shape, "cum")
        lo, hi = lo[1:], hi[1:]                                   # steps 1..T
        if not bi.differential:                                   # the mean S_t R_t (R_t > 0)
            R = np.array([reciprocal(t, node.frac_bits) for t in range(1, bi.T + 1)], np.int64)
            R = R.reshape((-1,) + (1,) * len(shape))
            lo, hi = lo * R, hi * R
        off = _offset(node, port)
        out[port] = (lo.min(axis=0) + off, hi.max(axis=0) + off)
    return out


def _check(node, states: dict[str, int]) -> None:
    bad = {k: v for k, v in states.items() if v >= LIMIT}
    if bad:
        raise StateOverflowError(f"graded unit '{node.name}' ({type(node).__name__}): intermediate(s) {bad} could "
                                 "reach 2^62, beyond the units' int64 arithmetic; use fewer fractional bits or "
                                 "coarser port scales")


def _envelope(bi: BoundInput, ylo: np.ndarray, yhi: np.ndarray) -> Envelope:
    """What the unit has sent by step t (rows t = 0..T), from the per-element range of y."""
    T, shape = bi.T, tuple(bi.target.shape)
    ylo = np.broadcast_to(ylo, shape).astype(np.int64)
    yhi = np.broadcast_to(yhi, shape).astype(np.int64)
    if bi.differential:
        cum_lo = np.stack([np.zeros(shape, np.int64)] + [ylo] * T)
        cum_hi = np.stack([np.zeros(shape, np.int64)] + [yhi] * T)
    else:
        G = bi.target.frac_bits
        cum_lo = np.stack([round_shift(t * ylo, G) for t in range(T + 1)])
        cum_hi = np.stack([round_shift(t * yhi, G) for t in range(T + 1)])
    step_lo = np.zeros_like(cum_lo)
    step_hi = np.zeros_like(cum_hi)
    step_lo[1:] = cum_lo[1:] - cum_hi[:-1]
    step_hi[1:] = cum_hi[1:] - cum_lo[:-1]
    return Envelope(step_lo, step_hi, cum_lo, cum_hi)


def _finish(bi: BoundInput, ranges, ylo, yhi, extra: dict[str, int]) -> tuple[StateBound, Envelope]:
    node = bi.target
    states = {f"m_{p}": amax(lo, hi) for p, (lo, hi) in ranges.items()}
    states["y"] = amax(ylo, yhi)
    env = _envelope(bi, ylo, yhi)
    states["sent"] = amax(env.cum_lo, env.cum_hi)
    states.update(extra)
    _check(node, states)
    return StateBound(node.name, max(states.values()), 0, 0, states), env


def _elementwise(bi: BoundInput) -> tuple[StateBound, Envelope]:
    node: GradedElementwise = bi.target
    ranges = port_ranges(bi)
    lo, hi = ranges["a"]
    if int(lo.min()) < node.lo or int(hi.max()) > node.hi:
        raise StateOverflowError(
            f"graded unit '{node.name}' (GradedElementwise): its input could reach {int(lo.min())}..{int(hi.max())}, "
            f"outside its table's range {node.lo}..{node.hi} (the table must cover the provable range)")
    ylo = np.full(node.shape, int(node.table.min()), np.int64)
    yhi = np.full(node.shape, int(node.table.max()), np.int64)
    steps = int(np.abs(np.diff(node.table)).max()) << node.shift
    return _finish(bi, ranges, ylo, yhi, {"interpolation": steps})


def _layernorm(bi: BoundInput) -> tuple[StateBound, Envelope]:
    node: GradedLayerNorm = bi.target
    ranges = port_ranges(bi)
    lo, hi = ranges["a"]
    D = node.shape[node.axis]
    shape = [1] * len(node.shape)
    shape[node.axis] = D
    g = np.abs(node.gamma).reshape(shape)
    b = node.beta.reshape(shape)
    ylo, yhi = np.broadcast_to(b - g, node.shape), np.broadcast_to(b + g, node.shape)
    A, P = node.norm_bits, node.sqrt_bits
    extra = {"centred": 2 * D * amax(lo, hi),
             "variance": ((D << (2 * A)) + node.eps) << (2 * P),
             "product": int(np.abs(node.gamma).max(initial=0)) << (A + P + 1)}
    return _finish(bi, ranges, ylo, yhi, extra)


def _softmax(bi: BoundInput) -> tuple[StateBound, Envelope]:
    node: GradedSoftmax = bi.target
    ranges = port_ranges(bi)
    lo, hi = ranges["a"]
    ylo, yhi = np.zeros(node.shape, np.int64), np.full(node.shape, node.out_one, np.int64)
    N = node.shape[node.axis]
    extra = {"centred": int(hi.max()) - int(lo.min()), "exp_sum": N << node.exp_bits,
             "product": node.out_one << (node.exp_bits + 1)}
    return _finish(bi, ranges, ylo, yhi, extra)


def _softmax_rows(bi: BoundInput) -> int | None:
    """An upper bound of sum_k |A_k| over every row of A's view when port A reads whole softmax rows
    (see the module docstring), else None."""
    node: GradedMatMul = bi.target
    inc = [p for p in bi.incoming if node.port_of(p.name) == "a"]
    if not bi.differential or len(inc) != 1 or np.any(np.asarray(node.a_offset) != 0):
        return None
    p = inc[0]
    src = bi.sources[p.source]
    if not isinstance(src, GradedSoftmax) or not isinstance(p, Conv2d) or p.exponent != 0 or \
            tuple(p.in_shape) != tuple(src.shape) or tuple(p.out_shape) != tuple(node.a_shape) or \
            p.groups != src.shape[0] or p.weight.shape[1:] != (1, 1, 1) or np.any(p.weight < 0) or \
            tuple(p.stride) != (1, 1) or any(p.padding):
        return None
    row = np.moveaxis(np.arange(int(np.prod(src.shape))).reshape(src.shape), src.axis, -1)
    row_id = np.empty(row.size, np.int64)
    row_id[row.reshape(-1)] = np.repeat(np.arange(row.size // row.shape[-1]), row.shape[-1])
    K = node.a_view[-1]
    ids = row_id[node.a_index].reshape(-1, K)
    if K != src.shape[src.axis] or np.any(ids != ids[:, :1]) or \
            np.any(np.sort(node.a_index.reshape(-1, K), axis=1)[:, 1:] == np.sort(node.a_index.reshape(-1, K), axis=1)[:, :-1]):
        return None
    return int(p.weight.max()) * (src.out_one + (K + 1) // 2)


def _matmul(bi: BoundInput) -> tuple[StateBound, Envelope]:
    node: GradedMatMul = bi.target
    ranges = port_ranges(bi)
    rows = _softmax_rows(bi)
    absmax = {}
    for port, view, index in (("a", node.a_view, node.a_index), ("b", node.b_view, node.b_index)):
        lo, hi = ranges[port]
        m = np.maximum(np.abs(lo), np.abs(hi)).reshape(-1)
        if int(m.max(initial=0)) >= LIMIT:
            _check(node, {f"m_{port}": int(m.max())})
        absmax[port] = m[index].reshape(view).astype(object)          # exact products (Python ints)
    X = np.matmul(absmax["a"], absmax["b"])
    if rows is not None:   # a softmax row: sum_k |A_k| <= rows, so X <= rows max_k |B_k|
        bmax = absmax["b"].max(axis=-2, keepdims=True) if absmax["b"].size else absmax["b"]
        X = np.minimum(X, np.broadcast_to(bmax * rows, X.shape))
    Xmax = int(np.max(X)) if X.size else 0
    if Xmax >= LIMIT:
        _check(node, {"products": Xmax})
    y = round_shift(np.asarray(X, np.int64), node.shift).reshape(-1)[node.out_index].reshape(node.shape)
    return _finish(bi, ranges, -y, y, {"products": Xmax})


#: (unit class, coding class) -> rule, merged into ``bounds.RULES``
UNIT_RULES = {(cls, coding): rule for cls, rule in ((GradedElementwise, _elementwise), (GradedLayerNorm, _layernorm),
                                                     (GradedSoftmax, _softmax), (GradedMatMul, _matmul))
              for coding in (DifferentialCoding, RateCoding)}
