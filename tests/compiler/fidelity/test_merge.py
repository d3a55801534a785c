"""Shards of the comparison merge into the comparison of all samples (``merge_fidelity``,
``merge_input_ranges``): what ``snnc verify --workers`` relies on to print the bytes of one process."""

import json

import numpy as np
import onnx
import pytest

from snnc.backends.reference import run_integer_ann, simulate
from snnc.compiler.api import compile_model
from snnc.compiler.fidelity import (IntegerRun, activation_probes, input_range_report, measure_fidelity,
                                    measure_fidelity_partial, merge_fidelity, merge_input_ranges, probe_tensor_sizes,
                                    reference_executor)
from snnc.compiler.tools.verify import network_levels, reference_network
from snnc.ir import apply_projection

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL


@pytest.fixture(scope="module")
def setup():
    net, raw = compile_model(DIGITS_MODEL)
    z = np.load(DIGITS_DATA)
    model = onnx.load_from_string(raw)
    ex = reference_executor(model)
    probes = activation_probes(net, model, probe_tensor_sizes(ex, z["x"][:1], net, model))
    L, ref = network_levels(net), reference_network(net)

    def irun(xb):
        r = run_integer_ann(ref, xb, timesteps=L)
        return IntegerRun(r.levels, r.predictions())

    return net, ref, ex, probes, irun, L, z["x"][:150], z["y"][:150]


def _feed(pred):
    """The SNN's predictions batch by batch, in order (as ``tools.fidelity_check`` passes them)."""
    pos = [0]

    def nxt(xb):
        out = pred[pos[0]:pos[0] + len(xb)]
        pos[0] += len(xb)
        return out

    return nxt


def test_shards_merge_to_the_whole(setup):
    net, ref, ex, probes, irun, L, x, y = setup
    snn = simulate(net, x, "layerwise").predictions()
    whole = measure_fidelity(ref, ex, probes, x, y, irun, L, apply_projection, _feed(snn), 32)
    assert whole.levels_compared > 0 and whole.levels_mismatched > 0   # something to add up
    parts = []
    for a in range(0, 150, 64):   # shards on batch boundaries (64 = 2 batches of 32), the last one shorter
        parts.append(measure_fidelity_partial(ref, ex, probes, x[a:a + 64], y[a:a + 64], irun, L, apply_projection,
                                              _feed(snn[a:a + 64]), 32))
    merged = merge_fidelity(parts).result()
    assert json.dumps(merged.to_dict()) == json.dumps(whole.to_dict())


def test_a_shard_that_found_a_layer_not_levels_ends_its_counting(setup):
    """The merged layer keeps the counts up to the first shard that found it not levels, and that shard's
    reason; later shards (which start knowing it) add nothing to it."""
    net, ref, ex, probes, irun, L, x, y = setup
    a = measure_fidelity_partial(ref, ex, probes, x[:64], y[:64], irun, L, apply_projection, None, 32)
    b = measure_fidelity_partial(ref, ex, probes, x[64:128], y[64:128], irun, L, apply_projection, None, 32)
    name = probes.probes[0].population
    gone = next(L_ for L_ in b.layers if L_.layer == name)
    gone.status, gone.reason, gone.not_integer = "not-levels", "off the grid", 3
    c = measure_fidelity_partial(ref, ex, probes, x[128:], y[128:], irun, L, apply_projection, None, 32,
                                 not_levels=frozenset({name}))
    m = next(L_ for L_ in merge_fidelity([a, b, c]).layers if L_.layer == name)
    la, lb = (next(L_ for L_ in p.layers if L_.layer == name) for p in (a, b))
    assert m.status == "not-levels" and m.reason == "off the grid" and m.not_integer == 3
    assert m.compared == la.compared + lb.compared and m.mismatched == la.mismatched + lb.mismatched
    assert c.found_not_levels == frozenset({name})


def test_input_ranges_merge(setup):
    net = setup[0]
    x = np.concatenate([setup[6][:20], setup[6][20:40] * 3 - 1])
    parts = [input_range_report(net, x[i:i + 7]) for i in range(0, 40, 7)]
    assert merge_input_ranges(parts) == input_range_report(net, x)
    assert input_range_report(net, x).outside > 0
