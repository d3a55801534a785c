"""The integer arithmetic the IR defines, batched over samples: what a projection computes, which
source neurons it reaches, how a per-channel parameter broadcasts, how float inputs become x_int.

Every backend and the compiler's state bounds use these (docs/ir.md states them as equations).
``apply_projection`` takes integer source values of shape (B, *in_shape) and returns the integer
current (B, *out_shape) = A(W, s) << e. The products are formed in float64 with BLAS and converted
back: this is exact because every partial sum is an integer whose magnitude the compile-time bound
check keeps far below 2**53 (checked here anyway: ``ProjectionRangeError``).
"""

from __future__ import annotations

import numpy as np

from .errors import IRError
from .graph import Network
from .projections import Conv2d, Dense, Projection, SumPool2d

FLOAT_EXACT = 2.0**52


class ProjectionRangeError(IRError, RuntimeError):
    """A value left the range a projection can be computed in exactly (beyond any hardware range)."""


def check_exact(p: Projection, s: np.ndarray) -> None:
    """Raise ``ProjectionRangeError`` when sum|W| * max|s| could exceed 2^52 (float64 stops being exact)."""
    bound = float(p.max_abs_input_weight_sum) * (float(np.abs(s).max()) if s.size else 0.0)
    if bound >= FLOAT_EXACT:
        raise ProjectionRangeError(
            f"projection '{p.name}': sum|W|*max|s| = {bound:.3g} exceeds 2^52; "
            "values are out of any hardware range"
        )


def _pad(x: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    t, l, b, r = padding
    if not any(padding):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))


def windows(x: np.ndarray, kh: int, kw: int, sy: int, sx: int, dy: int, dx: int, oh: int, ow: int) -> np.ndarray:
    """(B, C, H, W) -> view (B, C, oh, ow, kh, kw) of the strided windows."""
    B, C, H, W = x.shape
    sb, sc, sh, sw = x.strides
    return np.lib.stride_tricks.as_strided(
        x, shape=(B, C, oh, ow, kh, kw), strides=(sb, sc, sh * sy, sw * sx, sh * dy, sw * dx), writeable=False
    )


def dense(p: Dense, s: np.ndarray) -> np.ndarray:
    B = s.shape[0]
    flat = s.reshape(B, -1).astype(np.float64)
    out = flat @ p.weight.T.astype(np.float64)
    return out.astype(np.int64).reshape((B,) + tuple(p.out_shape))


def conv2d(p: Conv2d, s: np.ndarray) -> np.ndarray:
    B = s.shape[0]
    c_out, cg, kh, kw = p.weight.shape
    _, oh, ow = p.out_shape
    x = _pad(s.astype(np.float64), p.padding)
    win = windows(x, kh, kw, p.stride[0], p.stride[1], p.dilation[0], p.dilation[1], oh, ow)
    g = p.groups
    og = c_out // g
    w = p.weight.astype(np.float64)
    outs = []
    for gi in range(g):
        wi = win[:, gi * cg:(gi + 1) * cg]                       # (B, cg, oh, ow, kh, kw)
        wg = w[gi * og:(gi + 1) * og]                            # (og, cg, kh, kw)
        outs.append(np.einsum("bcyxij,ocij->boyx", wi, wg, optimize=True))
    out = outs[0] if g == 1 else np.concatenate(outs, axis=1)
    return np.rint(out).astype(np.int64)


def sum_pool2d(p: SumPool2d, s: np.ndarray) -> np.ndarray:
    kh, kw = p.kernel
    _, oh, ow = p.out_shape
    x = _pad(s.astype(np.int64), p.padding)
    win = windows(x, kh, kw, p.stride[0], p.stride[1], 1, 1, oh, ow)
    return win.sum(axis=(-1, -2)) * int(p.weight)


#: projection class -> its integer map; a new projection kind adds an entry
PROJECTION_MAPS = {Dense: dense, Conv2d: conv2d, SumPool2d: sum_pool2d}


