import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from snnc.ir import Schedule, apply_projection

from snnc.backends.reference import SimulationError, run_integer_ann, simulate
from snnc.ir import Conv2d, Dense, Input, Network, Population, Readout, SumPool2d


def one_neuron(theta, v0, w, T, bias=0):
    i = Input("x", (1,), scale=1.0, qmin=-100, qmax=100)
    p = Population("n", (1,), threshold=theta, v0=v0, bias=bias, levels=T)
    r = Readout("r", (1,))
    return Network([i, p, r], [Dense("x->n", "x", "n", [[w]], 0, (1,), (1,)), Dense("n->r", "n", "r", [[1]], 0, (1,), (1,))], T)


def test_soft_reset_trace_by_hand():
    # theta 10, v0 5, current 7 per step: v = 12 -> spike, 2; 9; 16 -> spike, 6; 13 -> spike, 3
    net = one_neuron(10, 5, 7, 4)
    res = simulate(net, np.array([[1.0]]), Schedule.PIPELINED, record=True)
    assert res.spikes["n"][:, 0, 0].tolist() == [1, 0, 1, 1]
    assert res.final_v["n"].item() == 3
    assert res.readout["r"].item() == 3


def test_threshold_comparison_is_greater_or_equal():
    res = simulate(one_neuron(10, 0, 10, 1), np.array([[1.0]]), Schedule.PIPELINED, record=True)
    assert res.counts["n"].item() == 1 and res.final_v["n"].item() == 0


def test_layerwise_scales_state_by_T():
    # layerwise: v0' = T*v0 = 20, theta' = 40, I = T*x*w = 28 per step
    net = one_neuron(10, 5, 7, 4)
    res = simulate(net, np.array([[1.0]]), Schedule.LAYERWISE, record=True)
    v, spikes = 20, []
    for _ in range(4):
        v += 28
        spikes.append(int(v >= 40))
        v -= 40 * spikes[-1]
    assert res.spikes["n"][:, 0, 0].tolist() == spikes
    assert res.final_v["n"].item() == v
    assert res.counts["n"].item() == min(4, (5 + 28) // 10)


def test_negative_current_never_spikes_and_saturation_clips():
    lo = simulate(one_neuron(10, 9, -3, 4), np.array([[1.0]]), Schedule.LAYERWISE)
    hi = simulate(one_neuron(10, 0, 50, 4), np.array([[1.0]]), Schedule.LAYERWISE)
    assert lo.counts["n"].item() == 0 and hi.counts["n"].item() == 4


def _brute_conv(w, x, stride, pad, groups):
    B, C, H, W = x.shape
    O, Cg, kh, kw = w.shape
    t, l, b, r = pad
    xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))
    oh = (H + t + b - kh) // stride[0] + 1
    ow = (W + l + r - kw) // stride[1] + 1
    out = np.zeros((B, O, oh, ow), np.int64)
    og = O // groups
    for o in range(O):
        g = o // og
        for y in range(oh):
            for xx in range(ow):
                patch = xp[:, g * Cg:(g + 1) * Cg, y * stride[0]:y * stride[0] + kh, xx * stride[1]:xx * stride[1] + kw]
                out[:, o, y, xx] = (patch * w[o]).sum(axis=(1, 2, 3))
    return out


@pytest.mark.parametrize("stride,pad,groups", [((1, 1), (0, 0, 0, 0), 1), ((2, 2), (1, 1, 1, 1), 1),
                                               ((2, 1), (0, 1, 2, 1), 2)])
