"""Average pooling exactly as ONNX defines it, folded into the neighbouring linear op (exact in real
arithmetic; integerization happens after this, so folding loses no precision).

``AvgPool`` (compiler/frontend/float_graph.py) carries every ONNX attribute: kernel, stride, pads, ``ceil_mode`` and
``count_include_pad``; its divisor can differ at the borders (count_include_pad = 0 with padding, or
ceil-mode windows reaching past the padding). The lowering takes a pool as one weight per window
(a SumPool2d projection, or the folds below), so:

- ``NormalizeAvgPool``: a pool whose divisor is kh*kw everywhere becomes ceil_mode = 0 and
  count_include_pad = 1 (the same function: no window touches a padded or missing element whose count
  would differ).
- ``FoldPoolIntoLinear``: AvgPool -> [Flatten] -> Linear, any pool (borders included): the linear map's
  weight on the pool's input, W'[o, c, y, x] = sum over windows covering (y, x) of W[o, c, i, j] / div[i, j].
- ``FoldPoolIntoConv``: AvgPool -> Conv (the VGG pattern act -> pool -> conv) on any map size: one conv
  with stride s*S, kernel s*(K-1)+k, weight sum over v*s + u = d of W[v]/k per axis, padding s*P + p; exact
  when the pool is uniform and the conv's own zero padding never stands for elements of the map the pool
  reads (checked per axis; e.g. a floor-mode pool that drops the last row of an odd map, followed by a
  conv padded at the bottom, is not one convolution).
- ``FoldConvIntoPool``: Conv followed by a uniform, unpadded AvgPool before the activation: one conv.
- ``RefuseInexactAvgPool`` (last): a pool none of the above could take is refused naming the node, the
  map size and why, with what to export instead.
"""

from __future__ import annotations

import numpy as np

from ..errors import ConversionError
from ..frontend.float_graph import AvgPool, Conv, FGraph, Flatten, Linear
from .base import Pass


def _in_hw(g: FGraph, pool: AvgPool, shapes=None) -> tuple[int, int, int]:
    shapes = shapes or g.shapes()
    C, H, W = shapes[pool.input]
    return int(C), int(H), int(W)


#: a folded dense weight with this many entries or more is held as float32 when every value is exactly a
#: float32 (VGG-16 at 224x224: its fc1 folded with the last 2x2 pool is 4096 x 100352; each value is a float32
#: weight over 4, exact), else as float64 like every other weight of the float graph
FLOAT32_MIN_WEIGHTS = 1 << 24
FOLD_BLOCK = 1 << 19  # entries of the folded weight computed per block of output rows


def _disjoint(pool: AvgPool) -> bool:
    """No two windows share an element (a stride at least the kernel: VGG's 2x2 pools): every element of
    the fold is one window's weight, or 0."""
    (kh, kw), (sy, sx) = pool.kernel, pool.stride
    return kh <= sy and kw <= sx


def _fold_rows(w: np.ndarray, pool: AvgPool, in_shape, out: np.ndarray) -> bool:
    """out[:] = the pool's adjoint of the dense rows ``w``, ``out`` zeroed by the caller: its windows'
    sums added in place, or (``_disjoint`` windows) each element assigned in ``out``'s dtype. False when
    a value assigned is not exactly of that dtype."""
    C, H, W = in_shape
    kh, kw = pool.kernel
    sy, sx = pool.stride
    t, l, _, _ = pool.pads
    oh, ow, div, _, _ = pool.geometry(H, W)
    w4 = w.reshape(w.shape[0], C, oh, ow) / div
    o4 = out.reshape(w.shape[0], C, H, W)
    disjoint = _disjoint(pool)
    if disjoint:
        w4 += 0.0  # what adding onto the zeros gives: -0.0 becomes 0.0
    if disjoint and out.dtype != w4.dtype and not np.array_equal(w4.astype(out.dtype), w4):
        return False
    if (kh, kw) == (sy, sx) and pool.pads == (0, 0, 0, 0) and (H, W) == (oh * kh, ow * kw):
        # the windows tile the map: each weight fills its kh x kw block, written in one sequential pass
        out.reshape(w.shape[0], C, oh, kh, ow, kw)[...] = w4[:, :, :, None, :, None]
        return True
    for u in range(kh):
        ys = np.arange(oh) * sy - t + u
        iy = np.nonzero((ys >= 0) & (ys < H))[0]
        for v in range(kw):
            xs = np.arange(ow) * sx - l + v
            ix = np.nonzero((xs >= 0) & (xs < W))[0]
            if iy.size and ix.size:  # both runs are contiguous and strided: slices
                y0, x0 = int(ys[iy[0]]), int(xs[ix[0]])
                dst = o4[:, :, y0:y0 + sy * (iy.size - 1) + 1:sy, x0:x0 + sx * (ix.size - 1) + 1:sx]
                src = w4[:, :, int(iy[0]):int(iy[-1]) + 1, int(ix[0]):int(ix[-1]) + 1]
                if disjoint:
                    dst[...] = src
                else:
                    dst += src
    return True


