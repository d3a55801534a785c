"""The Lava backend against the bit-accurate reference simulator (docs/lava.md, "What is exact").

Small random networks built from snnc.ir classes; every population's spike train per step, every
count and every readout value must be identical for both schedules.
"""

from __future__ import annotations

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

from snnc.backends.lava.backend import LavaBackend, readback, run_build  # noqa: E402
from snnc.backends.lava.emit import build  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import apply_projection  # noqa: E402
from snnc.ir import quantize_inputs  # noqa: E402
from snnc.ir import Conv2d, Dense, Input, Network, Population, Readout, SumPool2d  # noqa: E402


def _calibrate(nodes, projections, T, rng):
    """Pick thresholds so that layers neither stay silent nor fire every step."""
    by = {n.name: n for n in nodes}
    vals = {}
    out = []
    for n in nodes:
        if isinstance(n, Input):
            vals[n.name] = rng.integers(0, n.qmax + 1, (8,) + n.shape)
            out.append(n)
            continue
        cur = sum(apply_projection(p, vals[p.source]) for p in projections if p.target == n.name)
        if isinstance(n, Population):
            c = n.shape[0]
            spread = np.abs(cur).reshape(cur.shape[0], c, -1).mean(axis=(0, 2)) + 1
            thr = np.maximum(1, (spread * rng.uniform(0.6, 1.4, c)).astype(np.int64))
            v0 = (thr * rng.uniform(0, 1, c)).astype(np.int64)
            bias = (thr * rng.uniform(-0.2, 0.2, c)).astype(np.int64)
            n = Population(n.name, n.shape, threshold=thr, v0=v0, bias=bias, levels=T)
            vals[n.name] = (rng.random((8,) + n.shape) < 0.5).astype(np.int64)
        out.append(n)
        by[n.name] = n
    return out


def _pop(name, shape):
    return Population(name, shape, threshold=1, levels=1)


def dense_net(T, rng):
    nodes = [Input("x", (12,), qmin=0, qmax=15), _pop("h1", (10,)), _pop("h2", (8,)),
             Readout("out", (4,), v0=rng.integers(-20, 20, 4), bias=rng.integers(-3, 3, 4))]
    projs = [
        Dense("d1", "x", "h1", rng.integers(-128, 128, (10, 12)), exponent=0, in_shape=(12,), out_shape=(10,)),
        Dense("d2", "h1", "h2", rng.integers(-128, 128, (8, 10)), exponent=3, in_shape=(10,), out_shape=(8,)),
        Dense("d3", "h2", "out", rng.integers(-128, 128, (4, 8)), exponent=7, in_shape=(8,), out_shape=(4,)),
    ]
    return Network(_calibrate(nodes, projs, T, rng), projs, T)


def conv_net(T, rng):
    nodes = [Input("img", (2, 8, 8), qmin=0, qmax=7), _pop("c1", (4, 4, 4)), _pop("c2", (4, 4, 4)),
             _pop("p1", (4, 2, 2)), Readout("logits", (5,), v0=rng.integers(-9, 9, 5), bias=1)]
    projs = [
        # stride 2, padding (t, l, b, r) = (1, 1, 0, 0): equals Lava's symmetric padding 1 here
        Conv2d("k1", "img", "c1", rng.integers(-128, 128, (4, 2, 3, 3)), exponent=1, in_shape=(2, 8, 8),
               out_shape=(4, 4, 4), stride=(2, 2), padding=(1, 1, 0, 0)),
        Conv2d("k2", "c1", "c2", rng.integers(-128, 128, (4, 2, 3, 3)), exponent=2, in_shape=(4, 4, 4),
               out_shape=(4, 4, 4), stride=(1, 1), padding=(1, 1, 1, 1), groups=2),
        SumPool2d("pool", "c2", "p1", np.array(3), exponent=1, in_shape=(4, 4, 4), out_shape=(4, 2, 2)),
        Dense("fc", "p1", "logits", rng.integers(-128, 128, (5, 16)), exponent=4, in_shape=(4, 2, 2),
              out_shape=(5,)),
    ]
    return Network(_calibrate(nodes, projs, T, rng), projs, T)


def _assert_same(net, ref, got):
    assert set(got.spikes) == {p.name for p in net.populations}
    assert_same_run(ref, got)
    assert got.phase == ref.phase


def _x(net, rng, batch):
    inp = net.inputs[0]
    return rng.integers(0, inp.qmax + 1, (batch,) + inp.shape).astype(np.float64) * inp.scale


