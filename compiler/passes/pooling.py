"""Fold average pooling into the neighbouring linear op (exact in real arithmetic).

Integerization happens after this, so folding loses no precision. Sites:
- AvgPool -> [Flatten] -> Linear: W'[o, c, y, x] = sum over windows covering (y, x) of W[o, c, py, px] / k
- AvgPool -> Conv: one conv with kernel s*(K-1)+k, stride s*S, padding s*P on the unpooled map
- Conv -> AvgPool (pool before the activation): kernel S*(k-1)+K, stride S*s
The pool must have no padding, and in the AvgPool -> Conv case tile its input exactly, else the
site is left alone (the lowering then makes it a SumPool2d projection, or reports why it cannot).
"""

from __future__ import annotations

import numpy as np

from ..frontend.float_graph import AvgPool, Conv, FGraph, Flatten, Linear
from .base import Pass


def _pool_adjoint_dense(w: np.ndarray, pool: AvgPool, in_shape) -> np.ndarray:
    """W (O, C*oh*ow) of a dense after the pool -> W' (O, C*H*W) on the pool's input."""
    C, H, W = in_shape
    kh, kw = pool.kernel
    sy, sx = pool.stride
    oh, ow = (H - kh) // sy + 1, (W - kw) // sx + 1
    w4 = w.reshape(w.shape[0], C, oh, ow) / (kh * kw)
    out = np.zeros((w.shape[0], C, H, W))
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + sy * (oh - 1) + 1:sy, j:j + sx * (ow - 1) + 1:sx] += w4
    return out.reshape(w.shape[0], -1)


class FoldPoolIntoLinear(Pass):
    name = "fold-avgpool-into-linear"

    def match(self, g: FGraph):
        sites = []
        for p in g.ops:
            if not isinstance(p, AvgPool) or any(p.pads) or len(g.consumers(p.name)) != 1:
                continue
            nxt = g.consumers(p.name)[0]
            flat = None
            if isinstance(nxt, Flatten) and len(g.consumers(nxt.name)) == 1:
                flat, nxt = nxt, g.consumers(nxt.name)[0]
            if isinstance(nxt, Linear):
                sites.append((p, flat, nxt))
        return sites

    def transform(self, g, site):
        pool, flat, lin = site
        in_shape = g.shapes()[pool.input]
        lin.weight = _pool_adjoint_dense(lin.weight, pool, in_shape)
        g.remove(pool)
        if flat is not None:
            g.remove(flat)  # Linear flattens its input itself


class FoldPoolIntoConv(Pass):
    """AvgPool followed by a Conv (the VGG pattern act -> pool -> conv)."""

    name = "fold-avgpool-into-conv"

    def match(self, g: FGraph):
        sites = []
        shapes = None
        for p in g.ops:
            if not isinstance(p, AvgPool) or any(p.pads) or len(g.consumers(p.name)) != 1:
                continue
            conv = g.consumers(p.name)[0]
            if not isinstance(conv, Conv) or conv.dilation != (1, 1) or p.kernel != p.stride:
                continue
            shapes = shapes or g.shapes()
            _, H, W = shapes[p.input]
            if H % p.kernel[0] or W % p.kernel[1]:
                continue
            sites.append((p, conv))
        return sites

    def transform(self, g, site):
        pool, conv = site
        kh, kw = pool.kernel
        O, Cg, K1, K2 = conv.weight.shape
        w = np.zeros((O, Cg, kh * K1, kw * K2))
        for i in range(kh):
            for j in range(kw):
                w[:, :, i::kh, j::kw] = conv.weight / (kh * kw)
        conv.weight = w
        t, l, b, r = conv.pads
        conv.pads = (t * kh, l * kw, b * kh, r * kw)
        conv.stride = (conv.stride[0] * kh, conv.stride[1] * kw)
        g.remove(pool)


class FoldConvIntoPool(Pass):
    """Conv followed by AvgPool before the activation: one conv."""

    name = "fold-conv-into-avgpool"

    def match(self, g: FGraph):
        sites = []
        for p in g.ops:
            if isinstance(p, AvgPool) and not any(p.pads):
                conv = g.producer(p.input)
                if isinstance(conv, Conv) and conv.dilation == (1, 1) and len(g.consumers(conv.name)) == 1:
                    sites.append((conv, p))
        return sites

    def transform(self, g, site):
        conv, pool = site
        kh, kw = pool.kernel
        S1, S2 = conv.stride
        O, Cg, K1, K2 = conv.weight.shape
        w = np.zeros((O, Cg, S1 * (kh - 1) + K1, S2 * (kw - 1) + K2))
        for u in range(kh):
            for v in range(kw):
                w[:, :, S1 * u:S1 * u + K1, S2 * v:S2 * v + K2] += conv.weight / (kh * kw)
        conv.weight = w
        conv.stride = (S1 * pool.stride[0], S2 * pool.stride[1])
        g.remove(pool)
