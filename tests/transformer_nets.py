"""A small hand-built transformer block in the IR, with every graded unit of snnc.ir.graded (shared by
the IR, reference, bounds and Lava tests).

    in (4 features, 3 tokens) --1x1 conv--> ln (LayerNorm over features) --> mt (identity MT)
    mt --q, k (1x1 conv)--> qk (Q K^T per head, 2 heads of 2) --> sm (softmax over keys)
    sm, mt --v--> av (attention V) --> mt2 (identity MT) --1x1 conv--> act (GELU or SiLU) --dense--> readout

Token tensors are laid out (features, tokens, 1), scores (heads, queries, keys).
"""

from __future__ import annotations

import numpy as np

from snnc.compiler.graded_params import elementwise_table, exp_table, layernorm_constants, matmul_shift
from snnc.ir import (Conv2d, Dense, DifferentialCoding, GradedElementwise, GradedLayerNorm, GradedMatMul,
                     GradedSoftmax, Input, MultiThreshold, Network, Population, RateCoding, Readout)

D, T_TOK, H = 4, 3, 2
d = D // H


def _conv(name, src, dst, w, shape_in, shape_out, e=0):
    return Conv2d(name, src, dst, np.asarray(w, np.int64).reshape(w.shape + (1, 1)) if np.ndim(w) == 2 else w, e,
                  shape_in, shape_out)


def _depthwise(name, src, dst, w, shape, e=0):
    C = shape[0]
    return Conv2d(name, src, dst, np.asarray(w, np.int64).reshape(C, 1, 1, 1), e, shape, shape, groups=C)


def transformer_block(coding=None, T: int = 4, n: int = 3, function: str = "gelu", seed: int = 0) -> Network:
    coding = coding or DifferentialCoding(frac_bits=6)
    G = getattr(coding, "frac_bits", 6)
    rng = np.random.default_rng(seed)
    tok = (D, T_TOK, 1)
    big = 1 << 40                                      # table ranges wide enough for any value here
    s_tok = 0.02
    ln_c = layernorm_constants(rng.normal(1, 0.2, D), rng.normal(0, 0.1, D), 1e-5, s_tok, 4 / 2**(n - 1), G)
    ln = GradedLayerNorm("ln", tok, axis=0, gamma=ln_c.gamma, beta=ln_c.beta, eps=ln_c.eps, norm_bits=ln_c.norm_bits,
                         sqrt_bits=ln_c.sqrt_bits, offset=rng.integers(-40, 40, tok), frac_bits=G, in_scale=s_tok,
                         out_scale=4 / 2**(n - 1))
    u = 1 << (n - 1)
    mt = Population("mt", tok, neuron=MultiThreshold(n=n, relu=False), threshold=np.array([4, 8, 8, 12]) * u,
                    levels=T, real_threshold=np.array(1.0))
    mt2 = Population("mt2", tok, neuron=MultiThreshold(n=n, relu=False), threshold=np.array(8 * u), levels=T,
                     real_threshold=np.array(1.0))
    s_q = 0.01
    shift, s_qk = matmul_shift(s_q, s_q, 0.05, G)
    a_idx = np.arange(D * T_TOK).reshape(H, d, T_TOK).transpose(0, 2, 1).reshape(-1)    # Q as (H, T, d)
    qk = GradedMatMul("qk", (H, T_TOK, T_TOK), a_shape=tok, b_shape=tok, a_view=(H, T_TOK, d), b_view=(H, d, T_TOK),
                      a_index=a_idx, b_index=np.arange(D * T_TOK), out_index=np.arange(H * T_TOK * T_TOK),
                      a_inputs=("mt->qk.q",), shift=shift, a_offset=rng.integers(-9, 9, D),
                      b_offset=rng.integers(-9, 9, D), frac_bits=G, a_scale=s_q, b_scale=s_q, out_scale=s_qk)
    et = exp_table(s_qk * 0.5, G)
    out_one = 1 << (G + n - 1)
    sm = GradedSoftmax("sm", (H, T_TOK, T_TOK), axis=2, table=et.table, lo=et.lo, shift=et.shift, exp_bits=16,
                       out_one=out_one, frac_bits=G, in_scale=s_qk * 0.5, out_scale=2.0**G / out_one)
    s_v = 0.01
    shift2, s_av = matmul_shift(sm.out_scale, s_v, 0.02, G)
    out_idx = np.arange(H * T_TOK * d).reshape(H, T_TOK, d).transpose(0, 2, 1).reshape(-1)  # (H,T,d) -> (H*d,T)
    av = GradedMatMul("av", tok, a_shape=(H, T_TOK, T_TOK), b_shape=tok, a_view=(H, T_TOK, T_TOK),
                      b_view=(H, T_TOK, d), a_index=np.arange(H * T_TOK * T_TOK), b_index=a_idx, out_index=out_idx,
                      a_inputs=("sm->av",), shift=shift2, b_offset=rng.integers(-9, 9, D), frac_bits=G,
                      a_scale=sm.out_scale, b_scale=s_v, out_scale=s_av)
    s_g = 0.02
    et2 = elementwise_table(function, s_g, s_g, G, -big, big)
    act = GradedElementwise("act", tok, function=function, table=et2.table, lo=et2.lo, shift=et2.shift,
                            offset=rng.integers(-30, 30, D), frac_bits=G, in_scale=s_g, out_scale=s_g)
    nodes = [Input("in", tok, scale=1 / 32, qmin=-127, qmax=127), ln, mt, qk, sm, av, mt2, act,
             Readout("ro", (5,), scale=0.01)]
    w = lambda *s: rng.integers(-60, 60, s)             # noqa: E731
    projs = [_conv("in->ln", "in", "ln", w(D, D), tok, tok), _depthwise("ln->mt", "ln", "mt", [20, 30, 25, 40], tok),
             _conv("mt->qk.q", "mt", "qk", w(D, D), tok, tok, 1), _conv("mt->qk.k", "mt", "qk", w(D, D), tok, tok, 1),
             _depthwise("qk->sm", "qk", "sm", np.ones(H), (H, T_TOK, T_TOK)),
             _depthwise("sm->av", "sm", "av", np.ones(H), (H, T_TOK, T_TOK)),
             _conv("mt->av", "mt", "av", w(D, D), tok, tok, 1),
             _depthwise("av->mt2", "av", "mt2", [30, 30, 30, 30], tok),
             _conv("mt2->act", "mt2", "act", w(D, D), tok, tok),
             Dense("act->ro", "act", "ro", w(5, D * T_TOK), 0, tok, (5,))]
    return Network(nodes, projs, T, coding=coding)


def block_inputs(batch: int = 6, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-3.5, 3.5, (batch, D, T_TOK, 1))


CODINGS = {"differential": lambda: DifferentialCoding(frac_bits=6), "rate": RateCoding}
