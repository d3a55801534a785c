"""IR Dense projections emitted as Lava ``Sparse`` (docs/lava.md, "Sparse projections").

Lava's fixed_pt Sparse model clips/truncates/shifts like Dense and has the same one-step delay, so
with the emitter's parameters (MIXED, num_weight_bits=9, weight_exp=e) it must reproduce the
reference simulator exactly; a low-density projection is emitted as Sparse automatically.
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

from lava.proc.dense.process import Dense as LavaDense  # noqa: E402
from lava.proc.sparse.process import Sparse as LavaSparse  # noqa: E402

from snnc.backends.lava.backend import LavaBackend, readback, run_build  # noqa: E402
from snnc.backends.lava.emit import SPARSE_DENSITY_THRESHOLD, build  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import quantize_inputs  # noqa: E402
from snnc.ir import Dense, Input, Network, Population, Readout  # noqa: E402


def sparse_net(T: int, rng) -> Network:
    """x(40) -> ds (~10% nonzero, odd values, mixed signs, exponent 2) -> h(30) -> dd (dense) -> out(5)."""
    w1 = np.zeros((30, 40), np.int64)
    nz = rng.choice(w1.size, w1.size // 10, replace=False)
    w1.flat[nz] = rng.choice([-1, 1], nz.size) * (2 * rng.integers(0, 64, nz.size) + 1)   # odd, |w| <= 127
    w1.flat[nz[:2]] = [-128, 127]                                                          # int8 extremes
    w2 = rng.integers(-128, 128, (5, 30))
    cur = (rng.integers(0, 16, (64, 40)) @ w1.T) << 2                                      # typical currents
    thr = np.maximum(1, (np.abs(cur).mean(axis=0) * rng.uniform(0.6, 1.4, 30)).astype(np.int64))
    nodes = [Input("x", (40,), qmin=0, qmax=15),
             Population("h", (30,), threshold=thr, v0=(thr * rng.uniform(0, 1, 30)).astype(np.int64),
                        bias=(thr * rng.uniform(-0.2, 0.2, 30)).astype(np.int64), levels=T),
             Readout("out", (5,), v0=rng.integers(-20, 20, 5), bias=rng.integers(-3, 3, 5))]
    projs = [Dense("ds", "x", "h", w1, exponent=2, in_shape=(40,), out_shape=(30,)),
             Dense("dd", "h", "out", w2, exponent=3, in_shape=(30,), out_shape=(5,))]
    return Network(nodes, projs, T)


def _x(net, rng, batch):
    inp = net.inputs[0]
    return rng.integers(0, inp.qmax + 1, (batch,) + inp.shape).astype(np.float64) * inp.scale


_assert_same = assert_same_run


def test_process_choice():
    rng = np.random.default_rng(0)
    net = sparse_net(4, rng)
    w = net.projections[0].weight
    assert 0 < np.count_nonzero(w) / w.size < SPARSE_DENSITY_THRESHOLD
    x_int = quantize_inputs(net, _x(net, rng, 1))
    auto = build(net, x_int, "pipelined", quantized=True).processes
    assert type(auto["ds"]) is LavaSparse and type(auto["dd"]) is LavaDense
    assert auto["ds"].weights.init.nnz == np.count_nonzero(w)
    assert all(type(build(net, x_int, "layerwise", quantized=True, sparse=s).processes[p]) is cls
               for s, cls in ((True, LavaSparse), (False, LavaDense)) for p in ("ds", "dd"))


@pytest.mark.parametrize("schedule", ["pipelined", "layerwise"])
@pytest.mark.parametrize("T", [2, 4])
def test_sparse_matches_reference(T, schedule):
    rng = np.random.default_rng(10 * T + len(schedule))
    net = sparse_net(T, rng)
    x = _x(net, rng, 3)
    ref = simulate(net, x, schedule, record=True)
    assert 0 < ref.spikes["h"].mean() < 1          # the sparse layer is neither silent nor saturated
    _assert_same(ref, LavaBackend().run(net, x, schedule, record=True))   # automatic: ds is Sparse


@pytest.mark.parametrize("schedule", ["pipelined", "layerwise"])
def test_forced_sparse_everywhere_and_floating_pt(schedule):
    rng = np.random.default_rng(7)
    net = sparse_net(4, rng)
    x = _x(net, rng, 2)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, schedule, record=True)
    for tag in ("fixed_pt", "floating_pt"):
        lb = build(net, x_int, schedule, quantized=True, tag=tag, sparse=True)   # dd (dense) too
        assert type(lb.processes["dd"]) is LavaSparse
        run_build(lb, tag)
        _assert_same(ref, readback(net, lb, x_int, record=True))


def _differs(a, b) -> bool:
    return any(not np.array_equal(a.spikes[k], b.spikes[k]) for k in a.spikes) or any(
        not np.array_equal(a.readout[k], b.readout[k]) for k in a.readout)


def test_corrupted_sparse_weight_is_detected():
    rng = np.random.default_rng(11)
    net = sparse_net(4, rng)
    x = _x(net, rng, 2)
    x_int = quantize_inputs(net, x)
    ref = simulate(net, x, "pipelined", record=True)
    lb = build(net, x_int, "pipelined", quantized=True)
    assert type(lb.processes["ds"]) is LavaSparse
    var = lb.processes["ds"].weights
    w = var.init.copy()                              # csr; 1-D nodes, so Lava rows/cols = IR rows/cols
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    # the most negative nonzero made maximal, among those whose change alters the reference result
    for k in np.argsort(w.data, kind="stable"):
        bad_ir = net.projections[0].weight.copy()
        bad_ir[rows[k], w.indices[k]] = 127
        bad_net = Network(net.nodes,
                          [dataclasses.replace(net.projections[0], weight=bad_ir), net.projections[1]],
                          net.timesteps)
        bad_ref = simulate(bad_net, x, "pipelined", record=True)
        if _differs(bad_ref, ref):
            break
    else:  # pragma: no cover
        pytest.fail("no single-weight corruption changes the reference result")
    w.data[k] = 127
    var.init = w
    run_build(lb)
    got = readback(net, lb, x_int, record=True)
    assert _differs(got, ref)      # the mismatch appears ...
    _assert_same(bad_ref, got)     # ... and Lava computed exactly the corrupted network