class UnknownProjectionError(IRError, NotImplementedError):
    """A projection class without an entry in ``PROJECTION_MAPS``."""


def apply_projection(p: Projection, s: np.ndarray) -> np.ndarray:
    """Integer current of projection ``p`` for integer source values ``s`` (B, *source shape)."""
    fn = PROJECTION_MAPS.get(type(p))
    if fn is None:
        raise UnknownProjectionError(
            f"projection '{p.name}' of type {type(p).__name__}: the IR's arithmetic defines "
            f"{sorted(c.__name__ for c in PROJECTION_MAPS)}"
        )
    s = np.asarray(s)
    if not isinstance(p, Dense):
        s = s.reshape((s.shape[0],) + tuple(p.in_shape))
    check_exact(p, s)
    out = fn(p, s)
    return out << p.exponent if p.exponent else out


def per_channel(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Broadcast a scalar or per-channel (axis 0) parameter to (1, *shape)."""
    arr = np.asarray(arr)
    if arr.ndim == 0:
        return arr.reshape((1,) * (len(shape) + 1))
    return arr.reshape((1, shape[0]) + (1,) * (len(shape) - 1))


def fanout(p: Projection) -> np.ndarray:
    """Synapses with a non-zero weight that each source neuron reaches, shape ``p.in_shape``.

    Conv borders, stride, dilation and groups are counted honestly: an input position only counts
    the (output, kernel offset) pairs that really read it.
    """
    if isinstance(p, Dense):
        return (p.weight != 0).sum(axis=0).reshape(p.in_shape).astype(np.int64)
    C, H, W = p.in_shape
    _, oh, ow = p.out_shape
    if isinstance(p, Conv2d):
        O, cg, kh, kw = p.weight.shape
        og = O // p.groups
        nz = (p.weight != 0).reshape(p.groups, og, cg, kh, kw).sum(axis=1).reshape(C, kh, kw)
        sy, sx = p.stride
        dy, dx = p.dilation
        top, left = p.padding[0], p.padding[1]
    else:  # SumPool2d
        kh, kw = p.kernel
        nz = np.full((C, kh, kw), int(p.weight != 0))
        sy, sx = p.stride
        dy = dx = 1
        top, left = p.padding[0], p.padding[1]

    def hits(n_out, size, k, s, d, pad):  # (k, size): does kernel offset i read input position y?
        m = np.zeros((k, size), np.int64)
        for i in range(k):
            pos = np.arange(n_out) * s + i * d - pad
            m[i, pos[(pos >= 0) & (pos < size)]] = 1
        return m

    return np.einsum("cij,iy,jx->cyx", nz, hits(oh, H, kh, sy, dy, top), hits(ow, W, kw, sx, dx, left))


def quantize_inputs(net: Network, x) -> dict[str, np.ndarray]:
    """Map the float input(s) to x_int. ``x`` is an array (single input) or a dict by input name."""
    inputs = net.inputs
    if not isinstance(x, dict):
        if len(inputs) != 1:
            raise ValueError(f"network has {len(inputs)} inputs; pass a dict keyed by {[i.name for i in inputs]}")
        x = {inputs[0].name: x}
    out = {}
    for node in inputs:
        if node.name not in x:
            raise ValueError(f"no data for input '{node.name}'")
        xi = np.asarray(x[node.name])
        if xi.shape[1:] != tuple(node.shape):
            raise ValueError(f"input '{node.name}' expects samples of shape {node.shape}, got {xi.shape[1:]}")
        out[node.name] = node.quantize(xi)
    return out


def as_int_inputs(net: Network, x, quantized: bool) -> dict[str, np.ndarray]:
    """x_int by input name: quantize float inputs, or take already-quantized ones (array or dict)."""
    if not quantized:
        return quantize_inputs(net, x)
    if not isinstance(x, dict):
        x = {net.inputs[0].name: x}
    return {k: np.asarray(v, dtype=np.int64) for k, v in x.items()}
