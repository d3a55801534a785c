"""Recognise the papers' quantized clip activation by what it computes.

Any chain of scalar affines (Mul/Div/Add/Sub by a constant), clamps (Clip/Relu/Max/Min) and exactly
one rounding (Floor/Ceil), each op feeding only the next, is composed symbolically into

    y = g * clip(Q(a*x + c), LO, HI) + d

using that a monotone Q commutes with clip: Q(clip(u, lo, hi)) = clip(Q(u), Q(lo), Q(hi)), and that
Q's output is an integer (so LO -> ceil(LO), HI -> floor(HI)). The chain is the papers' activation
iff g > 0, d = 0, LO = 0 and HI = L >= 1; then it becomes one QuantAct(alpha=a, beta=c, L, gamma=g).
Exporters may spell it in any order (clamp before or after the rounding, constants as initializers
or Constant nodes, the 1/2 shift folded or not): only the composed function matters.
"""

from __future__ import annotations

import math

from ..errors import ConversionError
from ..frontend.float_graph import Clamp, FGraph, QuantAct, Relu, Rounding, ScalarAffine
from .base import Pass

_CHAIN = (ScalarAffine, Clamp, Relu)
_TOL = 1e-6


def _chain_around(g: FGraph, r: Rounding):
    pre, post = [], []
    cur = g.producer(r.input)
    while isinstance(cur, _CHAIN) and len(g.consumers(cur.name)) == 1:
        pre.insert(0, cur)
        cur = g.producer(cur.input)
    cur = r
    while True:
        cons = g.consumers(cur.name)
        if len(cons) != 1 or not isinstance(cons[0], _CHAIN) or g.output == cur.name:
            break
        cur = cons[0]
        post.append(cur)
    return pre, post


def _bounds(op):
    return (0.0, math.inf) if isinstance(op, Relu) else (op.lo, op.hi)


def compose(r: Rounding, pre, post, node_name: str) -> QuantAct:
    """The chain pre -> r -> post as one QuantAct named ``r.name`` (renamed by the caller); ``node_name`` is
    how messages name the layer (the user's layer, FGraph.describe, already quoted)."""
    a, c, lo, hi = 1.0, 0.0, -math.inf, math.inf  # value = clip(a*x + c, lo, hi)
    for op in pre:
        if isinstance(op, ScalarAffine):
            if op.mul <= 0:
                raise ConversionError(f"activation {node_name}: scale {op.mul} before rounding must be > 0")
            a, c = a * op.mul, c * op.mul + op.add
            lo, hi = lo * op.mul + op.add, hi * op.mul + op.add
        else:
            l2, h2 = _bounds(op)
            lo, hi = max(lo, l2), min(hi, h2)
    q = math.floor if r.mode == "floor" else math.ceil
    LO = q(lo) if math.isfinite(lo) else -math.inf
    HI = q(hi) if math.isfinite(hi) else math.inf
    gm, d = 1.0, 0.0  # value = gm*clip(Q(u), LO, HI) + d
    for op in post:
        if isinstance(op, ScalarAffine):
            gm, d = gm * op.mul, d * op.mul + op.add
            if gm <= 0:
                raise ConversionError(f"activation {node_name}: scale after rounding must stay > 0")
        else:
            l2, h2 = _bounds(op)
            LO = max(LO, math.ceil((l2 - d) / gm - _TOL)) if math.isfinite(l2) else LO
            HI = min(HI, math.floor((h2 - d) / gm + _TOL)) if math.isfinite(h2) else HI
    if LO < 0 and abs(d) <= _TOL * max(1.0, gm) and math.isfinite(HI) and HI >= 0:
        raise ConversionError(
            f"layer {node_name} quantizes to signed levels {LO}..{HI}: a spiking layer counts spikes, 0..L per "
            "neuron, so it cannot carry negative activations; make this activation unsigned (levels 0..L: a "
            "ReLU-type quantizer such as Brevitas QuantReLU or a Quant with signed=0, or a zero point at the bottom "
            "of the range after a ReLU) — signed values are taken only at the network input")
    problems = []
    if abs(d) > _TOL * max(1.0, gm):
        problems.append(f"an offset {d:g} after the clip")
    if LO != 0:
        problems.append(f"lower clip bound {LO} (expected 0)")
    if not math.isfinite(HI) or HI < 1:
        problems.append(f"upper clip bound {HI} (expected an integer L >= 1)")
    if problems:
        raise ConversionError(
            f"activation {node_name} is not the quantized clip a = lambda*clip(Q(x*L/lambda), 0, L)/L: "
            + "; ".join(problems)
        )
    mode = r.mode
    if mode == "floor" and not (0 <= c < 1):
        raise ConversionError(f"activation {node_name}: floor shift {c:g} outside [0, 1) is not supported")
    if mode == "ceil" and not (-1 < c <= 0):
        raise ConversionError(f"activation {node_name}: ceil shift {c:g} outside (-1, 0] is not supported")
    return QuantAct(r.name, "", alpha=a, beta=c, levels=int(HI), gamma=gm, mode=mode)


class FuseQuantAct(Pass):
    name = "fuse-quant-act"

    def match(self, g):
        return [o for o in g.ops if isinstance(o, Rounding)]

    def transform(self, g, r):
        pre, post = _chain_around(g, r)
        chain = pre + [r] + post
        qa = compose(r, pre, post, g.describe(r.name))
        qa.input = chain[0].input
        idx = g.ops.index(chain[0])
        for op in chain:
            g.ops.remove(op)
        qa.name = chain[-1].name
        g.ops.insert(idx, qa)
