"""analysis/macs.py: the ANN's multiply-accumulates from the imported graph's shapes, counted by hand on a
tiny graph of every kind (conv, linear, token linear, a MatMul of two activations)."""

import numpy as np

from snnc.compiler.analysis.macs import macs_per_op
from snnc.compiler.frontend.float_graph import Conv, FGraph, Linear, MatMul, Reshape, TokenLinear


def test_every_linear_kind_is_counted():
    rng = np.random.default_rng(0)
    ops = [
        Conv("conv", "x", rng.standard_normal((2, 1, 3, 3)), np.zeros(2), (1, 1), (1, 1, 1, 1)),
        Reshape("tok", "conv", shape=(2, 16)),                               # 2 tokens of 16 features
        TokenLinear("q", "tok", rng.standard_normal((8, 16)), np.zeros(8)),
        TokenLinear("k", "tok", rng.standard_normal((8, 16)), np.zeros(8)),
        Reshape("kt", "k", shape=(8, 2)),
        MatMul("att", "q", other="kt"),                                # (2, 8) @ (8, 2) -> (2, 2)
        Reshape("flat", "att", shape=(4,)),
        Linear("fc", "flat", rng.standard_normal((3, 4)), np.zeros(3)),
    ]
    g = FGraph("x", (1, 4, 4), ops, "fc")
    m = macs_per_op(g)
    assert m == {"conv": 2 * 4 * 4 * 9, "q": 2 * 8 * 16, "k": 2 * 8 * 16, "att": 2 * 2 * 8, "fc": 3 * 4}
