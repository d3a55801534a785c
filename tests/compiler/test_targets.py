from importlib import resources

import pytest

from snnc.compiler.errors import TargetError
from snnc.compiler.targets import builtin_targets, load_target


def test_builtin_profiles():
    assert {"loihi", "loihi2"} <= set(builtin_targets())
    t = load_target("loihi")
    assert t.numeric.weight_max == 127 and t.numeric.weight_min == -128 and t.numeric.state_max == 2**23 - 1
    assert t.core.neurons == 1024 and t.core.synapse_memory_bits == 16384 * 64 and t.cores_per_chip == 128


def test_user_profile_and_its_errors(tmp_path):
    src = (resources.files("snnc.compiler.targets") / "loihi.toml").read_text()
    p = tmp_path / "board.toml"
    p.write_text(src.replace("state_bits = 24", "state_bits = 32").replace('name = "loihi"', 'name = "board"'))
    assert load_target(str(p)).numeric.state_bits == 32
    p.write_text(src.replace("state_bits = 24", 'state_bits = "many"'))
    with pytest.raises(TargetError, match="state_bits"):
        load_target(str(p))
    p.write_text("[numeric\n")
    with pytest.raises(TargetError, match="not valid TOML"):
        load_target(str(p))
    p.write_text(src.replace("[core]", "[kore]"))
    with pytest.raises(TargetError, match=r"unknown section or key 'kore'"):
        load_target(str(p))
    p.write_text(src.split("\n[core]")[0] + "\n[chip]\ncores = 128\n")
    with pytest.raises(TargetError, match=r"missing section \[core\]"):
        load_target(str(p))
    with pytest.raises(TargetError, match="unknown target .truenorth."):
        load_target("truenorth")


def test_mapping_sections_and_systems():
    t = load_target("loihi")
    assert t.core.input_axons == 4096 and t.core.output_axons == 4096 and t.core.neuron_memory_bits == 0
    assert t.synapse.word_bits == 64 and t.synapse.group_synapses == 64 and t.synapse.group_overhead_bits == 10
    assert t.synapse.index_bits == (6, 7, 8, 9, 10, 11, 12) and t.synapse.atoms_per_axon == 512
    assert t.system_chips("kapoho_bay") == 2 and t.system_chips("Pohoiki-Springs") == 768 and t.system_chips("nahuku32") == 32
    t2 = load_target("loihi2")
    assert t2.cores_per_chip == 128 and t2.graded_spikes and t2.core.neuron_memory_bits > 0
    assert t2.system_chips("kapoho_point") == 8 and t2.system_chips("hala_point") == 1152
    with pytest.raises(TargetError, match="unknown system 'pohoiki_springs' for target loihi2"):
        t2.system_chips("pohoiki_springs")
    assert t.synapse.index_width(1024) == 10 and t.synapse.index_width(5000) is None


def test_shipped_profiles_cite_sources_and_mark_unconfirmed():
    for name in builtin_targets():
        text = (resources.files("snnc.compiler.targets") / f"{name}.toml").read_text()
        assert "Sources" in text or "nengo-loihi" in text
    text2 = (resources.files("snnc.compiler.targets") / "loihi2.toml").read_text()
    for key in ("neurons = 8192", "input_axons = 4096", "neuron_memory_bits"):
        line = next(l for l in text2.splitlines() if l.startswith(key))
        assert "UNCONFIRMED" in line, line


def test_profile_overrides(tmp_path):
    p = tmp_path / "board.toml"
    p.write_text("[core]\nneurons = 512\n[systems]\nmy_board = 3\n")
    t = load_target("loihi2", str(p))
    assert t.core.neurons == 512 and t.core.input_axons == 4096 and t.name == "loihi2"
    assert t.system_chips("my_board") == 3 and t.system_chips("hala_point") == 1152 and t.profile == str(p)
    p.write_text("[core]\nneuronz = 512\n")
    with pytest.raises(TargetError, match=r"unknown key 'neuronz' in \[core\]"):
        load_target("loihi", str(p))
    p.write_text("[synapse]\nindex_bits = 6\n")
    with pytest.raises(TargetError, match="index_bits"):
        load_target("loihi", str(p))
    p.write_text("[core]\nneurons = 0\n")
    with pytest.raises(TargetError, match="neurons"):
        load_target("loihi", str(p))
    with pytest.raises(TargetError, match="does not exist"):
        load_target("loihi", str(tmp_path / "missing.toml"))
