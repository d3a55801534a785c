"""ANN cost from the imported graph's shapes alone.

Convention: one MAC per multiply-accumulate of a Conv or Gemm/MatMul (paper 000 counts one MAC as
one FLOP; snnc reports MACs and FLOPs = 2*MACs separately where asked). Bias additions, batch norm,
pooling and activations are not counted (they fold away or are negligible), as in the papers.
"""

from __future__ import annotations

import numpy as np

from ..frontend.float_graph import Conv, FGraph, Linear


def macs_per_op(g: FGraph) -> dict[str, int]:
    shapes = g.shapes()
    out: dict[str, int] = {}
    for op in g.ops:
        if isinstance(op, Conv):
            O, cg, kh, kw = op.weight.shape
            out[op.name] = int(np.prod(shapes[op.name])) * cg * kh * kw
        elif isinstance(op, Linear):
            out[op.name] = int(op.weight.shape[0] * op.weight.shape[1])
    return out