@pytest.mark.parametrize("schedule", ["pipelined", "layerwise"])
@pytest.mark.parametrize("T", [2, 4])
@pytest.mark.parametrize("make", [dense_net, conv_net], ids=["dense", "conv"])
def test_matches_reference(make, T, schedule):
    rng = np.random.default_rng(100 * T + len(schedule) + (7 if make is conv_net else 0))
    net = make(T, rng)
    x = _x(net, rng, 3)
    ref = simulate(net, x, schedule, record=True)
    got = LavaBackend().run(net, x, schedule, record=True)
    # the networks are not trivial: some neurons fire, not all every step
    assert any(0 < s.mean() < 1 for s in ref.spikes.values())
    _assert_same(net, ref, got)


def test_record_false_and_registry():
    from snnc.backends.base import get_backend

    rng = np.random.default_rng(5)
    net = dense_net(4, rng)
    x = _x(net, rng, 2)
    got = get_backend("lava").run(net, x, "layerwise")
    ref = simulate(net, x, "layerwise")
    assert got.spikes is None
    for name in ref.counts:
        np.testing.assert_array_equal(got.counts[name], ref.counts[name])
    np.testing.assert_array_equal(got.readout["out"], ref.readout["out"])


@pytest.mark.parametrize("proj", ["d1", "k1"])
def test_corrupted_weight_is_detected(proj):
    rng = np.random.default_rng(11)
    net = dense_net(4, rng) if proj == "d1" else conv_net(4, rng)
    x = _x(net, rng, 2)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, "pipelined", record=True)
    lb = build(net, x_int, "pipelined", quantized=True)
    var = lb.processes[proj].weights if proj == "d1" else lb.processes[proj].weight
    w = np.array(var.init)
    idx = np.unravel_index(np.argmin(w), w.shape)            # the most negative weight ...
    w[idx] = 127 << (0 if proj == "d1" else net.projections[0].exponent)   # ... made maximal
    var.init = w
    run_build(lb)
    got = readback(net, lb, x_int, record=True)
    differs = any(not np.array_equal(got.spikes[k], ref.spikes[k]) for k in ref.spikes) or any(
        not np.array_equal(got.readout[k], ref.readout[k]) for k in ref.readout)
    assert differs


def test_compat_idempotent_and_patch():
    import importlib

    from snnc.backends.lava import compat

    compat.ensure_lava()
    compat.ensure_lava()
    vm = importlib.import_module("lava.magma.compiler.var_model")
    a, b = vm.CoreEncoder(), vm.CoreEncoder()
    assert a.x is not b.x and a.x == vm.ByteEncoder()
    src = "from dataclasses import dataclass, InitVar\nclass C:\n    x: ByteEncoder = ByteEncoder()\n"
    once = compat.patch_source(src)
    assert "field(default_factory=ByteEncoder)" in once and once.count("\n") == src.count("\n")
    assert compat.patch_source(once) == once
    assert compat.patch_source("x = 1\n") == "x = 1\n"
    assert compat.import_lava().__name__ == "lava"


def test_missing_lava_message(monkeypatch):
    import importlib.util

    from snnc.backends.lava import compat

    real = importlib.util.find_spec
    monkeypatch.setitem(compat._state, "checked", False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "lava" else real(n, *a))
    with pytest.raises(BackendUnavailableError, match="make setup"):
        compat.ensure_lava()


@pytest.mark.parametrize("schedule", ["pipelined", "layerwise"])
def test_floating_pt_models_match_too(schedule):
    rng = np.random.default_rng(3)
    net = conv_net(4, rng)
    x = _x(net, rng, 2)
    _assert_same(net, simulate(net, x, schedule, record=True),
                 LavaBackend("floating_pt").run(net, x, schedule, record=True))


def test_asymmetric_padding_that_lava_cannot_express_is_refused():
    rng = np.random.default_rng(4)
    # 8x8, 3x3, stride 1, padding (t, l, b, r) = (0, 0, 1, 1) -> 7x7; Lava pads symmetrically
    nodes = [Input("x", (1, 8, 8)), _pop("c", (2, 7, 7)), Readout("r", (2,))]
    projs = [Conv2d("k", "x", "c", rng.integers(-9, 9, (2, 1, 3, 3)), in_shape=(1, 8, 8), out_shape=(2, 7, 7),
                    padding=(0, 0, 1, 1)),
             Dense("d", "c", "r", rng.integers(-9, 9, (2, 98)), in_shape=(2, 7, 7), out_shape=(2,))]
    net = Network(nodes, projs, 2)
    with pytest.raises(NotImplementedError, match="symmetric"):
        build(net, np.zeros((1, 1, 8, 8), np.int64), "pipelined", quantized=True)
