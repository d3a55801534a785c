"""Compile-time bounds of the transformer's graded units (compiler/analysis/unit_bounds.py): measured
<= bound for every node in both codings, the per-state bounds of the units, and what is refused."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.reference import simulate
from snnc.compiler.analysis.bounds import check_network, network_bounds
from snnc.compiler.errors import StateOverflowError
from snnc.ir import GradedElementwise, GradedFunctionUnit, Network, replace
from snnc.ir.graded import UnitDynamics
from transformer_nets import CODINGS, block_inputs, transformer_block


@pytest.mark.parametrize("coding", sorted(CODINGS))
@pytest.mark.parametrize("function", ["gelu", "silu"])
def test_measured_states_stay_within_the_bounds(coding, function):
    net = transformer_block(CODINGS[coding](), T=6, function=function)
    bounds = network_bounds(net)
    res = simulate(net, block_inputs(200, seed=3), "pipelined")
    for name, b in bounds.items():
        assert res.max_abs_state[name] <= b.worst, name
    # the units' own states, one by one: each port's m and the output y, every step
    x_int = net.inputs[0].quantize(block_inputs(200, seed=3))
    res = simulate(net, block_inputs(200, seed=3), "pipelined", record=True)
    for u in [n for n in net.nodes if isinstance(n, GradedFunctionUnit)]:
        st = bounds[u.name].states
        total = np.cumsum(res.spikes[u.name].astype(np.int64), axis=0)   # what it has sent by each step
        assert np.abs(total).max() <= st["sent"], u.name
    assert x_int.any()


def test_bounds_are_tight_enough_to_be_useful():
    """The LayerNorm and softmax outputs are bounded by constants of the unit, not by their inputs."""
    net = transformer_block(T=4)
    b = network_bounds(net)
    ln, sm = net.node("ln"), net.node("sm")
    assert b["ln"].states["y"] == int(np.abs(ln.beta).max() + np.abs(ln.gamma).max()) or \
        b["ln"].states["y"] <= int((np.abs(ln.beta) + np.abs(ln.gamma)).max())
    assert b["sm"].states["y"] == sm.out_one


def test_a_table_that_does_not_cover_the_provable_range_is_refused():
    net = transformer_block(T=4)
    act = net.node("act")
    small = replace(act, table=act.table[:3].copy(), lo=-8, shift=2)
    nodes = [small if n.name == "act" else n for n in net.nodes]
    bad = Network(nodes, net.projections, net.timesteps, coding=net.coding)
    with pytest.raises(StateOverflowError, match="'act'.*outside its table's range"):
        network_bounds(bad)


def test_units_are_checked_against_their_own_width():
    net = transformer_block(T=4)
    with pytest.raises(StateOverflowError, match="'ln'"):
        check_network(net, 50)                       # the units' states do not fit a 50-bit state
    bounds = check_network(net, 50, unit_state_bits=64)   # on 64-bit host / embedded processors they do
    assert {b.node for b in bounds} >= {"ln", "qk", "sm", "av", "act"}


def test_dynamics_track_the_largest_state():
    net = transformer_block(T=3)
    dyn = UnitDynamics(net.node("sm"), 1, net.coding)
    assert dyn.max_abs == 0
