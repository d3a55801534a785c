"""Every entry of every registry is listed in docs/architecture.md's "Registries" section (a new
entry fails here until the contributor's map names it)."""

import re

import pytest

from snnc.backends import available_backends
from snnc.compiler.energy import builtin_energy_models
from snnc.compiler.integerize import INTEGERIZERS
from snnc.compiler.lowering import FRONTS
from snnc.compiler.metadata import Conversion
from snnc.compiler.passes import default_passes
from snnc.compiler.pipeline import STAGE_NAMES
from snnc.compiler.targets import builtin_targets
from snnc.ir import CODINGS, NEURON_MODELS, NODE_TYPES, PROJECTION_TYPES, Schedule
from snnc.ir.arithmetic import PROJECTION_MAPS
from snnc_testutil import REPO


def _section() -> str:
    doc = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    return doc.split("## Registries", 1)[1].split("\n## ", 1)[0]


REGISTRIES = {
    "NEURON_MODELS": lambda: list(NEURON_MODELS),
    "NODE_TYPES": lambda: list(NODE_TYPES),
    "PROJECTION_TYPES": lambda: list(PROJECTION_TYPES),
    "PROJECTION_MAPS": lambda: [c.__name__ for c in PROJECTION_MAPS],
    "CODINGS": lambda: list(CODINGS),
    "Schedule": lambda: [s.value for s in Schedule],
    "backends": available_backends,
    "STAGES": lambda: list(STAGE_NAMES),
    "default_passes()": lambda: [type(p).__name__ for p in default_passes()],
    "Conversion": lambda: [c.value for c in Conversion],
    "FRONTS": lambda: sorted({f"{name}_FRONT" for name in ("QUANTIZED", "TRAINING_FREE")}),
    "Front.layers": lambda: sorted({op.__name__ for f in FRONTS.values() for op in f.layers}),
    "INTEGERIZERS": lambda: [c.__name__ for c in INTEGERIZERS],
    "built-in targets": builtin_targets,
    "built-in energy models": builtin_energy_models,
}


@pytest.mark.parametrize("registry", sorted(REGISTRIES))
def test_every_entry_is_documented(registry):
    text = _section()
    assert f"`{registry}`" in text or registry in text, f"the Registries section lacks the row of {registry}"
    missing = [e for e in REGISTRIES[registry]() if not re.search(rf"`{re.escape(str(e))}`", text)]
    assert not missing, f"docs/architecture.md, Registries, {registry}: add {missing}"


def test_the_fronts_are_the_ones_the_registry_holds():
    from snnc.compiler.lowering.quantized import QUANTIZED_FRONT
    from snnc.compiler.lowering.relu import TRAINING_FREE_FRONT

    assert set(map(id, FRONTS.values())) == {id(QUANTIZED_FRONT), id(TRAINING_FREE_FRONT)}
