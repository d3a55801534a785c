"""What each graded unit computes: its integer function y = F_int(m) of its ports' running values,
batched (arrays of shape (B, *port shape) in, (B, *unit shape) out). The one definition every backend
calls (docs/ir.md, "Graded units" states each as equations); ``FUNCTIONS`` maps the unit class to it.

A value outside what the unit is defined for (an elementwise table's range, an intermediate beyond
int64) raises :class:`GradedRangeError` naming the unit: the compile-time bounds
(``snnc.compiler.analysis.bounds``) prove it cannot happen in a compiled network, so it is a bug or a
hand-built network, never a silent wrap.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import IRError
from .arith import INT, bit_length, interpolate, isqrt, round_shift
from .units import LIMIT, GradedElementwise, GradedFunctionUnit, GradedLayerNorm, GradedMatMul, GradedSoftmax


class GradedRangeError(IRError, ArithmeticError):
    """A graded unit got a value outside the range its integer function is defined for."""


def _refuse(node, what: str) -> None:
    raise GradedRangeError(f"graded unit '{node.name}' ({type(node).__name__}): {what}; the compile-time state "
                           "bound excludes this (a hand-built network, or a bound that is wrong)")


def elementwise(node: GradedElementwise, ports: dict[str, np.ndarray]) -> np.ndarray:
    m = np.asarray(ports["a"], INT)
    if m.size and (m.min() < node.lo or m.max() > node.hi):
        _refuse(node, f"input {int(m.min())}..{int(m.max())} outside its table's range {node.lo}..{node.hi}")
    return interpolate(node.table, node.lo, node.shift, m)


def layernorm(node: GradedLayerNorm, ports: dict[str, np.ndarray]) -> np.ndarray:
    m = np.asarray(ports["a"], INT)
    ax = node.axis + 1                                  # batch first
    x = np.moveaxis(m, ax, -1)                          # (..., D)
    D = x.shape[-1]
    if x.size and int(np.abs(x).max()) * D >= LIMIT:
        _refuse(node, f"|m| = {int(np.abs(x).max())} times D = {D} reaches 2^62")
    S = x.sum(axis=-1, keepdims=True)
    c = D * x - S                                       # D (m - mean), exact
    k = np.maximum(bit_length(np.abs(c).max(axis=-1, keepdims=True)) - node.norm_bits, 0)
    cp = c >> k                                         # keep norm_bits bits (floor)
    V = (cp * cp).sum(axis=-1, keepdims=True) + np.right_shift(INT(node.eps), np.minimum(2 * k, 63))
    V = np.maximum(V, 1)
    P = node.sqrt_bits
    if int(V.max(initial=0)) >= LIMIT >> (2 * P):
        _refuse(node, f"variance term {int(V.max())} times 4^{P} reaches 2^62")
    r = isqrt(V << (2 * P))                             # floor(2^P sqrt(V)) >= |cp| 2^P
    y = np.floor_divide(2 * node.gamma * cp * (INT(1) << P) + r, 2 * r) + node.beta
    return np.moveaxis(y, -1, ax)


def softmax(node: GradedSoftmax, ports: dict[str, np.ndarray]) -> np.ndarray:
    m = np.asarray(ports["a"], INT)
    ax = node.axis + 1
    x = np.moveaxis(m, ax, -1)
    z = x - x.max(axis=-1, keepdims=True)               # <= 0; the max has z = 0, e = 2^exp_bits
    inside = z >= node.lo
    e = np.where(inside, interpolate(node.table, node.lo, node.shift, np.maximum(z, node.lo)), 0)
    S = e.sum(axis=-1, keepdims=True)
    if int(e.max(initial=0)) * node.out_one * 2 >= LIMIT:
        _refuse(node, "e * out_one reaches 2^62")
    y = np.floor_divide(2 * e * node.out_one + S, 2 * S)   # round(e * out_one / S), halves up
    return np.moveaxis(y, -1, ax)


def matmul(node: GradedMatMul, ports: dict[str, np.ndarray]) -> np.ndarray:
    a, b = np.asarray(ports["a"], INT), np.asarray(ports["b"], INT)
    B = a.shape[0]
    A = a.reshape(B, -1)[:, node.a_index].reshape((B,) + node.a_view)
    Bm = b.reshape(b.shape[0], -1)[:, node.b_index].reshape((b.shape[0],) + node.b_view)
    bound = int(np.abs(A).max(initial=0)) * int(np.abs(Bm).max(initial=0)) * node.contraction
    if bound >= LIMIT:
        _refuse(node, f"the products' sum could reach {bound} >= 2^62")
    P = np.matmul(A, Bm)
    y = round_shift(P, node.shift)
    return y.reshape(B, -1)[:, node.out_index].reshape((B,) + node.shape)


#: unit class -> its integer function (a new unit kind adds an entry)
FUNCTIONS: dict[type[GradedFunctionUnit], Callable[[GradedFunctionUnit, dict[str, np.ndarray]], np.ndarray]] = {
    GradedElementwise: elementwise,
    GradedLayerNorm: layernorm,
    GradedSoftmax: softmax,
    GradedMatMul: matmul,
}


def unit_output(node: GradedFunctionUnit, ports: dict[str, np.ndarray]) -> np.ndarray:
    """y = F_int(ports) of ``node`` (module docstring)."""
    fn = FUNCTIONS.get(type(node))
    if fn is None:
        raise GradedRangeError(f"graded unit '{node.name}': no integer function for {type(node).__name__}; "
                               f"defined: {sorted(c.__name__ for c in FUNCTIONS)}")
    return fn(node, ports)
