"""Pass infrastructure: a pass has ``match`` (find sites) separate from ``transform`` (rewrite one).

``run_passes`` applies a list of passes repeatedly until none matches (a fixed point) or the
iteration cap is reached, which is an internal error (a pass that never converges).
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from ..frontend.float_graph import FGraph

log = logging.getLogger(__name__)


class Pass:
    """One job. Subclasses implement ``match`` and ``transform``."""

    name: str = "pass"

    def match(self, g: FGraph) -> list[Any]:
        raise NotImplementedError

    def transform(self, g: FGraph, site: Any) -> None:
        raise NotImplementedError

    def apply_once(self, g: FGraph) -> bool:
        """Transform the first matching site; True if anything changed."""
        sites = self.match(g)
        if not sites:
            return False
        self.transform(g, sites[0])
        return True


class PassDidNotConverge(RuntimeError):
    pass


def run_passes(g: FGraph, passes: Iterable[Pass], max_iterations: int | None = None) -> dict[str, int]:
    """Run ``passes`` to a fixed point; returns how often each pass fired. The cap on rewrites scales
    with the graph (default 1000 + 4 per op): a valid model of n ops may need O(n) rewrites (1001
    Identity nodes need 1001), only a pass that keeps matching a graph it already rewrote hits it."""
    passes = list(passes)
    if max_iterations is None:
        max_iterations = 1000 + 4 * len(g.ops)
    fired = {p.name: 0 for p in passes}
    for _ in range(max_iterations):
        changed = False
        for p in passes:
            while p.apply_once(g):
                fired[p.name] += 1
                changed = True
                if sum(fired.values()) > max_iterations:
                    raise PassDidNotConverge(f"pass '{p.name}' still matches after {max_iterations} rewrites")
        if not changed:
            log.debug("passes reached a fixed point: %s", fired)
            return fired
    raise PassDidNotConverge(f"passes did not reach a fixed point in {max_iterations} rounds")