def test_conv_matches_brute_force(stride, pad, groups):
    rng = np.random.default_rng(1)
    w = rng.integers(-128, 128, (4, 4 // groups, 3, 3))
    x = rng.integers(0, 256, (3, 4, 7, 6))
    ref = _brute_conv(w, x, stride, pad, groups)
    p = Conv2d("c", "a", "b", w, 3, (4, 7, 6), ref.shape[1:], stride=stride, padding=pad, groups=groups)
    assert np.array_equal(apply_projection(p, x), ref << 3)


def test_sum_pool_matches_brute_force():
    x = np.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    p = SumPool2d("p", "a", "b", 5, 1, (3, 4, 4), (3, 2, 2), kernel=(2, 2), stride=(2, 2))
    ref = x.reshape(2, 3, 2, 2, 2, 2).sum(axis=(3, 5)) * 5 * 2
    assert np.array_equal(apply_projection(p, x), ref)


def test_state_bits_runtime_check():
    net = one_neuron(10**6, 0, 100, 4)
    with pytest.raises(SimulationError, match="state width"):
        simulate(net, np.array([[100.0]]), Schedule.PIPELINED, state_bits=8)


def test_wrong_input_shape_is_reported():
    with pytest.raises(ValueError, match="expects samples of shape"):
        simulate(one_neuron(10, 0, 1, 2), np.zeros((2, 3)))


@st.composite
def random_networks(draw):
    """Small random integer networks: input -> conv -> (sum-pool | none) -> dense pop -> readout."""
    T = draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    C, H = draw(st.integers(1, 3)), draw(st.integers(3, 6))
    O = draw(st.integers(1, 4))
    stride = draw(st.integers(1, 2))
    pad = draw(st.integers(0, 1))
    oh = (H + 2 * pad - 3) // stride + 1
    inp = Input("x", (C, H, H), scale=1.0, qmin=0, qmax=int(draw(st.integers(1, 31))))
    th = rng.integers(1, 200, O)
    pop1 = Population("c", (O, oh, oh), threshold=th, v0=[int(rng.integers(0, t)) for t in th],
                      bias=rng.integers(-20, 20, O), levels=T)
    projs = [Conv2d("x->c", "x", "c", rng.integers(-128, 128, (O, C, 3, 3)), int(rng.integers(0, 3)),
                    (C, H, H), (O, oh, oh), stride=(stride, stride), padding=(pad,) * 4)]
    nodes = [inp, pop1]
    src, shape = "c", (O, oh, oh)
    if draw(st.booleans()) and oh >= 2:
        ph = oh - 1
        th2 = int(rng.integers(1, 10))
        nodes.append(Population("p", (O, ph, ph), threshold=th2, v0=int(rng.integers(0, th2)), levels=T))
        projs.append(SumPool2d("c->p", "c", "p", int(rng.integers(1, 4)), 0, shape, (O, ph, ph), kernel=(2, 2), stride=(1, 1)))
        src, shape = "p", (O, ph, ph)
    n = int(np.prod(shape))
    th3 = rng.integers(1, 50, 5)
    nodes.append(Population("d", (5,), threshold=th3, v0=[int(rng.integers(0, t)) for t in th3], bias=rng.integers(-3, 4, 5), levels=T))
    projs.append(Dense(f"{src}->d", src, "d", rng.integers(-128, 128, (5, n)), int(rng.integers(0, 2)), shape, (5,)))
    nodes.append(Readout("r", (3,), v0=rng.integers(-9, 9, 3), bias=rng.integers(-2, 3, 3)))
    projs.append(Dense("d->r", "d", "r", rng.integers(-128, 128, (3, 5)), 0, (5,), (3,)))
    net = Network(nodes, projs, T)
    x = rng.integers(0, inp.qmax + 1, (3, C, H, H))
    return net, x


@settings(max_examples=150, deadline=None)
@given(random_networks())
def test_property_layerwise_equals_integer_ann(case):
    """Paper 003 Theorem 3 in integers: with 0 <= V0 < Theta the layerwise SNN equals the integer ANN."""
    net, x = case
    ann = run_integer_ann(net, x, quantized=True)
    snn = simulate(net, x, Schedule.LAYERWISE, quantized=True, record=True)
    for p in net.populations:
        assert np.array_equal(ann.levels[p.name], snn.counts[p.name]), p.name
        assert np.array_equal(snn.spikes[p.name].sum(axis=0), snn.counts[p.name])
    assert np.array_equal(ann.readout["r"], snn.readout["r"])


@settings(max_examples=50, deadline=None)
@given(random_networks())
def test_property_pipelined_readout_is_linear_in_counts(case):
    """Pipelined: the readout equals R0 + P(N) + T*B of the counts the SNN produced (no ANN claim)."""
    net, x = case
    snn = simulate(net, x, Schedule.PIPELINED, quantized=True, record=True)
    r = net.node("r")
    (p,) = net.incoming("r")
    expect = r.v0 + apply_projection(p, snn.counts[p.source]) + net.timesteps * r.bias
    assert np.array_equal(snn.readout["r"], expect)
    for pop in net.populations:
        assert snn.counts[pop.name].max() <= net.timesteps
