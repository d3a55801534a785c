"""The exactness plan's rules: arithmetic from proven bounds, source bounds per node kind and schedule."""

import numpy as np
import pytest

from snnc.backends.torch.plan import (Arith, ProjectionPlan, plan_network, projection_arith, spike_state_bound,
                                      state_arith)
from snnc.ir import (Dense, DifferentialCoding, DualThreshold, GradedMaxPool, Input, MultiThreshold, Network, RateCoding,
                     Population, Readout, SumPool2d)


def test_arithmetic_thresholds():
    assert projection_arith(2**24 - 1) is Arith.FLOAT32 and projection_arith(2**24) is Arith.FLOAT64
    assert projection_arith(2**53 - 1) is Arith.FLOAT64 and projection_arith(2**53) is Arith.INT64
    assert state_arith(2**24 - 1) is Arith.FLOAT32 and state_arith(2**24) is Arith.INT32
    assert state_arith(2**31 - 1) is Arith.INT32 and state_arith(2**31) is Arith.INT64
    with pytest.raises(ValueError, match="does not follow"):
        ProjectionPlan("p", 1, 2**30, 0, Arith.FLOAT32)


def _chain(neuron, coding=None, graded=False, T=4):
    x = Input("x", (1, 4, 4), qmin=-3, qmax=200)
    p = Population("p", (1, 4, 4), neuron=neuron, threshold=8, v0=-5, bias=0 if coding else 2)
    nodes, projs = [x, p], [SumPool2d("x->p", "x", "p", 3, 1, (1, 4, 4), (1, 4, 4), kernel=(1, 1), stride=(1, 1))]
    src = "p"
    if graded:
        g = GradedMaxPool("g", (1, 2, 2), in_shape=(1, 4, 4), max_message=getattr(neuron, "unit_divisor", 1))
        nodes.append(g)
        projs.append(SumPool2d("p->g", "p", "g", 1, 0, (1, 4, 4), (1, 2, 2)))
        src = "g"
    shape = nodes[-1].shape
    nodes.append(Readout("r", (2,)))
    projs.append(Dense(f"{src}->r", src, "r", np.full((2, int(np.prod(shape))), 5), 2, shape, (2,)))
    return Network(nodes, projs, T, coding=coding or RateCoding())


def test_source_bounds_per_kind_and_schedule():
    net = _chain(DualThreshold())
    pipe, lay = plan_network(net, "pipelined"), plan_network(net, "layerwise")
    assert pipe.projections["x->p"].source_max == 200 and lay.projections["x->p"].source_max == 4 * 200
    assert pipe.projections["x->p"].bound == 3 * 200 and pipe.projections["x->p"].current_bound == 3 * 200 * 2
    assert pipe.projections["p->r"].source_max == 1 and lay.projections["p->r"].source_max == 4
    assert pipe.projections["p->r"].bound == 5 * 16
    # |v| <= max(|V0|, Theta) + T * max|I + B|, layerwise with V0, Theta, B times T
    assert pipe.states["p"].bound == spike_state_bound(net.node("p"), 4, 1, 1200 + 2) == 8 + 4 * 1202
    assert lay.states["p"].bound == 4 * 8 + 4 * (4 * 1200 + 4 * 2)
    mt = _chain(MultiThreshold(n=3), graded=True)
    assert plan_network(mt, "pipelined").projections["g->r"].source_max == 4          # 2^(n-1) through the unit
    diff = _chain(MultiThreshold(n=3), coding=DifferentialCoding(frac_bits=5), graded=True)
    assert plan_network(diff, "pipelined").projections["g->r"].source_max == 4 * 32    # b * 2^F
    assert plan_network(net, "pipelined", {"x": 1000}).projections["x->p"].source_max == 1000   # quantized data
