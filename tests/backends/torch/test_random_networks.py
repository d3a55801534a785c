"""Random hand-built IR networks (hypothesis): the torch backend equals the reference simulator on every
field, in both schedules, with and without recording and op counts, for any chunk of steps; where
the reference refuses a network (a schedule it does not define, a message beyond a bound), the torch
backend refuses it with the same exception type."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

pytest.importorskip("torch")

from snnc_torch_testutil import assert_same_readouts, assert_same_result, random_network  # noqa: E402

from snnc.backends.base import Keep  # noqa: E402

from snnc.backends.reference import simulate as reference  # noqa: E402
from snnc.backends.torch import simulate  # noqa: E402


@st.composite
def cases(draw):
    net, x = random_network(draw, st)
    return net, x, draw(st.sampled_from(["pipelined", "layerwise"])), draw(st.booleans()), draw(st.integers(1, 7))


def _equals_reference(case) -> None:
    """The torch run of ``case`` equals the reference's, field for field; a reference refusal is repeated."""
    net, x, schedule, extras, chunk = case
    kw = dict(record=True, count_ops=True) if extras else {}
    try:
        ref = reference(net, x, schedule, **kw)
    except (NotImplementedError, ValueError) as e:
        with pytest.raises(type(e)):
            simulate(net, x, schedule, chunk_steps=chunk, **kw)
        return
    assert_same_result(ref, simulate(net, x, schedule, chunk_steps=chunk, **kw))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_network_equals_reference(case):
    _equals_reference(case)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_readout_only_run_equals_the_full_run(case):
    """keep=Keep.READOUTS (every neuron model, both codings, graded units, mixed steps, any chunk): the
    full run's readouts, ops and max_abs_state, torch and reference alike."""
    net, x, schedule, ops, chunk = case
    try:
        full = reference(net, x, schedule, count_ops=ops)
    except (NotImplementedError, ValueError):
        return
    assert_same_readouts(full, simulate(net, x, schedule, count_ops=ops, chunk_steps=chunk, keep=Keep.READOUTS))
    assert_same_readouts(full, reference(net, x, schedule, count_ops=ops, keep=Keep.READOUTS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(1, 30))
def test_state_bits_check_equals_reference(case, bits):
    net, x, schedule, _, _ = case
    try:
        reference(net, x, schedule)
    except (NotImplementedError, ValueError):
        return
    try:
        reference(net, x, schedule, state_bits=bits)
    except Exception as e:   # the same error, the same message (first node beyond the width)
        with pytest.raises(type(e)) as got:
            simulate(net, x, schedule, state_bits=bits)
        assert str(got.value) == str(e)
        return
    simulate(net, x, schedule, state_bits=bits)


def test_strategy_reaches_every_feature():
    """The strategy really draws what the docstring claims (so the property tests cover them)."""
    from hypothesis import find

    from snnc.ir import Conv2d, DifferentialCoding, DualThreshold, GradedMaxPool, MultiThreshold, SumPool2d

    def has(pred):
        return find(st.composite(lambda d: random_network(d, st))(), pred, settings=settings(max_examples=2000))

    has(lambda c: isinstance(c[0].coding, DifferentialCoding))
    has(lambda c: any(isinstance(n, GradedMaxPool) for n in c[0].nodes))
    has(lambda c: any(isinstance(getattr(n, "neuron", None), DualThreshold) for n in c[0].nodes))
    has(lambda c: any(isinstance(getattr(n, "neuron", None), MultiThreshold) for n in c[0].nodes))
    has(lambda c: any(isinstance(p, Conv2d) and p.groups > 1 for p in c[0].projections))
    has(lambda c: any(isinstance(p, SumPool2d) for p in c[0].projections))
    has(lambda c: any(len(c[0].incoming(n.name)) > 1 for n in c[0].nodes))
    has(lambda c: bool(c[0].mixed_steps))
    has(lambda c: any(np.any(getattr(n, "v0", 0) < 0) for n in c[0].nodes))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_random_network_with_the_int8_gemm_forced_equals_reference(case):
    """Every projection the plan allows runs as an int8 GEMM (torch._int_mm, int32 sums), however shallow."""
    from snnc.backends.torch import linear

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(linear, "INT8_MIN_DEPTH", 0)
        mp.setattr(linear, "INT8_MIN_OUTPUTS", 0)
        _equals_reference(case)
