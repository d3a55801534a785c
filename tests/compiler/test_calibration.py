"""Thresholds from calibration data (compiler/calibration.py; paper 004 section 4.2, issue 8).

Tolerances (relative), and why:
  * k1 vs the printed Eq. 27 (transcribed literally, n := N): 1e-12 (same quantity, erf vs erfc form).
  * k1 vs minimize_scalar over k of QE1 by quadrature: 1e-9 (QE1 is a parabola in k).
  * k1 vs E[q relu]/E[q^2] by adaptive quadrature: 1e-10; QE closed form vs quadrature: 1e-9.
  * iterate vs scipy minimize_scalar(bounded) on the float64 closed-form QE: 2e-6. This is the
    float64 limit of *locating a minimum*: QE's absolute rounding error is ~1e-16 (mu^2 + sigma^2)
    while QE at the optimum is ~theta^2/(12 N^2), and the minimiser of a function known to relative
    precision d is only determined to ~sqrt(d); measured worst 1.0e-6 at N = 256.
  * iterate vs minimize_scalar(bounded) on QE evaluated at 50 digits (mpmath, the paper's own
    piecewise Lemma G.1 / Eq. 64 - an independent code path): 3e-8, the bounded Brent method's own
    stopping tolerance (sqrt(machine eps) on log theta); measured worst ~1e-8.
  * Theorem 4.10 (different starts): 1e-9 (stop test |k1 - 1| < 1e-12, distance eps / (1 - h')).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import integrate, optimize
from scipy.special import erf

from snnc.compiler import calibration as cal
from snnc.compiler.calibration import (
    ActivationStats, CalibrationError, ThresholdMethod, collect_relu_stats, compute_thresholds,
    iterate_threshold, parse_threshold_method,
)
from snnc.compiler.errors import SnncError
from snnc.compiler.frontend.onnx_loader import import_onnx

# (mu, sigma) pairs whose QE is unimodal for every N used below (checked in _assert_unimodal)
GAUSSIANS = [(0.3, 1.0), (0.0, 1.0), (-1.0, 1.0), (1.0, 0.5), (2.0, 1.5), (-0.5, 2.0)]
N_IF = [2, 4, 8, 16]                                  # N = T, IF neuron
N_MT = [(1, 12), (2, 8), (3, 16), (4, 16)]             # N = 2^n T, multi-threshold neuron (n, T)
ALL_N = N_IF + [cal.quantization_levels(T, n) for n, T in N_MT]


def _q(x, th, N):
    return th / N * np.clip(np.floor(N * x / th + 0.5), 0, N)


def _quad_E(fun, th, mu, s, N):
    """E[fun(x)], x ~ Normal(mu, s^2), by adaptive quadrature split at 0 and at every rounding point."""
    lo, hi = mu - 40 * s, mu + 40 * s
    cuts = [0.0] + [(2 * j - 1) * th / (2 * N) for j in range(1, N + 1)]
    pts = [lo] + [p for p in cuts if lo < p < hi] + [hi]
    pdf = lambda x: np.exp(-((x - mu) ** 2) / (2 * s * s)) / (math.sqrt(2 * math.pi) * s)  # noqa: E731
    return sum(integrate.quad(lambda x: fun(x) * pdf(x), a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
               for a, b in zip(pts[:-1], pts[1:]))


def _k1_printed(th, mu, s, n):
    """Eq. 27 exactly as printed, with its n read as N."""
    i = np.arange(1, n + 1)
    a = ((2 * i - 1) * th / (2 * n) - mu) / (math.sqrt(2) * s)
    E, X = erf(a), np.exp(-a * a)
    den = 1 - np.sum((2 * i - 1) / n ** 2 * E)
    return mu / th * (1 - np.sum(E / n)) / den + s / (math.sqrt(math.pi / 2) * th) * np.sum(X / n) / den


def _assert_unimodal(mu, s, N):
    t = np.geomspace(1e-3, 1e2, 4000) * (abs(mu) + s)
    r = cal.k1(t, mu, s, N) - 1
    assert np.count_nonzero(np.diff(np.sign(r)) != 0) == 1, (mu, s, N)


def _argmin_log(fun, lo, hi):
    r = optimize.minimize_scalar(lambda u: fun(math.exp(u)), bounds=(lo, hi), method="bounded",
                                 options={"xatol": 1e-12, "maxiter": 2000})
    assert r.success
    return math.exp(r.x)


# ------------------------------------------------------------------------------------------------ Eq. 27


@pytest.mark.parametrize("th,mu,s,N", [(1.0, 0.3, 1.0, 4), (2.5, -0.5, 1.3, 8), (0.7, 1.0, 0.2, 16),
                                       (3.0, 0.0, 1.0, 128), (1.0, -1.0, 1.0, 2), (5.0, 2.0, 1.0, 1)])
def test_k1_is_printed_eq27_and_the_argmin_of_QE1(th, mu, s, N):
    k = float(cal.k1(th, mu, s, N))
    assert k == pytest.approx(_k1_printed(th, mu, s, N), rel=1e-12)
    A = _quad_E(lambda x: _q(x, th, N) ** 2, th, mu, s, N)
    B = _quad_E(lambda x: _q(x, th, N) * np.maximum(x, 0), th, mu, s, N)
    assert k == pytest.approx(B / A, rel=1e-10)  # QE1 = k^2 A - 2 k B + C: argmin B / A
    # and a direct numerical minimisation over k of QE1 evaluated by quadrature
    qe1 = lambda kk: _quad_E(lambda x: (kk * _q(x, th, N) - np.maximum(x, 0)) ** 2, th, mu, s, N)  # noqa: E731
    r = optimize.minimize_scalar(qe1, bounds=(0.25 * k, 4 * k), method="bounded", options={"xatol": 1e-12})
    assert r.x == pytest.approx(k, rel=1e-9)  # QE1 is a parabola in k: Brent lands on its vertex


def test_k1_is_vectorised_over_channels():
    th, mu, s = np.array([1.0, 2.0, 3.0]), np.array([0.1, -0.2, 0.5]), np.array([1.0, 0.5, 2.0])
    k = cal.k1(th, mu, s, 8)
    assert k.shape == (3,)
    assert np.allclose(k, [cal.k1(a, b, c, 8) for a, b, c in zip(th, mu, s)], rtol=1e-15, atol=0)


@pytest.mark.parametrize("th,mu,s,N", [(1.3, 0.2, 0.8, 4), (2.0, -1.0, 1.0, 2), (4.0, 1.5, 1.2, 32),
                                       (0.5, 0.1, 0.3, 16), (3.0, 0.0, 1.0, 256)])
def test_QE_closed_form_equals_quadrature(th, mu, s, N):
    ref = _quad_E(lambda x: (_q(x, th, N) - np.maximum(x, 0)) ** 2, th, mu, s, N)
    assert float(cal.QE(th, mu, s, N, normalized=True)) == pytest.approx(ref, rel=1e-9)
    # the paper's unnormalised weight exp(-(x-mu)^2/(2 sigma^2)) is sqrt(2 pi) sigma x the expectation
    assert float(cal.QE(th, mu, s, N)) == pytest.approx(ref * math.sqrt(2 * math.pi) * s, rel=1e-9)
    for k in (0.7, 1.3):
        ref1 = _quad_E(lambda x: (k * _q(x, th, N) - np.maximum(x, 0)) ** 2, th, mu, s, N)
        assert float(cal.QE1(th, k, mu, s, N, normalized=True)) == pytest.approx(ref1, rel=1e-9)


# ------------------------------------------------------------------------------------ Algorithm 1


@pytest.mark.parametrize("N", ALL_N)
def test_iterate_fixed_point_is_the_minimiser_of_QE(N):
    worst = 0.0
    for mu, s in GAUSSIANS:
        _assert_unimodal(mu, s, N)
        th = float(iterate_threshold(mu, s, N))
        assert abs(float(cal.k1(th, mu, s, N)) - 1) < 1e-12
        # minimise over log(theta) on a bracket that does not use th
        t_min = _argmin_log(lambda t: float(cal.QE(t, mu, s, N, normalized=True)),
                            math.log(1e-3 * s), math.log(abs(mu) + 15 * s))
        worst = max(worst, abs(t_min / th - 1))
    assert worst < 2e-6


def _G1(mp, a, b, c, mu, s):
    """Lemma G.1 (Eq. 64): int_a^b (c - x)^2 exp(-(x-mu)^2/(2 s^2)) dx; b may be +inf."""
    r2 = mp.sqrt(2)
    eb = mp.mpf(1) if b == mp.inf else mp.erf((b - mu) / (r2 * s))
    tb = 0 if b == mp.inf else -s * s * (b + mu - 2 * c) * mp.exp(-((b - mu) ** 2) / (2 * s * s))
    ta = s * s * (a + mu - 2 * c) * mp.exp(-((a - mu) ** 2) / (2 * s * s))
    return mp.sqrt(mp.pi / 2) * s * (s * s + mu * mu - 2 * c * mu + c * c) * (eb - mp.erf((a - mu) / (r2 * s))) + tb + ta


def _QE_mp(mp, th, mu, s, N):
    """Eq. 23 at 50 digits, summed piece by piece (x < 0 contributes 0; then [0, b_1), the N-1 bins, the clip)."""
    with mp.workdps(50):
        th, mu, s = mp.mpf(th), mp.mpf(mu), mp.mpf(s)
        b = [(2 * j - 1) * th / (2 * N) for j in range(1, N + 1)]
        tot = _G1(mp, mp.mpf(0), b[0], 0, mu, s)
        for j in range(1, N):
            tot += _G1(mp, b[j - 1], b[j], j * th / N, mu, s)
        return tot + _G1(mp, b[-1], mp.inf, th, mu, s)


@pytest.mark.parametrize("mu,s,N", [(0.3, 1.0, 2), (0.0, 1.0, 8), (1.0, 0.5, 16), (-1.0, 1.0, 4),
                                    (2.0, 1.5, 32), (0.3, 1.0, 128), (2.0, 1.5, 256)])
def test_iterate_is_the_minimiser_of_a_high_precision_QE(mu, s, N):
    mp = pytest.importorskip("mpmath")
    th = float(iterate_threshold(mu, s, N))
    assert float(_QE_mp(mp, th, mu, s, N)) == pytest.approx(float(cal.QE(th, mu, s, N)), rel=1e-9)
    # the float64 minimiser (independent of th) only brackets; the 50-digit objective locates it
    t64 = _argmin_log(lambda t: float(cal.QE(t, mu, s, N)), math.log(1e-3 * s), math.log(abs(mu) + 15 * s))
    ref = _QE_mp(mp, t64, mu, s, N)
    t_hp = _argmin_log(lambda t: float((_QE_mp(mp, t, mu, s, N) - ref) / ref),
                       math.log(t64) - 1e-4, math.log(t64) + 1e-4)
    assert abs(t_hp / th - 1) < 3e-8


@pytest.mark.parametrize("N", N_IF)
def test_theorem_4_10_same_threshold_from_any_start(N):
    starts = np.array([1e-6, 1e-3, 1.0, 1e3, 1e6])[:, None]
    mu = np.array([m for m, _ in GAUSSIANS])[None, :]
    s = np.array([v for _, v in GAUSSIANS])[None, :]
    lit = iterate_threshold(mu, s, N, theta0=starts, accelerate=False, max_iter=20000)  # Algorithm 1 verbatim
    acc = iterate_threshold(mu, s, N, theta0=starts)
    assert lit.shape == (5, len(GAUSSIANS))
    ref = acc[2]
    assert np.allclose(lit, ref, rtol=1e-9, atol=0)
    assert np.allclose(acc, ref, rtol=1e-9, atol=0)


@pytest.mark.parametrize("N", [cal.quantization_levels(T, n) for n, T in N_MT])
def test_accelerated_iteration_from_any_start_multithreshold(N):
    starts = np.array([1e-6, 1e-3, 1.0, 1e3, 1e6])[:, None]
    mu = np.array([m for m, _ in GAUSSIANS])[None, :]
    s = np.array([v for _, v in GAUSSIANS])[None, :]
    th = iterate_threshold(mu, s, N, theta0=starts)
    assert np.allclose(th, th[2], rtol=1e-8, atol=0)  # eps / (1 - h'), 1 - h' ~ 4e-4 at N = 256


def test_theorem_4_10_uniqueness_fails_for_narrow_gaussians():
    """QE has a local minimum near every theta = N mu / j when sigma << theta/N: Eq. 82 drops the
    product-rule term -(1 - sum (2i-1)/n^2 erf(.)) of d/dtheta [theta (...)], so f is not monotone."""
    mu, s, N = 1.48, 0.1, 16
    t = np.geomspace(1.0, 40.0, 20000)
    assert np.count_nonzero(np.diff(np.sign(cal.k1(t, mu, s, N) - 1)) != 0) > 3
    found = []
    for t0 in (1.0, 5.0, 20.0):
        lit = float(iterate_threshold(mu, s, N, theta0=t0, accelerate=False, max_iter=20000))
        acc = float(iterate_threshold(mu, s, N, theta0=t0))
        assert acc == pytest.approx(lit, rel=1e-9)
        q0 = float(cal.QE(acc, mu, s, N))  # each is a local minimiser
        assert q0 < float(cal.QE(acc * (1 + 1e-3), mu, s, N)) and q0 < float(cal.QE(acc * (1 - 1e-3), mu, s, N))
        found.append((acc, q0))
    (a, qa), (b, qb), (c, qc) = found
    assert a == pytest.approx(1.68499, rel=1e-5) and b == pytest.approx(4.68735, rel=1e-5)
    assert c == pytest.approx(N * mu, rel=1e-9)  # the level theta/N * N lands on mu
    assert qa < qb < qc  # the fixed point reached from theta0 = 20 is not the global optimum


def test_iterate_degenerate_channels():
    th = iterate_threshold(np.array([2.0, 0.0, -3.0, -40.0, -1e5]), np.array([0.0, 0.0, 0.0, 1.0, 1.0]), 8)
    assert th[0] == 2.0                     # point mass at mu > 0: theta = mu, zero error
    assert np.isnan(th[1]) and np.isnan(th[2])  # never positive, no variance: undefined
    assert np.all(np.isfinite(th[3:]) & (th[3:] > 0))
    assert np.all(np.abs(cal.k1(th[3:], np.array([-40.0, -1e5]), 1.0, 8) - 1) < 1e-12)
    assert th[3] < 8 / 40 and th[4] < 8e-5  # below N sigma^2 / |mu| (the tail's scale is sigma^2 / |mu|)


def test_iterate_is_scale_equivariant():
    th = iterate_threshold(0.3, 1.0, 16)
    for a in (1e-3, 7.0, 1e4):
        assert iterate_threshold(0.3 * a, a, 16, theta0=a) == pytest.approx(a * th, rel=1e-9)


def test_iterate_not_converging_is_a_clear_error():
    with pytest.raises(CalibrationError, match="did not converge in 2 rounds"):
        iterate_threshold(0.3, 1.0, 64, max_iter=2)
    with pytest.raises(CalibrationError, match="theta0"):
        iterate_threshold(0.3, 1.0, 4, theta0=0.0)
    with pytest.raises(CalibrationError, match="N"):
        iterate_threshold(0.3, 1.0, 0)


def test_quantization_levels():
    assert cal.quantization_levels(8) == 8
    assert cal.quantization_levels(8, 4) == 128
    with pytest.raises(CalibrationError):
        cal.quantization_levels(0)


# ------------------------------------------------------------------------------------------ stats


def _by_channel(x):
    return np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)


@pytest.mark.parametrize("shape", [(37, 5), (23, 4, 3, 6)])
def test_stats_equal_numpy(shape):
    rng = np.random.default_rng(0)
    x = rng.normal(rng.normal(size=(1, shape[1]) + (1,) * (len(shape) - 2)), 2.0, size=shape) + 100.0
    st = ActivationStats()
    for a, b in [(0, 1), (1, 8), (8, 20), (20, shape[0])]:  # uneven batches
        st.update(x[a:b])
    v = _by_channel(x)
    assert st.count == v.shape[1] and st.channels == shape[1]
    np.testing.assert_allclose(st.mean, v.mean(axis=1), rtol=1e-13)
    np.testing.assert_allclose(st.var, v.var(axis=1), rtol=1e-10)
    np.testing.assert_array_equal(st.max, v.max(axis=1))
    np.testing.assert_array_equal(st.min, v.min(axis=1))
    for q in (50, 99, 99.9, 100):
        np.testing.assert_array_equal(st.percentile(q), np.percentile(v, q, axis=1))
    assert st.exact_percentiles
    assert st.tensor_mean == pytest.approx(x.mean(), rel=1e-13)
    assert st.tensor_var == pytest.approx(x.var(), rel=1e-10)
    assert st.tensor_max == x.max()
    assert st.tensor_percentile(99.9) == np.percentile(x, 99.9)


def test_capped_values_are_a_deterministic_uniform_subsample():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 3, 5, 5))
    runs = []
    for _ in range(2):
        st = ActivationStats(max_values=2000, seed=7)
        for i in range(0, 400, 50):
            st.update(x[i:i + 50])
        runs.append(st)
    a, b = runs
    assert a.values().shape == (3, 2000) and not a.exact_percentiles
    np.testing.assert_array_equal(a.values(), b.values())
    v = _by_channel(x)
    for c in range(3):
        assert np.isin(a.values()[c], v[c]).all()
    np.testing.assert_allclose(a.percentile(90), np.percentile(v, 90, axis=1), atol=0.1)
    np.testing.assert_allclose(a.mean, v.mean(axis=1), rtol=1e-12)  # moments stay exact
    c = ActivationStats(max_values=2000, seed=8)
    c.update(x)
    assert not np.array_equal(c.values(), a.values())
    small = ActivationStats(max_values=10_000)
    small.update(x[:100])  # 2500 values per channel <= cap: exact
    assert small.exact_percentiles
    np.testing.assert_array_equal(small.percentile(99.9), np.percentile(_by_channel(x[:100]), 99.9, axis=1))


def test_stats_errors():
    st = ActivationStats(keep_values=False)
    with pytest.raises(CalibrationError, match="no calibration values"):
        _ = st.mean
    st.update(np.ones((2, 3)))
    with pytest.raises(CalibrationError, match="keep_values"):
        st.percentile(99)
    with pytest.raises(CalibrationError, match="channel count"):
        st.update(np.ones((2, 4)))
    with pytest.raises(CalibrationError, match="NaN"):
        ActivationStats().update(np.array([[np.nan, 1.0]]))
    with pytest.raises(CalibrationError):
        ActivationStats(max_values=0)


# --------------------------------------------------------------------------------------- methods


def test_parse_threshold_method():
    assert parse_threshold_method("max").method is ThresholdMethod.MAX
    sp = parse_threshold_method(" Percentile:99.9 ", scale=2)
    assert (sp.method, sp.q, sp.scale) == (ThresholdMethod.PERCENTILE, 99.9, 2.0)
    assert parse_threshold_method("iterate").method is ThresholdMethod.ITERATE
    assert ThresholdMethod("iterate") is ThresholdMethod.ITERATE and ThresholdMethod.MAX == "max"
    assert str(sp) == "percentile:99.9 x2"


@pytest.mark.parametrize("text,msg", [("mean", "unknown threshold method"), ("percentile", "needs a percentile"),
                                      ("percentile:", "needs a percentile"), ("percentile:abc", "not a number"),
                                      ("percentile:0", r"\(0, 100\]"), ("percentile:100.5", r"\(0, 100\]"),
                                      ("iterate:3", "unknown threshold method")])
def test_parse_threshold_method_errors(text, msg):
    with pytest.raises(CalibrationError, match=msg) as e:
        parse_threshold_method(text)
    assert isinstance(e.value, SnncError)
    if "unknown" in msg or "needs" in msg or "not a number" in msg:
        assert "max, percentile:<q>" in str(e.value) and "iterate" in str(e.value)
    with pytest.raises(CalibrationError, match="scale"):
        parse_threshold_method("max", scale=0)


def test_compute_thresholds_methods_and_scale():
    rng = np.random.default_rng(2)
    x = rng.normal([[0.5], [-0.2], [1.0], [-5.0]], [[1.0], [0.5], [2.0], [0.1]], size=(4, 3000)).T  # (B, C)
    x[:, 3] = -np.abs(x[:, 3])  # channel 3 is never positive
    st = ActivationStats.from_array(x)
    t = compute_thresholds(st, "max")
    np.testing.assert_array_equal(t.theta[:3], x.max(axis=0)[:3])
    assert t.fallback.tolist() == [False, False, False, True]
    assert t.theta[3] == t.theta[:3].max()  # fallback: the per-tensor max (the tensor-level 'max' threshold)
    t = compute_thresholds(st, parse_threshold_method("percentile:99.9", scale=2.0))
    np.testing.assert_allclose(t.theta[:3], 2.0 * np.percentile(x, 99.9, axis=0)[:3], rtol=1e-15)
    t = compute_thresholds(st, "iterate", N=16, scale=0.5)
    ref = iterate_threshold(x.mean(axis=0), x.std(axis=0), 16, theta0=np.where(x.max(0) > 0, x.max(0), 1.0))
    np.testing.assert_allclose(t.theta[:3], 0.5 * ref[:3], rtol=1e-9)
    assert t.spec.scale == 0.5 and t.iterations is not None
    assert 0 < t.raw[3] < 16 * 0.1 ** 2 / 5  # the Gaussian fit's tiny threshold is not used ...
    assert t.fallback.tolist() == [False, False, False, True]
    tt = compute_thresholds(st, "iterate", N=16, per_channel=False)
    assert t.theta[3] == pytest.approx(0.5 * float(tt.theta), rel=1e-12)  # ... the layer's threshold is
    assert np.isfinite(t.theta).all() and (t.theta > 0).all()
    tt = compute_thresholds(st, "iterate", N=16, per_channel=False)
    assert tt.theta.shape == ()
    assert float(tt.theta) == pytest.approx(float(iterate_threshold(x.mean(), x.std(), 16, theta0=x.max())), rel=1e-9)
    with pytest.raises(CalibrationError, match="needs N"):
        compute_thresholds(st, "iterate")


# ------------------------------------------------------------------------------ collect_relu_stats


def _cnn_with_relu(seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (4, 2, 3, 3)).astype(np.float32)
    b1 = rng.normal(0, 0.3, 4).astype(np.float32)
    w2 = rng.normal(0, 0.3, (3, 4, 3, 3)).astype(np.float32)
    b2 = rng.normal(0, 0.3, 3).astype(np.float32)
    wg = rng.normal(0, 0.5, (5, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in [(w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"),
                                                       (wg, "wg"), (np.zeros(5, np.float32), "bg")]]
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="conv2", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flat"),
             helper.make_node("Gemm", ["f", "wg", "bg"], ["y"], name="fc", transB=1)]
    g = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 6, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_collect_relu_stats_on_an_imported_onnx_model(tmp_path):
    import onnxruntime as ort

    m = _cnn_with_relu()
    onnx.save(m, tmp_path / "m.onnx")
    fg, _ = import_onnx(tmp_path / "m.onnx")
    x = np.random.default_rng(3).normal(size=(10, 2, 6, 6)).astype(np.float32)
    stats = collect_relu_stats(fg, x, batch_size=3)
    assert list(stats) == ["relu1", "relu2"]
    # reference pre-activations from onnxruntime (the Conv outputs)
    m2 = _cnn_with_relu()
    m2.graph.output.extend([helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("c1", "c2")])
    c1, c2 = ort.InferenceSession(m2.SerializeToString()).run(["c1", "c2"], {"x": x})
    for name, pre in (("relu1", c1), ("relu2", c2)):
        st, v = stats[name], _by_channel(pre.astype(np.float64))
        assert st.channels == pre.shape[1] and st.count == v.shape[1]
        np.testing.assert_allclose(st.mean, v.mean(axis=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.var, v.var(axis=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.max, v.max(axis=1), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.percentile(99.9), np.percentile(v, 99.9, axis=1), rtol=1e-5, atol=1e-6)
    # batching does not change the result (beyond rounding); exactly the executor's tensors
    whole = collect_relu_stats(fg, x, batch_size=100)
    vals = fg.run(x)
    for name in stats:
        pre = _by_channel(vals[fg.op(name).input])
        np.testing.assert_allclose(stats[name].mean, whole[name].mean, rtol=1e-12)
        np.testing.assert_allclose(stats[name].var, pre.var(axis=1), rtol=1e-12)
        np.testing.assert_array_equal(stats[name].percentile(99.9), np.percentile(pre, 99.9, axis=1))
    t = compute_thresholds(stats["relu2"], "iterate", N=8)
    assert t.theta.shape == (3,) and np.all(t.theta > 0)
    with pytest.raises(CalibrationError, match="expects"):
        collect_relu_stats(fg, x[:, :1])


def test_collect_relu_stats_without_relu(mlp_path):
    fg, _ = import_onnx(mlp_path)  # QCFS activations, no plain Relu
    assert collect_relu_stats(fg, np.zeros((2, 6))) == {}
