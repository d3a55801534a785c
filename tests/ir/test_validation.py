"""A projection's weights are held in the narrowest integer dtype of their range (ir/validation.py)."""

import numpy as np
import pytest

from snnc.ir import Conv2d, Dense, IRValidationError, weight_dtype
from snnc.ir.validation import as_weight_array, storage_array


@pytest.mark.parametrize("lo,hi,want", [(0, 0, np.int16), (-32767, 32767, np.int16), (-32768, 0, np.int32),
                                        (0, 32768, np.int32), (-(2**31 - 1), 2**31 - 1, np.int32),
                                        (-(2**31), 0, np.int64), (0, 2**40, np.int64)])
def test_weight_dtype_holds_the_range_and_its_negation(lo, hi, want):
    assert weight_dtype(lo, hi) is want
    a = np.array([lo, hi]).astype(want)
    assert np.array_equal(np.abs(a).astype(np.int64), np.abs(np.array([lo, hi], dtype=object)).astype(np.int64))


@pytest.mark.parametrize("src", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.float64, bool])
def test_the_same_values_give_the_same_dtype_whatever_they_came_in(src):
    v = np.array([[0, 1], [1, 0]]).astype(src)
    w = Dense("p", "a", "b", v, 0, (2,), (2,)).weight
    assert w.dtype == np.int16 and np.array_equal(w, [[0, 1], [1, 0]])


def test_a_weight_of_the_right_dtype_is_not_copied_and_a_broadcast_stays_a_view():
    w = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)
    assert as_weight_array("p", "weight", w) is w
    zeros = np.broadcast_to(np.int16(0), (1000, 1000))
    got = Dense("p", "a", "b", zeros, 0, (1000,), (1000,)).weight
    assert got.strides == (0, 0)


def test_weights_beyond_int64_and_non_integers_are_refused():
    with pytest.raises(IRValidationError, match=r"weight has values in \[0, 18446744073709551615\]; weights must lie"):
        as_weight_array("p", "weight", np.array([0, 2**64 - 1], np.uint64))
    with pytest.raises(IRValidationError, match=r"weight has values in \[-9223372036854775808, 0\]"):
        as_weight_array("p", "weight", np.array([0, -2**63], np.int64))   # |w| would wrap
    with pytest.raises(IRValidationError, match="integer-valued"):
        Dense("p", "a", "b", np.array([[0.5]]), 0, (1,), (1,))


def test_the_largest_input_weight_sum_is_computed_wide():
    """|w| summed over a fan-in of int16 weights exceeds int16: the sum must not wrap."""
    w = np.full((2, 4096), -32767, np.int64)
    p = Dense("p", "a", "b", w, 0, (4096,), (2,))
    assert p.weight.dtype == np.int16 and p.max_abs_input_weight_sum == 4096 * 32767


def test_conv_weights_too():
    p = Conv2d("c", "a", "b", np.ones((2, 1, 3, 3), np.int64) * 300, 0, (1, 5, 5), (2, 3, 3))
    assert p.weight.dtype == np.int16


@pytest.mark.parametrize("vals,want", [([0, 127, -128], np.int8), ([0, 128], np.int16), ([-32769], np.int32),
                                       ([2**31], np.int64), ([], np.int8)])
def test_a_bundle_stores_the_narrowest_lossless_dtype(vals, want):
    a = np.array(vals, np.int64)
    got = storage_array(a)
    assert got.dtype == want and np.array_equal(got.astype(np.int64), a)
