"""The lowering's extension point: a nonlinear layer kind is one function and one registry entry
(``Front.layers``, keyed by the float graph's op type); the one driver needs no edit."""

from dataclasses import dataclass, replace

import numpy as np
import pytest

from snnc.compiler.errors import ConversionError
from snnc.compiler.frontend.float_graph import (FGraph, Gelu, LayerNorm, Linear, MatMul, MaxPool, Op, QuantAct, Relu,
                                               Silu, Softmax)
from snnc.compiler.integerize import IntegerizeContext, integerize_network
from snnc.compiler.lowering import (FRONTS, LoweringOptions, MultiThresholdPopulation, QuantizedPopulation, Refusal,
                                    lower_graph, registry)
from snnc.compiler.lowering.relu import lower_relu
from snnc.compiler.metadata import Conversion
from snnc.compiler.targets import load_target
from snnc.ir import MultiThreshold, RateCoding


def test_every_front_registers_its_kinds_by_op_type():
    assert set(FRONTS) == set(Conversion)
    assert set(FRONTS[Conversion.QUANTIZED].layers) == {QuantAct, MaxPool}
    assert set(FRONTS[Conversion.TRAINING_FREE].layers) == {Relu, MaxPool, LayerNorm, Gelu, Silu, Softmax, MatMul}
    assert FRONTS[Conversion.MIXED_LEVELS] is FRONTS[Conversion.QUANTIZED]
    for front in FRONTS.values():
        assert all(isinstance(k, type) and issubclass(k, Op) for k in front.layers)


@dataclass
class LeakyRelu(Op):
    """A new nonlinear op, as a transformer front would add LayerNorm or GeLU."""

    slope: float = 0.0

    def __call__(self, x):
        return np.where(x > 0, x, self.slope * x)


def _graph():
    """fc1 -> LeakyRelu -> fc2 -> Relu -> fc3 (a plain ReLU net with one layer of the new kind)."""
    rng = np.random.default_rng(0)
    return FGraph("x", (4,), [Linear("fc1", "x", rng.normal(0, 1, (5, 4)), np.zeros(5)), LeakyRelu("act", "fc1"),
                              Linear("fc2", "act", rng.normal(0, 1, (6, 5)), np.zeros(6)), Relu("relu", "fc2"),
                              Linear("fc3", "relu", rng.normal(0, 1, (3, 6)), np.zeros(3))], "fc3")


def _options():
    return LoweringOptions(input_bits=8, timesteps=4, neuron=MultiThreshold(n=2),
                           relu_thresholds={"act": 1.0, "relu": 2.0})


def test_a_new_nonlinear_layer_kind_is_one_registry_entry(monkeypatch):
    seen = []

    def lower_leaky(op: LeakyRelu, state):
        seen.append(op.name)
        if op.slope != 0.0:
            state.refuse(op.name, Refusal(f"LeakyRelu '{op.name}': slope {op.slope} is not a ReLU"))
            return
        lower_relu(op, state)   # slope 0 is a ReLU: the multi-threshold population

    tf = FRONTS[Conversion.TRAINING_FREE]
    with pytest.raises(ConversionError, match="node 'act' \\(LeakyRelu\\) cannot be lowered here"):
        lower_graph(_graph(), Conversion.TRAINING_FREE, _options())   # not registered: refused by name
    monkeypatch.setitem(registry.FRONTS, Conversion.TRAINING_FREE, replace(tf, layers={**tf.layers, LeakyRelu: lower_leaky}))
    lowered = lower_graph(_graph(), Conversion.TRAINING_FREE, _options())
    assert seen == ["act"] and [type(i) for i in lowered.items] == [MultiThresholdPopulation] * 2
    assert lowered.items[0].origin.activation == "act" and float(lowered.items[0].theta) == 1.0
    net = integerize_network(lowered, IntegerizeContext(load_target("loihi").numeric, RateCoding(), 4)).network
    assert [n.name for n in net.nodes] == ["input", "fc1", "fc2", "readout"]
    g = _graph()
    g.ops[1].slope = 0.1
    with pytest.raises(ConversionError, match="LeakyRelu 'act': slope 0.1 is not a ReLU"):
        lower_graph(g, Conversion.TRAINING_FREE, _options())


def test_an_unregistered_op_between_layers_is_refused_by_name():
    g = FGraph("x", (4,), [Linear("fc1", "x", np.eye(4), np.zeros(4)), QuantAct("q", "fc1", levels=4, gamma=0.25),
                           LeakyRelu("leak", "q"), Linear("fc2", "leak", np.eye(4), np.zeros(4))], "fc2")
    lowered_ok = lower_graph(FGraph("x", (4,), g.ops[:2] + [Linear("fc2", "q", np.eye(4), np.zeros(4))], "fc2"),
                             Conversion.QUANTIZED, LoweringOptions(input_bits=8))
    assert [type(i) for i in lowered_ok.items] == [QuantizedPopulation]
    with pytest.raises(ConversionError, match="node 'leak' \\(LeakyRelu\\) cannot be lowered here"):
        lower_graph(g, Conversion.QUANTIZED, LoweringOptions(input_bits=8))
