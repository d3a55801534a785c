"""Lava 0.10's hard widths, and how the emitter stays exact within them.

Conv geometry
    Lava 0.10's fixed-point Conv model (``lava.proc.conv.models.PyConvModelFixed``) declares its geometry
    Vars ``kernel_size``, ``stride``, ``padding``, ``dilation`` and ``groups`` as ``np.int8``. A value above
    127 wraps: a depthwise 1x1 convolution over 128 channels (``groups = 128``, the re-encoding of a
    transformer's 128-wide MLP hidden layer) runs with ``groups = -128`` and sends zero currents, with no
    error. Such a projection is emitted instead as ``lava.proc.sparse.process.Sparse`` whose matrix holds,
    for each output element, the weights of the input elements its window reads (``conv_matrix``): the same
    integer products, the same one-step delay, and no 24-bit clamp (Lava's Sparse keeps int32 currents).

Currents
    Lava's fixed_pt Conv wraps its output to 24-bit signed (``CONV_CURRENT_LIMIT``); Dense and Sparse
    send int32 (``INT32_CURRENT_LIMIT``). A population's or an input's messages are bounded statically
    (the emitter warns where a Conv's worst case passes 2^23 - 1). A transformer's graded function unit
    has no static message bound in the IR, so every projection out of one is a Dense or an unrolled
    Sparse, and the unit carries a ``MessageGuard``: the largest |message| that keeps every current it
    causes within int32. The unit records any larger message it sends, and the backend refuses the
    run by name (``backend.refuse_wrapped_currents``) instead of returning messages that may differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix

from snnc.backends.base import UnsupportedNetworkError
from snnc.ir import Conv2d, Dense, GradedFunctionUnit, Network, Projection, SumPool2d

CONV_CURRENT_LIMIT = 2**23 - 1       # Lava's fixed_pt Conv wraps its output to 24-bit signed
INT32_CURRENT_LIMIT = 2**31 - 1      # Lava's fixed_pt Dense/Sparse send their currents on int32 ports
INT8_MAX = 127                       # Lava Conv's geometry Vars are int8
SPARSE_WEIGHT_RANGE = (-256, 255)    # Sparse/Dense fixed_pt with sign_mode MIXED, num_weight_bits=9: unchanged


def conv_geometry(p: Projection) -> dict[str, tuple[int, ...]]:
    """The values Lava's Conv would store in its int8 geometry Vars for ``p``."""
    if isinstance(p, Conv2d):
        kernel, stride, dil, groups = tuple(p.weight.shape[2:]), p.stride, p.dilation, p.groups
    else:
        kernel, stride, dil, groups = tuple(p.kernel), p.stride, (1, 1), p.in_shape[0]
    return {"kernel_size": tuple(kernel), "stride": tuple(stride), "padding": tuple(p.padding),
            "dilation": tuple(dil), "groups": (int(groups),)}


def conv_fits_lava(p: Projection) -> bool:
    """Whether every geometry value of ``p`` fits Lava Conv's int8 Vars."""
    return all(v <= INT8_MAX for vals in conv_geometry(p).values() for v in vals)


def _weights(p: Projection) -> np.ndarray:
    if isinstance(p, Conv2d):
        return np.asarray(p.weight, np.int64)
    c = p.in_shape[0]
    return np.full((c, 1) + tuple(p.kernel), int(p.weight), np.int64)


def conv_matrix(p: Projection) -> csr_matrix:
    """``p`` (a Conv2d or SumPool2d) as a matrix M with ``current = M @ source`` on the IR's C-order
    flattening (rows: ``p.out_shape``, columns: ``p.in_shape``), weight mantissas (the exponent is
    applied by the consumer, as for a Dense). One entry per synapse: padding reads are dropped."""
    w = _weights(p)
    c_out, cg, kh, kw = w.shape
    c_in, h, wd = p.in_shape
    _, oh, ow = p.out_shape
    sy, sx = p.stride
    dy, dx = p.dilation if isinstance(p, Conv2d) else (1, 1)
    pad_t, pad_l = p.padding[0], p.padding[1]
    groups = c_in // cg
    og = c_out // groups
    o, c, i, j, y, x = np.meshgrid(np.arange(c_out), np.arange(cg), np.arange(kh), np.arange(kw),
                                   np.arange(oh), np.arange(ow), indexing="ij")
    iy = y * sy - pad_t + i * dy
    ix = x * sx - pad_l + j * dx
    ci = (o // og) * cg + c
    keep = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd) & (w[o, c, i, j] != 0)
    rows = (o * oh + y) * ow + x
    cols = (ci * h + iy) * wd + ix
    vals = w[o, c, i, j]
    m = csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(c_out * oh * ow, c_in * h * wd), dtype=np.int64)
    m.sum_duplicates()
    return m


def check_sparse_weights(p: Projection, m: csr_matrix) -> None:
    """Lava's Sparse fixed_pt model clips weights to [-256, 255]: refuse, naming ``p``, where that would
    change one."""
    lo, hi = SPARSE_WEIGHT_RANGE
    if m.nnz and (m.data.min() < lo or m.data.max() > hi):
        raise UnsupportedNetworkError(
            f"projection '{p.name}': emitted as a Lava Sparse (its geometry {conv_geometry(p)} exceeds Lava "
            "Conv's int8 fields, or its source is a graded unit), its weight mantissas (range "
            f"[{int(m.data.min())}, {int(m.data.max())}]) exceed the "
            f"[{lo}, {hi}] Lava's fixed_pt Sparse keeps; no exact Lava process")


def row_abs_max(p: Projection) -> int:
    """max over target elements of sum |w| << e: the largest current one unit of message can cause."""
    if isinstance(p, Dense):
        m = int(np.abs(p.weight).sum(axis=1).max(initial=0))
    else:
        m = int(np.asarray(abs(conv_matrix(p)).sum(axis=1)).max(initial=0))
    return m << p.exponent


@dataclass(frozen=True)
class MessageGuard:
    """A graded function unit's run-time width check: every projection out of it is a Lava Dense/Sparse
    (int32 currents), so a message with |d| <= ``limit`` keeps every current it causes exact;
    ``projection`` is the one that sets the limit."""

    unit: str
    limit: int
    projection: str
    row_abs_max: int


def message_guards(net: Network) -> dict[str, MessageGuard]:
    """unit name -> its ``MessageGuard`` (units without outgoing projections: no limit)."""
    guards: dict[str, MessageGuard] = {}
    for p in net.projections:
        if not isinstance(net.node(p.source), GradedFunctionUnit):
            continue
        r = max(row_abs_max(p), 1)
        g = MessageGuard(p.source, INT32_CURRENT_LIMIT // r, p.name, r)
        if p.source not in guards or g.limit < guards[p.source].limit:
            guards[p.source] = g
    return guards
