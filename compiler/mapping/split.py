"""Partial readouts: a readout whose neurons' fan-in fits no core is placed as k partial accumulators.

A Readout is linear and never fires: the host reads its value. When one readout neuron's synapses do
not fit a core, the input *units* of every output slice (the source units of its incoming dense
projections, concatenated in projection order, each in (chunk, row, col) C order) are cut into k
contiguous ranges; partial j holds the input axons and synapse lists of range j for every neuron of
the slice (one compartment per neuron), and the host adds the k partial values of each output (the
offset R0 and the bias live on partial 0). A sum is a sum: the simulators keep one Readout node; only
the placement models the split. Spiking populations are never split (their threshold needs the full
sum before it fires).

The same ranges serve every slice of the readout (they are cut for the largest slice, so they fit
the smaller edge slices too); every (neuron, input unit) synapse list lies on exactly one partial.
The cut is greedy (longest prefix that fits, then the next), which gives the fewest contiguous
ranges; the output tiling with the fewest pieces (slices x partials) wins. Deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir import Readout

from ..errors import MappingError
from .geometry import Tiling, distinct_tiles
from .resources import DenseModel, range_overlap


@dataclass(frozen=True)
class Split:
    """How the input units of a readout's slices are divided among its partial accumulators."""

    projections: tuple[str, ...]   # incoming projections, in the order their units are concatenated
    units: tuple[int, ...]         # input units of each projection
    bounds: tuple[int, ...]        # k + 1 offsets: partial j holds units [bounds[j], bounds[j + 1])

    @property
    def partials(self) -> int:
        return len(self.bounds) - 1

    def offsets(self) -> dict[str, int]:
        """First concatenated unit of every projection."""
        starts = np.concatenate([[0], np.cumsum(self.units)[:-1]]).astype(np.int64)
        return {p: int(s) for p, s in zip(self.projections, starts)}

    def to_dict(self) -> dict:
        return {"partials": self.partials, "projections": list(self.projections), "units": list(self.units),
                "unit_bounds": list(self.bounds), "unit_order": "projection, then (chunk, row, col) C order"}


def dense_inputs(model, name: str) -> tuple[list[str], list[DenseModel]] | None:
    """The incoming projections of readout ``name`` and their models, or None when the node is not a
    readout or some projection is not dense (only dense inputs are split)."""
    if not isinstance(model.net.node(name), Readout):
        return None
    projs = [p.name for p in model.net.incoming(name)]
    models = [model.models[p] for p in projs]
    if not projs or not all(isinstance(m, DenseModel) for m in models):
        return None
    return projs, models


def unit_bits(models: list[DenseModel], neurons: int) -> np.ndarray:
    return np.concatenate([m.unit_bits(neurons) for m in models])


def greedy_bounds(bits: np.ndarray, axon_cap: int, bit_cap: int) -> tuple[int, ...] | None:
    """Fewest contiguous ranges of units with at most ``axon_cap`` units and ``bit_cap`` bits each
    (longest fitting prefix first); None when a single unit exceeds ``bit_cap``."""
    prefix = np.concatenate([[0], np.cumsum(bits, dtype=np.int64)])
    n, start, bounds = len(bits), 0, [0]
    while start < n:
        end = int(np.searchsorted(prefix, prefix[start] + bit_cap, side="right")) - 1
        end = min(end, start + int(axon_cap), n)
        if end <= start:
            return None
        bounds.append(end)
        start = end
    return tuple(bounds)


def _candidate_tiles(view: tuple[int, int, int], ncap: int) -> list[tuple[int, int, int]]:
    c, h, w = view
    tiles = [(tc, th, tw) for th in distinct_tiles(h) for tw in distinct_tiles(w) for tc in distinct_tiles(c)
             if tc * th * tw <= ncap]
    return sorted(tiles, key=lambda t: (-t[0] * t[1] * t[2], t))


