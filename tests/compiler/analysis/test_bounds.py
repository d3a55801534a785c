"""The compile-time state bound (compiler/analysis/bounds.py) holds for every node, in both codings:
the largest |state| the reference simulator measures never exceeds it, on the digits net and on
random small multi-threshold networks driven by random and extreme inputs."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.reference import simulate
from snnc.compiler.analysis.bounds import check_network, network_bounds, node_bound
from snnc.compiler.config import CompileConfig
from snnc.compiler.errors import StateOverflowError
from snnc.compiler.integerize import IntegerizeContext, choose_frac_bits, integerize_mt_population, integerize_readout
from snnc.compiler.weight_precision import layer_weight_bits
from snnc.compiler.lowering import RealLayer
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.targets import load_target
from snnc.ir import Conv2d, Dense, DifferentialCoding, Input, MultiThreshold, Network, Population, RateCoding, Readout

FMT = load_target("loihi").numeric
CODINGS = [RateCoding(), DifferentialCoding(frac_bits=0), DifferentialCoding(frac_bits=3),
           DifferentialCoding(frac_bits=8), DifferentialCoding(frac_bits=12)]


def _assert_within(net: Network, x_int: np.ndarray) -> dict:
    bounds = network_bounds(net)
    res = simulate(net, x_int, "pipelined", quantized=True)
    for name, b in bounds.items():
        assert res.max_abs_state[name] <= b.worst, (name, res.max_abs_state[name], b)
    return {n: (res.max_abs_state[n], b.worst) for n, b in bounds.items()}


def _inputs(inp: Input, rng, batch: int) -> np.ndarray:
    """Random values plus the extremes: all qmin, all qmax and random qmin/qmax patterns."""
    shape = (batch,) + inp.shape
    rand = rng.integers(inp.qmin, inp.qmax + 1, shape)
    ext = np.where(rng.random(shape) < 0.5, inp.qmin, inp.qmax)
    ext[0], ext[1] = inp.qmin, inp.qmax
    return np.concatenate([rand, ext])


def random_net(rng, coding, T: int, n: int, relu: bool, conv: bool) -> Network:
    u = 2 ** (n - 1)
    diff = isinstance(coding, DifferentialCoding)
    lo = int(rng.integers(-16, 1))
    inp = Input("x", (2, 5, 5) if conv else (4,), scale=1.0, qmin=lo, qmax=int(rng.integers(1, 32)))
    nodes, projs, prev = [inp], [], inp
    sizes = [(3, 5, 5), (4, 3, 3)] if conv else [(int(rng.integers(2, 7)),), (int(rng.integers(2, 6)),)]
    for i, shape in enumerate(sizes):
        c = shape[0]
        pop = Population(f"h{i}", shape, neuron=MultiThreshold(n, relu),
                         threshold=u * rng.integers(1, 6, c), v0=rng.integers(-6, 7, c),
                         bias=0 if diff else rng.integers(-3, 4, c), levels=T)
        if conv:
            stride = 1 if i == 0 else 2
            w = rng.integers(-7, 8, (c, prev.shape[0], 3, 3))
            projs.append(Conv2d(f"p{i}", prev.name, pop.name, w, int(rng.integers(0, 2)), prev.shape, shape,
                                stride=(stride, stride), padding=(1, 1, 1, 1)))
        else:
            w = rng.integers(-7, 8, (shape[0], int(np.prod(prev.shape))))
            projs.append(Dense(f"p{i}", prev.name, pop.name, w, int(rng.integers(0, 2)), prev.shape, shape))
        nodes.append(pop)
        prev = pop
    r = Readout("r", (3,), v0=rng.integers(-5, 6, 3), bias=0 if diff else rng.integers(-2, 3, 3))
    projs.append(Dense("pr", prev.name, "r", rng.integers(-9, 10, (3, int(np.prod(prev.shape)))), 0, prev.shape, (3,)))
    return Network(nodes + [r], projs, T, coding=coding)


@pytest.mark.parametrize("coding", CODINGS, ids=lambda c: c.kind + str(getattr(c, "frac_bits", "")))
@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_measured_states_never_exceed_the_bound_on_random_networks(coding, conv):
    rng = np.random.default_rng(7 + conv)
    for trial in range(12):
        T, n, relu = int(rng.integers(1, 9)), int(rng.integers(1, 5)), bool(rng.integers(0, 2))
        net = random_net(rng, coding, T, n, relu, conv)
        _assert_within(net, _inputs(net.inputs[0], rng, 64))


def test_first_layer_bound_is_attained_by_the_extreme_input():
    """A first layer's encoded input R = V0*one + P(x)*one is exact interval arithmetic, and without a
    spike m_t = t*Y (V = t*M exactly while R_t = one/t): the bounds equal what the extreme input
    produces, so a bound wrong in either direction fails here."""
    code = DifferentialCoding(frac_bits=6)   # R_1 = 64, R_2 = 32: no rounding, D = 0
    inp = Input("x", (3,), scale=1.0, qmin=-5, qmax=20)
    h = Population("h", (1,), neuron=MultiThreshold(4, True), threshold=8 * 10**6, v0=[-7], bias=0, levels=2)
    net = Network([inp, h, Readout("r", (1,))],
                  [Dense("a", "x", "h", np.array([[3, -2, 5]]), 1, (3,), (1,)),
                   Dense("b", "h", "r", np.array([[1]]), 0, (1,), (1,))], 2, coding=code)
    b = network_bounds(net)["h"]
    res = simulate(net, np.array([[20, -5, 20]]), "pipelined", quantized=True)
    R = (-7 + 2 * (3 * 20 + 2 * 5 + 5 * 20)) * code.one
    assert b.states["R"] == R and b.states["m"] == 2 * R
    assert res.max_abs_state["h"] == b.worst == 2 * R   # no spike: m_2 = V_1 + M_1 = 2 Y_1


@pytest.mark.parametrize("coding", ["rate", "differential"])
def test_digits_net_bound_holds_in_both_codings(coding, tmp_path):
    """The compiled digits net (MT-4; a 40-bit profile so the weights keep 8 bits), re-run with other
    T and F (same integer parameters): measured max |state| <= the bound for every node."""
    from pathlib import Path

    from snnc.compiler.api import compile_imported, import_model

    root = Path(__file__).resolve().parents[3] / "examples" / "digits"
    wide = tmp_path / "wide.toml"
    wide.write_text("[numeric]\nstate_bits = 40\n")
    net = compile_imported(import_model(root / "relu_cnn.onnx"), CompileConfig(
        neuron="multi-threshold", mt_n=4, coding=coding, timesteps=4, calibration_data=str(root / "calib.npz"),
        schedule="pipelined", profile=str(wide), frac_bits=12), runner=reference_runner)
    x_int = net.inputs[0].quantize(np.load(root / "test.npz")["x"][:120])
    codes = [RateCoding()] if coding == "rate" else [DifferentialCoding(frac_bits=F) for F in (4, 8, 12)]
    for code in codes:
        for T in (2, 4, 8):
            _assert_within(Network(net.nodes, net.projections, T, coding=code), x_int)
    if coding == "differential":
        with pytest.raises(StateOverflowError, match="layer 'conv1'"):
            check_network(Network(net.nodes, net.projections, 8, coding=DifferentialCoding(frac_bits=20)), 24)


def _mt_layer(w, b):
    def mk(wi, e):
        return Dense("x->h", "x", "h", wi, e, (w.shape[1],), (w.shape[0],))
    return RealLayer("h", (w.shape[0],), [w], [mk], b)


def test_integerizer_fits_the_differential_bound_and_names_the_layer_when_it_cannot():
    inp = Input("x", (3,), scale=1.0, qmin=0, qmax=255)
    w = np.array([[0.5, -0.25, 0.125], [0.05, 0.3, -0.2]])
    neuron = MultiThreshold(4, True)
    bits = {}
    for F in (0, 4, 8):
        code = DifferentialCoding(frac_bits=F)
        pop, projs, e = integerize_mt_population(_mt_layer(w, np.array([0.1, -0.2])), neuron, 1.0,
                                                 IntegerizeContext(FMT, code, 4), {"x": inp})
        assert node_bound(pop, projs, {"x": inp}, 4, code).worst <= FMT.state_max
        bits[F] = int(np.abs(projs[0].weight).max() << e)
    assert bits[0] >= bits[4] >= bits[8] and bits[0] > bits[8]  # F takes state bits from the weight scale
    with pytest.raises(StateOverflowError, match="layer 'h'.*at least 8 bits"):
        integerize_mt_population(_mt_layer(w, np.zeros(2)), neuron, 1.0,
                                 IntegerizeContext(FMT, DifferentialCoding(frac_bits=8), 4, min_weight_bits=8), {"x": inp})
    with pytest.raises(StateOverflowError, match="layer 'h'.*smallest weight scale.*F = 12"):
        integerize_mt_population(_mt_layer(w, np.zeros(2)), neuron, 1.0,
                                 IntegerizeContext(FMT, DifferentialCoding(frac_bits=12), 4), {"x": inp})


def test_readout_bound_follows_the_coding_and_T():
    inp = Input("x", (3,), scale=1.0, qmin=0, qmax=255)
    code = DifferentialCoding(frac_bits=10)
    w = np.array([[0.5, -0.25, 0.125]])

    def mk(wi, e):
        return Dense("x->r", "x", "r", wi, e, (3,), (1,))
    ro, projs, e = integerize_readout(RealLayer("r", (1,), [w], [mk], np.zeros(1)), IntegerizeContext(FMT, code, 8),
                                      {"x": inp}, levels=1, steps=1)
    assert node_bound(ro, projs, {"x": inp}, 8, code).worst <= FMT.state_max
    assert node_bound(ro, projs, {"x": inp}, 8, code).worst > node_bound(ro, projs, {"x": inp}, 8).worst


def _toy_lowering(T=4):
    inp = Input("x", (3,), scale=1.0, qmin=0, qmax=255)
    w = np.array([[0.5, -0.25, 0.125], [0.05, 0.3, -0.2]])

    def lower_at(code, min_weight_bits=None):
        ctx = IntegerizeContext(FMT, code, T, min_weight_bits)   # one context: the readout sees h's envelope
        pop, projs, _ = integerize_mt_population(_mt_layer(w, np.zeros(2)), MultiThreshold(4, True), 1.0, ctx,
                                                 {"x": inp})

        def mk(wi, e):
            return Dense("h->r", "h", "r", wi, e, (2,), (1,))
        ro, rp, _ = integerize_readout(RealLayer("r", (1,), [np.array([[1.0, -0.5]])], [mk], np.zeros(1)), ctx,
                                       {"x": inp, "h": pop}, levels=1, steps=1)
        return Network([inp, pop, ro], projs + rp, T, coding=code)
    return lower_at


def test_choose_frac_bits_keeps_the_weight_floor_or_balances():
    lower_at = _toy_lowering()
    code, net = choose_frac_bits(lower_at, timesteps=4, min_weight_bits=6)
    assert min(layer_weight_bits(net).values()) >= 6 and check_network(net, FMT.state_bits)
    with pytest.raises(StateOverflowError):   # the next F does not keep 6 bits
        lower_at(DifferentialCoding(frac_bits=code.frac_bits + 1), 6)
    code_b, net_b = choose_frac_bits(lower_at, timesteps=4)
    k = min(layer_weight_bits(net_b).values())
    score = min(code_b.frac_bits + 1 - 2, k - 1)
    for F in range(0, 17):   # no other F that fits scores higher
        try:
            other = lower_at(DifferentialCoding(frac_bits=F))
        except StateOverflowError:
            continue
        assert min(F + 1 - 2, min(layer_weight_bits(other).values()) - 1) <= score
    with pytest.raises(StateOverflowError):
        choose_frac_bits(lambda c, k: (_ for _ in ()).throw(StateOverflowError("no")), timesteps=4)


def test_frac_bits_config_accepts_auto():
    c = CompileConfig(neuron="multi-threshold", coding="differential", frac_bits="auto:5")
    assert c.frac_bits_auto == (True, 5) and CompileConfig.from_dict(c.to_dict()) == c
    assert c.coding_model(frac_bits=7) == DifferentialCoding(frac_bits=7)
    assert CompileConfig(frac_bits="auto").frac_bits_auto == (True, None)
    assert CompileConfig(frac_bits=9).coding_model() == RateCoding()
    with pytest.raises(ValueError, match="chosen when compiling"):
        c.coding_model()
    for bad in ("auto:1", "fast", 31, -1):
        with pytest.raises(ValueError, match="frac_bits"):
            CompileConfig(frac_bits=bad)


def test_closed_form_bounds_never_wrap_int64():
    """T*T*|B| past 2^63 used to wrap to a small or negative int64 and pass the check; the bound is
    now the exact integer while it fits int64, and beyond 2^62 otherwise, so the check refuses it."""
    inp = Input("x", (2,), scale=1.0, qmin=0, qmax=1)
    for T, bias, want in ((4, 3 * 2**40, 4 * 4 * (3 * 2**40 + 5) + 4 * 2**40),
                          (2**12, 2**41, None), (2**16, 2**40, None)):
        h = Population("h", (1,), threshold=2**60, v0=[2**40], bias=bias, levels=T)
        net = Network([inp, h, Readout("r", (1,))],
                      [Dense("a", "x", "h", np.array([[2, 3]]), 0, (2,), (1,)),
                       Dense("b", "h", "r", np.array([[1]]), 0, (1,), (1,))], T)
        b = network_bounds(net)["h"]
        if want is not None:
            assert b.layerwise == want  # T*|V0| + T*T*(|B| + 5), exact
        else:
            assert b.layerwise >= 2**62 and b.threshold_layerwise == T * 2**60
        with pytest.raises(StateOverflowError, match="layer 'h'"):
            check_network(net, 62)
