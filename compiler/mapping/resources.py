"""Resource model: what a slice of a population costs on a core, per projection kind.

For a target ``Tiling`` of a population, every incoming projection reports per slice
- ``in_axons``: its source units (see below) that connect to the slice: one input-axon entry each;
- ``syn_bits``: synapse memory of the lists those axons carry onto the slice, in the target's words;
and ``pair()`` gives the separable factors (channel x row x column) of the axon entries between a
source slice and a destination slice, from which output axons and spike traffic follow.

A source *unit* is what one axon carries: with ``atoms_per_axon`` = M > 1 (population axons), one
source pixel (y, x) and a chunk of M consecutive channels [aM, (a+1)M); with M = 1, one neuron.
Synapses are counted structurally: every in-bounds kernel tap is a synapse (zero weights included),
so borders, padding, stride and dilation are exact and no weight value changes a mapping.
A slice keeps its own axons and lists (two slices on one core do not share an axon), so the cost
of a core is the sum over its slices. The readings behind every number are in docs/mapping.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
import numpy as np

from snnc.ir import Conv2d, Dense, Projection, SumPool2d

from ..targets import TargetProfile
from .factored import Factored, classes
from .geometry import Tiling, cdiv, view3


@dataclass(frozen=True)
class MemoryModel:
    """Bits of synapse memory for lists of n synapses (nengo-loihi ``SynapseConfig.bits_per_axon``)."""

    weight_bits: int
    word_bits: int
    group_synapses: int
    group_overhead_bits: int
    index_bits: tuple[int, ...]

    @classmethod
    def of(cls, target: TargetProfile) -> "MemoryModel":
        s = target.synapse
        return cls(target.numeric.weight_bits, s.word_bits, s.group_synapses, s.group_overhead_bits, s.index_bits)

    def sparse_bits(self, neurons: np.ndarray) -> np.ndarray:
        """Bits per sparse synapse in a slice of ``neurons``: weight + smallest index width that addresses
        them; 0 where no listed width does (such a slice does not fit)."""
        need = np.ceil(np.log2(np.maximum(np.asarray(neurons, np.float64), 1.0))).astype(np.int64)
        widths = np.asarray(self.index_bits, np.int64)
        pos = np.searchsorted(widths, np.maximum(need, 1))
        ok = pos < len(widths)
        return np.where(ok, self.weight_bits + widths[np.minimum(pos, len(widths) - 1)], 0)

    @property
    def sparse_bits_min(self) -> int:
        return self.weight_bits + self.index_bits[0]

    def group(self, bits: int) -> tuple[int, int]:
        """(synapses, words) of the group that packs the most synapses per word: a group of m synapses
        costs ceil((m * bits + overhead) / word) words and m <= group_synapses, so the synapse format's
        group size is chosen to fill whole words (nengo-loihi always uses 64; with 8-bit weights 62
        synapses in 8 words beat 64 in 9)."""
        w, ov = self.word_bits, self.group_overhead_bits
        best = (0, 1)
        for k in range(1, cdiv(self.group_synapses * bits + ov, w) + 1):
            m = min(self.group_synapses, (k * w - ov) // bits)
            if m > 0 and m * best[1] > best[0] * k:
                best = (m, k)
        return best

    def list_bits(self, n: np.ndarray, bits: np.ndarray | int) -> np.ndarray:
        """Exact cost of one axon's list of n synapses: full groups of ``group(bits)`` plus one group
        for the rest, each rounded up to whole words."""
        n = np.asarray(n, np.int64)
        bits_arr = np.broadcast_to(np.asarray(bits, np.int64), n.shape)
        out = np.zeros(n.shape, np.int64)
        for b in np.unique(bits_arr):
            sel = bits_arr == b
            m, k = self.group(int(b))
            full, rest = n[sel] // m, n[sel] % m
            words = full * k + np.where(rest > 0, cdiv(rest * int(b) + self.group_overhead_bits, self.word_bits), 0)
            out[sel] = words * self.word_bits
        return out

    def list_bits_lower(self, n: np.ndarray, bits: int) -> np.ndarray:
        """A lower bound for n synapses of ``bits`` split over any lists and groups: no word holds more
        than m/k synapses of the best group (m, k), so at least ceil(n * k / m) words."""
        n = np.asarray(n, np.int64)
        m, k = self.group(bits)
        return cdiv(n * k, m) * self.word_bits


@dataclass(frozen=True)
class Pair:
    """Separable factors of the axon entries between source slice (cs, ys, xs) and destination slice
    (cq, yq, xq): units[cs, cq] * rows[ys, yq] * cols[xs, xq]; ``neurons`` replaces units by the
    source neurons (channels per pixel) behind them, for spike traffic."""

    units: np.ndarray
    neurons: np.ndarray
    rows: np.ndarray
    cols: np.ndarray

    def out_axons(self) -> np.ndarray:
        """Per source slice (grid of the source tiling): entries summed over all destination slices."""
        u, r, c = self.units.sum(1), self.rows.sum(1), self.cols.sum(1)
        return u[:, None, None] * r[None, :, None] * c[None, None, :]


@dataclass(frozen=True)
class Received:
    """What one projection adds to the slices of a destination tiling, as grids by classes: input
    axons, synapse bits, and the slices' neurons on the synapse bits' classes (so that a slice's
    memory, synapse bits plus bits per neuron, adds class by class)."""

    axons: Factored
    syn_bits: Factored
    neurons: Factored

    def __post_init__(self) -> None:
        if self.neurons.index is not self.syn_bits.index and not all(
                np.array_equal(a, b) for a, b in zip(self.neurons.index, self.syn_bits.index)):
            raise ValueError("the neurons of a projection's slices must lie on its synapse bits' classes")


CACHE_BYTES = 16 * 2**20  # arrays memoised per projection model


def _nbytes(value) -> int:
    """Bytes of the arrays in a memoised value (an array, a Factored grid or a tuple of them)."""
    if isinstance(value, tuple):
        return sum(_nbytes(v) for v in value)
    if isinstance(value, Received):
        return _nbytes((value.axons, value.syn_bits, value.neurons))
    if isinstance(value, Factored):
        return value.values.nbytes + sum(i.nbytes for i in value.index)
    return value.nbytes if isinstance(value, np.ndarray) else 0


def _chunk_starts(c: int, atoms: int) -> np.ndarray:
    return np.arange(0, c, atoms, dtype=np.int64)


def range_overlap(starts: np.ndarray, ends: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """[i, j] = length of the overlap of ranges [starts_i, ends_i) and [lo_j, hi_j)."""
    return np.maximum(0, np.minimum(ends[:, None], hi[None, :]) - np.maximum(starts[:, None], lo[None, :]))


@dataclass(frozen=True)
class ProjectionModel:
    """Base: the resources one projection adds to the slices of its target."""

    proj: Projection
    src_view: tuple[int, int, int]
    dst_view: tuple[int, int, int]
    atoms: int
    mem: MemoryModel

    @classmethod
    def of(cls, proj: Projection, src_shape, dst_shape, target: TargetProfile) -> "ProjectionModel":
        model = MODELS.get(type(proj))
        if model is None:
            raise TypeError(f"no resource model for projection kind {type(proj).__name__}")
        return model(proj, view3(src_shape), view3(dst_shape), max(1, target.synapse.atoms_per_axon), MemoryModel.of(target))

    def __post_init__(self) -> None:
        object.__setattr__(self, "_cache", {})
        object.__setattr__(self, "_cache_bytes", [0])

    def cached(self, key, fn):
        """Memoise per model (tilings are hashable): the search evaluates a tiling many times. The memo
        holds at most CACHE_BYTES of arrays (a 224x224 layer's per-slice grids are megabytes each):
        past that it starts afresh."""
        c = self._cache
        if key not in c:
            value = fn()
            size = _nbytes(value)
            if len(c) > 4096 or self._cache_bytes[0] + size > CACHE_BYTES:
                c.clear()
                self._cache_bytes[0] = 0
            c[key] = value
            self._cache_bytes[0] += size
        return c[key]

    def out_axons(self, src: Tiling, dst: Tiling) -> np.ndarray:
        """Per source slice: axon entries to all destination slices (= ``pair(src, dst).out_axons()``)."""
        return self.out_axons_factored(src, dst).expand()

    def out_axons_factored(self, src: Tiling, dst: Tiling) -> Factored:
        """``out_axons`` by classes of source tiles (factored.py)."""
        p = self.pair(src, dst)
        return Factored.outer(p.units.sum(1), p.rows.sum(1), p.cols.sum(1))

    def incoming(self, dst: Tiling, lower: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Per slice of ``dst`` (shape ``dst.grid``): (input axons, synapse bits) this projection adds;
        ``lower``: the synapse bits' lower bound at the smallest index width."""
        got = self.incoming_factored(dst, lower)
        return got.axons.expand(), got.syn_bits.expand()

    def incoming_factored(self, dst: Tiling, lower: bool = False) -> "Received":
        """``incoming`` by classes of destination tiles (factored.py), memoised per tiling."""
        return self.cached(("in", dst, lower), lambda: self._incoming(dst, lower))

    # chunks of source channels carried by one axon
    @property
    def chunk_starts(self) -> np.ndarray:
        return _chunk_starts(self.src_view[0], self.atoms)

    @property
    def chunk_ends(self) -> np.ndarray:
        return np.minimum(self.chunk_starts + self.atoms, self.src_view[0])

    def _incoming(self, dst: Tiling, lower: bool) -> "Received":  # pragma: no cover
        raise NotImplementedError

    def pair(self, src: Tiling, dst: Tiling) -> Pair:  # pragma: no cover
        raise NotImplementedError

    def lower_bound(self) -> tuple[int, int]:
        """(input axons, synapse bits) no placement can go below: every connected unit enters the
        population at least once and carries all its synapses there."""
        whole = Tiling(self.dst_view, self.dst_view)
        ax, bits = self.incoming(whole, lower=True)
        return int(ax.sum()), int(bits.sum())


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a convolution: taps of each source row that land in each destination tile."""

    count: np.ndarray   # [source row, destination tile] -> number of kernel taps
    kernel: int

    @classmethod
    def build(cls, size: int, kernel: int, stride: int, pad: int, dilation: int, out: int, tiles: np.ndarray, n_tiles: int):
        r = np.arange(size, dtype=np.int64)[:, None]
        i = np.arange(kernel, dtype=np.int64)[None, :]
        q = r + pad - i * dilation
        ok = (q >= 0) & (q % stride == 0) & (q // stride < out)
        rr = np.broadcast_to(r, q.shape)[ok]
        tt = tiles[(q // stride)[ok]]
        count = np.zeros((size, n_tiles), np.int64)
        np.add.at(count, (rr, tt), 1)
        return cls(count, kernel)

    def histogram(self) -> np.ndarray:
        """[tile, m] = source rows that land m taps in the tile (m = 0..kernel)."""
        n_t = self.count.shape[1]
        hist = np.zeros((n_t, self.kernel + 1), np.int64)
        np.add.at(hist, (np.broadcast_to(np.arange(n_t), self.count.shape), self.count), 1)
        return hist

    def connected(self) -> np.ndarray:
        return self._connected

    @cached_property
    def _connected(self) -> np.ndarray:
        c = (self.count > 0).sum(0)
        c.flags.writeable = False
        return c

    def pair(self, src: Tiling, axis: int) -> np.ndarray:
        """[source tile, destination tile] = connected source rows of the source tile."""
        return np.add.reduceat((self.count > 0).astype(np.int64), src.starts(axis), axis=0)


@dataclass(frozen=True)
class ConvModel(ProjectionModel):
    """Conv2d (and, through its geometry, SumPool2d): sparse lists, one synapse per in-bounds tap."""

    def geometry(self):
        p = self.proj
        c_out, _, kh, kw = p.weight.shape
        return (kh, kw), p.stride, (p.padding[0], p.padding[1]), p.dilation, p.groups

    def _channel_counts(self, dst: Tiling) -> np.ndarray:
        """[dest channel tile, source channel] = destination channels of the tile this channel feeds."""
        return self.cached(("ch", dst.view, dst.tile[0]), lambda: self._channel_counts_(dst))

    def _channel_counts_(self, dst: Tiling) -> np.ndarray:
        c_in, c_out = self.src_view[0], self.dst_view[0]
        *_, groups = self.geometry()
        og, cg = c_out // groups, c_in // groups
        g_lo = np.arange(groups, dtype=np.int64) * og
        per_group = range_overlap(dst.starts(0), dst.ends(0), g_lo, g_lo + og)   # [cq, g]
        return np.repeat(per_group, cg, axis=1)                               # [cq, ch]

    def _axes(self, dst: Tiling) -> tuple[_Axis, _Axis]:
        return self.cached(("axes", dst.view, dst.tile[1:]), lambda: self._axes_(dst))

    def _axes_(self, dst: Tiling) -> tuple[_Axis, _Axis]:
        (kh, kw), (sh, sw), (pt, pl), (dh, dw), _ = self.geometry()
        _, h, w = self.src_view
        _, oh, ow = self.dst_view
        ay = _Axis.build(h, kh, sh, pt, dh, oh, dst.tile_of(1), dst.grid[1])
        ax = _Axis.build(w, kw, sw, pl, dw, ow, dst.tile_of(2), dst.grid[2])
        return ay, ax

    def _chunk_counts(self, dst: Tiling) -> np.ndarray:
        """[dest channel tile, source chunk]: synapses per tap pair (destination channels it feeds)."""
        return self.cached(("chunks", dst.view, dst.tile[0]),
                           lambda: np.add.reduceat(self._channel_counts(dst), self.chunk_starts, axis=1))

    def _classes(self, dst: Tiling, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """Tiles of ``axis`` with the same tap histogram and size cost the same: (the distinct rows of
        [histogram of m = 1..kernel taps, size], the class of every tile)."""
        def make():
            ay = self._axes(dst)[axis - 1]
            u, i = np.unique(np.concatenate([ay.histogram()[:, 1:], dst.sizes(axis)[:, None]], axis=1), axis=0,
                             return_inverse=True)
            return u, i.reshape(-1)
        return self.cached(("classes", axis, dst.view, dst.tile[axis]), make)

    def _taps(self, dst: Tiling) -> np.ndarray:
        """[cq, a, my, mx]: synapses of one unit's list onto channel tile cq when it lands my x mx taps."""
        def make():
            ay, ax = self._axes(dst)
            my = np.arange(1, ay.kernel + 1, dtype=np.int64)
            mx = np.arange(1, ax.kernel + 1, dtype=np.int64)
            return self._chunk_counts(dst)[:, :, None, None] * (my[:, None] * mx[None, :])[None, None]
        return self.cached(("taps", dst.view, dst.tile[0]), make)

    def _list_bits(self, dst: Tiling, bits: int | None) -> np.ndarray:
        """[cq, my, mx]: synapse bits of the lists of all units onto channel tile cq (``bits`` per sparse
        synapse; None: the lower bound at the smallest width)."""
        def make():
            n = self._taps(dst)
            per = self.mem.list_bits_lower(n, self.mem.sparse_bits_min) if bits is None else self.mem.list_bits(n, bits)
            return per.sum(1)
        return self.cached(("bits", dst.view, dst.tile[0], bits), make)

    def _channel_classes(self, dst: Tiling) -> tuple[np.ndarray, np.ndarray]:
        """Channel tiles with the same synapses per source chunk and size cost the same: (one tile of
        every class, the class of every tile)."""
        def make():
            rows = np.concatenate([self._chunk_counts(dst), dst.sizes(0)[:, None]], axis=1)
            _, first, inv = np.unique(rows, axis=0, return_index=True, return_inverse=True)
            return first, inv.reshape(-1)
        return self.cached(("cclasses", dst.view, dst.tile[0]), make)

    def _incoming(self, dst: Tiling, lower: bool) -> "Received":
        # tiles with the same synapse counts (channels) or tap histogram and size (rows, cols) cost the
        # same: compute each class once
        rep, ic = self._channel_classes(dst)
        uy, iy = self._classes(dst, 1)
        ux, ix = self._classes(dst, 2)
        chunks = (self._chunk_counts(dst)[rep] > 0).sum(1)                    # source chunks per channel tile
        # connected source rows (cols) of a tile: those landing at least one tap
        axons = Factored.outer_classes((chunks, ic), (uy[:, :-1].sum(1), iy), (ux[:, :-1].sum(1), ix))
        k = dst.sizes(0)[rep][:, None, None] * uy[:, -1][None, :, None] * ux[:, -1][None, None, :]
        index = (ic, iy, ix)
        neurons = Factored(k, index)
        if lower:
            mem = np.einsum("tm,un,cmn->ctu", uy[:, :-1], ux[:, :-1], self._list_bits(dst, None)[rep])
            return Received(axons, Factored(mem, index), neurons)
        bits = self.mem.sparse_bits(k)
        mem = np.zeros(k.shape, np.int64)
        for b in np.unique(bits):
            sel = bits == b
            if b == 0:
                mem[sel] = np.iinfo(np.int64).max // 4   # no index width addresses the slice: cannot fit
                continue
            per = self._list_bits(dst, int(b))[rep]                             # [channel class, my, mx]
            mem[sel] = np.einsum("tm,un,cmn->ctu", uy[:, :-1], ux[:, :-1], per)[sel]
        return Received(axons, Factored(mem, index), neurons)

    def _inputs_of(self, dst: Tiling) -> tuple[np.ndarray, np.ndarray]:
        """Per destination channel tile: the interval [lo, hi) of source channels that feed it (the
        input channels of the groups its output channels belong to)."""
        c_in, c_out = self.src_view[0], self.dst_view[0]
        *_, groups = self.geometry()
        og, cg = c_out // groups, c_in // groups
        return dst.starts(0) // og * cg, ((dst.ends(0) - 1) // og + 1) * cg

    def _channel_pair(self, src: Tiling, dst: Tiling) -> tuple[np.ndarray, np.ndarray]:
        """[cs, cq]: source units (channel chunks) and source channels of slice cs that feed slice cq."""
        lo_q, hi_q = self._inputs_of(dst)
        lo = np.maximum(src.starts(0)[:, None], lo_q[None, :])
        hi = np.minimum(src.ends(0)[:, None], hi_q[None, :])
        ok = lo < hi
        m = self.atoms
        units = np.where(ok, (hi - 1) // m - lo // m + 1, 0)
        return units, np.where(ok, hi - lo, 0)

    def out_axons_factored(self, src: Tiling, dst: Tiling) -> Factored:
        # separable: channel units x rows x cols, each factor cached on the two tilings' tiles along its axis
        units = self.cached(("units", src.view, src.tile[0], dst.view, dst.tile[0]),
                            lambda: classes(self._channel_pair(src, dst)[0].sum(1)))
        rows = self.cached(("rows", src.view, src.tile[1], dst.view, dst.tile[1]),
                           lambda: classes(np.add.reduceat((self._axes(dst)[0].count > 0).sum(1), src.starts(1))))
        cols = self.cached(("cols", src.view, src.tile[2], dst.view, dst.tile[2]),
                           lambda: classes(np.add.reduceat((self._axes(dst)[1].count > 0).sum(1), src.starts(2))))
        return Factored.outer_classes(units, rows, cols)

    def pair(self, src: Tiling, dst: Tiling) -> Pair:
        units, neurons = self._channel_pair(src, dst)
        ay, ax = self._axes(dst)
        return Pair(units, neurons, ay.pair(src, 1), ax.pair(src, 2))


@dataclass(frozen=True)
class SumPoolModel(ConvModel):
    """SumPool2d: a depthwise structural convolution (channel c feeds channel c only)."""

    def geometry(self):
        p = self.proj
        return p.kernel, p.stride, (p.padding[0], p.padding[1]), (1, 1), self.src_view[0]


@dataclass(frozen=True)
class DenseModel(ProjectionModel):
    """Dense: every source unit feeds every neuron of the slice; dense lists (no index bits), zeros
    stored, as nengo-loihi stores a dense weight matrix (compression 3)."""

    def _units_per_chunk(self) -> np.ndarray:
        return self.chunk_ends - self.chunk_starts

    def _incoming(self, dst: Tiling, lower: bool) -> "Received":
        _, h, w = self.src_view
        atoms = self._units_per_chunk()
        k = Factored.outer_classes(*(dst.size_classes(a) for a in range(3)))  # neurons per slice
        axons = Factored.constant(len(atoms) * h * w, dst.grid)
        wb = self.mem.weight_bits
        n = atoms[None, :] * k.values.reshape(-1)[:, None]
        per = (self.mem.list_bits_lower(n, wb) if lower else self.mem.list_bits(n, wb)).sum(1) * (h * w)
        return Received(axons, Factored(per.reshape(k.values.shape), k.index), k)

    @property
    def n_units(self) -> int:
        _, h, w = self.src_view
        return len(self.chunk_starts) * h * w

    def unit_bits(self, neurons: int) -> np.ndarray:
        """Synapse bits of every source unit's list onto a slice of ``neurons`` neurons, units in
        (chunk, row, col) C order: one input axon each (the per-unit split of ``incoming``)."""
        _, h, w = self.src_view
        per_chunk = self.mem.list_bits(self._units_per_chunk() * int(neurons), self.mem.weight_bits)
        return np.repeat(per_chunk, h * w)

    def _chunks_in(self, src: Tiling) -> np.ndarray:
        """Per source channel tile: the chunks (units per pixel) it holds part of."""
        return (range_overlap(src.starts(0), src.ends(0), self.chunk_starts, self.chunk_ends) > 0).sum(1)

    def out_axons_factored(self, src: Tiling, dst: Tiling) -> Factored:
        # every unit of a source slice reaches every destination slice: units x rows x cols, times the
        # destination tiles along each axis
        (uc, ic) = self.cached(("chunks_in", src.view, src.tile[0]), lambda: classes(self._chunks_in(src)))
        (uy, iy), (ux, ix) = src.size_classes(1), src.size_classes(2)
        g = dst.grid
        return Factored.outer_classes((uc * g[0], ic), (uy * g[1], iy), (ux * g[2], ix))

    def pair(self, src: Tiling, dst: Tiling) -> Pair:
        chunk_in_src = self._chunks_in(src)
        units = np.repeat(chunk_in_src[:, None], dst.grid[0], axis=1)
        neurons = np.repeat(src.sizes(0)[:, None], dst.grid[0], axis=1)
        rows = np.repeat(src.sizes(1)[:, None], dst.grid[1], axis=1)
        cols = np.repeat(src.sizes(2)[:, None], dst.grid[2], axis=1)
        return Pair(units, neurons, rows, cols)


# the registry: projection class -> its resource model
MODELS: dict[type, type[ProjectionModel]] = {Conv2d: ConvModel, SumPool2d: SumPoolModel, Dense: DenseModel}
