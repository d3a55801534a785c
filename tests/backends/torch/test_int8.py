"""The int8 GEMM path (torch._int_mm, int32 accumulation) of the torch backend's projections: exact where
the plan allows it (weights and source values in int8, partial sums below 2^31), the same integers as
the float and int64 paths, and the same SimResult as the reference on whole networks."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from snnc.backends.reference import simulate as reference  # noqa: E402
from snnc.backends.torch import linear, simulate  # noqa: E402
from snnc.backends.torch.linear import TorchProjection  # noqa: E402
from snnc.backends.torch.plan import projection_plan  # noqa: E402
from snnc.ir import Conv2d, Dense, apply_projection  # noqa: E402
from snnc_torch_testutil import assert_same_result  # noqa: E402

CPU = torch.device("cpu")


def _conv(rng, c=5, o=7, h=9, k=3, stride=(1, 1), pad=(1, 1, 1, 1), dil=(1, 1), e=0, lo=-128, hi=128):
    oh = (h + pad[0] + pad[2] - dil[0] * (k - 1) - 1) // stride[0] + 1
    ow = (h + pad[1] + pad[3] - dil[1] * (k - 1) - 1) // stride[1] + 1
    w = rng.integers(lo, hi, size=(o, c, k, k))
    return Conv2d("c", "s", "t", w, e, (c, h, h), (o, oh, ow), stride=stride, padding=pad, dilation=dil)


@pytest.mark.parametrize("geom", [dict(), dict(stride=(2, 2)), dict(pad=(0, 1, 2, 0)), dict(dil=(2, 1), pad=(2, 2, 2, 2)),
                                  dict(k=1, pad=(0, 0, 0, 0)), dict(e=3), dict(k=5, stride=(2, 3), pad=(2, 1, 0, 2))])
@pytest.mark.parametrize("out", [torch.float32, torch.int32, torch.int64])
def test_int8_conv_equals_the_int64_conv(monkeypatch, geom, out):
    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 0)
    monkeypatch.setattr(linear, "INT8_MIN_OUTPUTS", 0)
    rng = np.random.default_rng(0)
    p = _conv(rng, **geom)
    tp = TorchProjection(p, CPU)
    assert tp.int8
    s = torch.as_tensor(rng.integers(-1, 2, size=(6,) + p.in_shape), dtype=torch.float32)
    plan = projection_plan(p, 1)
    assert plan.int8_exact
    got = tp.apply(s, plan, out)
    ref = apply_projection(p, s.numpy().astype(np.int64))      # the IR's own arithmetic (the oracle)
    assert got.dtype == out and np.array_equal(got.to(torch.int64).numpy(), np.asarray(ref, np.int64))


@pytest.mark.parametrize("e", [0, 2])
def test_int8_dense_with_a_bias(monkeypatch, e):
    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 0)
    monkeypatch.setattr(linear, "INT8_MIN_OUTPUTS", 0)
    rng = np.random.default_rng(1)
    p = Dense("d", "s", "t", rng.integers(-128, 128, size=(11, 300)), e, (300,), (11,))
    s = torch.as_tensor(rng.integers(0, 4, size=(9, 300)), dtype=torch.float32)   # layerwise counts of tau = 3
    plan = projection_plan(p, 3)
    bias = torch.as_tensor(rng.integers(-50, 50, size=11), dtype=torch.float32)
    got = TorchProjection(p, CPU).apply(s, plan, torch.float32, bias)
    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 10**9)
    want = TorchProjection(p, CPU).apply(s, plan, torch.float32, bias)
    assert torch.equal(got, want)


def test_what_is_not_eligible(monkeypatch):
    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 0)
    monkeypatch.setattr(linear, "INT8_MIN_OUTPUTS", 0)
    rng = np.random.default_rng(2)
    assert not TorchProjection(_conv(rng, lo=-129, hi=0), CPU).int8          # a weight beyond int8
    grouped = Conv2d("g", "s", "t", rng.integers(-3, 3, size=(4, 2, 3, 3)), 0, (4, 6, 6), (4, 4, 4), groups=2)
    assert not TorchProjection(grouped, CPU).int8
    p = _conv(rng)
    assert not projection_plan(p, 128).int8_exact                             # a source value beyond int8
    big = Dense("d", "s", "t", np.full((2, 2**18), 127), 0, (2**18,), (2,))
    assert not projection_plan(big, 127).int8_exact                           # partial sums reach 2^31
    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 10**9)
    assert not TorchProjection(p, CPU).int8                                   # too shallow to pay
    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 0)
    monkeypatch.setattr(linear, "INT8_MIN_OUTPUTS", 8)
    assert not TorchProjection(_conv(rng, o=7), CPU).int8                     # too few outputs to pay


def test_whole_networks_with_the_int8_gemm_forced_equal_the_reference(monkeypatch):
    """Every eligible projection of the digits CNN and MLP runs as an int8 GEMM: the reference's result,
    field for field, in both schedules (and the path really ran)."""
    from snnc.compiler.api import compile_model
    from snnc_testutil import REPO

    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 0)
    monkeypatch.setattr(linear, "INT8_MIN_OUTPUTS", 0)
    calls = []
    real = TorchProjection._apply_int8
    monkeypatch.setattr(TorchProjection, "_apply_int8", lambda self, *a: calls.append(self.p.name) or real(self, *a))
    x = np.load(REPO / "examples" / "digits" / "test.npz")["x"][:40].reshape(40, 1, 8, 8)
    for model in ("qcfs_cnn.onnx",):
        net, _ = compile_model(REPO / "examples" / "digits" / model)
        for schedule in ("pipelined", "layerwise"):
            assert_same_result(reference(net, x, schedule, record=True, count_ops=True),
                               simulate(net, x, schedule, record=True, count_ops=True))
    assert len(set(calls)) >= 2


def test_an_unfolded_pool_conv_runs_its_small_kernel_as_an_int8_gemm(monkeypatch):
    """A folded average pool unfolded into window sums (at most ay * ax * source_max, an int8) and the
    small kernel as an int8 GEMM: the IR's arithmetic; beyond int8 window sums it keeps the float path."""
    monkeypatch.setattr(linear, "INT8_MIN_DEPTH", 0)
    monkeypatch.setattr(linear, "INT8_MIN_OUTPUTS", 0)
    rng = np.random.default_rng(4)
    small = rng.integers(-5, 6, size=(32, 16, 3, 3))
    w = np.repeat(np.repeat(small, 2, axis=2), 2, axis=3)          # AvgPool(2) folded into a 3x3 conv
    p = Conv2d("c", "s", "t", w, 1, (16, 8, 8), (32, 4, 4), stride=(2, 2), padding=(2,) * 4)
    tp = TorchProjection(p, CPU)
    assert tp.unfold is not None and tp.int8
    calls = []
    real = TorchProjection._apply_int8
    monkeypatch.setattr(TorchProjection, "_apply_int8", lambda self, *a: calls.append(1) or real(self, *a))
    for source_max in (1, 40):   # 40 * 2 * 2 > 127: the float path
        s = rng.integers(0, source_max + 1, size=(5,) + p.in_shape)
        got = tp.apply(torch.as_tensor(s, dtype=torch.float32), projection_plan(p, source_max), torch.int64)
        assert np.array_equal(got.numpy(), np.asarray(apply_projection(p, s), np.int64))
    assert len(calls) == 1


def test_int32_sums_right_below_2_to_the_31_are_exact(monkeypatch):
    """The adversarial case: every product 127 * 127 and the sum just below 2^31 (no wrap, no rounding)."""
    n = (2**31 - 1) // (127 * 127)
    p = Dense("d", "s", "t", np.full((64, n), 127), 0, (n,), (64,))
    plan = projection_plan(p, 127)
    assert plan.int8_exact and plan.bound == 127 * 127 * n and plan.bound < 2**31
    s = torch.full((3, n), 127.0)
    s[1] = -127.0
    got = TorchProjection(p, CPU).apply(s, plan, torch.int64)
    assert TorchProjection(p, CPU).int8
    assert got[0, 0].item() == 127 * 127 * n and got[1, 0].item() == -127 * 127 * n
