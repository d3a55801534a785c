"""The backend contract (backends/base.py), for every backend that can load here: every neuron model of
ir/neurons.py, in every coding the IR allows it, in both schedules, is either run exactly like the
reference (same counts, readouts and spike trains) or refused before any work with
UnsupportedNetworkError, one line naming the population and what does run. A new neuron model or a
new backend is covered without editing this test (it walks the registries)."""

import numpy as np
import pytest

from snnc.backends import BackendUnavailableError, Keep, NotKeptError, SimResult, UnsupportedNetworkError, available_backends, get_backend
from snnc.ir import (CODINGS, NEURON_MODELS, Dense, DifferentialCoding, Input, IRValidationError, MultiThreshold,
                     Network, Population, Readout, Schedule)
from snnc_testutil import assert_same_run


def _backends():
    out = []
    for name in available_backends():
        try:
            out.append(get_backend(name))
        except BackendUnavailableError:
            continue
    return out


BACKENDS = _backends()


def _network(neuron_cls, coding_cls):
    """input (4,) -> population 'p' (3,) of ``neuron_cls`` -> readout (2,), or None when the IR refuses
    the combination itself (differential coding needs multi-threshold neurons)."""
    neuron = neuron_cls()
    unit = getattr(neuron, "unit_divisor", 1)
    coding = coding_cls()
    bias = np.array(0) if isinstance(coding, DifferentialCoding) else np.array([1, 0, -1])
    nodes = [Input("x", (4,), scale=1 / 15, qmin=0, qmax=15),
             Population("p", (3,), neuron=neuron, threshold=np.array([8, 16, 24]) * unit, v0=np.array(2),
                        bias=bias, levels=4),
             Readout("r", (2,))]
    rng = np.random.default_rng(0)
    projs = [Dense("x->p", "x", "p", rng.integers(-4, 9, (3, 4)), 1, (4,), (3,)),
             Dense("p->r", "p", "r", rng.integers(-3, 4, (2, 3)), 0, (3,), (2,))]
    try:
        return Network(nodes, projs, 4, coding=coding)
    except IRValidationError:
        return None


CASES = [(n, c, s) for n in sorted(NEURON_MODELS) for c in sorted(CODINGS) for s in Schedule]


def test_every_neuron_model_runs_somewhere():
    """Each model runs in at least one (coding, schedule) on the reference."""
    ref = get_backend("reference")
    for n in NEURON_MODELS:
        ran = []
        for c in CODINGS:
            for s in Schedule:
                net = _network(NEURON_MODELS[n], CODINGS[c])
                if net is None:
                    continue
                try:
                    ran.append(ref.run(net, np.zeros((1, 4)), s))
                except UnsupportedNetworkError:
                    pass
        assert ran, f"{n} runs nowhere on the reference simulator"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("neuron,coding,schedule", CASES, ids=lambda v: getattr(v, "value", v))
def test_each_backend_runs_or_refuses_by_name(backend, neuron, coding, schedule):
    net = _network(NEURON_MODELS[neuron], CODINGS[coding])
    if net is None:
        pytest.skip(f"the IR has no {neuron} network in {coding}")
    x = np.random.default_rng(1).uniform(0, 1, (3, 4))
    ref = get_backend("reference")
    try:
        want = ref.run(net, x, schedule, record=True)
    except UnsupportedNetworkError as e:
        want = e
    try:
        got = backend.run(net, x, schedule, record=True)
    except UnsupportedNetworkError as e:
        msg = str(e)
        assert "\n" not in msg and "population 'p'" in msg, msg
        assert "pipelined" in msg or "supported" in msg or "layerwise" in msg, msg  # says what does run
        return
    assert isinstance(got, SimResult) and got.schedule is schedule and got.timesteps == net.timesteps
    assert not isinstance(want, Exception), f"{backend.name} runs what the reference refuses: {want}"
    assert_same_run(want, got)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
@pytest.mark.parametrize("neuron,coding,schedule", CASES, ids=lambda v: getattr(v, "value", v))
def test_each_backend_keeps_readouts_only_when_asked(backend, neuron, coding, schedule):
    """run(..., keep=Keep.READOUTS): the full run's readouts and largest states; counts and population
    states are absent (NotKeptError), not zero."""
    net = _network(NEURON_MODELS[neuron], CODINGS[coding])
    if net is None:
        pytest.skip(f"the IR has no {neuron} network in {coding}")
    x = np.random.default_rng(1).uniform(0, 1, (3, 4))
    try:
        want = get_backend("reference").run(net, x, schedule)
        got = backend.run(net, x, schedule, keep=Keep.READOUTS)
    except UnsupportedNetworkError:
        return
    assert got.kept is Keep.READOUTS and got.spikes is None and list(got.final_v) == ["r"]
    np.testing.assert_array_equal(got.readout["r"], want.readout["r"])
    np.testing.assert_array_equal(got.final_v["r"], want.final_v["r"])
    if backend.name != "lava":   # Lava reads no largest states back
        assert got.max_abs_state == want.max_abs_state
    for part in ("counts", "final_v"):
        with pytest.raises(NotKeptError, match=f"{part}\\['p'\\] was not kept"):
            getattr(got, part)["p"]


def test_the_multi_threshold_population_the_layerwise_schedule_refuses_names_what_runs():
    net = _network(MultiThreshold, CODINGS["RateCoding"])
    with pytest.raises(UnsupportedNetworkError, match="population 'p'.*runs in the pipelined schedule"):
        get_backend("reference").run(net, np.zeros((1, 4)), Schedule.LAYERWISE)
