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
    with pytest.raises(TargetError, match=r"missing section \[core\]"):
        load_target(str(p))
    with pytest.raises(TargetError, match="unknown target .truenorth."):
        load_target("truenorth")
