"""Multi-threshold populations in rate and differential coding on Lava (docs/lava.md,
"Multi-threshold neurons and differential coding").

Hand-built IR networks whose multi-threshold populations send graded signed messages (0, +-1, ...,
+-2^(n-1)) through Dense, Sparse, Conv and SumPool projections must run on Lava exactly like the
reference simulator (every population at every step, counts and readouts); corruptions are caught
and the layerwise schedule is refused.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snnc_testutil import assert_same_run

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

from snnc.backends import lava as lava_pkg  # noqa: E402
from snnc.backends.lava import emit  # noqa: E402
from snnc.backends.lava.backend import LavaBackend, readback, run_build  # noqa: E402
from snnc.backends.lava.emit import GRADED_BITS  # noqa: E402
from snnc.backends.lava.processes import (DifferentialAccumulator, Int64Probe, MTDifferentialNeuron,  # noqa: E402
                                          MTRateNeuron)
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import apply_projection  # noqa: E402
from snnc.ir import quantize_inputs  # noqa: E402
from snnc.compiler.tools.verify import verify_against_backend  # noqa: E402
from snnc.compiler.tools.runner import reference_runner
from snnc.ir import (Conv2d, Dense, DifferentialCoding, Input, MultiThreshold, Network, Population,  # noqa: E402
                     RateCoding, Readout, SumPool2d)

DIFF = DifferentialCoding(frac_bits=10)


class Recording:
    """A backend that remembers its last result, so a verified run can be inspected too."""

    def __init__(self, tag: str = "fixed_pt"):
        self.inner = LavaBackend(run_tag=tag)
        self.name = self.inner.name
        self.last = None

    def report_extra(self):
        return self.inner.report_extra()

    def run(self, *args, **kw):
        self.last = self.inner.run(*args, **kw)
        return self.last


@pytest.fixture(scope="module")
def lava():
    return Recording()


def _verify(net, x, backend):
    rep = verify_against_backend(net, x, backend, "pipelined")
    assert rep.exact and rep.mismatches == 0, rep.first_mismatch
    ref = simulate(net, x, "pipelined", record=True)
    assert_same_run(ref, backend.last)       # also the counts (inputs: x_int once in differential coding)
    return ref, backend.last


def _graded(res, names, n):
    """The run sends several magnitudes and negative messages; nothing beyond 2^(n-1)."""
    msgs = np.concatenate([res.spikes[k].ravel() for k in names])
    assert np.abs(msgs).max() <= 2 ** (n - 1)
    assert (msgs < 0).any()
    mags = set(np.unique(np.abs(msgs[msgs != 0])).tolist())
    assert len(mags) >= min(n, 3), mags
    return mags


# --------------------------------------------------------------------------------------------
# a 2-layer Dense network (tests/backends/reference/test_multi_threshold.py's shape)
# --------------------------------------------------------------------------------------------


def mlp(coding, T, n, relu, seed=0, readout_v0=None):
    rng = np.random.default_rng(seed)
    u = 2 ** (n - 1)
    diff = isinstance(coding, DifferentialCoding)
    w1, w2 = rng.integers(-6, 7, (6, 3)), rng.integers(-3, 4, (4, 6))
    inp = Input("x", (3,), scale=1.0, qmin=-8, qmax=8)
    h = Population("h", (6,), neuron=MultiThreshold(n, relu), threshold=u * rng.integers(1, 5, 6),
                   v0=rng.integers(-4, 5, 6), bias=0 if diff else rng.integers(-2, 3, 6), levels=T)
    o = Population("o", (4,), neuron=MultiThreshold(n, relu), threshold=u * rng.integers(1, 4, 4),
                   v0=rng.integers(-4, 5, 4), bias=0 if diff else rng.integers(-1, 2, 4), levels=T)
    r0 = rng.integers(-5, 6, 3) if readout_v0 is None else readout_v0
    r = Readout("r", (3,), v0=r0, bias=0 if diff else rng.integers(-2, 3, 3))
    return Network([inp, h, o, r],
                   [Dense("x->h", "x", "h", w1, 0, (3,), (6,)), Dense("h->o", "h", "o", w2, 1, (6,), (4,)),
                    Dense("o->r", "o", "r", rng.integers(-9, 10, (3, 4)), 2, (4,), (3,))], T, coding=coding)


def _x(net, seed=1, batch=3):
    inp = net.inputs[0]
    return np.random.default_rng(seed).integers(inp.qmin, inp.qmax + 1, (batch,) + inp.shape) * inp.scale


@pytest.mark.parametrize("coding,T,n,relu", [
    (RateCoding(), 3, 1, False), (RateCoding(), 6, 2, True), (RateCoding(), 6, 4, False),
    (DIFF, 6, 1, False), (DIFF, 3, 2, True), (DIFF, 6, 4, False), (DIFF, 3, 4, True),
], ids=lambda v: v.kind if hasattr(v, "kind") else str(v))
def test_mlp_identical(lava, coding, T, n, relu):
    net = mlp(coding, T, n, relu)
    ref, got = _verify(net, _x(net), lava)
    assert {k: v.dtype for k, v in got.spikes.items()} == {"h": np.dtype(np.int8), "o": np.dtype(np.int8)}
    if not relu:       # identity neurons follow a signed input: negative messages of several sizes
        _graded(got, ("h", "o"), n)
    else:              # ReLU: a neuron still sends negative values to correct earlier overshoot
        assert np.abs(np.concatenate([got.spikes[k].ravel() for k in "ho"])).max() <= 2 ** (n - 1)


def test_processes_bits_and_differential_input():
    """Process classes per coding, n + 1 message bits on projections from MT populations, the
    reciprocal table, R(0) = V0 * 2^F, and the differential input presented at step 1 only."""
    for coding, cls in ((RateCoding(), MTRateNeuron), (DIFF, MTDifferentialNeuron)):
        for n in (1, 2, 4):
            net = mlp(coding, 6, n, False)
            x_int = quantize_inputs(net, _x(net, batch=2))
            lb = emit.build(net, x_int, "pipelined", quantized=True)
            assert type(lb.processes["h"]) is cls and type(lb.processes["o"]) is cls
            assert int(lb.processes["x->h"].num_message_bits.init) == GRADED_BITS
            for p in ("h->o", "o->r"):
                assert int(np.asarray(lb.processes[p].num_message_bits.init)) == n + 1
            assert type(lb.probes["r"]) is Int64Probe
            data = np.asarray(lb.inputs["x"].data.init).reshape(3, 2, lb.period)   # (shape, B, period)
            steps = 1 if coding is DIFF else 6
            np.testing.assert_array_equal(data[..., :steps], np.broadcast_to(x_int["x"].T[..., None], (3, 2, steps)))
            assert not data[..., steps:].any()
    h = lb.processes["h"]
    np.testing.assert_array_equal(np.asarray(h.recip.init), [1024, 512, 341, 256, 205, 171])
    np.testing.assert_array_equal(np.asarray(h.v_init.init), 1024 * net.node("h").v0)
    assert type(lb.processes["r"]) is DifferentialAccumulator
    np.testing.assert_array_equal(np.asarray(lb.processes["r"].v_init.init), 1024 * net.node("r").v0)


def test_differential_readout_beyond_int32():
    """F = 24: the readout holds values times 2^24 (R0 = 300 -> ~5e9); the int64 probe keeps them."""
    net = mlp(DifferentialCoding(frac_bits=24), 3, 2, False, seed=3, readout_v0=np.array([300, -300, 7]))
    ref, got = _verify(net, _x(net, seed=4, batch=2), Recording())
    assert np.abs(ref.readout["r"]).max() > 2**31


# --------------------------------------------------------------------------------------------
# Conv, grouped Conv, SumPool, Sparse and Dense projections fed by MT populations
# --------------------------------------------------------------------------------------------


def conv_net(coding, T, n, relu=False, seed=1) -> Network:
    """x(2,6,6) -Conv-> a -Conv(groups 2)-> b -SumPool-> p -Dense(~15%: Sparse)-> c -Dense-> r."""
    rng = np.random.default_rng(seed)
    u = 2 ** (n - 1)
    diff = isinstance(coding, DifferentialCoding)
    projs = [
        Conv2d("k1", "x", "a", rng.integers(-128, 128, (4, 2, 3, 3)), exponent=0, in_shape=(2, 6, 6),
               out_shape=(4, 6, 6), padding=(1, 1, 1, 1)),
        Conv2d("k2", "a", "b", rng.integers(-128, 128, (4, 2, 3, 3)), exponent=1, in_shape=(4, 6, 6),
               out_shape=(4, 6, 6), padding=(1, 1, 1, 1), groups=2),
        SumPool2d("pool", "b", "p", np.array(3), exponent=1, in_shape=(4, 6, 6), out_shape=(4, 3, 3)),
        Dense("fc", "p", "c", rng.integers(-128, 128, (10, 36)) * (rng.random((10, 36)) < 0.15), exponent=2,
              in_shape=(4, 3, 3), out_shape=(10,)),
        Dense("out", "c", "r", rng.integers(-128, 128, (3, 10)), exponent=3, in_shape=(10,), out_shape=(3,)),
    ]
    shapes = {"a": (4, 6, 6), "b": (4, 6, 6), "p": (4, 3, 3), "c": (10,)}
    nodes, vals = [Input("x", (2, 6, 6), qmin=-7, qmax=7)], {"x": rng.integers(-7, 8, (8, 2, 6, 6))}
    for name, shp in shapes.items():
        p = next(q for q in projs if q.target == name)
        cur = apply_projection(p, vals[p.source])
        c = shp[0]
        mean = np.abs(cur).reshape(8, c, -1).mean(axis=(0, 2))
        thr = u * np.maximum(1, np.round(mean * rng.uniform(0.6, 1.2, c) / u)).astype(np.int64)
        v0 = (thr * rng.uniform(-0.5, 0.5, c)).astype(np.int64)
        bias = 0 if diff else (thr * rng.uniform(-0.2, 0.2, c)).astype(np.int64)
        nodes.append(Population(name, shp, threshold=thr, v0=v0, bias=bias, levels=T, neuron=MultiThreshold(n, relu)))
        vals[name] = rng.integers(-u, u + 1, (8,) + shp)
    nodes.append(Readout("r", (3,), v0=rng.integers(-20, 20, 3), bias=0 if diff else 1))
    return Network(nodes, projs, T, coding=coding)


@pytest.mark.parametrize("coding,T,n", [(RateCoding(), 6, 2), (DIFF, 3, 4), (DIFF, 6, 1)],
                         ids=["rate-T6-n2", "diff-T3-n4", "diff-T6-n1"])
def test_conv_net_identical(lava, coding, T, n):
    net = conv_net(coding, T, n)
    x = _x(net, seed=2, batch=2)
    lb = emit.build(net, quantize_inputs(net, x), "pipelined", quantized=True)
    procs = lb.processes
    assert type(procs["k2"]) is Conv and type(procs["pool"]) is Conv
    assert type(procs["fc"]) is LavaSparse and type(procs["out"]) is LavaDense
    for name in ("k2", "pool", "fc", "out"):
        assert int(np.asarray(procs[name].num_message_bits.init)) == n + 1, name
    ref, got = _verify(net, x, lava)
    mags = _graded(got, "abpc", n)
    for name in "abpc":     # every projection kind carries negative messages
        assert (got.spikes[name] < 0).any(), name
    if n == 4:
        assert {1, 2, 4, 8} <= mags


@pytest.mark.parametrize("coding", [RateCoding(), DIFF], ids=["rate", "differential"])
def test_floating_pt(coding):
    net = conv_net(coding, 3, 2, relu=True, seed=4)
    _verify(net, _x(net, seed=3, batch=2), Recording("floating_pt"))


# --------------------------------------------------------------------------------------------
# the comparison can fail; refusals
# --------------------------------------------------------------------------------------------


def _run(net, x_int, mutate=None):
    lb = emit.build(net, x_int, "pipelined", quantized=True)
    if mutate is not None:
        mutate(lb)
    run_build(lb)
    return readback(net, lb, x_int, record=True)


def _differs(a, b) -> bool:
    return any(not np.array_equal(a.spikes[k], b.spikes[k]) for k in a.spikes) or any(
        not np.array_equal(a.readout[k], b.readout[k]) for k in a.readout)


def test_wrong_reciprocal_entry_is_detected():
    net = mlp(DIFF, 6, 4, False)
    x = _x(net)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, "pipelined", record=True)

    def corrupt(lb):        # R_3 = 341 -> 300 in h's table only
        var = lb.processes["h"].recip
        tab = np.asarray(var.init).copy()
        tab[2] = 300
        var.init = tab

    got = _run(net, x_int, corrupt)
    assert _differs(ref, got)
    np.testing.assert_array_equal(got.spikes["h"][:3], ref.spikes["h"][:3])   # R_3 enters the state at step 3 ...
    assert not np.array_equal(got.spikes["h"][3:], ref.spikes["h"][3:])       # ... and shows from step 4 on


def test_wrong_threshold_is_detected():
    net = mlp(RateCoding(), 6, 2, False)
    x = _x(net)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, "pipelined", record=True)
    o = net.node("o")
    wrong = o.threshold + 2                                   # still a multiple of 2^(n-1)

    def corrupt(lb):
        var = lb.processes["o"].thr
        var.init = np.broadcast_to(wrong, np.asarray(var.init).shape).copy()

    got = _run(net, x_int, corrupt)
    assert _differs(ref, got)
    # ... and Lava computed exactly the network with o's wrong threshold
    bad = Network([dataclasses.replace(o, threshold=wrong) if n.name == "o" else n for n in net.nodes],
                  net.projections, net.timesteps, coding=net.coding)
    assert_same_run(simulate(bad, x, "pipelined", record=True), got)


def test_binary_messages_are_detected(monkeypatch):
    """With num_message_bits = 0 Lava reads every graded message as a 0/1 spike: must be caught."""
    net = mlp(DIFF, 6, 4, False)
    x = _x(net)
    ref = simulate(net, x, "pipelined", record=True)
    monkeypatch.setitem(emit.NEURON_EMITTERS, MultiThreshold,
                        dataclasses.replace(emit.NEURON_EMITTERS[MultiThreshold], spike_bits=0))
    assert _differs(ref, _run(net, quantize_inputs(net, x)))


@pytest.mark.parametrize("coding", [RateCoding(), DIFF], ids=["rate", "differential"])
def test_layerwise_is_refused(coding):
    net = mlp(coding, 3, 2, False)
    x = _x(net, batch=1)
    with pytest.raises(NotImplementedError, match=r"population 'h'.*pipelined"):
        simulate(net, x, "layerwise")                              # the reference refuses ...
    with pytest.raises(NotImplementedError, match=r"population 'h'.*MultiThreshold.*only in the pipelined"):
        lava_pkg.build(net, x, schedule="layerwise")               # ... and so does Lava, before any work
    with pytest.raises(NotImplementedError, match=r"population 'h'"):
        LavaBackend().run(net, x, schedule="layerwise")


def test_unsupported_coding_is_refused(monkeypatch):
    net = mlp(DIFF, 3, 2, False)
    only_rate = dataclasses.replace(emit.NEURON_EMITTERS[MultiThreshold],
                                    codings={RateCoding: emit.NEURON_EMITTERS[MultiThreshold].codings[RateCoding]})
    monkeypatch.setitem(emit.NEURON_EMITTERS, MultiThreshold, only_rate)
    msg = (r"population 'h'.*MultiThreshold with DifferentialCoding.*"
           r"supported: DualThreshold with RateCoding.*MultiThreshold with RateCoding")
    with pytest.raises(NotImplementedError, match=msg):
        emit.build(net, _x(net, batch=1), "pipelined")


@pytest.mark.parametrize("coding", ["rate", "differential"])
def test_compiled_training_free_digits_net_is_identical_on_lava(lava, coding):
    """The plain-ReLU digits CNN compiled training-free (calibrated thresholds, MT-4) runs identically."""
    from snnc.compiler.api import compile_imported, import_model
    from snnc.compiler.config import CompileConfig

    from snnc_testutil import DIGITS_DATA, REPO

    digits = REPO / "examples" / "digits"
    net = compile_imported(import_model(digits / "relu_cnn.onnx"), CompileConfig(
        neuron="multi-threshold", mt_n=4, coding=coding, timesteps=4, calibration_data=str(digits / "calib.npz"),
        schedule="pipelined"), runner=reference_runner)
    x = np.load(DIGITS_DATA)["x"][:2]
    ref, _ = _verify(net, x, lava)
    assert any(np.any(t < 0) for t in ref.spikes.values())  # negative graded messages travel too
