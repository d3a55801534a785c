"""The reference simulator's dual-threshold neuron against a scalar, loop-by-loop reading of
paper 000's Eq. 4-5 in integers (docs/ir.md), on random dense networks (hypothesis)."""

import numpy as np
from hypothesis import given, settings, strategies as st

from snnc.ir import Schedule

from snnc.backends.reference import simulate
from snnc.ir import Dense, DualThreshold, Input, Network, Population, Readout


def scalar_dual(currents_fn, n_out, thr, v0, bias, neg_div, T, scale=1):
    """One neuron at a time, one step at a time: the equations written out."""
    v = [scale * v0[i] for i in range(n_out)]
    n = [0] * n_out
    out = []
    for t in range(T):
        cur = currents_fn(t)
        s_t = []
        for i in range(n_out):
            th = scale * thr[i]
            neg = -scale * ((thr[i] + neg_div - 1) // neg_div)
            v[i] += int(cur[i]) + scale * bias[i]
            if v[i] >= th:
                s = 1
            elif v[i] <= neg and n[i] >= 1:
                s = -1
            else:
                s = 0
            v[i] -= s * th
            n[i] += s
            s_t.append(s)
        out.append(s_t)
    return np.array(out), n


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 9), st.integers(1, 50))
def test_pipelined_dual_threshold_matches_the_scalar_equations(seed, T, neg_div):
    rng = np.random.default_rng(seed)
    n_in, n_h, n_o = 4, 5, 3
    inp = Input("x", (n_in,), scale=1.0, qmin=-6, qmax=6)
    thr1, thr2 = rng.integers(1, 12, n_h), rng.integers(1, 12, n_o)
    v01, v02 = rng.integers(0, thr1), rng.integers(0, thr2)
    b1, b2 = rng.integers(-3, 4, n_h), rng.integers(-3, 4, n_o)
    h = Population("h", (n_h,), neuron=DualThreshold(neg_div), threshold=thr1, v0=v01, bias=b1, levels=T)
    o = Population("o", (n_o,), neuron=DualThreshold(neg_div), threshold=thr2, v0=v02, bias=b2, levels=T)
    w1, w2 = rng.integers(-5, 6, (n_h, n_in)), rng.integers(-7, 8, (n_o, n_h))
    net = Network([inp, h, o, Readout("r", (n_o,))],
                  [Dense("x->h", "x", "h", w1, 0, (n_in,), (n_h,)), Dense("h->o", "h", "o", w2, 1, (n_h,), (n_o,)),
                   Dense("o->r", "o", "r", np.eye(n_o, dtype=np.int64), 0, (n_o,), (n_o,))], T)
    x = rng.integers(-6, 7, (1, n_in))
    res = simulate(net, x, Schedule.PIPELINED, record=True, quantized=True)
    sh, nh = scalar_dual(lambda t: w1 @ x[0], n_h, thr1, v01, b1, neg_div, T)
    so, no = scalar_dual(lambda t: (w2 @ sh[t]) * 2, n_o, thr2, v02, b2, neg_div, T)
    assert np.array_equal(res.spikes["h"][:, 0], sh) and np.array_equal(res.spikes["o"][:, 0], so)
    assert res.counts["h"][0].tolist() == nh and res.counts["o"][0].tolist() == no
    assert min(nh + no) >= 0  # net counts never go negative
    assert np.array_equal(res.readout["r"][0], so.sum(axis=0))
    # layerwise: state and both thresholds scaled by T, current = the sources' counts
    lw = simulate(net, x, Schedule.LAYERWISE, record=True, quantized=True)
    lh, _ = scalar_dual(lambda t: w1 @ (T * x[0]), n_h, thr1, v01, b1, neg_div, T, scale=T)
    assert np.array_equal(lw.spikes["h"][:, 0], lh)