def choose_split(model, name: str, caps: np.ndarray) -> tuple[Tiling, Split] | None:
    """The output tiling and input ranges with the fewest pieces whose every piece fits ``caps``
    (ties: fewer slices, then the tile order); None when none fits."""
    found = dense_inputs(model, name)
    if found is None:
        return None
    projs, models = found
    view = model.views[name]
    ncap = int(min(caps[0], 2 ** model.target.synapse.index_bits[-1]))
    best = None
    for tile in _candidate_tiles(view, ncap):
        t = Tiling(view, tile)
        nmax = int(t.neurons().max())
        room = int(caps[3]) - nmax * model.neuron_bits
        if room <= 0:
            continue
        bounds = greedy_bounds(unit_bits(models, nmax), int(caps[1]), room)
        if bounds is None:
            continue
        key = (t.n_slices * (len(bounds) - 1), t.n_slices, tile)
        if best is None or key < best[0]:
            best = (key, t, bounds)
    if best is None:
        return None
    _, t, bounds = best
    return t, Split(tuple(projs), tuple(m.n_units for m in models), bounds)


def split_costs(model, tiling: Tiling, split: Split) -> dict[str, np.ndarray]:
    """Per piece (slice-major, then partial): neurons, input axons, output axons (none: a readout
    feeds nothing), synapse bits and memory bits (synapses + neuron state)."""
    models = [model.models[p] for p in split.projections]
    neurons = tiling.neurons().reshape(-1)
    bounds = np.asarray(split.bounds, np.int64)
    syn = np.empty((len(neurons), split.partials), np.int64)
    for n in np.unique(neurons):
        prefix = np.concatenate([[0], np.cumsum(unit_bits(models, int(n)), dtype=np.int64)])
        syn[neurons == n] = np.diff(prefix[bounds])
    k = split.partials
    nrn = np.repeat(neurons, k)
    return {"neurons": nrn, "in_axons": np.tile(np.diff(bounds), len(neurons)),
            "out_axons": np.zeros(len(nrn), np.int64), "syn_bits": syn.reshape(-1),
            "mem_bits": syn.reshape(-1) + nrn * model.neuron_bits}


def source_counts(proj: DenseModel, src: Tiling, split: Split, offset: int) -> np.ndarray:
    """[source slice, partial]: neurons of the source slice whose unit lies in the partial (every
    such neuron sends its spikes to that partial of every readout slice)."""
    _, h, w = proj.src_view
    n_chunks = len(proj.chunk_starts)
    unit = offset + np.arange(n_chunks * h * w, dtype=np.int64)
    part = np.searchsorted(np.asarray(split.bounds, np.int64), unit, side="right") - 1
    a, y, x = np.unravel_index(np.arange(len(unit)), (n_chunks, h, w))
    hist = np.zeros((n_chunks, src.grid[1], src.grid[2], split.partials), np.int64)
    np.add.at(hist, (a, src.tile_of(1)[y], src.tile_of(2)[x], part), 1)
    overlap = range_overlap(src.starts(0), src.ends(0), proj.chunk_starts, proj.chunk_ends)   # [cs, a]
    return np.einsum("ca,atuj->ctuj", overlap, hist).reshape(-1, split.partials)


def split_error(model, name: str) -> MappingError:
    """Why even partial readouts of ``name`` do not fit: a non-dense input, or one input unit's list
    onto a single neuron (plus its state) larger than a core's synapse memory."""
    found = dense_inputs(model, name)
    target = model.target
    if found is None:
        kinds = ", ".join(f"'{p.name}' ({type(p).__name__})" for p in model.net.incoming(name))
        return MappingError(
            f"readout '{name}' cannot be placed: a single neuron does not fit a core of {target.name} (which offers "
            f"{int(model.caps[3]):,} synapse memory bits and {int(model.caps[1]):,} input axons) and partial "
            f"readouts are built for dense inputs only, its inputs are {kinds}; use a target with bigger cores "
            "(--target loihi2 or a --profile) or a smaller fan-in")
    _, models = found
    need = int(unit_bits(models, 1).max()) + model.neuron_bits
    return MappingError(
        f"readout '{name}' cannot be placed even as partial readouts: a single input axon's synapses onto one "
        f"neuron need {need:,} synapse memory bits per core but a core of {target.name} offers "
        f"{int(model.caps[3]):,}; use a target with more synapse memory per core (--target loihi2 or a --profile), "
        "or fewer channels per axon (atoms_per_axon in the profile)")
