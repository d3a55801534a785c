"""Dual-threshold populations on Lava (docs/lava.md, "Dual-threshold neurons").

Signed spikes (-1/0/1) must reach Lava's Dense / Sparse / Conv by value (a graded 2-bit message in
the pipelined schedule), and the ``DualThresholdNeuron`` process must fire exactly like the reference
simulator's ``neurons.DualFiring`` in both schedules.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL, assert_same_run

from snnc.backends.base import BackendUnavailableError

pytestmark = pytest.mark.lava

try:
    from snnc.backends.lava.compat import ensure_lava

    ensure_lava()
except BackendUnavailableError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"lava-nc not available: {e}", allow_module_level=True)

from lava.proc.conv.process import Conv  # noqa: E402
from lava.proc.dense.process import Dense as LavaDense  # noqa: E402
from lava.proc.sparse.process import Sparse as LavaSparse  # noqa: E402

from snnc.backends.lava import emit  # noqa: E402
from snnc.backends.lava.backend import LavaBackend, readback, run_build  # noqa: E402
from snnc.backends.lava.emit import GRADED_BITS, SIGNED_SPIKE_BITS, build  # noqa: E402
from snnc.backends.lava.processes import DualThresholdNeuron  # noqa: E402
from snnc.ir import Schedule  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import apply_projection  # noqa: E402
from snnc.ir import quantize_inputs  # noqa: E402
from snnc.compiler.api import compile_model  # noqa: E402
from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.compiler.tools.verify import verify_against_backend  # noqa: E402
from snnc.ir import (Conv2d, Dense, DualThreshold, IFSoftReset, Input, Network, NeuronModel,  # noqa: E402
                     Population, Readout, SumPool2d)

X4 = np.load(DIGITS_DATA)["x"][:4]


# --------------------------------------------------------------------------------------------
# the shipped digits model, compiled with --neuron dual-threshold
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lava():
    return LavaBackend()


@pytest.mark.parametrize("schedule", list(Schedule))
@pytest.mark.parametrize("timesteps", [None, 2], ids=["T=L=4", "T=2"])
def test_digits_dual_identical_on_lava(lava, timesteps, schedule):
    net, _ = compile_model(DIGITS_MODEL, CompileConfig(neuron="dual-threshold", timesteps=timesteps))
    assert all(isinstance(p.neuron, DualThreshold) for p in net.populations)
    T = net.timesteps
    assert T == (timesteps or 4)
    ref = simulate(net, X4, schedule, record=True)
    negatives = sum(int((s < 0).sum()) for s in ref.spikes.values())
    if schedule is Schedule.PIPELINED:  # where the negative spikes happen on this model
        assert negatives > 0
        assert (ref.spikes["conv2"] < 0).any()   # ... and travel through conv2 -> fc1 (Dense)
    rep = verify_against_backend(net, X4, lava, schedule)
    assert rep.exact and rep.mismatches == 0, rep.first_mismatch
    assert rep.spikes_compared == T * 4 * (512 + 1024 + 64)


# --------------------------------------------------------------------------------------------
# a small hand-built network in which every kind of projection carries negative spikes
# --------------------------------------------------------------------------------------------


def signed_net(T: int, seed: int = 1) -> Network:
    """x(2,6,6) -Conv-> a -Conv(groups 2)-> b -SumPool-> p -Dense(~15%: Sparse)-> c -Dense-> r.

    Every population is dual-threshold (neg_divisor 1000, 3, 1, 2); V0 above Theta and negative
    biases make neurons fire early and then fall below Theta_neg, so each of a, b, p, c sends
    negative spikes (pipelined) into a Conv, a SumPool (Conv), a Sparse and a Dense respectively.
    """
    rng = np.random.default_rng(seed)
    projs = [
        Conv2d("k1", "x", "a", rng.integers(-128, 128, (4, 2, 3, 3)), exponent=1, in_shape=(2, 6, 6),
               out_shape=(4, 6, 6), padding=(1, 1, 1, 1)),
        Conv2d("k2", "a", "b", rng.integers(-128, 128, (4, 2, 3, 3)), exponent=0, in_shape=(4, 6, 6),
               out_shape=(4, 6, 6), padding=(1, 1, 1, 1), groups=2),
        SumPool2d("pool", "b", "p", np.array(3), exponent=1, in_shape=(4, 6, 6), out_shape=(4, 3, 3)),
        Dense("fc", "p", "c", rng.integers(-128, 128, (10, 36)) * (rng.random((10, 36)) < 0.15), exponent=2,
              in_shape=(4, 3, 3), out_shape=(10,)),
        Dense("out", "c", "r", rng.integers(-128, 128, (3, 10)), exponent=3, in_shape=(10,), out_shape=(3,)),
    ]
    shapes = {"a": (4, 6, 6), "b": (4, 6, 6), "p": (4, 3, 3), "c": (10,)}
    divisors = {"a": 1000, "b": 3, "p": 1, "c": 2}
    nodes, vals = [Input("x", (2, 6, 6), qmin=0, qmax=7)], {"x": rng.integers(0, 8, (8, 2, 6, 6))}
    for name, shp in shapes.items():
        p = next(q for q in projs if q.target == name)
        cur = apply_projection(p, vals[p.source])
        c = shp[0]
        thr = np.maximum(1, ((np.abs(cur).reshape(8, c, -1).mean(axis=(0, 2)) + 1)
                             * rng.uniform(0.5, 1.0, c)).astype(np.int64))
        v0 = (thr * rng.uniform(0.5, 2.0, c)).astype(np.int64)
        bias = (thr * rng.uniform(-0.4 if name in "ab" else -0.7, 0.1, c)).astype(np.int64)
        nodes.append(Population(name, shp, threshold=thr, v0=v0, bias=bias, levels=T,
                                neuron=DualThreshold(neg_divisor=divisors[name])))
        vals[name] = rng.choice([-1, 0, 1], (8,) + shp)
    nodes.append(Readout("r", (3,), v0=rng.integers(-20, 20, 3), bias=1))
    return Network(nodes, projs, T)


def _x(net, seed=2, batch=3):
    inp = net.inputs[0]
    return np.random.default_rng(seed).integers(0, inp.qmax + 1, (batch,) + inp.shape) * inp.scale


def _differs(a, b) -> bool:
    return any(not np.array_equal(a.spikes[k], b.spikes[k]) for k in a.spikes) or any(
        not np.array_equal(a.readout[k], b.readout[k]) for k in a.readout)


@pytest.mark.parametrize("schedule", ["pipelined", "layerwise"])
def test_signed_net_matches_reference(schedule):
    net = signed_net(4)
    x = _x(net)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, schedule, record=True)
    lb = build(net, x_int, schedule, quantized=True)
    procs = lb.processes
    assert all(type(procs[n]) is DualThresholdNeuron for n in "abpc")
    assert type(procs["k2"]) is Conv and type(procs["pool"]) is Conv
    assert type(procs["fc"]) is LavaSparse and type(procs["out"]) is LavaDense   # automatic choice
    signed_bits = SIGNED_SPIKE_BITS if schedule == "pipelined" else GRADED_BITS
    assert int(procs["k1"].num_message_bits.init) == GRADED_BITS                # the input is graded
    for name in ("k2", "pool", "fc", "out"):
        assert int(np.asarray(procs[name].num_message_bits.init)) == signed_bits, name
    if schedule == "pipelined":
        for name in "abpc":   # every signed source actually sends negative spikes
            assert (ref.spikes[name] < 0).any(), name
    run_build(lb)
    got = readback(net, lb, x_int, record=True)
    assert {k: v.dtype for k, v in got.spikes.items()} == {k: np.dtype(np.int8) for k in "abpc"}
    assert_same_run(ref, got)
    assert got.phase == ref.phase
    assert all((got.counts[n] >= 0).all() and (got.counts[n] <= 4).all() for n in "abpc")  # net counts


def test_signed_net_forced_sparse_and_floating_pt():
    net = signed_net(3)
    x = _x(net, seed=5)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, "pipelined", record=True)
    assert (ref.spikes["c"] < 0).any() and (ref.spikes["p"] < 0).any()
    for tag, sparse, cls in (("fixed_pt", True, LavaSparse), ("floating_pt", False, LavaDense)):
        lb = build(net, x_int, "pipelined", quantized=True, tag=tag, sparse=sparse)
        assert type(lb.processes["fc"]) is cls and type(lb.processes["out"]) is cls
        run_build(lb, tag)
        assert_same_run(ref, readback(net, lb, x_int, record=True))


def test_negative_threshold_is_scaled_per_schedule():
    net = signed_net(4)
    x_int = quantize_inputs(net, _x(net, batch=1))
    b = net.node("b")
    neg = b.neuron.negative_threshold(b.threshold)          # per channel, IR layout (C,)
    assert (neg <= -1).all()
    for schedule, scale in (("pipelined", 1), ("layerwise", 4)):
        proc = build(net, x_int, schedule, quantized=True).processes["b"]
        got = np.asarray(proc.neg.init)                     # Lava layout (W, H, C)
        np.testing.assert_array_equal(got, np.broadcast_to(scale * neg, got.shape))
        np.testing.assert_array_equal(np.asarray(proc.thr.init), np.broadcast_to(scale * b.threshold, got.shape))


# --------------------------------------------------------------------------------------------
# the comparison can fail
# --------------------------------------------------------------------------------------------


def test_corrupted_negative_threshold_is_detected():
    net = signed_net(4)
    x = _x(net)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, "pipelined", record=True)
    assert (ref.spikes["b"] < 0).any()
    lb = build(net, x_int, "pipelined", quantized=True)
    var = lb.processes["b"].neg
    var.init = np.full_like(np.asarray(var.init), -(2**20))     # b can no longer fire negatively
    run_build(lb)
    got = readback(net, lb, x_int, record=True)
    assert not (got.spikes["b"] < 0).any()
    assert _differs(ref, got)
    # ... and Lava computed exactly the network whose b never fires negatively: b as plain IF
    b_if = dataclasses.replace(net.node("b"), neuron=IFSoftReset())
    if_net = Network([b_if if n.name == "b" else n for n in net.nodes], net.projections, net.timesteps)
    assert_same_run(simulate(if_net, x, "pipelined", record=True), got)


def test_binary_messages_for_signed_spikes_are_detected(monkeypatch):
    """With num_message_bits = 0 Lava reads a -1 spike as +1 (s_in.astype(bool)): must be caught."""
    net = signed_net(4)
    x = _x(net)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, "pipelined", record=True)
    wrong = dataclasses.replace(emit.NEURON_EMITTERS[DualThreshold], spike_bits=0)
    monkeypatch.setitem(emit.NEURON_EMITTERS, DualThreshold, wrong)
    lb = build(net, x_int, "pipelined", quantized=True)
    assert int(np.asarray(lb.processes["k2"].num_message_bits.init)) == 0
    run_build(lb)
    assert _differs(ref, readback(net, lb, x_int, record=True))


def test_unknown_neuron_model_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Leaky(NeuronModel):
        kind = "leaky"

    net = signed_net(2)
    bad = Network([dataclasses.replace(n, neuron=Leaky()) if n.name == "p" else n for n in net.nodes],
                  net.projections, net.timesteps)
    with pytest.raises(NotImplementedError, match=r"population 'p'.*Leaky.*DualThreshold.*IFSoftReset"):
        build(bad, quantize_inputs(net, _x(net, batch=1)), "pipelined", quantized=True)
