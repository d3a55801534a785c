"""Passes for graphs that branch (residual networks, concatenations, max pooling).

- ``DuplicateSharedPool``: an average pool read by several ops becomes one copy per reader, so each
  copy can fold into its own linear op (the ResNet stem's pool feeds both the first block's conv
  and its identity shortcut). Exact: the copies compute the same thing.
- ``SwapMaxPoolMonotone``: MaxPool -> f becomes f -> MaxPool for every elementwise non-decreasing
  f: the quantized activation y = gamma*clip(Q(alpha*x + beta), 0, L) (alpha, gamma > 0), its parts
  (positive scalar affines, clamps, ReLU, floor/ceil) and a batch norm whose scales are all > 0.
  A non-decreasing f commutes with a max: f(max_i z_i) = max_i f(z_i), exactly, padding included
  (MaxPool pads with -inf and f(-inf) <= f(anything)). Run before FuseQuantAct, it moves a max pool
  that sits before or inside the activation's op chain past the whole activation; afterwards a max
  pool reads spike counts, whose max the lowering takes exactly (compiler/lowering/quantized.py,
  docs/conversion.md).
"""

from __future__ import annotations

import copy

import numpy as np

from ..frontend.float_graph import AvgPool, BatchNorm, Clamp, FGraph, MaxPool, QuantAct, Relu, Rounding, ScalarAffine
from .base import Pass


class DuplicateSharedPool(Pass):
    name = "duplicate-shared-avgpool"

    def match(self, g: FGraph):
        return [p for p in g.ops if isinstance(p, AvgPool) and len(g.consumers(p.name)) > 1 and g.output != p.name]

    def transform(self, g, pool):
        names = {o.name for o in g.ops} | {g.input_name}
        idx = g.ops.index(pool)
        for k, cons in enumerate(g.consumers(pool.name)[1:], 2):
            name = f"{pool.name}.{k}"
            while name in names:
                name += "'"
            names.add(name)
            dup = copy.deepcopy(pool)
            dup.name = name
            g.ops.insert(idx + 1, dup)
            cons.replace_source(pool.name, name)


def non_decreasing(op) -> bool:
    """Is ``op`` an elementwise non-decreasing function (so that it commutes with a max)?"""
    if isinstance(op, (QuantAct, Relu, Clamp, Rounding)):
        return not isinstance(op, QuantAct) or (op.alpha > 0 and op.gamma > 0)
    if isinstance(op, ScalarAffine):
        return op.mul > 0
    if isinstance(op, BatchNorm):
        return bool(np.all(op.affine()[0] > 0))
    return False


class SwapMaxPoolMonotone(Pass):
    name = "swap-maxpool-monotone"

    def match(self, g: FGraph):
        sites = []
        for mp in g.ops:
            if isinstance(mp, MaxPool) and g.output != mp.name:
                cons = g.consumers(mp.name)
                if len(cons) == 1 and non_decreasing(cons[0]):
                    sites.append((mp, cons[0]))
        return sites

    def transform(self, g, site):
        mp, f = site
        # z -> mp -> f -> readers   becomes   z -> f -> mp -> readers (f keeps its name)
        g.replace_uses(f.name, mp.name)
        f.input, mp.input = mp.input, f.name
        i, j = g.ops.index(mp), g.ops.index(f)
        g.ops[i], g.ops[j] = f, mp
