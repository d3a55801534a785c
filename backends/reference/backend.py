"""The reference simulator as a registered backend (``get_backend("reference")``)."""

from __future__ import annotations

from snnc.backends.base import SimResult
from snnc.ir import Network, Schedule

from .simulator import simulate


class ReferenceBackend:
    name = "reference"

    def run(self, net: Network, x, schedule: Schedule, record: bool = False) -> SimResult:
        return simulate(net, x, schedule=schedule, record=record)
