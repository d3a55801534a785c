"""Quantizer formats (ONNX QDQ, Brevitas QCDQ, QONNX Quant): bring their activations to FuseQuantAct.

The frontend spells an activation quantizer with the existing elementwise ops (scalar affines,
clamps) around a ``Rounding`` of mode "half_even" (QuantizeLinear, Quant ROUND) or "half_up"
(Quant HALF_UP). FuseQuantAct composes floor/ceil only, so:

* ``FoldQDQRounding`` rewrites Rounding(half_even | half_up) into ``+1/2`` then floor. For half_up this
  is the same function. For half_even it differs only where v = x/s is exactly k + 1/2 (a tie):
  half-even rounds to the even neighbour, floor(v + 1/2) always up. snnc's conversion is exact for
  floor(v + 1/2) (the papers' round); a float model that meets an exact tie may differ there by one
  level (docs/conversion.md, "Quantizer formats").
* ``DropInputQuantizer`` removes a quantizer chain that reads the graph input directly (onnxruntime's
  quantize_static puts a QuantizeLinear/DequantizeLinear pair on the input) and records it in
  ``g.meta["input_quantizer"]`` as (scale, qmin, qmax, rounding) when it is one: the lowering then
  quantizes the network input with the model's own grid (``Input`` node, exact, rounding included)
  unless ``--input-range`` is given. A chain that is not of that form (an offset that is not an
  integer number of steps, different quantize and dequantize scales) is recorded in
  ``g.meta["input_quantizer_unusable"]`` with the reason and snnc quantizes the input itself. A
  quantizer that ends at the graph output (quantize_static quantizes the logits too) is removed as
  well: the readout is read as integers at its own scale.
"""

from __future__ import annotations

import numpy as np

from ..frontend.float_graph import Clamp, FGraph, Flatten, Relu, Rounding, ScalarAffine
from .base import Pass

_CHAIN = (ScalarAffine, Clamp, Relu)


def _input_chain(g: FGraph, r: Rounding, behind_flatten: bool = False):
    """The single-consumer elementwise chain graph-input -> ... -> r -> ... (all of it), or None.
    ``behind_flatten``: the chain reads a Flatten of the graph input instead."""
    pre, cur = [], g.producer(r.input)
    while isinstance(cur, _CHAIN) and len(g.consumers(cur.name)) == 1:
        pre.insert(0, cur)
        cur = g.producer(cur.input)
    first = pre[0] if pre else r
    if behind_flatten:
        if not (isinstance(cur, Flatten) and cur.input == g.input_name and first.input == cur.name):
            return None
    elif first.input != g.input_name or cur is not None:
        return None
    post, cur = [], r
    while g.output != cur.name:
        cons = g.consumers(cur.name)
        if len(cons) != 1 or not isinstance(cons[0], (ScalarAffine, Clamp)):
            break
        cur = cons[0]
        post.append(cur)
    return pre + [r] + post


def _output_chain(g: FGraph, r: Rounding):
    """The quantizer around r when it ends at the graph output: the frontend's own ops before r
    (named '<node>/scale', '<node>/clip') and every elementwise op after it, or None."""
    prefix = r.name.rsplit("/", 1)[0] + "/"
    pre, cur = [], g.producer(r.input)
    while isinstance(cur, (ScalarAffine, Clamp)) and cur.name.startswith(prefix) and len(g.consumers(cur.name)) == 1:
        pre.insert(0, cur)
        cur = g.producer(cur.input)
    post, cur = [], r
    while g.output != cur.name:
        cons = g.consumers(cur.name)
        if len(cons) != 1 or not isinstance(cons[0], (ScalarAffine, Clamp)):
            return None
        cur = cons[0]
        post.append(cur)
    return pre + [r] + post


