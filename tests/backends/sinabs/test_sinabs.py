"""Sinabs (3.1.3) runs snnc's NIR exports spike for spike like the reference simulator, and NeuroBench
(2.3.0) counts the same synaptic operations and spikes. Skipped without the interop extras
(`make interop` installs them in .venv-interop and runs these tests there)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.interop
sinabs = pytest.importorskip("sinabs")
nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from snnc.backends.nir import export_nir  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.backends.sinabs import SinabsNetwork, SinabsRunError  # noqa: E402
from snnc.compiler.tools.cli import cli  # noqa: E402
from snnc.ir import load  # noqa: E402

from snnc_testutil import DIGITS_DATA  # noqa: E402

X = np.load(DIGITS_DATA)["x"][:48]


@pytest.mark.parametrize("name", ["cnn", "resnet", "maxpool"])
def test_sinabs_equals_the_reference_spike_for_spike(interop_bundles, tmp_path, name):
    net = load(interop_bundles[name])
    export_nir(net, tmp_path / "n.nir")
    sn = SinabsNetwork(tmp_path / "n.nir")          # read back with nir.read
    run = sn.run(net.inputs[0].quantize(X), batch_size=16)
    ref = simulate(net, X, "pipelined", record=True)
    for p in net.populations:
        assert run.spikes[p.name].shape == ref.spikes[p.name].shape
        np.testing.assert_array_equal(run.spikes[p.name], ref.spikes[p.name], err_msg=p.name)
    for r in net.readouts:
        np.testing.assert_array_equal(run.readout[r.name], ref.readout[r.name])
    assert sum(int(s.sum()) for s in ref.spikes.values()) > 1000


def test_sinabs_import_defaults_and_nirtorch_order_differ(interop_bundles, tmp_path):
    """What the settings fix, measured: Sinabs' own import (MultiSpike, min_v_mem = -threshold, v(0) = 0)
    and nirtorch's depth-first node order both change the ResNet's spikes."""
    net = load(interop_bundles["resnet"])
    export_nir(net, tmp_path / "n.nir")
    ref = simulate(net, X[:16], "pipelined", record=True)
    xi = net.inputs[0].quantize(X[:16])
    sn = SinabsNetwork(tmp_path / "n.nir")
    assert sn.order_fixed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        own_order = [n.name for n in sinabs.from_nir(sn.graph, num_timesteps=sn.timesteps).execution_order]
    nodes = {n.name: n for n in sn.module.execution_order}
    sn.module.execution_order = [nodes[k] for k in own_order]
    run = sn.run(xi)
    assert np.count_nonzero(run.spikes["conv3"] != ref.spikes["conv3"]) > 0   # the join misses a branch
    np.testing.assert_array_equal(run.spikes["conv1"], ref.spikes["conv1"])     # before any join: equal
    from sinabs.activation import MultiSpike

    sn = SinabsNetwork(tmp_path / "n.nir")
    for key in sn.populations:                     # back to the import's defaults
        layer = getattr(sn.module, key)
        layer.spike_fn = MultiSpike
        layer.min_v_mem = torch.nn.Parameter(-layer.spike_threshold.detach(), requires_grad=False)
    sn.v0 = {k: np.zeros_like(v) for k, v in sn.v0.items()}
    with pytest.raises(SinabsRunError, match="'conv1': Sinabs emitted values other than 0/1"):
        sn.run(xi)                                 # MultiSpike: several spikes in one step


def test_sinabs_refuses_what_from_nir_does_not_load(tmp_path):
    from snnc.ir import Dense, Input, Network, Population, Readout, SumPool2d

    net = Network([Input("input", (2, 4, 4), qmax=3), Population("a", (2, 2, 2), threshold=np.array(3), levels=4),
                   Readout("out", (2,))],
                  [SumPool2d("input->a", "input", "a", np.array(3), 0, (2, 4, 4), (2, 2, 2)),
                   Dense("a->out", "a", "out", np.ones((2, 8), np.int64), 0, (2, 2, 2), (2,))], 4)
    export_nir(net, tmp_path / "s.nir")
    with pytest.raises(SinabsRunError, match="'input__a_scale' is a Scale; sinabs.from_nir"):
        SinabsNetwork(tmp_path / "s.nir")


def test_cli_verify_against_sinabs(interop_bundles):
    r = CliRunner().invoke(cli, ["verify", str(interop_bundles["resnet"]), "--against", "sinabs",
                                 "--data", str(DIGITS_DATA), "--samples", "20"])
    assert r.exit_code == 0, r.output
    assert "IDENTICAL" in r.output and "0 mismatches" in r.output
    r = CliRunner().invoke(cli, ["verify", str(interop_bundles["cnn"]), "--against", "sinabs", "--samples", "4",
                                 "--schedule", "layerwise"])
    assert r.exit_code == 2 and "only --schedule pipelined" in r.output


def test_neurobench_counts_agree_with_snnc(interop_bundles):
    pytest.importorskip("neurobench")
    from snnc.compiler.tools.interop import neurobench_comparison

    for name in ("cnn", "resnet", "maxpool"):
        net = load(interop_bundles[name])
        cmp = neurobench_comparison(net, X[:40], batch_size=16)
        nb = cmp.neurobench
        assert cmp.sops_agree and cmp.spikes_agree and cmp.macs_are_input, (name, cmp.to_dict())
        assert nb["ac_total"] + nb["mac_total"] == cmp.snnc_sops and cmp.snnc_sumpool_sops == 0
        assert nb["ac_total"] > 0 and nb["mac_total"] > 0
        assert abs(nb["activation_sparsity"] - cmp.snnc_activation_sparsity) < 1e-12   # float average of the same counts


def test_cli_stats_neurobench_json(interop_bundles):
    pytest.importorskip("neurobench")
    r = CliRunner().invoke(cli, ["stats", str(interop_bundles["cnn"]), "--data", str(DIGITS_DATA), "--samples", "10",
                                 "--neurobench", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["neurobench"]["agree"] is True and d["neurobench"]["neurobench"]["neurobench_version"] == "2.3.0"
