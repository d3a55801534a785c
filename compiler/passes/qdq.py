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
  quantize_static puts a QuantizeLinear/DequantizeLinear pair on the input): snnc quantizes its
  input itself (``input_bits`` / ``--input-range``), so that pair is replaced by snnc's own
  input quantization. A quantizer that ends at the graph output (quantize_static quantizes the
  logits too) is removed as well: the readout is read as integers at its own scale.
"""

from __future__ import annotations

from ..graph import Clamp, FGraph, Relu, Rounding, ScalarAffine
from .base import Pass

_CHAIN = (ScalarAffine, Clamp, Relu)


def _input_chain(g: FGraph, r: Rounding):
    """The single-consumer elementwise chain graph-input -> ... -> r -> ... (all of it), or None."""
    pre, cur = [], g.producer(r.input)
    while isinstance(cur, _CHAIN) and len(g.consumers(cur.name)) == 1:
        pre.insert(0, cur)
        cur = g.producer(cur.input)
    first = pre[0] if pre else r
    if first.input != g.input_name or cur is not None:
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


class DropInputQuantizer(Pass):
    """Drops the quantizer on the graph input (snnc quantizes its input itself) and the one on the
    graph output (the readout is read as integers at its own scale; a quantizer there only moves the
    logits onto a grid)."""

    name = "drop-input-quantizer"

    def match(self, g):
        out = []
        for o in g.ops:
            if isinstance(o, Rounding) and o.mode in ("half_even", "half_up"):
                chain = _input_chain(g, o)
                if chain and all(not isinstance(c, Relu) for c in chain):
                    out.append((chain, g.input_name))
                    continue
                chain = _output_chain(g, o)
                if chain:
                    out.append((chain, chain[0].input))
        return out

    def transform(self, g, site):
        chain, new = site
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