def input_quantizer(chain) -> tuple[dict | None, str]:
    """The chain x -> pre -> Rounding -> post as x_real = scale * clip(round(x / scale), qmin, qmax)
    (zero point folded into the range), or (None, why not).

    pre: affines u = a x + c and clamps; post on the rounded integer r: value = alpha r + beta and
    clamps. Exact conditions: c is an integer (an even one for half-even rounding, whose ties move
    with odd shifts), pre-rounding clamp bounds are integers, beta = 0 once c is carried through,
    and alpha = 1/a (dequantize with the quantize scale)."""
    r_idx = next(i for i, op in enumerate(chain) if isinstance(op, Rounding))
    a, c, lo, hi = 1.0, 0.0, -np.inf, np.inf
    for op in chain[:r_idx]:
        if isinstance(op, ScalarAffine):
            a, c, lo, hi = a * op.mul, c * op.mul + op.add, lo * op.mul + op.add, hi * op.mul + op.add
            if op.mul < 0:
                lo, hi = hi, lo
        elif isinstance(op, Clamp):
            lo, hi = max(lo, op.lo), min(hi, op.hi)
        else:
            return None, f"'{op.name}' ({type(op).__name__}) before the rounding"
    mode = chain[r_idx].mode
    if a <= 0:
        return None, "a non-positive input scale"
    if c != round(c) or (mode == "half_even" and round(c) % 2):
        return None, f"an offset of {c} steps before the rounding (an integer, even for half-even rounding, is needed)"
    if any(np.isfinite(b) and b != round(b) for b in (lo, hi)):
        return None, f"clamp bounds {lo}, {hi} between the integer steps"
    # on the integer r = round(a x): value = alpha * r + beta, r in [rlo, rhi]
    alpha, beta = 1.0, float(c)
    rlo, rhi = lo - c, hi - c
    for op in chain[r_idx + 1:]:
        if isinstance(op, ScalarAffine):
            alpha, beta = alpha * op.mul, beta * op.mul + op.add
        elif isinstance(op, Clamp) and alpha > 0:
            qlo, qhi = (op.lo - beta) / alpha, (op.hi - beta) / alpha
            if any(np.isfinite(q) and abs(q - round(q)) > 1e-6 for q in (qlo, qhi)):
                return None, f"clamp '{op.name}' bounds {op.lo}, {op.hi} are not on the quantization grid"
            rlo, rhi = max(rlo, np.round(qlo)), min(rhi, np.round(qhi))
        else:
            return None, f"'{op.name}' ({type(op).__name__}) after the rounding"
    if abs(beta) > 1e-9 * max(1.0, abs(alpha)):
        return None, f"a value offset {beta} after dequantization (zero points of quantize and dequantize differ)"
    if abs(alpha * a - 1.0) > 1e-6:
        return None, f"dequantize scale {alpha} differs from the quantize scale {1 / a}"
    if not (np.isfinite(rlo) and np.isfinite(rhi)) or rlo >= rhi:
        return None, f"integer range [{rlo}, {rhi}] is not bounded"
    return {"scale": float(1.0 / a), "qmin": int(rlo), "qmax": int(rhi), "rounding": mode,
            "nodes": [op.name for op in chain]}, ""


class DropInputQuantizer(Pass):
    """Drops the quantizer on the graph input (snnc quantizes its input itself) and the one on the
    graph output (the readout is read as integers at its own scale; a quantizer there only moves the
    logits onto a grid).

    A quantizer behind a Flatten of the input (onnxruntime's quantize_static of an MLP: x -> Flatten ->
    QuantizeLinear -> DequantizeLinear) is recorded as the input's grid but kept: it becomes a spiking
    layer that relays the input levels (exact: its weight is one integer per neuron and its threshold that
    integer times L). Its counts stay <= T, so the first weighted layer's state bound is T^2 sum|W| rather
    than T^2 x_max sum|W| (docs/ir.md, bounds): with 8-bit inputs that is a factor 255 in the state width.
    (Set only once: the pass then stops matching that chain.)"""

    name = "drop-input-quantizer"

    def match(self, g):
        out = []
        known = "input_quantizer" in g.meta or "input_quantizer_unusable" in g.meta
        for o in g.ops:
            if isinstance(o, Rounding) and o.mode in ("half_even", "half_up"):
                chain = _input_chain(g, o)
                if chain and all(not isinstance(c, Relu) for c in chain):
                    out.append((chain, g.input_name))
                    continue
                chain = None if known else _input_chain(g, o, behind_flatten=True)
                if chain and all(not isinstance(c, Relu) for c in chain):
                    out.append((chain, None))  # recorded, kept as a relay layer (class docstring)
                    continue
                chain = _output_chain(g, o)
                if chain:
                    out.append((chain, chain[0].input))
        return out

    def transform(self, g, site):
        chain, new = site
        if new is None:
            q, _ = input_quantizer(chain)
            if q is not None:
                g.meta["input_quantizer"] = q
            else:
                g.meta["input_quantizer_unusable"] = "behind a Flatten"
            return
        if new == g.input_name:
            q, why = input_quantizer(chain)
            if q is not None:
                g.meta["input_quantizer"] = q
            else:
                g.meta["input_quantizer_unusable"] = f"input quantizer {[op.name for op in chain]}: {why}"
        last = chain[-1].name
        for op in chain:
            g.ops.remove(op)
        g.replace_uses(last, new)


class FoldQDQRounding(Pass):
    name = "fold-qdq-rounding"

    def match(self, g):
        return [o for o in g.ops if isinstance(o, Rounding) and o.mode in ("half_even", "half_up")]

    def transform(self, g, r):
        shift = ScalarAffine(r.name + "/half", r.input, 1.0, 0.5)
        g.ops.insert(g.ops.index(r), shift)
        r.input = shift.name
        r.mode = "floor"
