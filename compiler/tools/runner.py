"""The runner the compiler's data-driven choices use (``snnc.compiler.calibrate.Runner``), wired to a backend."""

from __future__ import annotations

import numpy as np

from snnc.backends import SimResult, get_backend
from snnc.ir import Network, Schedule


def reference_runner(net: Network, x: np.ndarray, schedule: Schedule) -> SimResult:
    """Run ``net`` on float inputs ``x`` in the reference simulator (the oracle)."""
    return get_backend("reference").run(net, x, schedule)
