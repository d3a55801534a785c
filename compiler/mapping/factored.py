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
from functools import cached_property

import numpy as np


def classes(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct values, class of every entry) of a 1-D integer array."""
    u, inv = np.unique(np.asarray(v, np.int64), return_inverse=True)
    return u, inv.reshape(-1)


@dataclass(frozen=True)
class Factored:
    """A grid of int64 values: ``values[a, b, c]`` for every (class a, class b, class c) and, per axis,
    the class of every tile (``index``). Every class holds at least one tile (the grids are built
    from distinct values of the tiles), so the largest value is the largest entry of the grid."""

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
        i = self.index
        return (len(i[0]), len(i[1]), len(i[2]))

    def expand(self) -> np.ndarray:
        """The full grid (shape ``grid``)."""
        return self.values[np.ix_(*self.index)]


def joint(terms: list[Factored]) -> tuple[list[np.ndarray], tuple[np.ndarray, ...]]:
    """Grids of one tiling on common classes: (each term's values on them, the class of every tile per
    axis). Two tiles share a class when every term puts them in the same class."""
    grid = terms[0].grid
    reps, index = [], []
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
        _, first, inv = np.unique(code, return_index=True, return_inverse=True)
        reps.append(first)
        index.append(inv.reshape(-1))
    values = []
    for t in terms:
        i, j, k = (t.index[a][reps[a]] for a in range(3))
        values.append(t.values[i[:, None, None], j[None, :, None], k[None, None, :]])
    return values, tuple(index)


def max_of_sum(terms: list[Factored]) -> int:
    """The largest entry of the sum of grids (0 without any)."""
    if not terms:
        return 0
    if len(terms) == 1:
        return int(terms[0].values.max())
    values, _ = joint(terms)
    total = values[0]
    for v in values[1:]:
        total = total + v
    return int(total.max())


def total(term: Factored) -> int:
    """The sum over every tile of a grid: each class's value times its tiles."""
    c, y, x = (np.bincount(term.index[a], minlength=term.values.shape[a]) for a in range(3))
    return int((term.values * (c[:, None, None] * y[None, :, None] * x[None, None, :])).sum())


@dataclass(frozen=True)
class Incoming:
    """What a population's slices receive under one tiling (it does not depend on what they feed):
    neurons, and the input axons and synapse bits of every incoming projection, as grids by classes.
    The memory of a slice is its synapse bits plus ``neuron_bits`` per neuron (``memory``: grids
    that add up to it, on the synapse bits' classes)."""

    neurons: Factored
    in_axons: tuple[Factored, ...]
    syn_bits: tuple[Factored, ...]
    memory: tuple[Factored, ...]     # grids that add up to every slice's memory bits
    neuron_bits: int

    def __post_init__(self) -> None:
        grids = {t.grid for t in (self.neurons, *self.in_axons, *self.syn_bits, *self.memory)}
        if len(grids) != 1 or not self.memory:
            raise ValueError(f"the grids of one tiling must have one shape and a memory, got {sorted(grids)}")

    @cached_property
    def maxima(self) -> tuple[int, int, int]:
        """The largest slice's neurons, input axons and memory bits."""
        return (int(self.neurons.values.max()), max_of_sum(list(self.in_axons)), max_of_sum(list(self.memory)))

    @cached_property
    def totals(self) -> tuple[int, int, int]:
        """Sums over all slices of neurons, input axons and memory bits."""
        n = total(self.neurons)
        return n, sum(total(t) for t in self.in_axons), n * self.neuron_bits + sum(total(t) for t in self.syn_bits)


@dataclass(frozen=True)
class GridCosts:
    """The resources of every slice of one tiling as sums of grids by classes: what the slices
    receive (``Incoming``) and the output axons of every outgoing projection. Each question (the
    largest slice of a budget, the totals, every slice) combines only the grids it needs."""

    incoming: Incoming
    out_axons: tuple[Factored, ...]

    def __post_init__(self) -> None:
        grid = self.incoming.neurons.grid
        if any(t.grid != grid for t in self.out_axons):
            raise ValueError(f"the grids of one tiling must have one shape {grid}")

    @property
    def n_slices(self) -> int:
        return int(np.prod(self.incoming.neurons.grid))

    def fits(self, caps: np.ndarray) -> bool:
        """Every slice within ``caps`` (neurons, input axons, output axons, memory bits)."""
        n, ax, mem = self.incoming.maxima
        return n <= caps[0] and ax <= caps[1] and mem <= caps[3] and max_of_sum(list(self.out_axons)) <= caps[2]

    def maxima(self) -> np.ndarray:
        """The largest slice's neurons, input axons, output axons and memory bits."""
        n, ax, mem = self.incoming.maxima
        return np.array([n, ax, max_of_sum(list(self.out_axons)), mem], np.int64)

    def totals(self) -> np.ndarray:
        """Sums over all slices of neurons, input axons, output axons and memory bits (int64)."""
        n, ax, mem = self.incoming.totals
        return np.array([n, ax, sum(total(t) for t in self.out_axons), mem], np.int64)

    def expand(self) -> dict[str, np.ndarray]:
        """Every slice's resources, flat in slice order, per field (Costs' fields)."""
        inc = self.incoming
        def full(terms) -> np.ndarray:
            out = np.zeros(inc.neurons.grid, np.int64)
            for t in terms:
                out = out + t.expand()
            return out.reshape(-1)
        neurons = inc.neurons.expand().reshape(-1)
        syn = full(inc.syn_bits)
        return {"neurons": neurons, "in_axons": full(inc.in_axons), "out_axons": full(self.out_axons),
                "syn_bits": syn, "mem_bits": syn + neurons * inc.neuron_bits}
