"""Per-slice grids stored by classes of tiles, so that the search evaluates a tiling in time
proportional to its distinct slices, not to all of them.

A quantity over the slices of a tiling (grid C x H x W of tiles) rarely depends on a tile through
more than a few per-axis numbers: its size, the kernel taps that land in it, the source units it
reaches. Tiles of one axis with equal numbers form a *class*; every interior tile of a convolution's
row axis falls in one class, the border tiles in a few more. ``Factored`` holds one value per
(channel class, row class, column class) and, per axis, the class of every tile: the full grid is
``values[np.ix_(*index)]``. ``joint`` puts several such grids on common classes, where they add, and
``GridCosts`` answers what the search asks of a tiling (the largest slice per budget, the totals)
from the classes alone, weighted by how many tiles each class has. Every answer equals the one
computed over the full grid, integer for integer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def classes(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, class of every entry) of a 1-D integer array."""
    u, inv = np.unique(np.asarray(v, np.int64), return_inverse=True)
    return u, inv.reshape(-1)


@dataclass(frozen=True)
class Factored:
    """A grid of int64 values: ``values[a, b, c]`` for every (class a, class b, class c) and, per axis,
    the class of every tile (``index``)."""

    values: np.ndarray
    index: tuple[np.ndarray, np.ndarray, np.ndarray]

    def __post_init__(self) -> None:
        if self.values.ndim != 3 or len(self.index) != 3:
            raise ValueError(f"a factored grid has 3 axes, got values {self.values.shape} and {len(self.index)} indices")

    @classmethod
    def outer(cls, c: np.ndarray, y: np.ndarray, x: np.ndarray) -> "Factored":
        """The grid c[i] * y[j] * x[k] (a separable product of per-axis factors)."""
        return cls.outer_classes(*(classes(v) for v in (c, y, x)))

    @classmethod
    def outer_classes(cls, c: tuple[np.ndarray, np.ndarray], y: tuple[np.ndarray, np.ndarray],
                      x: tuple[np.ndarray, np.ndarray]) -> "Factored":
        """``outer`` of per-axis factors given as (distinct values, class of every tile)."""
        (uc, ic), (uy, iy), (ux, ix) = c, y, x
        return cls(uc[:, None, None] * uy[None, :, None] * ux[None, None, :], (ic, iy, ix))

    @classmethod
    def constant(cls, value: int, grid: tuple[int, int, int]) -> "Factored":
        return cls(np.full((1, 1, 1), int(value), np.int64), tuple(np.zeros(g, np.int64) for g in grid))

    @property
    def grid(self) -> tuple[int, int, int]:
        return tuple(len(i) for i in self.index)  # type: ignore[return-value]

    def expand(self) -> np.ndarray:
        """The full grid (shape ``grid``)."""
        return self.values[np.ix_(*self.index)]


def joint(terms: list[Factored]) -> tuple[list[np.ndarray], tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
    """Grids of one tiling on common classes: (each term's values on them, the class of every tile per
    axis, the tiles of every class per axis). Two tiles share a class when every term puts them in
    the same class."""
    grid = terms[0].grid
    reps, index, counts = [], [], []
    for a in range(3):
        code, radix = terms[0].index[a], terms[0].values.shape[a]
        for t in terms[1:]:
            n = t.values.shape[a]
            if n == 1:
                continue
            if radix * n >= 2**62:   # keep the mixed-radix code within int64: renumber first
                _, code = np.unique(code, return_inverse=True)
                code, radix = code.reshape(-1), grid[a]
            code, radix = code * n + t.index[a], radix * n
        _, first, inv, cnt = np.unique(code, return_index=True, return_inverse=True, return_counts=True)
        reps.append(first)
        index.append(inv.reshape(-1))
        counts.append(cnt.astype(np.int64))
    values = []
    for t in terms:
        i, j, k = (t.index[a][reps[a]] for a in range(3))
        values.append(t.values[i[:, None, None], j[None, :, None], k[None, None, :]])
    return values, tuple(index), tuple(counts)


@dataclass(frozen=True)
class GridCosts:
    """The resources of every slice of one tiling, by classes: ``values[k]`` for the k-th of
    (neurons, in_axons, out_axons, syn_bits, mem_bits) over the common classes."""

    values: np.ndarray                                  # [5, a, b, c]
    index: tuple[np.ndarray, np.ndarray, np.ndarray]
    counts: tuple[np.ndarray, np.ndarray, np.ndarray]   # tiles per class, per axis

    FIELDS = ("neurons", "in_axons", "out_axons", "syn_bits", "mem_bits")
    BUDGETED = (0, 1, 2, 4)   # neurons, in_axons, out_axons, mem_bits: the core budgets, in order

    def __post_init__(self) -> None:
        if self.values.shape[0] != len(self.FIELDS) or self.values.shape[1:] != tuple(len(c) for c in self.counts):
            raise ValueError(f"values {self.values.shape} do not match {len(self.FIELDS)} fields and the class counts")

    @property
    def n_slices(self) -> int:
        return int(np.prod([len(i) for i in self.index]))

    def maxima(self) -> np.ndarray:
        """The largest slice's neurons, input axons, output axons and memory bits."""
        return self.values[list(self.BUDGETED)].reshape(len(self.BUDGETED), -1).max(axis=1)

    def totals(self) -> np.ndarray:
        """Sums over all slices of neurons, input axons, output axons and memory bits (int64)."""
        c, y, x = self.counts
        w = c[:, None, None] * y[None, :, None] * x[None, None, :]
        return (self.values[list(self.BUDGETED)] * w[None]).reshape(len(self.BUDGETED), -1).sum(axis=1)

    def expand(self) -> dict[str, np.ndarray]:
        """Every slice's resources, flat in slice order, per field."""
        ix = np.ix_(*self.index)
        return {f: self.values[k][ix].reshape(-1) for k, f in enumerate(self.FIELDS)}
