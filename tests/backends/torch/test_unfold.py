"""Folded average pools run unfolded (an exact window sum, then the small kernel) only when the weights
have the block structure and it costs fewer multiply-adds; the result equals the folded map exactly."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from snnc.backends.torch.linear import TorchProjection, conv_macs, unfold_conv, unfold_dense  # noqa: E402
from snnc.backends.torch.plan import projection_plan  # noqa: E402
from snnc.ir import Conv2d, Dense  # noqa: E402

CPU = torch.device("cpu")


def folded_conv(rng, c=16, o=32, h=8, a=2, k=3, pad=1):
    small = rng.integers(-5, 6, size=(o, c, k, k))
    w = np.repeat(np.repeat(small, a, axis=2), a, axis=3)          # AvgPool(a) folded into a k x k conv
    oh = (h + 2 * a * pad - a * k) // a + 1
    return Conv2d("c", "s", "t", w, 1, (c, h, h), (o, oh, oh), stride=(a, a), padding=(a * pad,) * 4), small


def test_folded_conv_unfolds_and_equals_the_folded_map():
    rng = np.random.default_rng(0)
    p, small = folded_conv(rng)
    u = unfold_conv(p)
    assert u is not None and (u.ay, u.ax) == (2, 2) and np.array_equal(u.weight, small) and u.macs < conv_macs(p)
    s = torch.as_tensor(rng.integers(-1, 2, size=(5,) + p.in_shape))
    plan = projection_plan(p, 1)
    got = TorchProjection(p, CPU).apply(s, plan, torch.int64)
    plain = TorchProjection(p, CPU, unfold=False)
    assert plain.unfold is None
    want = torch.nn.functional.conv2d(s, torch.as_tensor(p.weight.astype(np.int64)), stride=2, padding=2) << 1
    assert torch.equal(got, want) and torch.equal(plain.apply(s, plan, torch.int64), want)


@pytest.mark.parametrize("change", ["weights", "odd_size", "padding"])
def test_no_unfold_without_the_exact_structure(change):
    rng = np.random.default_rng(1)
    p, _ = folded_conv(rng, h=7 if change == "odd_size" else 8)
    if change == "weights":
        w = p.weight.copy()
        w[0, 0, 0, 1] += 1
        p = Conv2d("c", "s", "t", w, 1, p.in_shape, p.out_shape, stride=p.stride, padding=p.padding)
    if change == "padding":
        p = Conv2d("c", "s", "t", p.weight, 1, p.in_shape, (32, 3, 3), stride=(2, 2), padding=(1, 1, 1, 1))
    assert unfold_conv(p) is None


def test_folded_dense_unfolds():
    rng = np.random.default_rng(2)
    small = rng.integers(-4, 5, size=(512, 2, 3, 3))
    w = np.repeat(np.repeat(small, 2, axis=2), 2, axis=3).reshape(512, -1)
    p = Dense("d", "s", "t", w, 0, (2, 6, 6), (512,))
    u = unfold_dense(p)
    assert u is not None and (u.ay, u.ax) == (2, 2)
    s = torch.as_tensor(rng.integers(0, 2, size=(4, 2, 6, 6)))
    got = TorchProjection(p, CPU).apply(s, projection_plan(p, 1), torch.int64)
    assert torch.equal(got, s.reshape(4, -1) @ torch.as_tensor(w).T)
    assert unfold_dense(Dense("d", "s", "t", rng.integers(-4, 5, size=(512, 72)), 0, (2, 6, 6), (512,))) is None
    # the same structure on a narrow layer: the window sum would cost more than it saves
    assert unfold_dense(Dense("d", "s", "t", w[:6], 0, (2, 6, 6), (6,))) is None


def test_sparse_dense_path_is_exact():
    """Sources with few active inputs multiply only those rows of W^T; the result is the same."""
    from snnc.backends.torch import linear

    rng = np.random.default_rng(3)
    p = Dense("d", "s", "t", rng.integers(-100, 100, size=(7, 1024)), 2, (1024,), (7,))
    s = torch.zeros(9, 1024)
    s[:, rng.choice(1024, 100, replace=False)] = torch.as_tensor(rng.integers(-1, 2, size=(9, 100)), dtype=torch.float32)
    assert int((s != 0).any(0).sum()) <= linear.SPARSE_MAX_ACTIVE * 1024
    got = TorchProjection(p, CPU).apply(s, projection_plan(p, 1), torch.int64)
    want = (s.to(torch.int64) @ torch.as_tensor(p.weight.astype(np.int64)).T) << 2
    assert torch.equal(got, want)
