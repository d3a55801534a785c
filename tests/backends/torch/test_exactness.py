"""The exactness rules (docs/torch_backend.md) on adversarial magnitudes: partial sums right below and
above 2^24 and 2^53, exponents folded into float weights, state dtypes crossing 2^24 and 2^31, the
convolution algorithm pinned, and the reference's own refusal (>= 2^52) reproduced. Each case is
built so that the wrong arithmetic gives a wrong answer (checked), and the torch backend equals the
reference simulator."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from snnc_torch_testutil import assert_same_result  # noqa: E402

from snnc.backends.reference import simulate as reference  # noqa: E402
from snnc.backends.torch import exactness_plan, simulate  # noqa: E402
from snnc.backends.torch.linear import TorchProjection  # noqa: E402
from snnc.backends.torch.plan import Arith, projection_plan  # noqa: E402
from snnc.backends.torch.runtime import exact_math  # noqa: E402
from snnc.ir import Conv2d, Dense, Input, Network, Population, ProjectionRangeError, Readout  # noqa: E402

CPU = torch.device("cpu")


def readout_net(weights, exponent=0, qmax=1, T=1):
    """input (n,) in {0..qmax} -> readout through one dense row of ``weights``."""
    w = np.asarray(weights, dtype=np.int64).reshape(1, -1)
    n = w.shape[1]
    return Network([Input("x", (n,), scale=1.0, qmin=0, qmax=qmax), Readout("r", (1,))],
                   [Dense("x->r", "x", "r", w, exponent, (n,), (1,))], T)


def odd_weights(total: int, n: int) -> np.ndarray:
    """n positive weights summing to ``total``, the first n-1 odd and halving (about total/2, total/4, ...),
    so that the partial sums are large and odd."""
    w = np.zeros(n, dtype=np.int64)
    rest = total
    for i in range(n - 1):
        w[i] = (rest // 2) | 1
        rest -= int(w[i])
    w[-1] = rest
    assert w.sum() == total and np.all(w > 0)
    return w


@pytest.mark.parametrize("schedule", ["pipelined", "layerwise"])
def test_partial_sums_just_below_2_24_run_in_float32_exactly(schedule):
    total = 2**24 - 1
    net = readout_net(odd_weights(total, 7))
    x = np.ones((3, 7))
    plan = exactness_plan(net, schedule, x)
    assert plan.projections["x->r"].arith is Arith.FLOAT32     # T = 1: counts T * x = x
    res = simulate(net, x, schedule)
    assert res.readout["r"][0, 0] == total
    assert_same_result(reference(net, x, schedule), res)


def test_partial_sums_just_above_2_24_switch_to_float64():
    total = 2**24 + 1                      # odd: not a float32
    net = readout_net(odd_weights(total, 5))
    x = np.ones((2, 5))
    assert exactness_plan(net, "pipelined", x).projections["x->r"].arith is Arith.FLOAT64
    res = simulate(net, x, "pipelined")
    assert res.readout["r"][0, 0] == total
    assert_same_result(reference(net, x, "pipelined"), res)
    # the same map in float32 rounds: the test data really needs the switch
    w32 = torch.as_tensor(net.projections[0].weight, dtype=torch.float32)
    assert int(torch.nn.functional.linear(torch.ones(1, 5), w32).item()) != total


def test_exponent_folded_into_float32_weights_is_exact():
    """2^e is folded into the weights: partial sums are multiples of 2^e with 24-bit mantissas."""
    net = readout_net(odd_weights(2**24 - 1, 6), exponent=7)
    x = np.ones((2, 6))
    plan = exactness_plan(net, "pipelined", x)
    assert plan.projections["x->r"].arith is Arith.FLOAT32 and plan.projections["x->r"].current_bound == (2**24 - 1) << 7
    res = simulate(net, x, "pipelined")
    assert res.readout["r"][0, 0] == (2**24 - 1) << 7
    assert_same_result(reference(net, x, "pipelined"), res)


def counts_net(w_total: int, T: int, theta: int, n: int = 4):
    """input -> one IF neuron firing in a controlled fraction of T steps -> readout with huge weights:
    layerwise the readout reads counts up to T, so the proven bound is sum|W| * T."""
    pop = Population("p", (n,), threshold=theta, v0=0, bias=0, levels=T)
    return Network([Input("x", (1,), scale=1.0, qmin=0, qmax=1), pop, Readout("r", (1,))],
                   [Dense("x->p", "x", "p", np.ones((n, 1), np.int64), 0, (1,), (n,)),
                    Dense("p->r", "p", "r", odd_weights(w_total, n).reshape(1, n), 0, (n,), (1,))], T)


def test_bounds_near_2_53_float64_below_int64_at_and_above():
    T = 64
    below = counts_net(2**47 - 1, T, theta=2)      # bound 64 * (2^47 - 1) < 2^53: float64; 32 spikes
    at = counts_net(2**47 + 1, T, theta=4)         # bound 64 * (2^47 + 1) >= 2^53: int64; 16 spikes
    x = np.ones((2, 1))
    assert exactness_plan(below, "layerwise", x).projections["p->r"].arith is Arith.FLOAT64
    assert exactness_plan(at, "layerwise", x).projections["p->r"].arith is Arith.INT64
    for net, spikes, w in ((below, 32, 2**47 - 1), (at, 16, 2**47 + 1)):
        res = simulate(net, x, "layerwise")
        assert res.counts["p"][0, 0] == spikes
        assert int(res.readout["r"][0, 0]) == spikes * w      # 2^52 - 32 (odd partial sums) and 2^51 + 16
        assert_same_result(reference(net, x, "layerwise"), res)
    # float64 cannot hold the int64 case's bound: an odd value above 2^53 rounds
    assert float(2**53 + 1) != 2**53 + 1


def test_reference_refusal_above_2_52_is_reproduced():
    net = counts_net(2**47 + 1, 64, theta=1)       # fires every step: 64 * 2^47 >= 2^52 really arrives
    x = np.ones((1, 1))
    with pytest.raises(ProjectionRangeError) as ref:
        reference(net, x, "layerwise")
    with pytest.raises(ProjectionRangeError) as got:
        simulate(net, x, "layerwise")
    assert str(got.value) == str(ref.value)


@pytest.mark.parametrize("weight,want", [(2**12, Arith.FLOAT32), (2**17, Arith.INT32), (2**25, Arith.INT64)])
def test_state_dtype_follows_its_bound(weight, want):
    """The state of an IF population runs in float32 / int32 / int64 as its bound crosses 2^24 and 2^31."""
    pop = Population("p", (3,), threshold=[weight * 100, weight * 7 + 1, 3 * weight], v0=[0, 5, weight], bias=-1, levels=4)
    net = Network([Input("x", (2,), scale=1.0, qmin=0, qmax=255), pop, Readout("r", (3,))],
                  [Dense("x->p", "x", "p", np.array([[weight, -weight + 1], [weight - 1, 3], [1, weight]]), 0, (2,), (3,)),
                   Dense("p->r", "p", "r", np.eye(3, dtype=np.int64), 0, (3,), (3,))], 4)
    x = np.random.default_rng(0).integers(0, 256, size=(9, 2)) / 1.0
    assert exactness_plan(net, "pipelined", x).states["p"].arith is want
    for schedule in ("pipelined", "layerwise"):
        assert_same_result(reference(net, x, schedule, record=True), simulate(net, x, schedule, record=True))


def test_convolution_near_2_24_is_exact_with_the_pinned_algorithm():
    """A 3x3 convolution over 64 channels on a batch of 32 (the sizes for which torch would pick NNPACK's
    Winograd / FFT kernels if it were enabled) whose partial sums reach just below 2^24 with odd values:
    float32 under ``exact_math`` equals int64 exactly."""
    rng = np.random.default_rng(0)
    C, O = 64, 8
    w = rng.integers(-29000, 29000, size=(O, C, 3, 3)) | 1          # odd, sum|W| just below 2^24
    w[0] = 29127                                                       # output 0: all positive, 576 * 29127
    assert np.abs(w).reshape(O, -1).sum(axis=1).max() < 2**24
    p = Conv2d("c", "s", "t", w, 0, (C, 12, 12), (O, 12, 12), padding=(1, 1, 1, 1))
    plan = projection_plan(p, 1)
    assert plan.arith is Arith.FLOAT32
    s = torch.as_tensor(rng.integers(0, 2, size=(32, C, 12, 12)))
    s[0] = 1
    proj = TorchProjection(p, CPU)
    with exact_math(CPU):
        assert not torch._C._get_nnpack_enabled()
        got = proj.apply(s, plan, torch.int64)
    want = torch.nn.functional.conv2d(s, torch.as_tensor(w), padding=1)   # int64: the exact answer
    assert torch.equal(got, want)
    assert int(got[0, 0, 5, 5]) == 576 * 29127 and 576 * 29127 > 2**24 - 2**20
    # the same sums in float32 with the inputs scaled by 3 (bound above 2^24) round: the data is adversarial
    rounded = torch.nn.functional.conv2d(3 * s[:1].float(), torch.as_tensor(w, dtype=torch.float32), padding=1)
    assert not torch.equal(rounded.to(torch.int64), 3 * want[:1])


def test_exact_math_restores_the_callers_settings():
    before = (torch.get_float32_matmul_precision(), torch._C._get_nnpack_enabled(),
              torch.backends.mkldnn.conv.fp32_precision)
    torch.set_float32_matmul_precision("medium")
    try:
        with exact_math(CPU):
            assert torch.get_float32_matmul_precision() == "highest"
            assert torch.backends.mkldnn.conv.fp32_precision == "ieee"
            assert not torch._C._get_nnpack_enabled()
        assert torch.get_float32_matmul_precision() == "medium"
        assert torch._C._get_nnpack_enabled() == before[1]
        assert torch.backends.mkldnn.conv.fp32_precision == before[2]
    finally:
        torch.set_float32_matmul_precision(before[0])


def test_quantized_inputs_beyond_the_quantizer_range_widen_the_plan():
    """Already-quantized inputs are not clipped: their own maximum enters the bound."""
    net = readout_net(odd_weights(2**20 + 1, 3), qmax=1)
    x = np.full((2, 3), 40, dtype=np.int64)        # 40 > qmax: bound 40 * (2^20 + 1) > 2^24
    assert exactness_plan(net, "pipelined", x, quantized=True).projections["x->r"].arith is Arith.FLOAT64
    assert_same_result(reference(net, x, "pipelined", quantized=True), simulate(net, x, "pipelined", quantized=True))
