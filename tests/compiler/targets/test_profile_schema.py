"""Target profiles and energy models against their schemas: unknown keys and sections named, types
without coercion, ranges with units, contradictions between figures."""

import pytest

from snnc.compiler.energy import EnergyModelError, builtin_energy_models, load_energy_model
from snnc.compiler.errors import TargetError
from snnc.compiler.targets import builtin_targets, load_target
from snnc.compiler.targets.schema import SECTIONS, describe


@pytest.mark.parametrize("text,msg", [
    ("[numeric]\nbias_mant_bits = 0\n", r"\[numeric\] bias_mant_bits = 0 is out of range; expected int in 2..48 \(bits\)"),
    ("[core]\nneurons = 1e20\n", r"\[core\] neurons is the float 1e\+20; expected int"),
    ("[core]\nneurons = 4611686018427387904\n", r"\[core\] neurons = 4611686018427387904 is out of range"),
    ("[numeric]\nweight_exp_max = 1000\n", r"weight_exp_max = 1000 is out of range"),
    ("[numeric]\ninput_bits = 0\n", r"input_bits = 0 is out of range"),
    ("[numeric]\nstate_bits = 80\n", r"state_bits = 80 is out of range; expected int in 8..62"),
    ("[numeric]\nweight_bits = \"8\"\n", r"weight_bits is the string '8'"),
    ("[numeric]\nweight_bits = true\n", r"weight_bits is the boolean true"),
    ("[core]\nneurons = nan\n", r"neurons is the float nan \(not a finite number\)"),
    ("[core]\nneurons = inf\n", r"neurons is the float inf"),
    ("[numeric]\nweight_exp_min = 9\n", r"weight_exp_min = 9 is above weight_exp_max = 7"),
    ("[numeric]\nweight_bits = 24\n", r"gives weights up to .* beyond the state_bits = 24 state"),
    ("[numeric]\nbias_mant_bits = 24\n", r"gives biases up to .* beyond the state_bits = 24 state"),
    ("[bogus]\nx = 1\n", r"unknown section or key 'bogus'"),
    ("[numeric]\nweight_bitz = 8\n", r"unknown key 'weight_bitz' in \[numeric\]"),
    ("colour = \"red\"\n", r"unknown section or key 'colour'"),
    ("numeric = 3\n", r"'numeric' must be a section \[numeric\]"),
    ("[synapse]\nindex_bits = []\n", r"index_bits has 0 entries"),
    ("[synapse]\nindex_bits = [100]\n", r"index_bits\[0\] = 100 is out of range"),
    ("[chip]\ncores = 0\n", r"\[chip\] cores = 0 is out of range"),
    ("[systems]\nnone = 0\n", r"\[systems\] none = 0 is out of range"),
    ("name = 5\n", r"name is 5; expected str"),
])
def test_profile_values_are_checked_and_named(tmp_path, text, msg):
    p = tmp_path / "p.toml"
    p.write_text(text)
    with pytest.raises(TargetError, match=msg) as e:
        load_target("loihi", str(p))
    assert "p.toml" in str(e.value) and "\n" not in str(e.value)


def test_profile_files_must_be_small_regular_files(tmp_path):
    import os

    (tmp_path / "d.toml").mkdir()
    with pytest.raises(TargetError, match="is a folder"):
        load_target("loihi", str(tmp_path / "d.toml"))
    os.mkfifo(tmp_path / "f.toml")
    with pytest.raises(TargetError, match="not a regular file"):
        load_target("loihi", str(tmp_path / "f.toml"))
    (tmp_path / "big.toml").write_text("# " + "x" * (2 << 20))
    with pytest.raises(TargetError, match="at most"):
        load_target("loihi", str(tmp_path / "big.toml"))
    (tmp_path / "deep.toml").write_text("a = " + "[" * 100000 + "]" * 100000 + "\n")
    with pytest.raises(TargetError, match="deep.toml"):
        load_target("loihi", str(tmp_path / "deep.toml"))


def test_shipped_targets_and_energy_models_pass_their_schemas():
    for t in builtin_targets():
        load_target(t)
    for e in builtin_energy_models():
        m = load_energy_model(e)
        assert 0 < m.ann_energy_per_mac_j <= 1e-6


def test_schema_table_lists_every_key():
    table = describe()
    for sec, keys in SECTIONS.items():
        for k in keys:
            assert f"| [{sec}] | {k}" in table


ENERGY = """name = "mine"
source = "test"
[ann]
energy_per_mac_j = 4.6e-12
[snn]
energy_per_sop_j = 0.9e-12
energy_per_input_op_j = 0.9e-12
energy_per_spike_j = 0.0
energy_per_update_active_j = 0.0
energy_per_update_inactive_j = 0.0
"""


@pytest.mark.parametrize("text,msg", [
    ("ann = 3\n[snn]\n", r"\[ann\] must be a section .* got 3"),
    (ENERGY.replace("= 0.9e-12\nenergy_per_input", "= nan\nenergy_per_input"), r"energy_per_sop_j = nan is not a finite"),
    (ENERGY.replace("= 0.9e-12\nenergy_per_input", "= inf\nenergy_per_input"), r"energy_per_sop_j = inf is not a finite"),
    (ENERGY.replace("= 0.9e-12\nenergy_per_input", "= true\nenergy_per_input"), r"energy_per_sop_j must be a number of joules, got the boolean true"),
    (ENERGY.replace("= 0.9e-12\nenergy_per_input", "= -1e-12\nenergy_per_input"), r"outside 0..1e-06 J"),
    (ENERGY.replace("= 0.9e-12\nenergy_per_input", "= \"1 pJ\"\nenergy_per_input"), r"got the string '1 pJ'"),
    (ENERGY.replace("= 0.9e-12\nenergy_per_input", "= 1e6\nenergy_per_input"), r"1e\+06 J is outside"),
    (ENERGY.replace("energy_per_spike_j = 0.0\n", ""), r"\[snn\] lacks energy_per_spike_j"),
    (ENERGY + "energy_per_thought_j = 1e-12\n", r"unknown key 'energy_per_thought_j' in \[snn\]"),
    (ENERGY + "[gpu]\nwatts = 300\n", r"unknown section or key 'gpu'"),
    ("name = 3\n" + ENERGY.split("\n", 1)[1], r"name must be a string"),
])
def test_energy_models_are_checked_and_named(tmp_path, text, msg):
    p = tmp_path / "e.toml"
    p.write_text(text)
    with pytest.raises(EnergyModelError, match=msg) as e:
        load_energy_model(str(p))
    assert "e.toml" in str(e.value) and "\n" not in str(e.value)


def test_a_valid_energy_model(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text(ENERGY)
    m = load_energy_model(str(p))
    assert m.name == "mine" and m.energy_per_sop_j == 0.9e-12 and m.ann_energy_per_mac_j == 4.6e-12
