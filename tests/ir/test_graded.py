"""The graded max-pool unit of the IR (docs/ir.md, "Graded max-pool unit"): validation on
construction, the wiring check ``graded_edge``, and the generic bundle round trip."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.ir import (NODE_TYPES, Conv2d, Dense, DifferentialCoding, GradedMaxPool, Input, IRValidationError,
                     MultiThreshold, Network, Population, RateCoding, Readout, SumPool2d, graded_edge, load, save)


def graded_net(coding=None, T=4, n=3, kernel=(2, 2), stride=(2, 2), padding=(0, 0, 0, 0), out_hw=(2, 2),
               edge_weight=1, seed=0) -> Network:
    """input (2, 4, 4) -conv-> MT population -edge-> GradedMaxPool -dense-> readout."""
    rng = np.random.default_rng(seed)
    inp = Input("x", (2, 4, 4), scale=1 / 16, qmin=-16, qmax=16)
    pop = Population("p", (2, 4, 4), neuron=MultiThreshold(n, True), threshold=np.array([8, 16]), levels=4)
    conv = Conv2d("x->p", "x", "p", rng.integers(-3, 4, (2, 2, 3, 3)), 0, (2, 4, 4), (2, 4, 4),
                  padding=(1, 1, 1, 1))
    shape = (2,) + tuple(out_hw)
    unit = GradedMaxPool("pool", shape, in_shape=(2, 4, 4), kernel=kernel, stride=stride, padding=padding,
                         max_message=2 ** (n - 1))
    edge = SumPool2d("p->pool", "p", "pool", np.array(edge_weight), 0, (2, 4, 4), shape, kernel=kernel,
                     stride=stride, padding=padding)
    ro = Readout("out", (3,))
    dense = Dense("pool->out", "pool", "out", rng.integers(-3, 4, (3, int(np.prod(shape)))), 0, shape, (3,))
    return Network([inp, pop, unit, ro], [conv, edge, dense], T, coding=coding or RateCoding())


def test_valid_unit_and_registration():
    u = GradedMaxPool("u", (3, 3, 3), in_shape=(3, 5, 5), kernel=(3, 3), stride=(2, 2), padding=(1, 1, 1, 1),
                      max_message=4)
    assert u.shape == (3, 3, 3) and u.kernel == (3, 3) and u.padding == (1, 1, 1, 1) and u.max_message == 4
    assert NODE_TYPES["GradedMaxPool"] is GradedMaxPool
    assert u.edge_geometry()["weight"] == 1 and u.edge_geometry()["exponent"] == 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(shape=(2, 3, 3)), "pool geometry gives"),
    (dict(in_shape=(2, 16)), r"\(C, H, W\)"),
    (dict(kernel=(0, 2)), "kernel"),
    (dict(stride=(2,)), "stride"),
    (dict(padding=(1, 1)), "padding"),
    (dict(padding=(-1, 0, 0, 0)), "padding"),
    (dict(kernel=(1, 1), stride=(1, 1), padding=(1, 0, 0, 0), shape=(2, 5, 4)), "entirely in the padding"),
    (dict(max_message=0), "max_message"),
    (dict(max_message=1.5), "max_message"),
    (dict(max_message=True), "max_message"),
])
def test_invalid_units_are_named(kwargs, match):
    args = dict(name="bad", shape=(2, 2, 2), in_shape=(2, 4, 4), kernel=(2, 2), stride=(2, 2),
                padding=(0, 0, 0, 0), max_message=1)
    args.update(kwargs)
    with pytest.raises(IRValidationError, match=match) as e:
        GradedMaxPool(**args)
    assert "bad" in str(e.value)


def test_padding_windows_with_one_real_element_are_fine():
    # 3x3 windows, stride 2, pad 1 on a 4x4 map: every window holds real elements
    u = GradedMaxPool("u", (1, 2, 2), in_shape=(1, 4, 4), kernel=(3, 3), stride=(2, 2), padding=(1, 1, 0, 0))
    assert u.shape == (1, 2, 2)


@pytest.mark.parametrize("coding", [RateCoding(), DifferentialCoding(10)])
def test_bundle_round_trip(tmp_path, coding):
    net = graded_net(coding, kernel=(3, 3), stride=(2, 2), padding=(1, 1, 0, 0), out_hw=(2, 2))
    path = save(net, tmp_path / "g.snnc")
    back = load(path)
    u, v = net.node("pool"), back.node("pool")
    assert type(v) is GradedMaxPool and v == u
    assert back.coding == net.coding and back.order == net.order
    assert graded_edge(back, v).name == "p->pool"


def test_graded_edge_checks_the_wiring():
    net = graded_net()
    assert graded_edge(net, net.node("pool")).source == "p"
    with pytest.raises(IRValidationError, match="must be a SumPool2d with"):
        bad = graded_net(edge_weight=2)
        graded_edge(bad, bad.node("pool"))
    # a second projection into the unit
    n = graded_net()
    extra = SumPool2d("x->pool", "x", "pool", np.array(1), 0, (2, 4, 4), (2, 2, 2))
    two = Network(n.nodes, n.projections + [extra], n.timesteps)
    with pytest.raises(IRValidationError, match="exactly one source"):
        graded_edge(two, two.node("pool"))
    # the input as its source
    only_input = Network([n.node("x"), n.node("pool"), n.node("out")],
                         [extra, n.projections[2]], n.timesteps)
    with pytest.raises(IRValidationError, match=r"'x' \(Input\) is not a population"):
        graded_edge(only_input, only_input.node("pool"))
