"""Issue 7: SOPs against a brute-force count, MACs against hand counts, energy arithmetic per model."""

import json

import numpy as np
import onnx
import pytest
from click.testing import CliRunner

from snnc.ir import Schedule, apply_projection, fanout

from snnc.backends.reference import simulate
from snnc.compiler.tools.stats import compute_stats
from snnc.compiler.energy import EnergyModelError, builtin_energy_models, load_energy_model
from snnc.compiler.api import compile_model, compile_to_file
from snnc.compiler.tools.cli import cli
from snnc.ir import Conv2d, Dense, Input, Network, Population, Readout, SumPool2d

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL, make_mlp_onnx

rng = np.random.default_rng(0)


def dense_matrix(p):
    """The projection as an explicit (out, in) matrix, by applying it to every one-hot input."""
    n_in = int(np.prod(p.in_shape))
    eye = np.eye(n_in, dtype=np.int64).reshape((n_in,) + tuple(p.in_shape))
    return apply_projection(p, eye).reshape(n_in, -1).T


def sparse_conv(shape_w, **kw):
    w = rng.integers(-5, 6, shape_w)
    w[rng.random(shape_w) < 0.4] = 0
    return w


@pytest.mark.parametrize("p", [
    Conv2d("c", "a", "b", sparse_conv((4, 2, 3, 3)), 0, (2, 7, 6), (4, 4, 3), stride=(2, 2), padding=(1, 1, 2, 0)),
    Conv2d("c", "a", "b", sparse_conv((4, 1, 3, 2)), 0, (2, 8, 8), (4, 4, 6), stride=(1, 1), dilation=(2, 2), groups=2),
    SumPool2d("s", "a", "b", 2, 0, (3, 5, 5), (3, 2, 2), kernel=(3, 3), stride=(2, 2)),
    Dense("d", "a", "b", sparse_conv((5, 12)), 0, (3, 2, 2), (5,)),
], ids=["conv-stride-pad", "conv-dilation-groups", "sumpool-overlap", "dense"])
def test_fanout_equals_brute_force(p):
    M = dense_matrix(p)
    # a synapse exists where some output reads the input through a non-zero weight; when several
    # kernel offsets of one output hit the same input (never with these geometries) they are 2 synapses
    assert np.array_equal(fanout(p).reshape(-1), (M != 0).sum(axis=0))


def tiny_net(T=3):
    i = Input("x", (2, 5, 5), scale=1.0, qmin=0, qmax=7)
    c = Population("c", (3, 3, 3), threshold=[9, 7, 11], v0=[4, 3, 5], levels=T)
    p = Population("p", (3, 2, 2), threshold=4, v0=1, levels=T)
    r = Readout("r", (4,))
    projs = [Conv2d("x->c", "x", "c", sparse_conv((3, 2, 3, 3)), 0, (2, 5, 5), (3, 3, 3), stride=(2, 2), padding=(1, 1, 1, 1)),
             SumPool2d("c->p", "c", "p", 1, 0, (3, 3, 3), (3, 2, 2), kernel=(2, 2), stride=(1, 1)),
             Dense("p->r", "p", "r", sparse_conv((4, 12)), 0, (3, 2, 2), (4,))]
    return Network([i, c, p, r], projs, T)


@pytest.mark.parametrize("schedule", list(Schedule))
def test_sops_equal_brute_force(schedule):
    net = tiny_net()
    x = rng.integers(0, 8, (4, 2, 5, 5)).astype(float)
    x[0] = 0  # a silent sample
    res = simulate(net, x, schedule, record=True, count_ops=True)
    for p in net.projections:
        M = dense_matrix(p)
        if p.source == "x":
            events = np.broadcast_to((res.counts["x"] != 0), (net.timesteps,) + res.counts["x"].shape)
        else:
            events = res.spikes[p.source]
        brute = 0
        for t in range(net.timesteps):
            for b in range(x.shape[0]):
                for j in np.flatnonzero(events[t, b].reshape(-1)):
                    brute += int(np.count_nonzero(M[:, j]))
        assert res.ops[p.source].sops_out.sum() == brute, p.name
        assert res.ops[p.target].sops_in.sum() == brute, p.name
    for pop in net.populations:
        assert np.array_equal(res.ops[pop.name].events, res.spikes[pop.name].reshape(net.timesteps, -1).sum(axis=1))
        assert res.ops[pop.name].updates == net.timesteps * x.shape[0] * pop.size


