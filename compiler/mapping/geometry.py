"""Slices of a population: a 3-D view (C, H, W) of its shape and a regular tiling of that view."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


def view3(shape) -> tuple[int, int, int]:
    """A node's shape as (C, H, W): (n,) -> (n, 1, 1), (a, b) -> (a, b, 1), more dims fold into H."""
    s = tuple(int(v) for v in shape)
    if len(s) == 1:
        return (s[0], 1, 1)
    if len(s) == 2:
        return (s[0], s[1], 1)
    if len(s) == 3:
        return s  # type: ignore[return-value]
    return (s[0], int(np.prod(s[1:-1])), s[-1])


def cdiv(a, b):
    return -(-a // b)


def distinct_tiles(n: int) -> list[int]:
    """Tile sizes t in 1..n that give a distinct number of tiles ceil(n / t) (largest t for each count)."""
    out = {cdiv(n, cdiv(n, k)) for k in range(1, n + 1)} if n <= 4096 else \
        {cdiv(n, k) for k in range(1, int(np.sqrt(n)) + 2)} | set(range(1, int(np.sqrt(n)) + 2))
    return sorted(t for t in out if 1 <= t <= n)


@dataclass(frozen=True)
class Tiling:
    """A population's view cut into boxes of ``tile`` = (channels, rows, cols); edge boxes are smaller.

    Slices are numbered C-order over the grid (channel tile, row tile, col tile).
    """

    view: tuple[int, int, int]
    tile: tuple[int, int, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "view", tuple(int(v) for v in self.view))
        object.__setattr__(self, "tile", tuple(int(t) for t in self.tile))
        if len(self.view) != 3 or min(self.view) < 1:
            raise ValueError(f"view must be three positive ints, got {self.view}")
        if len(self.tile) != 3 or any(not 1 <= t <= v for t, v in zip(self.tile, self.view)):
            raise ValueError(f"tile {self.tile} must lie between 1 and the view {self.view} on every axis")

    @cached_property
    def grid(self) -> tuple[int, int, int]:
        return tuple(cdiv(v, t) for v, t in zip(self.view, self.tile))  # type: ignore[return-value]

    @property
    def n_slices(self) -> int:
        return int(np.prod(self.grid))

    @cached_property
    def _bounds(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], ...]:
        """Per axis (starts, ends, sizes) of the tiles, computed once per tiling and read-only."""
        out = []
        for v, t, g in zip(self.view, self.tile, self.grid):
            starts = np.arange(g, dtype=np.int64) * t
            ends = np.minimum(starts + t, v)
            arrays = (starts, ends, ends - starts)
            for a in arrays:
                a.flags.writeable = False
            out.append(arrays)
        return tuple(out)

    def starts(self, axis: int) -> np.ndarray:
        return self._bounds[axis][0]

    def ends(self, axis: int) -> np.ndarray:
        return self._bounds[axis][1]

    def sizes(self, axis: int) -> np.ndarray:
        return self._bounds[axis][2]

    def size_classes(self, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """(distinct tile sizes along ``axis``, the class of every tile): every tile has the full size
        but the last, which may be smaller."""
        return self._size_classes[axis]

    @cached_property
    def _size_classes(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        out = []
        for v, t, g in zip(self.view, self.tile, self.grid):
            last = v - (g - 1) * t
            if last == t:
                out.append((np.array([t], np.int64), np.zeros(g, np.int64)))
            else:
                cls = np.zeros(g, np.int64)
                cls[-1] = 0
                cls[:-1] = 1
                out.append((np.array([last, t], np.int64), cls))
        return tuple(out)

    def tile_of(self, axis: int) -> np.ndarray:
        """For every index along ``axis``: the tile it lies in."""
        return np.arange(self.view[axis], dtype=np.int64) // self.tile[axis]

    def neurons(self) -> np.ndarray:
        """Neurons per slice, shape ``grid`` (read-only)."""
        return self._neurons

    @cached_property
    def _neurons(self) -> np.ndarray:
        c, y, x = (self.sizes(a) for a in range(3))
        n = c[:, None, None] * y[None, :, None] * x[None, None, :]
        n.flags.writeable = False
        return n

    def box(self, index: int) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        idx = np.unravel_index(int(index), self.grid)
        return tuple((int(self.starts(a)[i]), int(self.ends(a)[i])) for a, i in enumerate(idx))  # type: ignore[return-value]

    def to_list(self) -> list[int]:
        return list(self.tile)
