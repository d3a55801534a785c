import numpy as np
import pytest

from snnc.ir import Schedule

from snnc.backends.reference import run_integer_ann, simulate
from snnc.compiler.analysis.bounds import check_network, node_bound
from snnc.compiler.errors import StateOverflowError
from snnc.compiler.integerize import (IntegerizeContext, integerize_population, integerize_readout, resolve_v0_mode,
                                     v0_for)
from snnc.compiler.lowering import RealLayer
from snnc.compiler.targets import load_target
from snnc.ir import Dense, Input, Network, Population, RateCoding, Readout

FMT = load_target("loihi").numeric


@pytest.mark.parametrize("mode,beta", [("floor", 0.0), ("floor", 0.5), ("floor", 0.3), ("ceil", 0.0), ("ceil", -0.25)])
def test_v0_makes_the_integer_quantizer_exact(mode, beta):
    """floor((X + V0)/Theta) == Q(X/Theta + beta) for every integer X (docs/ir.md table)."""
    for theta in (1, 2, 7, 10, 64, 1000):
        v0 = int(v0_for(*resolve_v0_mode("auto", mode, beta), np.array(theta)))
        assert 0 <= v0 < theta
        X = np.arange(-5 * theta, 5 * theta + 1)
        q = np.floor if mode == "floor" else np.ceil
        # exact rational reference: Q((X + beta*theta) / theta) with integers where possible
        ref = q(np.array([float((x + beta * theta) / theta) for x in X]))
        assert np.array_equal(np.floor_divide(X + v0, theta), ref.astype(int)), (theta, mode, beta)


@pytest.mark.parametrize("mode,beta,matched", [("floor", 0.0, "zero"), ("floor", 0.5, "half"), ("ceil", 0.0, "full")])
def test_v0_modes_are_the_papers_values_and_only_the_matched_one_is_exact(mode, beta, matched):
    """Paper 003's V0 in {0, theta/2, theta}: only the one matching the quantizer reproduces it."""
    theta = np.array([7, 64, 1000])
    assert resolve_v0_mode("auto", mode, beta)[0] == matched
    values = {m: v0_for(*resolve_v0_mode(m, mode, beta), theta) for m in ("zero", "half", "full")}
    assert values["zero"].tolist() == [0, 0, 0]
    assert values["half"].tolist() == [3, 32, 500]
    assert values["full"].tolist() == [6, 63, 999]  # theta - 1 under v >= Theta (= theta under v > Theta)
    for m, v0 in values.items():
        ok = True
        for th, v in zip(theta, v0):
            X = np.arange(-3 * th, 3 * th + 1)
            ref = (np.floor if mode == "floor" else np.ceil)((X + beta * th) / th).astype(int)
            ok &= np.array_equal(np.floor_divide(X + v, th), ref)
        assert ok == (m == matched), m


def _inp():
    return Input("x", (3,), scale=1 / 255, qmin=0, qmax=255)


def _ctx(fmt, T, min_weight_bits=None):
    return IntegerizeContext(fmt, RateCoding(), T, min_weight_bits)


def _layer(w, b):
    def mk(wi, e):
        return Dense("x->h", "x", "h", wi, e, (3,), (w.shape[0],))
    return RealLayer("h", (w.shape[0],), [w], [mk], b)


def test_integerized_weights_use_the_mantissa_and_track_the_reals():
    w = np.array([[0.0103, -0.0207, 0.0051], [0.3, 0.1133, -0.2017]]) / 4  # float weights (no integer grid)
    b = np.array([0.7, -1.2])
    pop, (proj,), e = integerize_population(_layer(w, b), "floor", 0.5, 4, 2.0, _ctx(FMT, 4), {"x": _inp()})
    assert np.abs(proj.weight).max(axis=1).tolist() == [127, 127]  # per-channel full range
    real = proj.weight * 2**e / pop.threshold[:, None]
    np.testing.assert_allclose(real, w, rtol=0.01, atol=1e-6)
    np.testing.assert_allclose(4 * pop.bias / pop.threshold, b, atol=1e-3)
    assert node_bound(pop, [proj], {"x": _inp()}, 4).worst <= FMT.state_max


def test_exponent_backs_off_to_fit_the_state_and_errors_when_it_cannot():
    w = np.array([[1.0, 0.5, 1.0]]) * 1e-4  # tiny weights want a huge threshold
    pop, (proj,), e = integerize_population(_layer(w, np.zeros(1)), "floor", 0.0, 64, 1.0, _ctx(FMT, 64), {"x": _inp()})
    assert 64 * pop.threshold.max() <= FMT.state_max and e == 0 and 1 <= np.abs(proj.weight).max() < 127
    big = np.array([[1.0, -1.0, 1.0]])
    tiny_state = type(FMT)(**{**vars(FMT), "state_bits": 12})
    with pytest.raises(StateOverflowError, match="layer 'h'"):
        integerize_population(_layer(big, np.zeros(1)), "floor", 0.0, 64, 1.0, _ctx(tiny_state, 64), {"x": _inp()})


