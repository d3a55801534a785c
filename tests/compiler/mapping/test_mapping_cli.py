"""compile places the network; snnc map reads the placement back; the too-big cases fail cleanly."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from snnc.compiler.api import compile_imported, import_model
from snnc.compiler.tools.runner import reference_runner
from snnc.compiler.tools.cli import cli
from snnc.compiler.config import CompileConfig
from snnc.compiler.errors import MappingError
from snnc_testutil import DIGITS_DATA, DIGITS_MODEL


@pytest.fixture(scope="module")
def digits():
    return import_model(DIGITS_MODEL)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "d.snnc"
    r = CliRunner().invoke(cli, ["compile", str(DIGITS_MODEL), "--target", "loihi", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "placed on" in r.output
    return out


def test_map_json(bundle):
    r = CliRunner().invoke(cli, ["map", str(bundle), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["target"] == "loihi" and d["chips_used"] == 1
    assert isinstance(d["cores_used"], int) and isinstance(d["lower_bound_cores"], int)
    assert d["cores_used"] / d["lower_bound_cores"] <= 1.15
    assert len(d["cores"]) == d["cores_used"]
    for c in d["cores"]:
        assert {"core", "chip", "population", "slice", "neurons", "synapse_bits", "in_axons", "out_axons"} <= set(c)
        assert c["neurons"] <= d["budgets"]["neurons"] and c["synapse_bits"] <= d["budgets"]["memory_bits"]
    assert sum(c["neurons"] for c in d["cores"]) == 1610   # 512 + 1024 + 64 + 10 readout accumulators
    assert {p["population"] for p in d["populations"]} == {"conv1", "conv2", "fc1", "readout"}


def test_map_text_and_plot(bundle, tmp_path):
    png = tmp_path / "cores.png"
    r = CliRunner().invoke(cli, ["map", str(bundle), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert "lower bound" in r.output and "synapse memory bits per core" in r.output and "conv2" in r.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_too_big_for_the_chips(tmp_path):
    prof = tmp_path / "one_core_chips.toml"
    prof.write_text("[chip]\ncores = 1\n")
    out = tmp_path / "x.snnc"
    r = CliRunner().invoke(cli, ["compile", str(DIGITS_MODEL), "--chips", "1", "--profile", str(prof), "-o", str(out)])
    assert r.exit_code == 2
    msg = r.output
    assert "needs 2 cores" in msg and "--chips 1 offers 1 chip(s)" in msg and "--chips 2" in msg and "loihi2" in msg
    assert "conv2" in msg and not out.exists()


def test_neuron_too_big_names_population_and_budget(tmp_path):
    prof = tmp_path / "narrow.toml"
    prof.write_text("[core]\ninput_axons = 64\n[synapse]\natoms_per_axon = 1\n")
    out = tmp_path / "x.snnc"
    r = CliRunner().invoke(cli, ["compile", str(DIGITS_MODEL), "--profile", str(prof), "-o", str(out)])
    assert r.exit_code == 2
    assert "'fc1'" in r.output and "1,024 input axons per core" in r.output and "offers 64" in r.output
    assert not out.exists()


def test_systems_and_targets(digits):
    net = compile_imported(digits, CompileConfig(system="kapoho_bay"))
    pl = net.metadata["placement"]
    assert pl["system"] == "kapoho_bay" and pl["chips_available"] == 2 and pl["chips_used"] == 1
    assert net.metadata["config"]["system"] == "kapoho_bay"
    with pytest.raises(Exception, match="unknown system 'hala_point' for target loihi"):
        compile_imported(digits, CompileConfig(system="hala_point"))
    net2 = compile_imported(digits, CompileConfig(target="loihi2", system="hala_point"))
    assert net2.metadata["placement"]["target"] == "loihi2" and net2.metadata["placement"]["cores_used"] >= 1


def test_calibration_rates_weight_the_traffic(digits):
    net = compile_imported(digits, CompileConfig(calibration_data=str(DIGITS_DATA), calibration_samples=8),
                           runner=reference_runner)
    pl = net.metadata["placement"]
    assert pl["traffic_basis"] == "rates"
    fan = compile_imported(digits, CompileConfig()).metadata["placement"]
    assert fan["traffic_basis"] == "fan-out" and fan["pieces"] == pl["pieces"]
    assert pl["total_traffic"] < fan["total_traffic"]


def test_config_round_trip_and_validation():
    c = CompileConfig(chips=3, system="nahuku32", profile="b.toml")
    assert CompileConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="chips"):
        CompileConfig(chips=0)


def test_more_chips_than_one_uses_metis_or_sequential(digits, tmp_path):
    prof = tmp_path / "small.toml"
    prof.write_text("[chip]\ncores = 1\n")
    net = compile_imported(digits, CompileConfig(profile=str(prof)))
    pl = net.metadata["placement"]
    assert pl["chips_used"] == pl["cores_used"] == 2
    assert pl["chip_placement"] in ("metis", "sequential")
    assert sorted(pl["core_chip"]) == [0, 1]
    assert pl["inter_chip_traffic"] <= pl["total_traffic"]
    with pytest.raises(MappingError):
        compile_imported(digits, CompileConfig(profile=str(prof), chips=1))


def test_map_without_placement(digits, tmp_path):
    from snnc.ir import save

    net = compile_imported(digits, CompileConfig())
    del net.metadata["placement"]
    path = tmp_path / "old.snnc"
    save(net, path)
    r = CliRunner().invoke(cli, ["map", str(path)])
    assert r.exit_code == 2 and "holds no placement" in r.output