def test_counting_does_not_change_results():
    net = tiny_net()
    x = rng.integers(0, 8, (3, 2, 5, 5)).astype(float)
    a, b = simulate(net, x, "pipelined"), simulate(net, x, "pipelined", count_ops=True)
    assert all(np.array_equal(a.counts[k], b.counts[k]) for k in a.counts) and a.ops is None


def test_macs_by_hand(tmp_path):
    onnx.save(make_mlp_onnx(hidden=(12, 8), n_in=6, n_out=3), tmp_path / "m.onnx")
    net, _ = compile_model(tmp_path / "m.onnx")
    assert [L["ann_macs"] for L in net.metadata["layers"]] == [6 * 12, 12 * 8, 8 * 3]
    assert net.metadata["ann_macs_total"] == 6 * 12 + 12 * 8 + 8 * 3
    digits, _ = compile_model(DIGITS_MODEL)
    # conv 1->8 3x3 on 8x8, conv 8->16 3x3 on 8x8, (avgpool: 0), dense 256->64, dense 64->10
    assert digits.metadata["ann_macs_total"] == 8 * 64 * 9 + 16 * 64 * 8 * 9 + 256 * 64 + 64 * 10


@pytest.mark.parametrize("model", ["qiao2015", "horowitz2014", "loihi"])
def test_energy_arithmetic(model):
    net, _ = compile_model(DIGITS_MODEL)
    x = np.load(DIGITS_DATA)["x"][:10]
    em = load_energy_model(model)
    rep = compute_stats(net, x, "pipelined", em)
    res = simulate(net, x, "pipelined", count_ops=True)
    n = len(x)
    total = 0.0
    for L in rep.layers:
        o = res.ops[L.name]
        spikes, sops, upd = o.events.sum() / n, o.sops_in.sum() / n, o.updates / n
        e_op = em.energy_per_input_op_j if L.name == "conv1" else em.energy_per_sop_j
        expect = (e_op * sops + (em.energy_per_spike_j + em.energy_per_update_active_j) * spikes
                  + em.energy_per_update_inactive_j * (upd - spikes))
        assert L.energy_snn_j == pytest.approx(expect, rel=1e-12)
        assert L.energy_ann_j == pytest.approx(L.macs * em.ann_energy_per_mac_j, rel=1e-12)
        total += expect
    assert rep.snn["energy_j"] == pytest.approx(total, rel=1e-12)
    assert rep.ann["energy_j"] == pytest.approx(rep.ann["macs"] * em.ann_energy_per_mac_j)
    if model == "qiao2015":
        assert em.ann_energy_per_mac_j == 12.5e-12 and em.energy_per_sop_j == 77e-15
    if model == "horowitz2014":
        assert em.ann_energy_per_mac_j == 4.6e-12 and em.energy_per_sop_j == 0.9e-12
        # one convention with `snnc eval` (paper 004 Eq. 31): a graded input event is a MAC
        assert em.energy_per_input_op_j == em.ann_energy_per_mac_j


def test_energy_model_files(tmp_path):
    assert set(builtin_energy_models()) >= {"qiao2015", "horowitz2014", "loihi"}
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\n[ann]\nenergy_per_mac_j = 1e-12\n[snn]\nenergy_per_sop_j = 1e-13\n')
    with pytest.raises(EnergyModelError, match="lacks"):
        load_energy_model(str(p))
    with pytest.raises(EnergyModelError, match="unknown energy model"):
        load_energy_model("truenorth")


def test_stats_cli_json(tmp_path):
    b = tmp_path / "d.snnc"
    compile_to_file(DIGITS_MODEL, b)
    r = CliRunner().invoke(cli, ["stats", str(b), "--data", str(DIGITS_DATA), "--samples", "20", "--energy", "qiao2015", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert isinstance(d["ann"]["macs"], int) and d["ann"]["energy_j"] > 0
    assert {"sops_per_sample", "spikes_per_sample", "energy_j"} <= set(d["snn"])
    assert d["energy_model"] == "qiao2015" and d["timesteps"] == 4 and len(d["layers"]) == 4
    assert d["snn"]["sops_per_sample"] == pytest.approx(sum(L["sops_per_sample"] for L in d["layers"]))
