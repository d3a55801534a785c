"""The transformer graded units in the reference simulator: every unit's messages, recomputed from its
sources' recorded messages with the IR's equations (docs/ir.md, "Graded units"), in both codings."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.base import UnsupportedNetworkError
from snnc.backends.reference import run_integer_ann, simulate
from snnc.ir import DifferentialCoding, GradedFunctionUnit, Input, Schedule, apply_projection
from snnc.ir.graded import reciprocal, round_shift, unit_output
from transformer_nets import CODINGS, block_inputs, transformer_block


def _messages(net, res, x_int, name, t):
    """What node ``name`` sent at step t (1-based): the input's x_int (every step in rate coding, at step
    1 only in differential coding), else its recorded train."""
    node = net.node(name)
    if isinstance(node, Input):
        diff = isinstance(net.coding, DifferentialCoding)
        return x_int if (t == 1 or not diff) else np.zeros_like(x_int)
    return res.spikes[name][t - 1].astype(np.int64)


@pytest.mark.parametrize("coding", sorted(CODINGS))
@pytest.mark.parametrize("function", ["gelu", "silu"])
def test_every_unit_sends_the_increments_of_its_function(coding, function):
    net = transformer_block(CODINGS[coding](), T=5, function=function)
    x = block_inputs()
    res = simulate(net, x, Schedule.PIPELINED, record=True)
    x_int = net.inputs[0].quantize(x)
    diff = isinstance(net.coding, DifferentialCoding)
    units = [n for n in net.nodes if isinstance(n, GradedFunctionUnit)]
    assert len(units) == 5
    for u in units:
        G = u.frac_bits
        m = {p: np.zeros((len(x),) + u.port_shape(p), np.int64) for p in u.PORTS}
        sent = 0
        for t in range(1, net.timesteps + 1):
            for p in net.incoming(u.name):
                src = net.node(p.source)
                cur = apply_projection(p, _messages(net, res, x_int, p.source, t))
                spiking = not isinstance(src, GradedFunctionUnit)
                m[u.port_of(p.name)] += cur * reciprocal(t, G) if (diff and spiking) else cur
            off = {p: np.broadcast_to(u.port_offset(p).reshape(
                (-1,) + (1,) * (len(u.port_shape(p)) - 1)) if u.port_offset(p).ndim == 1 and len(u.port_shape(p)) > 1
                else u.port_offset(p), u.port_shape(p)) for p in u.PORTS}
            if diff:
                want = unit_output(u, {p: m[p] + off[p] for p in u.PORTS})
            else:
                mean = {p: m[p] * reciprocal(t, G) + off[p] for p in u.PORTS}
                want = round_shift(t * unit_output(u, mean), G)
            sent = sent + res.spikes[u.name][t - 1]
            np.testing.assert_array_equal(sent, want, err_msg=f"{u.name} at step {t}")
        np.testing.assert_array_equal(res.counts[u.name], sent)
        if diff:
            np.testing.assert_array_equal(res.encoded[u.name], sent)
    assert np.any(res.readout["ro"] != 0)


@pytest.mark.parametrize("coding", sorted(CODINGS))
def test_units_count_their_messages_and_updates(coding):
    net = transformer_block(CODINGS[coding](), T=3)
    x = block_inputs(4)
    res = simulate(net, x, Schedule.PIPELINED, record=True, count_ops=True)
    for name in ("ln", "qk", "sm", "av", "act"):
        ops = res.ops[name]
        events = sum(int(np.count_nonzero(res.spikes[name][t])) for t in range(3))
        assert int(ops.events.sum()) == events
        u = net.node(name)
        assert ops.updates == 3 * 4 * sum(int(np.prod(u.port_shape(p))) for p in u.PORTS)
    assert res.max_abs_state["qk"] > 0


def test_layerwise_and_the_integer_ann_refuse_transformer_units():
    net = transformer_block(CODINGS["rate"]())
    with pytest.raises(UnsupportedNetworkError, match="pipelined"):
        simulate(net, block_inputs(), Schedule.LAYERWISE)
    with pytest.raises(UnsupportedNetworkError, match="'ln'.*float model"):
        run_integer_ann(net, block_inputs())
