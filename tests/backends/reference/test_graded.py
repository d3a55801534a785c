"""Graded max-pool units in the reference simulator (docs/ir.md, "Graded max-pool unit").

The integer equations are checked against an independent scalar reading (plain Python ints and
Fractions over every window element):
* rate coding: the unit's cumulative output equals the max over each window of the source's
  cumulative message sums, exactly, at every step;
* differential coding: its encoded output (the sum of its messages d, units of 2^-F) equals the max
  over each window of the source's encoded values sum_t msg_t * R_t, exactly, at every step; with
  exact reciprocals (T = 2) the messages are paper 004's t * (max m[t] - max m[t-1]) / t.
Every consumer kind (readout, multi-threshold population, another graded unit) reads it as stated.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest

from snnc.ir import Schedule, apply_projection

from snnc.backends.reference import simulate
from snnc.backends.reference.neurons import MTDifferentialStepper, MTRateStepper
from snnc.ir import (Conv2d, Dense, DifferentialCoding, GradedMaxPool, IFSoftReset, Input, MultiThreshold, Network,
                     Population, RateCoding, Readout, SumPool2d)

F = 10


def _unit(name, src, in_shape, kernel, stride, padding, max_message):
    C, H, W = in_shape
    oh = (H + padding[0] + padding[2] - kernel[0]) // stride[0] + 1
    ow = (W + padding[1] + padding[3] - kernel[1]) // stride[1] + 1
    u = GradedMaxPool(name, (C, oh, ow), in_shape=in_shape, kernel=kernel, stride=stride, padding=padding,
                      max_message=max_message)
    e = SumPool2d(f"{src}->{name}", src, name, np.array(1), 0, in_shape, u.shape, kernel=kernel, stride=stride,
                  padding=padding)
    return u, e


def build(coding, T=5, n=3, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0), seed=0, consumer="readout",
          chain=False, neuron=None):
    """input (2, 5, 5) -conv-> population p -> GradedMaxPool 'pool' [-> 'pool2'] -> consumer -> readout."""
    rng = np.random.default_rng(seed)
    neuron = neuron or MultiThreshold(n, True)
    mm = getattr(neuron, "unit_divisor", 1)
    inp = Input("x", (2, 5, 5), scale=1 / 16, qmin=-16, qmax=16)
    thr = np.array([4 * mm, 8 * mm]) if isinstance(neuron, MultiThreshold) else np.array(24)
    pop = Population("p", (2, 5, 5), neuron=neuron, threshold=thr, v0=np.array([mm, 0]) if mm > 1 else 0, levels=T)
    conv = Conv2d("x->p", "x", "p", rng.integers(-4, 5, (2, 2, 3, 3)), 0, (2, 5, 5), (2, 5, 5), padding=(1, 1, 1, 1))
    u, e = _unit("pool", "p", (2, 5, 5), kernel, stride, padding, mm)
    nodes, projs, last = [inp, pop, u], [conv, e], u
    if chain:
        u2, e2 = _unit("pool2", "pool", u.shape, (2, 2), (1, 1), (0, 0, 0, 0), mm)
        nodes.append(u2)
        projs.append(e2)
        last = u2
    if consumer == "population":
        q = Population("q", (4,), neuron=MultiThreshold(n, True), threshold=np.array(8 * mm), v0=np.array(mm), levels=T)
        nodes.append(q)
        projs.append(Dense("last->q", last.name, "q", rng.integers(-3, 4, (4, last.size)), 0, last.shape, (4,)))
        last = q
    ro = Readout("out", (3,), v0=np.array([1, -2, 0]))
    nodes.append(ro)
    projs.append(Dense("last->out", last.name, "out", rng.integers(-3, 4, (3, last.size)), 0, last.shape, (3,)))
    return Network(nodes, projs, T, coding=coding)


def _x(seed=1, B=6):
    return np.random.default_rng(seed).uniform(-1, 1, (B, 2, 5, 5))


def _python_window_max(vals, node: GradedMaxPool):
    """vals[b][c][y][x] (Python numbers, source shape) -> the window maxima, padding excluded."""
    C, H, W = node.in_shape
    (kh, kw), (sy, sx), (t, l, _, _) = node.kernel, node.stride, node.padding
    _, oh, ow = node.shape
    out = np.empty((len(vals), C, oh, ow), dtype=object)
    for b, c, y, x in itertools.product(range(len(vals)), range(C), range(oh), range(ow)):
        elems = [vals[b][c][y * sy + i - t][x * sx + j - l] for i in range(kh) for j in range(kw)
                 if 0 <= y * sy + i - t < H and 0 <= x * sx + j - l < W]
        out[b, c, y, x] = max(elems)
    return out


GEOMETRIES = [((2, 2), (2, 2), (0, 0, 0, 0)), ((3, 3), (2, 2), (1, 1, 1, 1)), ((2, 3), (1, 2), (1, 0, 0, 1))]


@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("n", [1, 3])
def test_rate_cumulative_output_is_max_of_cumulative_sums(kernel, stride, padding, n):
    net = build(RateCoding(), n=n, kernel=kernel, stride=stride, padding=padding)
    r = simulate(net, _x(), Schedule.PIPELINED, record=True)
    unit = net.node("pool")
    src = np.cumsum(r.spikes["p"].astype(np.int64), axis=0)       # (T, B, ...) cumulative source sums
    out = np.cumsum(r.spikes["pool"], axis=0)
    assert np.abs(r.spikes["pool"]).max() <= unit.max_message    # the messages keep the source's bound
    for t in range(net.timesteps):
        want = _python_window_max(src[t].tolist(), unit)
        assert np.array_equal(out[t], want.astype(np.int64)), t
    assert np.array_equal(r.counts["pool"], out[-1])


@pytest.mark.parametrize("kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("T", [2, 5])
def test_differential_encoded_output_is_max_of_encoded_inputs(kernel, stride, padding, T):
    coding = DifferentialCoding(F)
    net = build(coding, T=T, kernel=kernel, stride=stride, padding=padding)
    r = simulate(net, _x(), Schedule.PIPELINED, record=True)
    unit = net.node("pool")
    msgs = r.spikes["p"].astype(np.int64)
    m = np.zeros(msgs.shape[1:], dtype=object)    # Python ints: sum_t msg_t * R_t per source element
    exact = np.zeros(msgs.shape[1:], dtype=object)  # Fractions: sum_t msg_t / t (the rational reading)
    prev_exact = _python_window_max(exact.tolist(), unit)
    total = np.zeros(r.spikes["pool"].shape[1:], np.int64)
    for t in range(1, T + 1):
        m = m + msgs[t - 1].astype(object) * coding.reciprocal(t)
        exact = exact + np.vectorize(lambda v: Fraction(int(v), t), otypes=[object])(msgs[t - 1])
        total += r.spikes["pool"][t - 1]
        assert np.array_equal(total, _python_window_max(m.tolist(), unit).astype(np.int64)), t
        now_exact = _python_window_max(exact.tolist(), unit)
        if T == 2:  # R_1 = 2^F, R_2 = 2^(F-1) are exact: d_t * t / 2^F = t * (max m[t] - max m[t-1]) (Theorem 4.2)
            paper = t * (now_exact - prev_exact)
            assert np.array_equal(r.spikes["pool"][t - 1].astype(object) * t, paper * coding.one), t
        prev_exact = now_exact
    assert np.array_equal(r.encoded["pool"], total)
    # against the exact rationals, the only error is the R_t rounding of the source's encoding
    err = sum(abs(Fraction(coding.reciprocal(t), coding.one) - Fraction(1, t)) for t in range(1, T + 1))
    dec = np.vectorize(lambda v: Fraction(int(v), coding.one), otypes=[object])(total)
    assert all(abs(a - b) <= err * unit.max_message for a, b in zip(dec.ravel(), now_exact.ravel()))


@pytest.mark.parametrize("coding", [RateCoding(), DifferentialCoding(F)])
def test_readout_reads_the_unit(coding):
    net = build(coding, chain=False)
    r = simulate(net, _x(), Schedule.PIPELINED)
    d = net.projections[-1]
    if isinstance(coding, DifferentialCoding):   # sum_t W d_t, no second R_t, plus V0 * 2^F
        want = apply_projection(d, r.encoded["pool"]) + coding.one * net.node("out").v0
    else:
        want = apply_projection(d, r.counts["pool"]) + net.node("out").v0
    assert np.array_equal(r.readout["out"], want)


@pytest.mark.parametrize("coding", [RateCoding(), DifferentialCoding(F)])
def test_graded_unit_feeding_a_graded_unit(coding):
    net = build(coding, chain=True)
    r = simulate(net, _x(), Schedule.PIPELINED)
    key = "encoded" if isinstance(coding, DifferentialCoding) else "counts"
    vals = getattr(r, key)
    # a max of window maxima over overlapping windows: exact, both codings (differential: d is not re-scaled)
    want = _python_window_max(vals["pool"].tolist(), net.node("pool2")).astype(np.int64)
    assert np.array_equal(vals["pool2"], want)
    assert np.array_equal(vals["pool"], _python_window_max(vals["p"].tolist(), net.node("pool")).astype(np.int64))


@pytest.mark.parametrize("coding", [RateCoding(), DifferentialCoding(F)])
def test_multi_threshold_population_reads_the_unit(coding):
    """Replay the consumer with the stepper by hand: rate coding, the unit's messages are its current;
    differential coding, W d_t is added to its encoded input R (no R_t), then a step with no current."""
    net = build(coding, consumer="population")
    x = _x()
    r = simulate(net, x, Schedule.PIPELINED, record=True)
    q, proj = net.node("q"), net.incoming("q")[0]
    st = (MTDifferentialStepper if isinstance(coding, DifferentialCoding) else MTRateStepper)(q, len(x), coding)
    for t in range(1, net.timesteps + 1):
        cur = apply_projection(proj, r.spikes["pool"][t - 1])
        if isinstance(coding, DifferentialCoding):
            st.R = st.R + cur
            s = st.step(t, 0, None)
        else:
            s = st.step(t, cur, None)
        assert np.array_equal(s, r.spikes["q"][t - 1]), t


def test_if_source_and_layerwise_refusal():
    net = build(RateCoding(), neuron=IFSoftReset())
    r = simulate(net, _x(), Schedule.PIPELINED)
    assert np.array_equal(r.counts["pool"], _python_window_max(r.counts["p"].tolist(), net.node("pool")).astype(np.int64))
    with pytest.raises(NotImplementedError, match="graded max-pool unit 'pool'.*pipelined"):
        simulate(net, _x(), Schedule.LAYERWISE)


def test_messages_beyond_max_message_are_refused():
    net = build(RateCoding(), n=3)
    net.node("pool").max_message = 1       # the source sends up to 4
    with pytest.raises(ValueError, match="graded max-pool unit 'pool'.*max_message"):
        simulate(net, _x(), Schedule.PIPELINED)


@pytest.mark.parametrize("coding", [RateCoding(), DifferentialCoding(F)])
def test_op_counts_treat_unit_outputs_as_graded_events(coding):
    net = build(coding)
    r = simulate(net, _x(), Schedule.PIPELINED, record=True, count_ops=True)
    ev = (r.spikes["pool"] != 0).reshape(net.timesteps, -1).sum(axis=1)
    assert np.array_equal(r.ops["pool"].events, ev)
    fan = (net.projections[-1].weight != 0).sum(axis=0)              # dense fan-out per unit output
    sops = np.array([int(((r.spikes["pool"][t] != 0).reshape(len(_x()), -1) * fan).sum()) for t in range(net.timesteps)])
    assert np.array_equal(r.ops["pool"].sops_out, sops)
    assert r.ops["pool"].updates == net.timesteps * len(_x()) * int(np.prod(net.node("pool").in_shape))
    assert r.max_abs_state["pool"] > 0


def test_integer_ann_pools_levels():
    """run_integer_ann (verify's reference): a graded unit's level is the max of its source's levels."""
    from snnc.backends.reference import run_integer_ann

    net = build(RateCoding(), neuron=IFSoftReset(), kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1))
    ann = run_integer_ann(net, _x())
    want = _python_window_max(ann.levels["p"].tolist(), net.node("pool")).astype(np.int64)
    assert np.array_equal(ann.levels["pool"], want)
    assert np.array_equal(ann.readout["out"], apply_projection(net.projections[-1], want) + net.node("out").v0)
