"""Partial readouts: a readout whose neurons' fan-in fits no core is split over its inputs; populations are not."""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from snnc.compiler.errors import MappingError
from snnc.compiler.mapping import map_network
from snnc.compiler.mapping.geometry import Tiling
from snnc.compiler.mapping.partition import NetworkModel
from snnc.compiler.mapping.report import core_entries, format_text, map_json
from snnc.compiler.mapping.resources import DenseModel
from snnc.compiler.mapping.split import choose_split, greedy_bounds
from snnc.compiler.targets import CoreBudget, load_target
from snnc.ir import Conv2d, Dense, Input, Network, Population, Readout

LOIHI = load_target("loihi")


def _load_sibling(name: str):
    """A module of this folder by file (the tests are imported by path, not as a package)."""
    spec = importlib.util.spec_from_file_location(f"_mapping_{name}", Path(__file__).with_name(f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check_placement = _load_sibling("test_partition").check_placement


def _net(c: int = 8, h: int = 12, n_out: int = 10, head=Readout) -> Network:
    """input -> 1x1 conv population (c, h, h) -> dense head of n_out (a readout unless ``head`` says)."""
    shape = (c, h, h)
    nodes = [Input("in", (1, h, h)), Population("feat", shape), head("out", (n_out,))]
    projs = [Conv2d("c", "in", "feat", np.ones((c, 1, 1, 1), np.int64), in_shape=(1, h, h), out_shape=shape),
             Dense("d", "feat", "out", np.ones((n_out, c * h * h), np.int64), in_shape=shape, out_shape=(n_out,))]
    if head is not Readout:   # a spiking head: a small readout after it
        nodes.append(Readout("r", (1,)))
        projs.append(Dense("dr", "out", "r", np.ones((1, n_out), np.int64), in_shape=(n_out,), out_shape=(1,)))
    return Network(nodes, projs, 4)


def _tight(memory_bits: int = 2**14, axons: int = 4096, atoms: int = 512, neuron_bits: int = 0):
    core = CoreBudget(neurons=1024, input_axons=axons, output_axons=4096, synapse_memory_bits=memory_bits,
                      neuron_memory_bits=neuron_bits)
    return replace(LOIHI, core=core, synapse=replace(LOIHI.synapse, atoms_per_axon=atoms), cores_per_chip=16)


def test_greedy_bounds_fewest_ranges():
    assert greedy_bounds(np.array([3, 3, 3, 3, 3]), 10, 6) == (0, 2, 4, 5)
    assert greedy_bounds(np.array([3, 3, 3, 3, 3]), 1, 100) == (0, 1, 2, 3, 4, 5)
    assert greedy_bounds(np.array([3, 7, 3]), 10, 6) is None


@pytest.mark.parametrize("neuron_bits", [0, 64])
@pytest.mark.parametrize("axons", [4096, 50])
def test_readout_split_fits_every_budget_and_places_every_synapse_once(neuron_bits, axons):
    net, target = _net(), _tight(axons=axons, neuron_bits=neuron_bits)
    model = NetworkModel(net, target)
    ax, bits = model.models["d"].incoming(Tiling((10, 1, 1), (1, 1, 1)))
    # a single readout neuron does not fit a core
    assert int(bits.max()) + neuron_bits > target.core.synapse_memory_bits or int(ax.max()) > axons
    pl = map_network(net, target)
    check_placement(net, target, pl)   # every core within budget; every (neuron, input unit) once
    sp = map_json(pl)["split_readouts"]["out"]
    assert sp["partials"] >= 2 and sp["units"] == [144] and sp["unit_bounds"][0] == 0 and sp["unit_bounds"][-1] == 144
    pieces = [q for c in core_entries(pl) for q in c["pieces"] if q["population"] == "out"]
    assert len(pieces) == sp["partials"] * pl["populations"][-1]["slices"]
    # each partial's synapse memory is its units' dense lists onto its neurons (nengo-loihi words)
    for q in pieces:
        u0, u1 = q["inputs"]
        assert q["synapse_bits"] == int(model.models["d"].unit_bits(q["neurons"])[u0:u1].sum())
        assert q["memory_bits"] == q["synapse_bits"] + q["neurons"] * neuron_bits
    # partials packed onto one core are merged: consecutive partials of a slice lie on different cores
    by_slice: dict = {}
    for c in core_entries(pl):
        for q in c["pieces"]:
            if q["population"] == "out":
                by_slice.setdefault(tuple(map(tuple, q["slice"])), []).append((q["partial"], c["core"]))
    if len(by_slice) == 1:
        cores = [core for _, core in sorted(next(iter(by_slice.values())))]
        assert all(a != b for a, b in zip(cores, cores[1:]))
    assert "is split" in format_text(pl) and "the host adds" in format_text(pl)
    assert map_network(net, target)["pieces"] == pl["pieces"]   # deterministic


def test_partials_on_one_core_are_merged():
    from snnc.compiler.mapping.partition import _merged_split
    from snnc.compiler.mapping.split import Split

    sp = Split(("d",), (10,), (0, 2, 5, 7, 10))
    assert _merged_split(sp, np.array([[3, 3, 4, 4], [1, 1, 2, 5]])).bounds == (0, 5, 7, 10)
    assert _merged_split(sp, np.array([[3, 3, 4, 4]])).bounds == (0, 5, 10)
    assert _merged_split(sp, np.array([[3, 4, 3, 4]])) is None


def test_split_uses_the_fewest_pieces():
    net, target = _net(), _tight()
    model = NetworkModel(net, target)
    tiling, split = choose_split(model, "out", model.caps)
    dense: DenseModel = model.models["d"]
    best = None
    for tc in range(1, 11):   # brute force: every channel tile, greedy ranges
        n = min(tc, 10)
        b = greedy_bounds(dense.unit_bits(n), target.core.input_axons, target.core.synapse_memory_bits)
        if b is not None:
            pieces = -(-10 // tc) * (len(b) - 1)
            best = pieces if best is None else min(best, pieces)
    assert tiling.n_slices * split.partials == best


def test_split_readout_traffic_and_chips():
    net, target = _net(c=16, h=16), replace(_tight(), cores_per_chip=2)
    pl = map_network(net, target)
    check_placement(net, target, pl)
    assert pl["chips_used"] >= 2 and pl["total_traffic"] is not None
    # every feature neuron reaches each readout slice once (via exactly one partial): the fan-out
    slices = next(p["slices"] for p in pl["populations"] if p["name"] == "out")
    feat = next(p for p in pl["populations"] if p["name"] == "feat")
    assert pl["total_traffic"] <= 16 * 16 * 16 * slices + 1e-9
    assert feat["out_axons"] >= 16 * 16 * slices


def test_population_too_big_is_still_an_error():
    net, target = _net(head=Population), _tight()
    with pytest.raises(MappingError, match="population 'out' cannot be placed: a single neuron needs"):
        map_network(net, target)


def test_split_impossible_when_one_axon_does_not_fit():
    # one axon carries 64 channels: 64 dense 8-bit synapses onto one neuron = 62 + 2 in 8 + 1 words = 576 bits
    net, target = _net(c=64, h=2), _tight(memory_bits=512)
    with pytest.raises(MappingError, match="readout 'out' cannot be placed even as partial readouts.*576.*offers 512"):
        map_network(net, target)


def test_conv_fed_readout_is_not_split():
    h, c = 12, 8
    nodes = [Input("in", (c, h, h)), Readout("out", (2, h, h))]
    projs = [Conv2d("c", "in", "out", np.ones((2, c, 3, 3), np.int64), padding=(1,) * 4, in_shape=(c, h, h),
                    out_shape=(2, h, h))]
    net = Network(nodes, projs, 4)
    target = _tight(memory_bits=64, atoms=1)
    with pytest.raises(MappingError, match="readout 'out' cannot be placed.*dense inputs only.*'c' \\(Conv2d\\)"):
        map_network(net, target)
