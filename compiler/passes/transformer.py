"""Transformer passes: recognise GELU and SiLU by what they compute, and take a class token before its
row-wise norm.

* ``FuseElementwiseFunction``: a product ``x * c(x)`` where ``c`` is a chain of unary elementwise ops
  on x itself (scalar affines, Erf, Sigmoid; each feeding only the next), optionally followed by
  scalar affines, is a scalar function f of x. It is evaluated on a grid of x and compared with the
  known functions (``FUNCTIONS``: GELU's erf form, SiLU); a match within ``TOL`` becomes one ``Gelu`` /
  ``Silu`` op. Exporters spell GELU as x/sqrt2 -> Erf -> +1 -> *x -> *0.5 or with the 0.5 before the
  product; only the composed function matters (as for ``FuseQuantAct``).
* ``SelectBeforeRowwise``: ``Select(LayerNorm(x))`` along an axis the norm does not normalise (the
  class token of a ViT's final norm) is ``LayerNorm(Select(x))``: one token is normalised instead of
  every token. Likewise for elementwise functions.
"""

from __future__ import annotations

import numpy as np

from ..frontend.float_graph import (Erf, FGraph, Gelu, LayerNorm, Mul, ROWWISE_OPS, ScalarAffine, Select, Sigmoid,
                                    Silu)
from .base import Pass

_UNARY = (ScalarAffine, Erf, Sigmoid)
GRID = np.linspace(-12.0, 12.0, 4801)
TOL = 1e-6
FUNCTIONS = {Gelu: Gelu("gelu", "x"), Silu: Silu("silu", "x")}


def _chain_back(g: FGraph, start: str, root: str) -> list | None:
    """The unary ops from ``root`` to ``start`` (in order), each read only by the next; None if the walk
    from ``start`` back does not reach ``root`` through such ops."""
    chain, cur = [], start
    while cur != root:
        op = g.producer(cur)
        if not isinstance(op, _UNARY) or len(g.consumers(op.name)) != 1 or g.output == op.name:
            return None
        chain.insert(0, op)
        cur = op.input
    return chain


def _evaluate(chain, post, x: np.ndarray) -> np.ndarray:
    c = x[None]
    for op in chain:
        c = op(c)
    y = x[None] * c
    for op in post:
        y = op(y)
    return y[0]


def _matches(y: np.ndarray, fn) -> bool:
    want = fn(GRID[None])[0]
    return bool(np.all(np.abs(y - want) <= TOL * (1.0 + np.abs(want))))


class FuseElementwiseFunction(Pass):
    name = "fuse-elementwise-function"

    def match(self, g):
        sites = []
        for m in g.ops:
            if not isinstance(m, Mul):
                continue
            for root, other in ((m.input, m.other), (m.other, m.input)):
                chain = _chain_back(g, other, root)
                if not chain:
                    continue
                post, cur = [], m
                while True:
                    cons = g.consumers(cur.name)
                    if len(cons) != 1 or not isinstance(cons[0], ScalarAffine) or g.output == cur.name:
                        break
                    cur = cons[0]
                    post.append(cur)
                for k in range(len(post), -1, -1):
                    y = _evaluate(chain, post[:k], GRID)
                    fn = next((cls for cls, f in FUNCTIONS.items() if _matches(y, f)), None)
                    if fn is not None:
                        sites.append((root, chain, m, post[:k], fn))
                        break
                if sites and sites[-1][2] is m:
                    break
        return sites

    def transform(self, g, site):
        root, chain, m, post, cls = site
        last = post[-1] if post else m
        idx = g.ops.index(chain[0])
        for op in chain + [m] + post:
            g.ops.remove(op)
        g.ops.insert(idx, cls(last.name, root))


class SelectBeforeRowwise(Pass):
    name = "select-before-rowwise"

    def match(self, g):
        out = []
        shapes = None
        for s in g.ops:
            if not isinstance(s, Select):
                continue
            prod = g.producer(s.input)
            if not isinstance(prod, ROWWISE_OPS) or len(g.consumers(prod.name)) != 1:
                continue
            if isinstance(prod, LayerNorm):
                shapes = shapes or g.shapes()
                if s.axis == len(shapes[prod.name]):      # the normalised (last) axis itself
                    continue
            out.append((prod, s))
        return out

    def transform(self, g, site):
        prod, sel = site
        # rowwise(select(x)): the select reads the norm's input, the norm takes the select's name
        i_prod, i_sel = g.ops.index(prod), g.ops.index(sel)
        new_sel = Select(f"{sel.name}/before", prod.input, sel.axis, sel.index)
        prod.name, prod.input = sel.name, new_sel.name
        g.ops.remove(sel)
        g.ops.remove(prod)
        g.ops.insert(min(i_prod, i_sel), new_sel)
        g.ops.insert(g.ops.index(new_sel) + 1, prod)
