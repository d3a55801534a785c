"""Every kind of model compiles to the same network as when the digests were taken (issue 15): the
IR array for array and field for field, the placement (timings excluded) and the layer records."""

import json

import pytest

from golden_networks import GOLDEN, compute


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    return compute(tmp_path_factory.mktemp("golden"))


def test_golden_networks_are_identical(computed):
    want = json.loads(GOLDEN.read_text())
    missing = sorted(set(want) - set(computed))
    if missing:  # only the Brevitas cases depend on an optional package
        assert all(k.startswith("brevitas_") for k in missing), missing
    changed = {k: [part for part in ("ir", "placement", "layers") if want[k][part] != v[part]]
               for k, v in computed.items() if want.get(k) != v}
    assert not changed, f"compiled networks changed (network: parts): {changed}"
    assert len(computed) >= 25
