"""The closed forms of compiler/analysis/currents.py equal the IR's arithmetic on arrays of ones, integer
for integer, for every projection kind and geometry; the range check raises where applying the
projection raises."""

import numpy as np
import pytest

from snnc.compiler.analysis.currents import signed_sums
from snnc.ir import Conv2d, Dense, ProjectionRangeError, SumPool2d, apply_projection, conv_output_size, replace


def _reference(p, s_max=1):
    pos = replace(p, weight=np.maximum(p.weight, 0))
    neg = replace(p, weight=np.minimum(p.weight, 0))
    ones = np.ones((1,) + tuple(p.in_shape), np.int64)
    apply_projection(pos, s_max * ones)  # raises where the bound check of the old code raised
    apply_projection(neg, s_max * ones)
    return apply_projection(pos, ones)[0], apply_projection(neg, ones)[0]


def _conv(rng, c_in, c_out, h, w, k, stride, pad, dil, groups, exponent=0):
    weight = rng.integers(-128, 128, (c_out, c_in // groups, k[0], k[1]))
    oh = conv_output_size(h, k[0], stride[0], pad[0], pad[2], dil[0])
    ow = conv_output_size(w, k[1], stride[1], pad[1], pad[3], dil[1])
    return Conv2d("c", "a", "b", weight, exponent, (c_in, h, w), (c_out, oh, ow), stride=stride, padding=pad,
                  dilation=dil, groups=groups)


CONVS = [
    dict(c_in=3, c_out=5, h=9, w=7, k=(3, 3), stride=(1, 1), pad=(1, 1, 1, 1), dil=(1, 1), groups=1),
    dict(c_in=4, c_out=6, h=11, w=10, k=(3, 2), stride=(2, 3), pad=(2, 0, 1, 1), dil=(1, 1), groups=2),
    dict(c_in=4, c_out=4, h=12, w=12, k=(3, 3), stride=(1, 2), pad=(2, 2, 2, 2), dil=(2, 3), groups=4),
    dict(c_in=2, c_out=3, h=8, w=8, k=(7, 7), stride=(2, 2), pad=(3, 3, 3, 3), dil=(1, 1), groups=1, exponent=3),
]


@pytest.mark.parametrize("geometry", CONVS)
def test_conv_sums_equal_the_projection_of_ones(geometry):
    p = _conv(np.random.default_rng(1), **geometry)
    pos, neg = signed_sums(p, 1)
    ref_pos, ref_neg = _reference(p)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_array_equal(neg, ref_neg)


@pytest.mark.parametrize("exponent", [0, 2])
def test_dense_sums_equal_the_projection_of_ones(exponent, monkeypatch):
    import snnc.compiler.analysis.currents as currents

    monkeypatch.setattr(currents, "ROWS_PER_CHUNK", 40)  # several chunks
    w = np.random.default_rng(2).integers(-100, 100, (13, 2 * 3 * 3))
    p = Dense("d", "a", "b", w, exponent, (2, 3, 3), (13,))
    pos, neg = signed_sums(p, 1)
    ref_pos, ref_neg = _reference(p)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_array_equal(neg, ref_neg)


@pytest.mark.parametrize("weight", [3, -2])
def test_sum_pool_sums_equal_the_projection_of_ones(weight):
    p = SumPool2d("s", "a", "b", np.array(weight), 1, (3, 7, 6), (3, 4, 3), kernel=(3, 2), stride=(2, 2),
                  padding=(1, 0, 1, 0))
    pos, neg = signed_sums(p, 1)
    ref_pos, ref_neg = _reference(p)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_array_equal(neg, ref_neg)


def test_the_range_check_raises_where_the_projection_would():
    w = np.full((2, 4), 2**20)
    p = Dense("big", "a", "b", w, 0, (4,), (2,))
    with pytest.raises(ProjectionRangeError):
        _reference(p, 2**31)
    with pytest.raises(ProjectionRangeError, match="'big'"):
        signed_sums(p, 2**31)
    signed_sums(p, 2**20)  # 2^22 * 2^20 < 2^52


def test_a_kind_without_a_closed_form_falls_back_to_the_projection_of_ones(monkeypatch):
    import snnc.compiler.analysis.currents as currents

    p = _conv(np.random.default_rng(3), **CONVS[1], exponent=1)
    monkeypatch.setattr(currents, "SIGNED_SUMS", {})
    pos, neg = signed_sums(p, 1)
    ref_pos, ref_neg = _reference(p)
    np.testing.assert_array_equal(pos, ref_pos)
    np.testing.assert_array_equal(neg, ref_neg)
