"""The transformer graded units of snnc.ir.graded: their integer primitives, their integer functions
against the float functions (errors measured, bounded), their dynamics (telescoping in both codings)
and their validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from snnc.compiler.graded_params import (elementwise_table, exp_table, gelu, layernorm_constants, matmul_shift,
                                         silu)
from snnc.ir import (DifferentialCoding, GradedElementwise, GradedLayerNorm, GradedMatMul, GradedSoftmax,
                     IRValidationError, RateCoding)
from snnc.ir.graded import (GradedRangeError, UnitDynamics, bit_length, interpolate, isqrt, reciprocal, round_div,
                            round_shift, unit_output)

RNG = np.random.default_rng(0)


# ---- primitives ------------------------------------------------------------------------------------
def test_isqrt_is_exact_against_math_isqrt():
    v = np.concatenate([np.arange(0, 2000), RNG.integers(0, 2**62, 5000),
                        np.array([2**62 - 1, 2**61, (2**31 - 1) ** 2, (2**31 - 1) ** 2 - 1, 2**31 * 2**30])])
    got = isqrt(v.astype(np.int64))
    want = np.array([math.isqrt(int(x)) for x in v])
    np.testing.assert_array_equal(got, want)


def test_isqrt_refuses_out_of_range():
    with pytest.raises(ValueError):
        isqrt(np.array([-1]))
    with pytest.raises(ValueError):
        isqrt(np.array([2**62]))


def test_rounding_is_half_up_and_explicit():
    np.testing.assert_array_equal(round_shift(np.array([-3, -2, -1, 0, 1, 2, 3, 5, 6]), 2), [-1, 0, 0, 0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(round_shift(np.array([7, -7]), 0), [7, -7])
    np.testing.assert_array_equal(round_div(np.array([-3, -2, 1, 2, 3, 5]), np.array(2)), [-1, -1, 1, 1, 2, 3])


def test_bit_length_is_exact_at_powers_of_two():
    v = np.array([0, 1, 2, 3, 4, 2**52, 2**53 - 1, 2**53, 2**62 - 1, -8])
    np.testing.assert_array_equal(bit_length(v), [int(abs(int(x))).bit_length() for x in v])


def test_interpolate_hits_the_knots_and_is_linear_between():
    table = np.array([0, 40, 20, 100])
    m = np.arange(-8, 17)                    # lo = -8, knots every 8: -8, 0, 8, 16
    y = interpolate(table, -8, 3, m)
    np.testing.assert_array_equal(y[::8], table)
    # between knots: table[i] + floor((table[i+1]-table[i]) * r / 8)
    assert y[1] == 5 and y[9] == 40 - 3 and y[17] == 20 + 10


# ---- the units' integer functions against the float functions ----------------------------------------
@pytest.mark.parametrize("function,fn", [("gelu", gelu), ("silu", silu)])
@pytest.mark.parametrize("G", [4, 12])
def test_elementwise_unit_error_is_small_and_bounded(function, fn, G):
    s_in, s_out = 0.003, 0.02                      # q = s_in 2^-G per unit of m
    q = s_in * 2.0**-G
    m_lo, m_hi = int(-9 / q), int(11 / q)
    t = elementwise_table(function, s_in, s_out, G, m_lo, m_hi)
    unit = GradedElementwise("u", (5, 7, 1), function=function, table=t.table, lo=t.lo, shift=t.shift,
                             frac_bits=G, in_scale=s_in, out_scale=s_out)
    m = np.linspace(m_lo, unit.hi, 35 * 400).astype(np.int64).reshape(400, 5, 7, 1)
    y = unit_output(unit, {"a": m})
    want = fn(m * q) * 2.0**G / s_out
    err = np.abs(y - want).max()
    # knot rounding (1/2) + floor (1) + interpolation h^2/8 max|f''| (|f''| <= 1 for both) in output units
    h = (1 << t.shift) * q
    assert err <= 1.5 + h * h / 8 * 2.0**G / s_out + 1e-9
    assert err > 0                                   # it is an approximation, and the test sees it


def test_elementwise_unit_refuses_values_outside_its_table():
    t = elementwise_table("gelu", 0.01, 0.01, 8, -1000, 1000)
    unit = GradedElementwise("g", (3,), function="gelu", table=t.table, lo=t.lo, shift=t.shift, frac_bits=8)
    unit_output(unit, {"a": np.array([[unit.lo, 0, unit.hi]])})
    with pytest.raises(GradedRangeError, match="'g'.*outside its table"):
        unit_output(unit, {"a": np.array([[unit.hi + 1, 0, 0]])})


def _float_layernorm(x, gamma, beta, eps, axis):
    mu = x.mean(axis=axis, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axis, keepdims=True)
    shape = [1] * x.ndim
    shape[axis] = -1
    return (x - mu) / np.sqrt(var + eps) * gamma.reshape(shape) + beta.reshape(shape)


@pytest.mark.parametrize("G,s_in", [(8, 1e-3), (12, 2e-5), (2, 0.5)])
def test_layernorm_unit_matches_float_layernorm(G, s_in):
    D, T = 16, 5
    gamma, beta, eps = RNG.normal(1, 0.3, D), RNG.normal(0, 0.2, D), 1e-5
    s_out = 4.0 / 128
    c = layernorm_constants(gamma, beta, eps, s_in, s_out, G)
    unit = GradedLayerNorm("ln", (D, T, 1), axis=0, gamma=c.gamma, beta=c.beta, eps=c.eps, norm_bits=c.norm_bits,
                           sqrt_bits=c.sqrt_bits, frac_bits=G, in_scale=s_in, out_scale=s_out)
    q = s_in * 2.0**-G
    x = RNG.normal(0.3, 2.0, (50, D, T, 1)) * RNG.uniform(0.05, 3, (50, 1, T, 1))
    m = np.round(x / q).astype(np.int64)
    y = unit_output(unit, {"a": m}) * 2.0**-G * s_out
    want = _float_layernorm(m * q, gamma, beta, eps, axis=1)
    err = np.abs(y - want).max()
    assert err < 3 * s_out * 2.0**-G + (1e-3 if G <= 2 else 1e-4) * np.abs(want).max()


def test_layernorm_of_a_constant_row_is_beta():
    c = layernorm_constants(np.ones(4), np.array([0.5, -0.25, 0.0, 1.0]), 1e-5, 0.01, 1 / 64, 6)
    unit = GradedLayerNorm("ln", (4,), axis=0, gamma=c.gamma, beta=c.beta, eps=c.eps, norm_bits=c.norm_bits,
                           sqrt_bits=c.sqrt_bits, frac_bits=6, in_scale=0.01, out_scale=1 / 64)
    y = unit_output(unit, {"a": np.full((2, 4), 777, np.int64)})
    np.testing.assert_array_equal(y, np.broadcast_to(c.beta, (2, 4)))


def test_layernorm_output_is_within_gamma_plus_beta():
    """|y - Beta| <= |Gamma| for every input (the bound the compiler relies on), extreme rows included."""
    D = 8
    c = layernorm_constants(RNG.normal(0, 2, D), RNG.normal(0, 1, D), 1e-5, 1e-4, 1 / 32, 10)
    unit = GradedLayerNorm("ln", (D,), axis=0, gamma=c.gamma, beta=c.beta, eps=c.eps, norm_bits=c.norm_bits,
                           sqrt_bits=c.sqrt_bits, frac_bits=10, in_scale=1e-4, out_scale=1 / 32)
    rows = [RNG.integers(-2**40, 2**40, (200, D)), np.eye(D, dtype=np.int64) * 2**40,
            -np.eye(D, dtype=np.int64) * 3, RNG.integers(-3, 3, (200, D))]
    for m in rows:
        y = unit_output(unit, {"a": m})
        assert np.all(np.abs(y - c.beta) <= np.abs(c.gamma))


@pytest.mark.parametrize("G,s_in", [(8, 0.01), (4, 0.05), (14, 1e-4)])
def test_softmax_unit_matches_float_softmax(G, s_in):
    H, T = 2, 9
    t = exp_table(s_in, G)
    out_one = 1 << (G + 7)
    unit = GradedSoftmax("sm", (H, T, T), axis=2, table=t.table, lo=t.lo, shift=t.shift, exp_bits=16,
                         out_one=out_one, frac_bits=G, in_scale=s_in, out_scale=2.0**G / out_one)
    q = s_in * 2.0**-G
    x = RNG.normal(0, 3, (40, H, T, T))
    m = np.round(x / q).astype(np.int64)
    y = unit_output(unit, {"a": m}) / out_one
    xq = m * q
    e = np.exp(xq - xq.max(axis=-1, keepdims=True))
    want = e / e.sum(axis=-1, keepdims=True)
    assert np.abs(y - want).max() < 2.0 / out_one + 2e-4
    assert np.all(y >= 0)


@pytest.mark.parametrize("shift", [0, 1, 9])
def test_matmul_unit_is_the_rounded_integer_product(shift):
    H, T, d = 2, 5, 3
    # A: port (H*d, T, 1) viewed (H, T, d) through a_index; B: (H*d, T, 1) viewed (H, d, T)
    a_idx = np.arange(H * d * T).reshape(H, d, T).transpose(0, 2, 1).reshape(-1)
    b_idx = np.arange(H * d * T)
    unit = GradedMatMul("mm", (H, T, T), a_shape=(H * d, T, 1), b_shape=(H * d, T, 1), a_view=(H, T, d),
                        b_view=(H, d, T), a_index=a_idx, b_index=b_idx, out_index=np.arange(H * T * T),
                        a_inputs=("x",), shift=shift)
    a = RNG.integers(-2**20, 2**20, (3, H * d, T, 1))
    b = RNG.integers(-2**20, 2**20, (3, H * d, T, 1))
    y = unit_output(unit, {"a": a, "b": b})
    A = a.reshape(3, H, d, T).transpose(0, 1, 3, 2)
    Bm = b.reshape(3, H, d, T)
    for i in range(3):
        for h in range(H):
            for r in range(T):
                for c in range(T):
                    p = sum(int(A[i, h, r, k]) * int(Bm[i, h, k, c]) for k in range(d))
                    want = p if shift == 0 else (p + (1 << (shift - 1))) >> shift
                    assert y[i, h, r, c] == want


def test_matmul_shift_gives_an_exact_output_scale():
    shift, s = matmul_shift(0.01, 0.003, 1e-3, 8)
    assert s == pytest.approx(0.01 * 0.003 * 2.0 ** (shift - 8), rel=0, abs=0)
    assert 0.5e-3 < s < 2e-3


# ---- dynamics --------------------------------------------------------------------------------------
def _gelu_unit(G=6):
    t = elementwise_table("gelu", 0.05, 0.05, G, -(1 << 20), 1 << 20)
    return GradedElementwise("g", (4,), function="gelu", table=t.table, lo=t.lo, shift=t.shift,
                             offset=np.array([3, -5, 0, 100]), frac_bits=G, in_scale=0.05, out_scale=0.05)


def test_differential_dynamics_telescope_to_the_function_of_the_encoded_input():
    unit = _gelu_unit()
    dyn = UnitDynamics(unit, 2, DifferentialCoding(frac_bits=6))
    total, m = 0, np.broadcast_to(unit.offset, (2, 4)).astype(np.int64)
    for t in range(1, 9):
        s = RNG.integers(-40, 40, (2, 4))
        e = RNG.integers(-500, 500, (2, 4))
        total = total + dyn.step(t, {"a": s}, {"a": e})
        m = m + s * reciprocal(t, 6) + e
        np.testing.assert_array_equal(total, unit_output(unit, {"a": m}))


def test_rate_dynamics_send_t_times_the_function_of_the_mean():
    unit = _gelu_unit()
    dyn = UnitDynamics(unit, 2, RateCoding())
    total, S = 0, np.zeros((2, 4), np.int64)
    for t in range(1, 7):
        s = RNG.integers(-40, 40, (2, 4))
        total = total + dyn.step(t, {"a": s}, {})
        S = S + s
        mean = S * reciprocal(t, 6) + unit.offset
        np.testing.assert_array_equal(total, round_shift(t * unit_output(unit, {"a": mean}), 6))


# ---- validation --------------------------------------------------------------------------------------
def test_softmax_table_must_end_at_one():
    with pytest.raises(IRValidationError, match="last knot"):
        GradedSoftmax("s", (4,), table=np.array([0, 1, 4]), lo=-3, shift=0, exp_bits=2)
    with pytest.raises(IRValidationError, match="2\\^exp_bits"):
        GradedSoftmax("s", (4,), table=np.array([0, 1, 3]), lo=-2, shift=0, exp_bits=2)


def test_layernorm_constants_must_fit_int64():
    with pytest.raises(IRValidationError, match="reaches 2\\^62"):
        GradedLayerNorm("ln", (64,), gamma=np.full(64, 1 << 30), beta=np.zeros(64), norm_bits=30, sqrt_bits=2)


def test_matmul_views_must_multiply():
    with pytest.raises(IRValidationError, match="not a matrix product"):
        GradedMatMul("m", (2, 2), a_shape=(4,), b_shape=(6,), a_view=(2, 2), b_view=(3, 2),
                     a_index=np.arange(4), b_index=np.arange(6), out_index=np.arange(4))
