"""The transformer's graded units on Lava (``GradedFunctionProcess``, backends/lava/processes.py): on the
tiny transformer block of tests/transformer_nets.py (LayerNorm, Q K^T, softmax, A V, GELU / SiLU, signed
multi-threshold populations), message for message, count for count and readout for readout equal to
the reference simulator, in both codings."""

from __future__ import annotations

import numpy as np
import pytest

from snnc.backends.base import BackendUnavailableError, UnsupportedNetworkError

pytestmark = pytest.mark.lava

try:
    from snnc.backends.lava.compat import ensure_lava

    ensure_lava()
except BackendUnavailableError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f"lava-nc not available: {e}", allow_module_level=True)

from snnc_testutil import assert_same_run  # noqa: E402
from transformer_nets import CODINGS, block_inputs, transformer_block  # noqa: E402

from snnc.backends.lava.backend import LavaBackend  # noqa: E402
from snnc.backends.lava.emit import build  # noqa: E402
from snnc.backends.reference import simulate  # noqa: E402
from snnc.ir import GradedFunctionUnit  # noqa: E402


@pytest.mark.parametrize("coding", sorted(CODINGS))
@pytest.mark.parametrize("function", ["gelu", "silu"])
def test_transformer_units_send_the_reference_messages(coding, function):
    net = transformer_block(CODINGS[coding](), T=4, function=function)
    x = block_inputs(3)
    ref = simulate(net, x, "pipelined", record=True)
    units = [n.name for n in net.nodes if isinstance(n, GradedFunctionUnit)]
    assert len(units) == 5 and all(np.any(ref.spikes[u] != 0) for u in units)
    got = LavaBackend().run(net, x, "pipelined", record=True)
    assert set(units) <= set(got.spikes)
    assert_same_run(ref, got)


def test_layerwise_is_refused_naming_the_unit():
    with pytest.raises(UnsupportedNetworkError, match="graded .*unit 'ln'.*pipelined"):
        build(transformer_block(), block_inputs(1), "layerwise")
