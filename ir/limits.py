"""The resource budget (docs/reliability.md, "Resource budget"): no input of size S drives snnc's memory
above ``memory_budget(S) = max(1 GiB, 50 * S)`` or runs unbounded. Every reader checks what a file
*declares* (array shapes in headers, zip member sizes, timesteps) against these limits before it
allocates anything, so a small file cannot claim gigabytes.

The figures are data, in one place; readers take a ``Limits`` so a caller can tighten or widen them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

MEMORY_FLOOR = 1 * GiB
MEMORY_PER_INPUT_BYTE = 50


def memory_budget(input_bytes: int) -> int:
    """The most memory an input of ``input_bytes`` may drive snnc to: max(1 GiB, 50 x its size)."""
    return max(MEMORY_FLOOR, MEMORY_PER_INPUT_BYTE * max(int(input_bytes), 0))


def file_size(path: str | os.PathLike) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@dataclass(frozen=True)
class Limits:
    """What one input file may declare. ``array_share`` is the fraction of the memory budget the
    decoded arrays of one file may take (the rest is for the work done on them)."""

    max_timesteps: int = 1 << 16          # T of a network (reference simulation is O(T))
    max_header_bytes: int = 64 * MiB      # a bundle's JSON header, uncompressed
    max_json_depth: int = 64              # nesting of any JSON snnc reads
    max_members: int = 1 << 16            # members of a zip archive (.snnc bundle, .npz data file)
    max_nodes: int = 1 << 16              # nodes + projections of a network
    max_neurons: int = 1 << 24            # values held by all nodes of a network (sum of their sizes)
    max_toml_bytes: int = 1 * MiB         # a target profile or energy model
    array_share: float = 0.5

    def __post_init__(self) -> None:
        for f in ("max_timesteps", "max_header_bytes", "max_json_depth", "max_members", "max_nodes",
                  "max_toml_bytes", "max_neurons"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"Limits.{f} must be an int >= 1, got {v!r}")
        if not 0 < self.array_share <= 1:
            raise ValueError(f"Limits.array_share must be in (0, 1], got {self.array_share!r}")

    def array_bytes(self, input_bytes: int) -> int:
        """The most decoded array bytes one input file of ``input_bytes`` may declare."""
        return int(memory_budget(input_bytes) * self.array_share)


DEFAULT_LIMITS = Limits()
