"""Closed forms of a projection applied to a constant input: per output neuron, the sum of its positive
and of its negative weights over the source positions it really reads (borders, padding, stride and
dilation counted exactly), shifted by the projection's exponent.

For an input that is the same value s everywhere, P(W+, s) = s * P(W+, 1) (the map is linear and
integer), so the state bounds (``bounds.py``) need these two integer arrays per projection instead of
applying the projection to arrays of ones four times in float64. They are computed in int64 and equal
``apply_projection(W+, ones)`` / ``apply_projection(W-, ones)`` integer for integer (tested against it).
``check_range`` raises the ``ProjectionRangeError`` that applying the projection to values up to
``s_max`` raises, so no check is lost.

A new projection kind adds an entry in ``SIGNED_SUMS``; a kind without one falls back to
``apply_projection`` on ones.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from snnc.ir import Conv2d, Dense, Projection, SumPool2d, apply_projection, replace
from snnc.ir.arithmetic import FLOAT_EXACT, ProjectionRangeError

ROWS_PER_CHUNK = 1 << 20  # weights summed per step of a dense projection (bounds the temporary copy)


def _taps(size: int, kernel: int, stride: int, pad: int, dilation: int, out: int) -> np.ndarray:
    """[output index, kernel offset] = 1 where the tap reads an in-bounds source position."""
    src = np.arange(out, dtype=np.int64)[:, None] * stride + np.arange(kernel, dtype=np.int64)[None, :] * dilation - pad
    return ((src >= 0) & (src < size)).astype(np.int64)


def _dense(p: Dense) -> tuple[np.ndarray, np.ndarray, int, int]:
    w = p.weight
    n_out = w.shape[0]
    pos = np.zeros(n_out, np.int64)
    neg = np.zeros(n_out, np.int64)
    step = max(1, ROWS_PER_CHUNK // max(1, w.shape[1]))
    for a in range(0, n_out, step):
        block = w[a:a + step]
        total = block.sum(axis=1, dtype=np.int64)
        pos[a:a + step] = np.maximum(block, 0).sum(axis=1, dtype=np.int64)
        neg[a:a + step] = total - pos[a:a + step]
    return pos.reshape(p.out_shape), neg.reshape(p.out_shape), int(pos.max(initial=0)), int(-neg.min(initial=0))


def _conv(p: Conv2d) -> tuple[np.ndarray, np.ndarray, int, int]:
    w = p.weight
    c_out, _, kh, kw = w.shape
    _, h, wd = p.in_shape
    _, oh, ow = p.out_shape
    kpos = np.maximum(w, 0).sum(axis=1, dtype=np.int64)          # (O, kh, kw): every input channel reads ones
    kneg = w.sum(axis=1, dtype=np.int64) - kpos
    ty = _taps(h, kh, p.stride[0], p.padding[0], p.dilation[0], oh)   # (oh, kh)
    tx = _taps(wd, kw, p.stride[1], p.padding[1], p.dilation[1], ow)  # (ow, kw)

    def spread(k: np.ndarray) -> np.ndarray:
        return np.einsum("oyj,xj->oyx", np.einsum("yi,oij->oyj", ty, k), tx)

    spos = int(kpos.reshape(c_out, -1).sum(axis=1).max(initial=0))
    sneg = int(-kneg.reshape(c_out, -1).sum(axis=1).min(initial=0))
    return spread(kpos), spread(kneg), spos, sneg


def _sum_pool(p: SumPool2d) -> tuple[np.ndarray, np.ndarray, int, int]:
    kh, kw = p.kernel
    c, h, wd = p.in_shape
    _, oh, ow = p.out_shape
    count = _taps(h, kh, p.stride[0], p.padding[0], 1, oh).sum(1)[:, None] * \
        _taps(wd, kw, p.stride[1], p.padding[1], 1, ow).sum(1)[None, :]
    wv = int(p.weight)
    count = np.broadcast_to(count, (c, oh, ow))
    return (max(wv, 0) * count, min(wv, 0) * count, max(wv, 0) * kh * kw, -min(wv, 0) * kh * kw)


#: projection class -> (sum of positive weights per output, of negative weights, largest positive sum
#: over one output's weights, largest negative sum in magnitude); before the exponent shift
SIGNED_SUMS: dict[type, Callable[[Projection], tuple[np.ndarray, np.ndarray, int, int]]] = {
    Dense: _dense, Conv2d: _conv, SumPool2d: _sum_pool,
}


def _fallback(p: Projection) -> tuple[np.ndarray, np.ndarray, int, int]:
    pos = replace(p, weight=np.maximum(p.weight, 0))
    neg = replace(p, weight=np.minimum(p.weight, 0))
    ones = np.ones((1,) + tuple(p.in_shape), np.int64)
    out = tuple(apply_projection(q, ones)[0] >> q.exponent for q in (pos, neg))
    return out[0], out[1], int(pos.max_abs_input_weight_sum), int(neg.max_abs_input_weight_sum)


def signed_sums(p: Projection, s_max: int) -> tuple[np.ndarray, np.ndarray]:
    """(P(W+, 1), P(W-, 1)) per output neuron (shape ``p.out_shape``, int64, exponent applied), after
    ``check_range(p, s_max)``: the input of the bound takes values of magnitude up to ``s_max``."""
    pos, neg, spos, sneg = SIGNED_SUMS.get(type(p), _fallback)(p)
    check_range(p, max(spos, sneg), s_max)
    pos, neg = np.asarray(pos, np.int64).reshape(p.out_shape), np.asarray(neg, np.int64).reshape(p.out_shape)
    return (pos << p.exponent, neg << p.exponent) if p.exponent else (pos, neg)


def check_range(p: Projection, weight_sum: int, s_max: int) -> None:
    """``ProjectionRangeError`` when sum|W| * max|s| could exceed 2^52 (``snnc.ir.arithmetic.check_exact``
    for the positive or negative part of ``p`` applied to values up to ``s_max``)."""
    bound = float(weight_sum) * float(abs(s_max))
    if bound >= FLOAT_EXACT:
        raise ProjectionRangeError(
            f"projection '{p.name}': sum|W|*max|s| = {bound:.3g} exceeds 2^52; values are out of any hardware range")