def test_readout_uses_one_scale_so_argmax_survives():
    w = np.array([[0.5, 0.1, 0.0], [0.05, 0.0, 0.01]])
    ro, (proj,), e = integerize_readout(_layer(w, np.array([0.2, -0.1])), _ctx(FMT, 4), {"x": _inp()})
    ratio = proj.weight[0, 0] / proj.weight[1, 0]
    assert abs(ratio - 10) < 0.5  # same scale for both outputs


def test_bias_is_representable_on_loihi():
    for b in (0, 1, -4095, 4095, 4096, 10**5, -(10**5 + 3)):
        r = FMT.representable_bias(b)
        e = 0
        while abs(r) >= 4096 and r % 2 == 0:
            r //= 2
            e += 1
        assert abs(r) <= 4095 and e <= 7
        assert abs(FMT.representable_bias(b) - b) <= max(1, 2 ** e // 2)


def test_check_network_names_every_overflowing_layer():
    i = Input("x", (2,), scale=1.0, qmin=0, qmax=255)
    a = Population("a", (2,), threshold=2**20, v0=0, levels=8)
    r = Readout("r", (2,))
    net = Network([i, a, r], [Dense("x->a", "x", "a", [[127, 127], [1, 1]], 7, (2,), (2,)),
                             Dense("a->r", "a", "r", [[1, 0], [0, 1]], 0, (2,), (2,))], 8)
    with pytest.raises(StateOverflowError, match="layer 'a'"):
        check_network(net, 24)
    bounds = check_network(net, 40)
    # the bound is sound: simulate the worst input and compare
    res = simulate(net, np.full((1, 2), 255.0), Schedule.LAYERWISE)
    assert res.max_abs_state["a"] <= bounds[0].layerwise
    pres = simulate(net, np.full((1, 2), 255.0), Schedule.PIPELINED)
    assert pres.max_abs_state["a"] <= bounds[0].pipelined
    ann = run_integer_ann(net, np.full((1, 2), 255.0))
    assert ann.levels["a"].max() == 8


def test_a_bias_the_bias_register_cannot_hold_makes_the_scale_coarser_not_clipped():
    """A large bias against small weights: the finest scale would need |B| > 4095 << 7 (Loihi's bias
    register); that scale is skipped (not clipped), so B / Theta still tracks b' / L."""
    w = np.array([[0.01, -0.02, 0.005]])
    b = np.array([40.0])                               # b' / L = 10 thresholds per step
    wide = type(FMT)(**{**vars(FMT), "state_bits": 48})  # the state bound alone would allow a huge Theta
    pop, (proj,), e = integerize_population(_layer(w, b), "floor", 0.5, 4, 2.0, _ctx(wide, 4), {"x": _inp()})
    assert abs(pop.bias[0]) <= FMT.bias_max
    np.testing.assert_allclose(4 * pop.bias / pop.threshold, b, rtol=1e-3)
    never = type(FMT)(**{**vars(FMT), "bias_mant_bits": 2, "bias_exp_max": 0})  # |B| <= 1
    with pytest.raises(StateOverflowError, match="layer 'h'.*bias register"):
        integerize_population(_layer(w, b * 1e6), "floor", 0.5, 4, 2.0, _ctx(never, 4), {"x": _inp()})


# ---- issue 13: the model's integer weights held exactly, a floor on weight bits --------------------------
from snnc.compiler.integerize import fitting_timesteps, split_bias  # noqa: E402
from snnc.compiler.weight_precision import WEIGHT_FLOOR_BITS, WeightPrecisionError, integer_grid  # noqa: E402


def _grid_weights(n_out=4, n_in=6, bits=8, seed=0, zero_point=0):
    """Integer weights n (the model's) times a step per output channel and a per-channel factor (a folded
    batch norm / the activation's scales), as the lowering hands them to integerize."""
    rng = np.random.default_rng(seed)
    hi = 2 ** (bits - 1) - 1
    n = rng.integers(-hi, hi + 1, (n_out, n_in)) - zero_point
    n[:, 0] = hi  # the largest magnitude is used
    step = rng.uniform(1e-3, 1e-2, n_out)[:, None] * rng.uniform(0.5, 2.0, n_out)[:, None]
    return (n * step).astype(np.float32).astype(np.float64), n


def test_integer_grid_finds_the_models_integers_and_not_float_weights():
    w, n = _grid_weights()
    N = integer_grid([w], 4)
    assert N.tolist() == np.abs(n).max(axis=1).tolist()
    w9, n9 = _grid_weights(zero_point=100)  # uint8 weights with a zero point: |q - zp| up to 227, 9 bits
    assert integer_grid([w9], 4).tolist() == np.abs(n9).max(axis=1).tolist()
    floats = np.random.default_rng(1).normal(size=(4, 6))
    assert integer_grid([floats], 4) is None
    assert integer_grid([np.zeros((2, 3)), np.zeros((2, 3))], 2).tolist() == [0, 0]
    assert integer_grid([w, np.float64(0.25)], 4) is None  # a scalar (pooling) weight has no channel axis


def test_grid_weights_are_the_models_integers_times_one_factor_per_channel():
    w, n = _grid_weights()
    b = np.array([0.31, -0.7, 0.05, 1.3])
    pop, (proj,), e = integerize_population(_layer_n(w, b), "floor", 0.5, 4, 2.0, _ctx(FMT, 4), {"x": _inp6()})
    k = proj.weight[:, :1] // n[:, :1]
    np.testing.assert_array_equal(proj.weight, k * n)  # exactly proportional, per channel
    assert np.all(k >= 1) and np.abs(proj.weight).max() <= 127
    ratio = proj.weight * 2.0**e / pop.threshold[:, None]
    np.testing.assert_allclose(ratio, w, rtol=1 / np.asarray(pop.threshold).min())
    assert np.all((pop.v0 >= 0) & (pop.v0 < pop.threshold))
    # the bias split: at tau = L = 4, L*B + V0 carries round(b' Theta) + the matched V0 = floor(Theta/2)
    np.testing.assert_array_equal(4 * pop.bias + pop.v0, np.round(b * pop.threshold) + pop.threshold // 2)


def _inp6():
    return Input("x", (6,), scale=1 / 255, qmin=0, qmax=255)


def _layer_n(w, b):
    def mk(wi, e):
        return Dense("x->h", "x", "h", wi, e, (6,), (w.shape[0],))
    return RealLayer("h", (w.shape[0],), [w], [mk], b)


def test_split_bias_keeps_v0_in_range():
    theta, v0, B, L = np.array([10, 100, 7]), np.array([5, 50, 3]), np.array([3, -2, 0]), 8
    b = np.array([0.35, -0.0249, 0.9])  # b' Theta = 3.5, -2.49, 6.3: remainders 4 - 24, -2 + 16, 6 - 0
    out = split_bias(b, theta, L, B, v0)
    np.testing.assert_array_equal(out, [5, 64, 3])  # only the middle one stays in [0, Theta) (5 - 20 < 0, 3 + 6 >= 7)
    assert L * B[1] + out[1] == np.round(b[1] * theta[1]) + v0[1]


def test_weights_below_the_floor_are_refused_naming_the_layer_and_a_timesteps_that_works(caplog):
    w, _ = _grid_weights(n_in=6)
    layer = _layer_n(w * 20, np.zeros(4))
    with pytest.raises(WeightPrecisionError) as e:
        integerize_population(layer, "floor", 0.5, 255, 1.0, _ctx(FMT, 255), {"x": _inp6()})
    err = e.value
    assert err.layer == "h" and err.kept < WEIGHT_FLOOR_BITS and err.needed == 8 and err.timesteps == 255
    assert "layer 'h': at T=255" in str(err) and "--timesteps" in str(err)
    t_full = max(t for t, b in err.suggestions if b >= 8)
    pop, (proj,), _ = integerize_population(layer, "floor", 0.5, 255, 1.0, _ctx(FMT, t_full), {"x": _inp6()})
    assert np.abs(proj.weight).max() >= 64  # 8 signed bits there, as promised
    t_floor, k_floor = max(err.suggestions)  # the largest T that passes the floor, keeping fewer bits
    assert t_floor > t_full and WEIGHT_FLOOR_BITS <= k_floor < 8
    with caplog.at_level("WARNING"):
        pop, (proj,), _ = integerize_population(layer, "floor", 0.5, 255, 1.0, _ctx(FMT, t_floor), {"x": _inp6()})
    kept = 1 + int(np.abs(proj.weight).max()).bit_length()
    assert k_floor <= kept < 8
    assert f"layer 'h' keeps {kept} of its weights' 8 signed bits at T={t_floor}" in caplog.text


def test_fitting_timesteps_follows_the_suggestions_down():
    w, _ = _grid_weights(n_in=6)
    layer = _layer_n(w * 50, np.zeros(4))
    tried = []

    def lower_at(T, min_weight_bits):
        tried.append(T)
        return integerize_population(layer, "floor", 0.5, 255, 1.0, _ctx(FMT, T, min_weight_bits), {"x": _inp6()})

    t, (pop, (proj,), _) = fitting_timesteps(lower_at, 255)
    assert tried[0] == 255 and t < 255 and 1 + int(np.abs(proj.weight).max()).bit_length() >= WEIGHT_FLOOR_BITS
    t_all, (pop, (proj,), _) = fitting_timesteps(lower_at, 255, keep_all_bits=True)
    assert t_all <= t and np.abs(proj.weight).max() >= 64


def test_abs_max_equals_abs_then_max():
    """The largest magnitude without a temporary: the values (and signs of zeros, NaN) np.abs gives."""
    from snnc.compiler.weight_precision import abs_max

    rng = np.random.default_rng(0)
    cases = [rng.standard_normal((7, 9)), -rng.random((3, 5)), np.zeros((2, 3)) - 0.0,
             np.array([[-0.0, 0.0], [-0.0, -0.0], [np.inf, -np.inf], [np.nan, 1.0]]), rng.integers(-9, 9, (4, 6))]
    for a in cases:
        for axis in (None, 1):
            got, want = np.asarray(abs_max(a, axis)), np.asarray(np.abs(a).max(axis=axis))
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(want))
