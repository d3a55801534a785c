"""Property tests of the partitioner: random networks and random budgets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from snnc.compiler.errors import MappingError
from snnc.compiler.mapping import map_network
from snnc.compiler.mapping.geometry import Tiling
from snnc.compiler.mapping.report import core_entries
from snnc.compiler.targets import CoreBudget, load_target
from snnc.ir import Conv2d, Dense, Input, Network, Population, Readout, SumPool2d
from snnc.ir import conv_output_size

LOIHI = load_target("loihi")


@st.composite
def networks(draw):
    c, h = draw(st.integers(1, 3)), draw(st.integers(2, 8))
    nodes = [Input("in", (c, h, h))]
    projs = []
    prev, shape = "in", (c, h, h)
    for i in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "dense"]) if len(shape) == 3 else st.just("dense"))
        name = f"l{i}"
        if kind == "conv":
            k = draw(st.integers(1, min(3, shape[1])))
            s, pad = draw(st.integers(1, 2)), draw(st.integers(0, k // 2))
            o = draw(st.integers(1, 6))
            hw = conv_output_size(shape[1], k, s, pad, pad)
            out = (o, hw, hw)
            projs.append(Conv2d(f"p{i}", prev, name, np.ones((o, shape[0], k, k), np.int64), stride=(s, s),
                                padding=(pad,) * 4, in_shape=shape, out_shape=out))
        elif kind == "pool":
            k = draw(st.integers(1, min(2, shape[1])))
            hw = conv_output_size(shape[1], k, k, 0, 0)
            out = (shape[0], hw, hw)
            projs.append(SumPool2d(f"p{i}", prev, name, np.array(1), kernel=(k, k), stride=(k, k),
                                   in_shape=shape, out_shape=out))
        else:
            n = draw(st.integers(1, 40))
            out = (n,)
            projs.append(Dense(f"p{i}", prev, name, np.ones((n, int(np.prod(shape))), np.int64),
                               in_shape=shape, out_shape=out))
        nodes.append(Population(name, out))
        prev, shape = name, out
    n = draw(st.integers(1, 10))
    nodes.append(Readout("out", (n,)))
    projs.append(Dense("pout", prev, "out", np.ones((n, int(np.prod(shape))), np.int64), in_shape=shape, out_shape=(n,)))
    return Network(nodes, projs, 4)


@st.composite
def targets(draw):
    core = CoreBudget(neurons=draw(st.integers(4, 300)), input_axons=draw(st.integers(8, 600)),
                      output_axons=draw(st.integers(8, 600)), synapse_memory_bits=draw(st.integers(2**10, 2**17)),
                      neuron_memory_bits=draw(st.sampled_from([0, 0, 64])))
    syn = replace(LOIHI.synapse, atoms_per_axon=draw(st.sampled_from([1, 3, 512])))
    return replace(LOIHI, core=core, synapse=syn, cores_per_chip=draw(st.integers(1, 16)))


def check_placement(net, target, pl):
    caps = pl["budgets"]
    cores = core_entries(pl)
    assert len(cores) == pl["cores_used"] >= pl["lower_bound_cores"] >= 1
    for c in cores:  # every core within every budget
        assert c["neurons"] <= caps["neurons"] and c["in_axons"] <= caps["in_axons"]
        assert c["out_axons"] <= caps["out_axons"] and c["memory_bits"] <= caps["memory_bits"]
        assert c["memory_bits"] == c["synapse_bits"] + c["neurons"] * target.core.neuron_memory_bits
    chips = np.bincount(pl["core_chip"])
    assert len(chips) == pl["chips_used"] and chips.max() <= target.cores_per_chip
    # every neuron of every placed node exactly once
    placed = {n.name: np.zeros(n.shape, np.int64).reshape(Tiling(p["view"], p["view"]).view)
              for n in net.nodes if not isinstance(n, Input) for p in pl["populations"] if p["name"] == n.name}
    assert set(placed) == {n.name for n in net.nodes if not isinstance(n, Input)}
    splits = {p["name"]: p["split"] for p in pl["populations"] if "split" in p}
    # a split readout: every (neuron, input unit) synapse list on exactly one partial
    synapses = {n: np.zeros(placed[n].shape + (sum(sp["units"]),), np.int64) for n, sp in splits.items()}
    for c in cores:
        for piece in c["pieces"]:
            (c0, c1), (y0, y1), (x0, x1) = piece["slice"]
            placed[piece["population"]][c0:c1, y0:y1, x0:x1] += 1
            assert piece["neurons"] == (c1 - c0) * (y1 - y0) * (x1 - x0)
            if piece["population"] in splits:
                u0, u1 = piece["inputs"]
                synapses[piece["population"]][c0:c1, y0:y1, x0:x1, u0:u1] += 1
                assert piece["in_axons"] == u1 - u0 and piece["out_axons"] == 0
    for name, a in placed.items():  # every neuron once; a split readout's once per partial
        assert np.all(a == splits[name]["partials"] if name in splits else a == 1)
    assert all(np.all(a == 1) for a in synapses.values())
    for name, sp in splits.items():  # only readouts are split, and only when a neuron fits no core
        assert isinstance(net.node(name), Readout) and sp["partials"] >= 2
        assert sp["cores"] == sorted({c["core"] for c in cores for q in c["pieces"] if q["population"] == name})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks(), targets())
def test_random_networks_and_budgets(net, target):
    try:
        pl = map_network(net, target)
    except MappingError as e:
        assert "cannot be placed" in str(e) and "offers" in str(e)
        assume(False)
        return
    check_placement(net, target, pl)
    again = map_network(net, target)   # deterministic
    for k in ("pieces", "core_chip", "populations", "cores_used"):
        assert again[k] == pl[k]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_chip_bound(net):
    target = replace(LOIHI, core=CoreBudget(16, 64, 64, 2**14), cores_per_chip=2)
    try:
        free = map_network(net, target)
    except MappingError:
        assume(False)
        return
    need = free["chips_used"]
    assert map_network(net, target, chips=need)["chips_used"] == need
    if need > 1:
        try:
            map_network(net, target, chips=need - 1)
            raise AssertionError("expected a MappingError")
        except MappingError as e:
            assert f"--chips {need}" in str(e) and "cores" in str(e)


def traffic_per_slice_pair(model, part, rates) -> np.ndarray:
    """The core traffic from every (source slice, destination piece) entry, added one by one."""
    from snnc.compiler.mapping.placement import slice_entries

    index = {p.name: i for i, p in enumerate(part.plans)}
    out = np.zeros((part.n_cores, part.n_cores))
    for proj in model.projections:
        if proj.source in model.off_core:
            continue
        s, d = index[proj.source], index[proj.target]
        core_of = []
        for i in (s, d):
            sel = part.piece_plan == i
            c = np.empty(part.plans[i].n_pieces, np.int64)
            c[part.piece_slice[sel] * part.plans[i].partials + part.piece_part[sel]] = part.piece_core[sel]
            core_of.append(c)
        m = slice_entries(model, proj.name, part.plans[s], part.plans[d])
        rate = 1.0 if rates is None else rates[proj.source]
        np.add.at(out, (core_of[0][m.row], core_of[1][m.col]), m.data * rate)
    np.fill_diagonal(out, 0)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(networks(), st.booleans())
def test_core_traffic_sums_every_slice_pair(net, with_rates):
    """Traffic summed per projection on its core pairs equals the sum over every slice pair."""
    from dataclasses import replace

    from snnc.compiler.mapping.partition import NetworkModel, partition
    from snnc.compiler.mapping.placement import core_traffic
    from snnc.compiler.targets import CoreBudget

    target = replace(LOIHI, core=CoreBudget(16, 64, 64, 2**14), cores_per_chip=2)
    model = NetworkModel(net, target)
    try:
        part = partition(model, model.lower_bound().best)
    except MappingError:
        return
    rates = {n.name: 0.25 * (i % 4) for i, n in enumerate(net.nodes)} if with_rates else None  # exact binary fractions
    got = core_traffic(model, part, rates)
    want = traffic_per_slice_pair(model, part, rates)
    np.testing.assert_array_equal(got.toarray(), want)
