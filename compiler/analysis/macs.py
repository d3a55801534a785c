"""ANN cost from the imported graph's shapes alone.

Convention: one MAC per multiply-accumulate of a Conv, a Gemm/MatMul by a weight (also per token), or a
MatMul of two activations (attention's Q.K^T and A.V) (paper 000 counts one MAC as one FLOP; snnc reports MACs and FLOPs = 2*MACs separately where asked). Bias additions, batch norm,
pooling and activations are not counted (they fold away or are negligible), as in the papers.
"""

from __future__ import annotations

import numpy as np

from ..frontend.float_graph import Conv, FGraph, Linear, MatMul, TokenLinear


def macs_per_op(g: FGraph) -> dict[str, int]:
    shapes = g.shapes()
    out: dict[str, int] = {}
    for op in g.ops:
        if isinstance(op, Conv):
            O, cg, kh, kw = op.weight.shape
            out[op.name] = int(np.prod(shapes[op.name])) * cg * kh * kw
        elif isinstance(op, Linear):
            out[op.name] = int(op.weight.shape[0] * op.weight.shape[1])
        elif isinstance(op, TokenLinear):   # every token: (tokens x out) outputs, each over `in` inputs
            out[op.name] = int(np.prod(shapes[op.name])) * int(op.weight.shape[1])
        elif isinstance(op, MatMul):        # (..., M, N) outputs, each a sum over the inner axis K
            out[op.name] = int(np.prod(shapes[op.name])) * int(shapes[op.input][-1])
    return out
