"""NIR export (backends/nir): the graph nir.read gives back, its snnc.* metadata, and the refusals.

Checks the written file, not the exporter's objects: every weight is m * 2^e as float32, the bias of
a node sits in exactly one of its incoming NIR nodes, residual joins are edges into one node, grouped
convs are written ungrouped (nir 1.0.8 cannot type a grouped Conv2d with an input_shape), Flatten uses
NIR's batch-free start_dim, and what NIR cannot express is refused by name unless --inexact.
"""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from snnc.backends.nir import NirExportError, ReferenceRun, export_nir, write_reference_data  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import quantize_inputs  # noqa: E402
from snnc.compiler.api import compile_model  # noqa: E402
from snnc.compiler.config import CompileConfig  # noqa: E402
from snnc.ir import (Conv2d, Dense, IFSoftReset, Input, Network, Population, Readout, SumPool2d,  # noqa: E402
                     load)
from snnc.ir import nirmeta as M  # noqa: E402

from snnc_testutil import DIGITS_DATA, DIGITS_MODEL  # noqa: E402


def _read(net, tmp_path, **kw):
    path = tmp_path / "net.nir"
    exp = export_nir(net, path, **kw)
    return exp, nir.read(str(path))


@pytest.mark.parametrize("name", ["cnn", "resnet", "maxpool"])
def test_export_reads_back_with_the_networks_values(interop_bundles, tmp_path, name):
    net = load(interop_bundles[name])
    exp, g = _read(net, tmp_path)
    assert exp.exact and int(g.metadata[M.G_EXACT]) == 1
    assert M.is_snnc_graph(g.metadata) and int(g.metadata[M.G_TIMESTEPS]) == net.timesteps
    assert exp.float32_bound < 2**24 and int(g.metadata[M.G_FLOAT32_EXACT]) == 1
    for p in net.projections:
        node = g.nodes[exp.keys[p.name]]
        assert M.text(node.metadata[M.NAME]) == p.name and int(node.metadata[M.EXPONENT]) == p.exponent
        np.testing.assert_array_equal(np.asarray(node.metadata[M.MANTISSA]), p.weight)
        w = (p.weight.astype(np.int64) << p.exponent)
        if isinstance(p, Dense):
            assert type(node).__name__ == "Affine"
            np.testing.assert_array_equal(node.weight, w.astype(np.float32))
            assert node.weight.dtype == np.float32
        elif isinstance(p, Conv2d):
            assert type(node).__name__ == "Conv2d" and int(node.groups) == 1
            assert tuple(int(s) for s in node.input_shape) == tuple(p.in_shape[1:])
            if p.groups == 1:
                np.testing.assert_array_equal(node.weight, w.astype(np.float32))
            else:  # block-diagonal: the same map, ungrouped
                cg, og = p.in_shape[0] // p.groups, p.weight.shape[0] // p.groups
                for gi in range(p.groups):
                    blk = node.weight[gi * og:(gi + 1) * og, gi * cg:(gi + 1) * cg]
                    np.testing.assert_array_equal(blk, w[gi * og:(gi + 1) * og])
                assert np.count_nonzero(node.weight) == np.count_nonzero(w)
    for pop in net.populations:
        node = g.nodes[exp.keys[pop.name]]
        assert type(node).__name__ == "IF"
        assert M.text(node.metadata[M.RESET]) == "subtract" and M.text(node.metadata[M.COMPARE]) == ">="
        np.testing.assert_array_equal(np.asarray(node.metadata[M.V0]), pop.v0)
        thr = np.broadcast_to(pop.threshold.reshape((-1,) + (1,) * (len(pop.shape) - 1)) if pop.threshold.ndim
                              else pop.threshold, pop.shape)
        np.testing.assert_array_equal(node.v_threshold, thr.astype(np.float32))
        assert not np.any(node.v_reset) and np.all(node.r == 1)
    # the bias of every node lies in exactly one incoming NIR node
    for node in net.nodes:
        if not isinstance(node, (Population, Readout)):
            continue
        carriers = [p for p in net.incoming(node.name)
                    if np.any(getattr(g.nodes[exp.keys[p.name]], "bias", np.zeros(1)) != 0)]
        assert len(carriers) == (1 if np.any(node.bias != 0) else 0), node.name


def test_residual_join_is_edges_into_one_node(interop_bundles, tmp_path):
    net = load(interop_bundles["resnet"])
    exp, g = _read(net, tmp_path)
    into_conv3 = sorted(a for a, b in g.edges if b == exp.keys["conv3"])
    assert into_conv3 == sorted(exp.keys[p.name] for p in net.incoming("conv3")) and len(into_conv3) == 2


def test_flatten_counts_dims_without_batch(interop_bundles, tmp_path):
    net = load(interop_bundles["cnn"])
    exp, g = _read(net, tmp_path)
    flats = [n for n in g.nodes.values() if type(n).__name__ == "Flatten"]
    assert len(flats) == 1 and int(flats[0].start_dim) == 0
    np.testing.assert_array_equal(flats[0].input_type["input"], [16, 8, 8])
    np.testing.assert_array_equal(flats[0].output_type["output"], [1024])