def _fold_into(w: np.ndarray, pool: AvgPool, in_shape, dtype) -> np.ndarray | None:
    """The folded weight computed in float64 by blocks of rows and stored as ``dtype``; None when a
    value is not exactly a ``dtype``. ``_disjoint`` windows write each weight once, straight into the
    result; overlapping ones sum in a float64 buffer."""
    C, H, W = in_shape
    n_out, n_in = w.shape[0], C * H * W
    step = max(1, FOLD_BLOCK // max(1, n_in))
    out = np.zeros((n_out, n_in), dtype)
    if _disjoint(pool):
        for a in range(0, n_out, step):
            if not _fold_rows(w[a:a + step], pool, in_shape, out[a:a + step]):
                return None
        return out
    buf = np.empty((min(step, n_out), n_in))
    for a in range(0, n_out, step):
        blk = buf[:min(step, n_out - a)]
        blk.fill(0.0)
        _fold_rows(w[a:a + step], pool, in_shape, blk)
        out[a:a + step] = blk
        if dtype is not np.float64 and not np.array_equal(out[a:a + step], blk):
            return None
    return out


def _pool_adjoint_dense(w: np.ndarray, pool: AvgPool, in_shape) -> np.ndarray:
    """W (O, C*oh*ow) of a dense after the pool -> W' (O, C*H*W) on the pool's input, computed in
    float64; held as float32 when it is large and every value is exactly a float32
    (``FLOAT32_MIN_WEIGHTS``: the same values in half the memory), else as float64."""
    C, H, W = in_shape
    if w.shape[0] * C * H * W >= FLOAT32_MIN_WEIGHTS:
        out = _fold_into(w, pool, in_shape, np.float32)
        if out is not None:
            return out
    return _fold_into(w, pool, in_shape, np.float64)


class NormalizeAvgPool(Pass):
    name = "normalize-avgpool"

    def match(self, g: FGraph):
        sites, shapes = [], None
        for p in g.ops:
            if isinstance(p, AvgPool) and p.kernel != (0, 0) and (p.ceil_mode or not p.count_include_pad):
                shapes = shapes or g.shapes()
                _, H, W = _in_hw(g, p, shapes)
                if p.uniform(H, W):
                    sites.append(p)
        return sites

    def transform(self, g, pool):
        pool.ceil_mode, pool.count_include_pad = False, True


class FoldPoolIntoLinear(Pass):
    name = "fold-avgpool-into-linear"

    def match(self, g: FGraph):
        sites = []
        for p in g.ops:
            if not isinstance(p, AvgPool) or p.kernel == (0, 0) or len(g.consumers(p.name)) != 1:
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


def _axis_composite(size: int, k: int, s: int, p_lo: int, p_hi: int, K: int, S: int, P_lo: int, P_hi: int):
    """Pool (k, s, p) then conv (K, S, P) along one axis as one conv on the unpooled axis: (kernel, stride,
    pad_lo, pad_hi) or (None, why) when the conv's padding would stand for elements the pool reads."""
    oh = (size + p_lo + p_hi - k) // s + 1
    oh2 = (oh + P_lo + P_hi - K) // S + 1
    for o in range(oh2):
        for v in range(K):
            q = o * S - P_lo + v
            if 0 <= q < oh:
                continue
            real = [q * s - p_lo + u for u in range(k) if 0 <= q * s - p_lo + u < size]
            if real:
                return None, (f"the conv's zero padding at pooled position {q} stands for element(s) {real} of the "
                              f"{size}-wide map, which the pool reads there")
    kc = s * (K - 1) + k
    lo = s * P_lo + p_lo

    def count(hi):
        return (size + lo + hi - kc) // (S * s) + 1

    hi = s * P_hi + p_hi  # the natural padding; else the least that reaches every window
    if count(hi) != oh2:
        hi = max((oh2 - 1) * S * s + kc - (size + lo), 0)
    if count(hi) != oh2:
        return None, "the folded convolution would produce a different number of outputs"
    return (kc, S * s, lo, hi), ""


def pool_conv_fold(g: FGraph, pool: AvgPool, conv: Conv, shapes=None):
    """(composite geometry per axis, "") for AvgPool -> Conv, or (None, why not)."""
    _, H, W = _in_hw(g, pool, shapes)
    if conv.dilation != (1, 1):
        return None, f"Conv node '{conv.name}' is dilated"
    if not pool.uniform(H, W):
        return None, f"AveragePool node '{pool.name}' divides its border windows by fewer elements"
    t, l, b, r = pool.pads
    T, Lc, B, R = conv.pads
    K1, K2 = conv.weight.shape[2], conv.weight.shape[3]
    ay, why = _axis_composite(H, pool.kernel[0], pool.stride[0], t, b, K1, conv.stride[0], T, B)
    if ay is None:
        return None, "rows: " + why
    ax, why = _axis_composite(W, pool.kernel[1], pool.stride[1], l, r, K2, conv.stride[1], Lc, R)
    if ax is None:
        return None, "columns: " + why
    return (ay, ax), ""


class FoldPoolIntoConv(Pass):
    """AvgPool followed by a Conv (the VGG pattern act -> pool -> conv), any map size."""

    name = "fold-avgpool-into-conv"

    def match(self, g: FGraph):
        sites, shapes = [], None
        for p in g.ops:
            if not isinstance(p, AvgPool) or p.kernel == (0, 0) or len(g.consumers(p.name)) != 1:
                continue
            conv = g.consumers(p.name)[0]
            if not isinstance(conv, Conv):
                continue
            shapes = shapes or g.shapes()
            geo, _ = pool_conv_fold(g, p, conv, shapes)
            if geo is not None:
                sites.append((p, conv, geo))
        return sites

    def transform(self, g, site):
        pool, conv, ((kc1, s1, t, b), (kc2, s2, l, r)) = site
        kh, kw = pool.kernel
        sy, sx = pool.stride
        O, Cg, K1, K2 = conv.weight.shape
        w = np.zeros((O, Cg, kc1, kc2))
        for v1 in range(K1):
            for v2 in range(K2):
                w[:, :, v1 * sy:v1 * sy + kh, v2 * sx:v2 * sx + kw] += conv.weight[:, :, v1:v1 + 1, v2:v2 + 1] / (kh * kw)
        conv.weight = w
        conv.pads = (t, l, b, r)
        conv.stride = (s1, s2)
        g.remove(pool)


class FoldConvIntoPool(Pass):
    """Conv followed by AvgPool before the activation: one conv (uniform pool without padding or windows
    past the map: a padded pool would average zeros where the conv has values)."""

    name = "fold-conv-into-avgpool"

    def match(self, g: FGraph):
        sites, shapes = [], None
        for p in g.ops:
            if isinstance(p, AvgPool) and p.kernel != (0, 0) and not any(p.pads):
                conv = g.producer(p.input)
                if isinstance(conv, Conv) and conv.dilation == (1, 1) and len(g.consumers(conv.name)) == 1:
                    shapes = shapes or g.shapes()
                    _, H, W = _in_hw(g, p, shapes)
                    _, _, _, eb, er = p.geometry(H, W)
                    if p.uniform(H, W) and not eb and not er:
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


def _describe(p: AvgPool, H: int, W: int) -> str:
    return (f"AveragePool node '{p.name}' (kernel {list(p.kernel)}, stride {list(p.stride)}, pads {list(p.pads)}, "
            f"ceil_mode={int(p.ceil_mode)}, count_include_pad={int(p.count_include_pad)}) over a {H}x{W} map")


class RefuseInexactAvgPool(Pass):
    """Last in the pipeline: what the folds above could not take is refused by name (never lowered
    approximately)."""

    name = "refuse-inexact-avgpool"

    def match(self, g: FGraph):
        sites, shapes = [], None
        for p in g.ops:
            if not isinstance(p, AvgPool) or p.kernel == (0, 0):
                continue
            shapes = shapes or g.shapes()
            _, H, W = _in_hw(g, p, shapes)
            cons = g.consumers(p.name)
            if not p.uniform(H, W):
                sites.append((p, H, W, None))
            elif len(cons) == 1 and isinstance(cons[0], Conv):
                sites.append((p, H, W, cons[0]))
        return sites

    def transform(self, g, site):
        p, H, W, conv = site
        if conv is None:
            raise ConversionError(
                f"{_describe(p, H, W)} divides some windows by fewer than {p.kernel[0] * p.kernel[1]} elements "
                "(padding not counted, or ceil-mode windows past the padding): a spiking layer reads a pool "
                "with one weight per window position, so this is exact only folded into a fully connected "
                "layer right after it; export with count_include_pad=1 and ceil_mode=0 (or pad the map)")
        _, why = pool_conv_fold(g, p, conv)
        raise ConversionError(
            f"{_describe(p, H, W)} feeds Conv node '{conv.name}' (padding {list(conv.pads)}) with no activation "
            f"in between, and the two are not one convolution: {why}; put a quantized activation between them, "
            "or make the map a multiple of the pool's stride (or drop the conv's padding on that side)")
