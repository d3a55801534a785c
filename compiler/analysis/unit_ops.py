"""The graded units' own arithmetic (LayerNorm, softmax, GELU / SiLU, Q K^T, A V on the target's embedded
processors), counted per sample and step from the IR's integer definitions (ir/graded/dynamics.py,
functions.py, arith.py), so an energy figure can price it beside the neuro cores' spikes.

Convention (docs/cost.md, "Graded units' arithmetic"): a multiplication or a division is one **MAC** (priced
at the energy model's ANN MAC energy), an addition, subtraction, comparison or shift by a variable amount one
**add** (priced at its AC / SOP energy); constant shifts are free. Counted per step, for every element:

* the ports' update (``UnitDynamics.step``): differential coding ``m += s R_t + e``: one MAC per element of
  a port fed by spikes or the input, one add per element of a port fed by graded units; rate coding
  ``m += s`` (one add) and the running mean ``m R_t + offset`` (one MAC, one add);
* the function y = F_int(m), per output element unless stated:
  GELU / SiLU (``interpolate``): 1 MAC, 5 adds;
  LayerNorm over D: per element 4 MACs (D m, the square, gamma c', the division by r) and 6 adds (the sum,
  the centring, the |c| max, the shift, + r, + beta), per token 1 add (+ eps) and the integer square root
  of a b-bit V 2^(2P) as 2 ceil(b / 2) adds (digit by digit: compare and subtract per result bit);
  softmax over D: 3 MACs (the table's slope, e out_one, the division) and 10 adds (the max, z = m - max,
  the range test, the table's 5, the sum, + S);
  MatMul: ``contraction`` MACs and 1 add (the rounding shift) per output element;
* the message: rate coding C_t = round(t F / 2^G) (1 MAC, 1 add), then d = y - y_prev (1 add).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from snnc.ir import (DifferentialCoding, GradedElementwise, GradedFunctionUnit, GradedLayerNorm, GradedMatMul,
                     GradedSoftmax, Network)

from ..errors import SnncError

INTERPOLATE = (1, 5)       # (MACs, adds) of one table interpolation (arith.interpolate)


@dataclass(frozen=True)
class UnitOps:
    """Operations of one graded unit per sample and step."""

    macs: int
    adds: int

    def __post_init__(self) -> None:
        if self.macs < 0 or self.adds < 0:
            raise ValueError(f"operation counts must be >= 0, got {self.macs} MACs, {self.adds} adds")

    def __add__(self, other: "UnitOps") -> "UnitOps":
        return UnitOps(self.macs + other.macs, self.adds + other.adds)

    def times(self, k: int) -> "UnitOps":
        return UnitOps(self.macs * k, self.adds * k)


def _size(shape) -> int:
    return int(np.prod(shape))


def _elementwise(u: GradedElementwise) -> UnitOps:
    return UnitOps(*INTERPOLATE).times(_size(u.shape))


def _layernorm(u: GradedLayerNorm) -> UnitOps:
    n = _size(u.shape)
    D = u.shape[u.axis]
    tokens = n // D
    bits = 2 * u.norm_bits + math.ceil(math.log2(max(D, 2))) + 2 * u.sqrt_bits + 1
    per_token = UnitOps(0, 1 + 2 * math.ceil(bits / 2))
    return UnitOps(4, 6).times(n) + per_token.times(tokens)


def _softmax(u: GradedSoftmax) -> UnitOps:
    # max (1 compare), z = m - max (1), range test (1), the interpolation (1 MAC, 5 adds), the sum (1),
    # y = (2 e out_one + S) // (2 S): the product and the division (2 MACs), + S (1 add)
    macs, adds = INTERPOLATE
    return UnitOps(macs + 2, adds + 5).times(_size(u.shape))


def _matmul(u: GradedMatMul) -> UnitOps:
    return UnitOps(u.contraction, 1).times(_size(u.shape))


#: unit class -> its function's operations per sample and step (a new unit kind adds an entry)
FUNCTION_OPS: dict[type[GradedFunctionUnit], Callable] = {
    GradedElementwise: _elementwise,
    GradedLayerNorm: _layernorm,
    GradedSoftmax: _softmax,
    GradedMatMul: _matmul,
}


def unit_ops(net: Network, u: GradedFunctionUnit) -> UnitOps:
    """Operations of unit ``u`` of ``net`` per sample and step (module docstring)."""
    fn = FUNCTION_OPS.get(type(u))
    if fn is None:
        raise SnncError(f"graded unit '{u.name}': no operation count for {type(u).__name__}; "
                         f"counted: {sorted(c.__name__ for c in FUNCTION_OPS)}")
    differential = isinstance(net.coding, DifferentialCoding)
    ports = UnitOps(0, 0)
    for port in u.PORTS:
        n = _size(u.port_shape(port))
        feeds = [p for p in net.incoming(u.name) if u.port_of(p.name) == port]
        graded = any(isinstance(net.node(p.source), GradedFunctionUnit) for p in feeds)
        spiking = any(not isinstance(net.node(p.source), GradedFunctionUnit) for p in feeds)
        if differential:
            ports += UnitOps(n if spiking else 0, n if graded else 0)
        else:
            ports += UnitOps(n, 2 * n)
    out = _size(u.shape)
    message = UnitOps(0, out) if differential else UnitOps(out, 2 * out)
    return ports + fn(u) + message


def network_unit_ops(net: Network) -> UnitOps:
    """All graded function units of ``net``, per sample, over the T steps each runs."""
    total = UnitOps(0, 0)
    for u in net.nodes:
        if isinstance(u, GradedFunctionUnit):
            total += unit_ops(net, u).times(net.timesteps)
    return total