def _tiny(weight=2, pool_weight=None, padding=(0, 0, 0, 0), bias=0):
    inp = Input("input", (2, 4, 4), scale=1.0, qmin=0, qmax=3)
    a = Population("a", (3, 4, 4), threshold=np.array(5), v0=np.array(2), bias=np.array(bias), levels=4)
    projs = [Conv2d("input->a", "input", "a", np.full((3, 2, 3, 3), weight), 0, (2, 4, 4), (3, 4, 4),
                    padding=padding if padding != (0, 0, 0, 0) else (1, 1, 1, 1))]
    nodes = [inp, a]
    if pool_weight is not None:
        nodes.append(Population("b", (3, 2, 2), threshold=np.array([3, 4, 5]), v0=np.array(1), bias=np.array(bias),
                                levels=4))
        projs.append(SumPool2d("a->b", "a", "b", np.array(pool_weight), 0, (3, 4, 4), (3, 2, 2)))
        nodes.append(Readout("out", (4,)))
        projs.append(Dense("b->out", "b", "out", np.ones((4, 12), np.int64), 0, (3, 2, 2), (4,)))
    else:
        nodes.append(Readout("out", (4,)))
        projs.append(Dense("a->out", "a", "out", np.ones((4, 48), np.int64), 0, (3, 4, 4), (4,)))
    return Network(nodes, projs, 4)


def test_sumpool_with_weight_gets_a_scale_and_a_bias_slot(tmp_path):
    exp, g = _read(_tiny(pool_weight=3), tmp_path)
    kinds = {k: type(n).__name__ for k, n in g.nodes.items()}
    assert kinds[exp.keys["a->b"]] == "SumPool2d" and kinds["a__b_scale"] == "Scale"
    np.testing.assert_array_equal(g.nodes["a__b_scale"].scale, np.full((3, 2, 2), 3, np.float32))
    # with a bias on b the sum-pool is the only slot: written as a depthwise (ungrouped) conv
    exp, g = _read(_tiny(pool_weight=3, bias=2), tmp_path)
    node = g.nodes[exp.keys["a->b"]]
    assert type(node).__name__ == "Conv2d" and M.text(node.metadata[M.KIND]) == "SumPool2d"
    np.testing.assert_array_equal(node.bias, np.full(3, 2, np.float32))


def test_refusals_name_the_node(tmp_path):
    with pytest.raises(NirExportError, match="'input->a'.*not symmetric"):
        export_nir(_tiny(padding=(2, 2, 0, 0)), tmp_path / "x.nir")
    with pytest.raises(NirExportError, match="2\\^24"):
        export_nir(_tiny(weight=2**25), tmp_path / "x.nir")
    assert not any(tmp_path.iterdir())  # nothing written, no temporary left
    exp = export_nir(_tiny(weight=2**25), tmp_path / "x.nir", inexact=True)
    g = nir.read(str(tmp_path / "x.nir"))
    assert not exp.exact and int(g.metadata[M.G_EXACT]) == 0
    assert any("2^24" in r for r in M.loads(g.metadata[M.G_INEXACT], "x"))


def test_dual_threshold_refused_unless_inexact(tmp_path):
    net, _ = compile_model(DIGITS_MODEL, CompileConfig(neuron="dual-threshold", timesteps=2))
    with pytest.raises(NirExportError, match="population 'conv1' has DualThreshold neurons.*--inexact"):
        export_nir(net, tmp_path / "d.nir")
    exp = export_nir(net, tmp_path / "d.nir", inexact=True)
    assert not exp.exact and len(exp.reasons) == 3


def test_reference_data_rides_along(interop_bundles, tmp_path):
    net = load(interop_bundles["cnn"])
    x = np.load(DIGITS_DATA)["x"][:5]
    exp = export_nir(net, tmp_path / "n.nir")
    ref = simulate(net, x, "pipelined", record=True)
    write_reference_data(exp, tmp_path / "n.data.nir", ReferenceRun(quantize_inputs(net, x), ref.spikes, ref.readout),
                         net.timesteps)
    data = nir.read_data(str(tmp_path / "n.data.nir"))
    for p in net.populations:
        got = data.nodes[exp.keys[p.name]].observables["spikes"].data        # (N, T, neurons) bool
        np.testing.assert_array_equal(np.moveaxis(got, 1, 0).reshape(ref.spikes[p.name].shape), ref.spikes[p.name])
    fin = data.nodes[exp.keys["readout"]].observables["final_value"].data[:, 0]
    np.testing.assert_array_equal(fin, ref.readout["readout"])
    xin = data.nodes[exp.keys["input"]].observables["value"].data
    assert xin.shape == (5, net.timesteps, 64) and np.all(xin == xin[:, :1])


def test_cli_export(interop_bundles, tmp_path):
    from click.testing import CliRunner

    from snnc.compiler.tools.cli import cli

    r = CliRunner().invoke(cli, ["export", str(interop_bundles["cnn"]), "--format", "nir", "-o", str(tmp_path / "c.nir"),
                                 "--with-data", str(DIGITS_DATA), "--samples", "3"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "c.nir").is_file() and (tmp_path / "c.data.nir").is_file()
    assert "exact" in r.output and "reference spike trains of 3 samples" in r.output
    r = CliRunner().invoke(cli, ["export", str(interop_bundles["cnn"]), "--format", "nir", "-o",
                                 str(tmp_path / "nodir" / "c.nir")])
    assert r.exit_code == 2 and "does not exist" in r.output
