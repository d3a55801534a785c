"""The two schedules a network runs in (docs/ir.md, "Schedule"), and what they take in steps.

* ``PIPELINED``: every layer steps every step; an inference takes T steps.
* ``LAYERWISE``: each layer integrates its whole input (the constant expected current) before the
  next starts; an inference takes T per layer on the longest path (each population's own steps
  with mixed levels).
"""

from __future__ import annotations

from enum import Enum

from .graph import Network
from .nodes import Population


class Schedule(str, Enum):
    PIPELINED = "pipelined"
    LAYERWISE = "layerwise"


def layerwise_latency(net: Network) -> int:
    """Steps of one layerwise inference: the longest input-to-output path of the populations' own
    steps (T each without mixed levels: T * depth)."""
    done: dict[str, int] = {}
    for node in net.ordered_nodes():
        start = max((done[p.source] for p in net.incoming(node.name)), default=0)
        done[node.name] = start + (net.steps(node) if isinstance(node, Population) else 0)
    return max(done.values(), default=0)
