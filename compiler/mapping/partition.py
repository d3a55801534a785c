"""Partitioner: slice every population into boxes that fit a core, then pack the slices onto cores.

1. Populations are planned in reverse topological order, so that when a population is sliced the
   slicing of everything it feeds is known and its output axons can be counted. For each population
   the regular tiling (channels x rows x cols) with the fewest slices whose every slice fits within
   1/g of every core budget is chosen (``g``, the granularity, is 1, 2, 4, ... : finer slices pack
   better with other populations' slices but cost more axons).
2. The slices (items with four sizes: neurons, input axons, output axons, memory) are packed onto
   cores, first fit over the most recent open cores, both in topological order and largest first;
   the packing with fewer cores wins.
3. The granularity with the fewest cores wins (ties: the coarser one).
A readout none of whose neurons fits a core is split over its inputs into partial accumulators
(``split.py``): pieces of its plan, k per slice, packed like slices. Populations are never split.
Deterministic: no randomness, every choice is ordered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

import numpy as np

from snnc.ir import Input, Network, Readout

from .host import is_host_unit

from ..errors import MappingError
from ..targets import TargetProfile
from .factored import Factored, GridCosts, Incoming
from .geometry import Tiling, cdiv, distinct_tiles, view3
from .resources import ProjectionModel
from .split import Split, choose_split, split_costs, split_error

log = logging.getLogger(__name__)

BUDGETS = ("neurons", "in_axons", "out_axons", "memory_bits")
BUDGET_NAMES = {"neurons": "neurons per core", "in_axons": "input axons per core",
                "out_axons": "output axons per core", "memory_bits": "synapse memory bits per core"}
NOT_FIT = np.iinfo(np.int64).max // 8


def capacities(target: TargetProfile) -> np.ndarray:
    c = target.core
    return np.array([c.neurons, c.input_axons, c.output_axons, c.synapse_memory_bits], np.int64)


@dataclass
class Costs:
    """Per-slice resources of one population under one tiling (flat arrays, slice order)."""

    neurons: np.ndarray
    in_axons: np.ndarray
    out_axons: np.ndarray
    syn_bits: np.ndarray
    mem_bits: np.ndarray

    def matrix(self) -> np.ndarray:
        return np.stack([self.neurons, self.in_axons, self.out_axons, self.mem_bits], axis=1)


@dataclass
class PopulationPlan:
    """A node's tiling and the cost of each of its pieces: one per slice, or, for a readout split into
    partial accumulators (``split``), ``split.partials`` per slice (slice-major)."""

    name: str
    view: tuple[int, int, int]
    tiling: Tiling
    costs: Costs
    granularity: int
    split: Split | None = None

    @property
    def partials(self) -> int:
        return 1 if self.split is None else self.split.partials

    @property
    def n_pieces(self) -> int:
        return self.tiling.n_slices * self.partials


@dataclass
class Partition:
    plans: list[PopulationPlan]          # topological order
    piece_plan: np.ndarray               # per piece: index into plans
    piece_slice: np.ndarray              # per piece: slice index within its plan's tiling
    piece_core: np.ndarray               # per piece: core
    n_cores: int
    granularity: int
    packing: str
    usage: np.ndarray = field(default=None)  # [core, budget]
    piece_part: np.ndarray = field(default=None)  # per piece: partial index (0 unless its readout is split)


@dataclass
class LowerBound:
    totals: dict[str, int]
    cores: dict[str, int]

    @property
    def best(self) -> int:
        return max(self.cores.values())


class NetworkModel:
    """The network as the mapper sees it: placed nodes, their views, and one model per projection."""

    def __init__(self, net: Network, target: TargetProfile):
        self.net, self.target = net, target
        self.caps = capacities(target)
        self.neuron_bits = target.core.neuron_memory_bits
        # off the cores: the input, and graded units placed on the target's [units] processors (host.py)
        self.off_core = {n.name for n in net.nodes if isinstance(n, Input) or is_host_unit(n)}
        self.placed = [n for n in net.ordered_nodes() if n.name not in self.off_core]
        self.views = {n.name: view3(n.shape) for n in net.nodes}
        self.projections = [p for p in net.projections if p.target not in self.off_core]  # into a unit: its own work
        self.models = {p.name: ProjectionModel.of(p, net.node(p.source).shape, net.node(p.target).shape, target)
                       for p in self.projections}
        # what the slices of a population receive under a tiling, by (name, tile): the search asks
        # for one tiling many times, with different tilings of what it feeds
        self._incoming: dict[tuple[str, tuple[int, int, int]], Incoming] = {}

    def lower_bound(self) -> LowerBound:
        tot = dict.fromkeys(BUDGETS, 0)
        tot["neurons"] = sum(n.size for n in self.placed)
        for p in self.projections:
            ax, bits = self.models[p.name].lower_bound()
            tot["in_axons"] += ax
            if p.source not in self.off_core:
                tot["out_axons"] += ax
            tot["memory_bits"] += bits
        tot["memory_bits"] += tot["neurons"] * self.neuron_bits
        cores = {k: int(cdiv(v, int(c))) for (k, v), c in zip(tot.items(), self.caps)}
        return LowerBound(tot, cores)

    def evaluate(self, name: str, tiling: Tiling, dst_tilings: dict[str, Tiling]) -> Costs:
        """Every slice's resources under ``tiling`` (``dst_tilings``: the tilings of what it feeds)."""
        return Costs(**self.evaluate_classes(name, tiling, dst_tilings).expand())

    def evaluate_classes(self, name: str, tiling: Tiling, dst_tilings: dict[str, Tiling]) -> GridCosts:
        """``evaluate`` by classes of tiles (factored.py): time and memory grow with the distinct
        slices, not with all of them. What the slices receive is computed once per tiling."""
        key = (name, tiling.tile)
        inc = self._incoming.get(key)
        if inc is None:
            ins = [self.models[p.name].incoming_factored(tiling) for p in self.net.incoming(name)]
            neurons = Factored.outer_classes(*(tiling.size_classes(a) for a in range(3)))
            bits = self.neuron_bits
            # memory: synapse bits plus the neurons' bits, added on the first projection's classes
            memory = ((Factored(ins[0].syn_bits.values + ins[0].neurons.values * bits, ins[0].syn_bits.index),
                       *(r.syn_bits for r in ins[1:])) if ins else (Factored(neurons.values * bits, neurons.index),))
            inc = Incoming(neurons, tuple(r.axons for r in ins), tuple(r.syn_bits for r in ins), memory, bits)
            self._incoming[key] = inc
        outs = [self.models[p.name].out_axons_factored(tiling, dst_tilings[p.target])
                for p in self.net.outgoing(name) if p.target not in self.off_core]  # to a host unit: the host link
        return GridCosts(inc, tuple(outs))


SLACK = 1.05   # tilings within 5% of the fewest slices compete on input axons


def plan_population(model: NetworkModel, name: str, dst: dict[str, Tiling], g: int) -> PopulationPlan | None:
    """A tiling whose every slice fits within caps / g (None if none does): among those with at most
    SLACK x the fewest slices, the one with the fewest input-axon entries (each is an output-axon
    entry of a source core, so this keeps the layers before it coarse), then the fewest slices."""
    caps = np.maximum(model.caps // g, 1)
    c, h, w = model.views[name]
    ncap = int(min(caps[0], 2 ** model.target.synapse.index_bits[-1]))
    sc, sh, sw = distinct_tiles(c), distinct_tiles(h), distinct_tiles(w)
    found_tiles: list[tuple] = []
    cache: dict[tuple, GridCosts | None] = {}
    n_min = [None]

    def costs(tile) -> GridCosts | None:
        if tile not in cache:
            cc = model.evaluate_classes(name, Tiling((c, h, w), tile), dst)
            cache[tile] = cc if cc.fits(caps) else None
        return cache[tile]

    pairs = sorted(((th, tw) for th in sh for tw in sw if th * tw <= ncap), key=lambda p: (-p[0] * p[1], p))
    for th, tw in pairs:
        co_max = min(c, ncap // (th * tw))
        n_floor = cdiv(c, co_max) * cdiv(h, th) * cdiv(w, tw)
        if n_min[0] is not None and n_floor > SLACK * n_min[0]:
            continue
        cands = [v for v in sc if v <= co_max]
        if costs((cands[0], th, tw)) is None:
            continue
        lo, hi, found = 0, len(cands) - 1, None
        while lo <= hi:  # largest co that fits (costs grow with co)
            mid = (lo + hi) // 2
            if costs((cands[mid], th, tw)) is not None:
                found, lo = cands[mid], mid + 1
            else:
                hi = mid - 1
        tile = (found, th, tw)
        n = Tiling((c, h, w), tile).n_slices
        n_min[0] = n if n_min[0] is None else min(n_min[0], n)
        found_tiles.append(tile)
    if not found_tiles:
        return None
    keys = []
    for tile in found_tiles:
        cc = cache[tile]
        n = cc.n_slices
        if n <= SLACK * n_min[0]:
            tot = cc.totals()   # neurons, in_axons, out_axons, mem_bits over all slices
            overhead = float(sum(a / cap for a, cap in zip(tot, model.caps)))
            keys.append((int(tot[1]), n, overhead, tile))
    tile = min(keys)[3]
    return PopulationPlan(name, (c, h, w), Tiling((c, h, w), tile), Costs(**cache[tile].expand()), g)


def _diagnose(model: NetworkModel, name: str, dst: dict[str, Tiling]) -> MappingError:
    """Why even one neuron of ``name`` does not fit a core: the first budget it exceeds."""
    c, h, w = model.views[name]
    t = Tiling((c, h, w), (1, 1, 1))
    m = model.evaluate(name, t, dst).matrix()
    worst = m.max(axis=0)
    over = [i for i in range(4) if worst[i] > model.caps[i]]
    i = over[0] if over else 3
    b = BUDGETS[i]
    hint = {
        "in_axons": "a target with more input axons per core (--target loihi2 or a --profile), population axons "
                    "(atoms_per_axon in the profile), or a layer with a smaller fan-in",
        "out_axons": "a layer with a smaller fan-out, or coarser slices of the layers it feeds",
        "memory_bits": "a target with more synapse memory per core (--target loihi2 or a --profile), or a layer "
                       "with a smaller fan-in",
        "neurons": "a target with more neurons per core",
    }[b]
    return MappingError(
        f"population '{name}' cannot be placed: a single neuron needs {int(worst[i]):,} {BUDGET_NAMES[b]} but a "
        f"core of {model.target.name} offers {int(model.caps[i]):,}; use {hint}")


def plan_split(model: NetworkModel, name: str, g: int) -> PopulationPlan | None:
    """A readout as partial accumulators whose every piece fits within caps / g (None if none does
    or ``name`` is not a readout with dense inputs); see split.py."""
    found = choose_split(model, name, np.maximum(model.caps // g, 1))
    if found is None:
        return None
    tiling, split = found
    costs = Costs(**split_costs(model, tiling, split))
    log.info("readout '%s': %d partial accumulators per slice (%d slices) at granularity %d",
             name, split.partials, tiling.n_slices, g)
    return PopulationPlan(name, model.views[name], tiling, costs, g, split)


def plan_node(model: NetworkModel, name: str, dst: dict[str, Tiling], g: int) -> PopulationPlan:
    """Slices at granularity ``g``, else whole-core slices; a readout none of whose neurons fits a core
    is split into partial readouts (at ``g``, else whole cores). MappingError when nothing fits."""
    plan = plan_population(model, name, dst, g) if g > 1 else None
    if plan is None:
        plan = plan_population(model, name, dst, 1)
    if plan is not None:
        return plan
    if isinstance(model.net.node(name), Readout):
        plan = plan_split(model, name, g) or (plan_split(model, name, 1) if g > 1 else None)
        if plan is None:
            raise split_error(model, name)
        return plan
    raise _diagnose(model, name, dst)


def plan_all(model: NetworkModel, g: int, finer: dict[str, int] | None = None) -> list[PopulationPlan]:
    """Plan every population at granularity ``g`` (``finer``: per-population exceptions)."""
    dst: dict[str, Tiling] = {}
    plans: dict[str, PopulationPlan] = {}
    for node in reversed(model.placed):
        plan = plan_node(model, node.name, dst, (finer or {}).get(node.name, g))
        plans[node.name] = plan
        dst[node.name] = plan.tiling
    return [plans[n.name] for n in model.placed]


def pack(sizes: np.ndarray, caps: np.ndarray, order: np.ndarray, window: int | None = None,
         give_up_above: int | None = None) -> tuple[np.ndarray, int] | None:
    """First fit, items taken in ``order``, over all open cores (or the last ``window``); returns (core
    per item, cores). A run of identical consecutive items is placed at once: into the open cores
    that fit, in core order, as many as each takes, then onto new cores, as many per core as fit.
    ``give_up_above``: None as soon as the cores are sure to end above it (the cores open, plus the
    new cores the items left need beyond the free room of the cores they may still go to)."""
    n = len(sizes)
    core = np.empty(n, np.int64)
    free = np.empty((max(16, n // 2 + 1), sizes.shape[1]), np.int64)
    free[:] = caps
    n_cores = 0
    s_ord = sizes[order]
    brk = np.flatnonzero(np.any(s_ord[1:] != s_ord[:-1], axis=1)) + 1 if n > 1 else np.array([], np.int64)
    starts = np.concatenate([[0], brk]).astype(np.int64)
    ends = np.concatenate([brk, [n]]).astype(np.int64)
    run_s = s_ord[starts]
    run_div = np.maximum(run_s, 1)
    run_zero = run_s <= 0                       # a budget the item does not use never limits it
    run_some_zero = run_zero.any(axis=1)
    big = np.iinfo(np.int64).max
    per_core = np.where(run_zero, big, caps[None, :] // run_div).min(axis=1)   # items of a run per new core
    if give_up_above is not None:
        left = s_ord.sum(axis=0) - np.concatenate([np.zeros((1, s_ord.shape[1]), np.int64), np.cumsum(s_ord, axis=0)])
        limited = caps > 0
    for r in range(len(starts)):
        a, b = int(starts[r]), int(ends[r])
        if give_up_above is not None and r % GIVE_UP_EVERY == 0 and n_cores > 0:
            lo = 0 if window is None else max(0, n_cores - window)
            room = free[lo:n_cores].sum(axis=0)
            beyond = np.maximum(left[a] - room, 0)[limited]
            if n_cores + int(np.max(-(-beyond // caps[limited]), initial=0)) > give_up_above:
                return None
        s, cnt = run_s[r], b - a
        k = 0
        lo = 0 if window is None else max(0, n_cores - window)
        if n_cores > lo:
            fit = free[lo:n_cores] // run_div[r]
            if run_some_zero[r]:
                fit[:, run_zero[r]] = big
            fit = fit.min(axis=1)
            open_ = np.flatnonzero(fit)
            if len(open_):
                if cnt == 1:
                    j = lo + int(open_[0])
                    core[order[a]] = j
                    free[j] -= s
                    k = 1
                else:   # fill the open cores in order, each with as many as it takes
                    take = np.minimum(fit[open_], cnt)
                    upto = np.cumsum(take)
                    u = min(int(np.searchsorted(upto, cnt)) + 1, len(open_))
                    take = take[:u].copy()
                    if upto[u - 1] > cnt:
                        take[-1] -= int(upto[u - 1]) - cnt
                    k = int(take.sum())
                    cores = lo + open_[:u]
                    core[order[a:a + k]] = np.repeat(cores, take)
                    free[cores] -= take[:, None] * s[None, :]
        if k < cnt:
            q = int(per_core[r])
            rest = cnt - k
            nb = -(-rest // q)
            while n_cores + nb > len(free):
                grown = np.empty_like(free)
                grown[:] = caps
                free = np.concatenate([free, grown])
            core[order[a + k:b]] = n_cores + np.arange(rest) // q
            filled = np.full(nb, q, np.int64)
            filled[-1] = rest - q * (nb - 1)
            free[n_cores:n_cores + nb] -= filled[:, None] * s[None, :]
            n_cores += nb
    return core, n_cores


GIVE_UP_EVERY = 128   # runs between two checks of a packing that may give up


def _renumber(core: np.ndarray) -> np.ndarray:
    """Cores numbered by the first piece they hold (in piece order): topological order of cores."""
    _, first = np.unique(core, return_index=True)
    order = np.argsort(first, kind="stable")
    ranks = np.empty_like(order)
    ranks[order] = np.arange(len(order))
    return ranks[np.searchsorted(np.unique(core), core)]


def pack_plans(model: NetworkModel, plans: list[PopulationPlan], g: int) -> Partition:
    caps = model.caps
    mats = [p.costs.matrix() for p in plans]
    sizes = np.concatenate(mats)
    piece_plan = np.concatenate([np.full(len(m), i, np.int64) for i, m in enumerate(mats)])
    item = np.concatenate([np.arange(len(m), dtype=np.int64) for m in mats])
    k = np.asarray([p.partials for p in plans], np.int64)[piece_plan]
    piece_slice, piece_part = item // k, item % k
    n = len(sizes)
    results = []
    if n > 1:
        # largest first, on sizes rounded up to 1/QUANTUM of a core: identical rounded items form long
        # runs that are placed at once (rounding up keeps every core within its budgets)
        q = -(-sizes * QUANTUM // caps)
        norm = q.max(axis=1)
        ffd = np.lexsort((np.arange(n),) + tuple(-q[:, d] for d in reversed(range(q.shape[1]))) + (-norm,))
        ffd_core, ffd_n = pack(q, np.full(len(caps), QUANTUM, np.int64), ffd)
        results.append((ffd_n, 1, "largest-first", ffd_core))
    if n <= STREAM_MAX:   # wins ties; given up as soon as it cannot end within the largest-first cores
        stream = pack(sizes, caps, np.arange(n), 64, give_up_above=results[0][0] if results else None)
        if stream is not None:
            results.append((stream[1], 0, "stream", stream[0]))
    n_cores, _, how, core = min(results, key=lambda r: (r[0], r[1]))
    core = _renumber(core)
    usage = np.zeros((n_cores, sizes.shape[1]), np.int64)
    np.add.at(usage, core, sizes)
    part = Partition(plans, piece_plan, piece_slice, core, n_cores, g, how, usage, piece_part)
    return _merge_partials(model, part) if any(p.split is not None for p in plans) else part


def _merged_split(split: Split, cores: np.ndarray) -> Split | None:
    """The split with consecutive partials that share a core in every slice (``cores``: [slice,
    partial]) merged into one; None when there are none."""
    same = np.all(cores[:, 1:] == cores[:, :-1], axis=0)
    if not same.any():
        return None
    keep = np.concatenate([[True], ~same, [True]])
    return Split(split.projections, split.units, tuple(int(b) for b in np.asarray(split.bounds)[keep]))


def _merge_partials(model: NetworkModel, part: Partition) -> Partition:
    """Consecutive partials of a split readout that were packed onto the same core become one partial
    (the same input axons and synapse lists, one compartment per neuron instead of several): fewer
    values for the host to add, never more resources on any core."""
    plans, pieces = list(part.plans), []
    for i, p in enumerate(plans):
        sel = np.flatnonzero(part.piece_plan == i)
        order = sel[np.lexsort((part.piece_part[sel], part.piece_slice[sel]))]
        cores = part.piece_core[order].reshape(p.tiling.n_slices, p.partials)
        merged = _merged_split(p.split, cores) if p.partials > 1 else None
        if merged is None:
            pieces.append((np.full(len(sel), i), part.piece_slice[order], part.piece_part[order], cores.reshape(-1)))
            continue
        plans[i] = replace(p, split=merged, costs=Costs(**split_costs(model, p.tiling, merged)))
        first = np.searchsorted(np.asarray(p.split.bounds), np.asarray(merged.bounds[:-1]))  # old partial of each new
        n, k = p.tiling.n_slices, merged.partials
        pieces.append((np.full(n * k, i), np.repeat(np.arange(n), k), np.tile(np.arange(k), n),
                       cores[:, first].reshape(-1)))
    plan_of, slice_of, part_of, core = (np.concatenate(x).astype(np.int64) for x in zip(*pieces))
    usage = np.zeros_like(part.usage)
    np.add.at(usage, core, np.concatenate([q.costs.matrix() for q in plans]))
    return Partition(plans, plan_of, slice_of, core, part.n_cores, part.granularity, part.packing, usage, part_of)


GRANULARITIES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
FILLER = 4        # neuron-bound populations are sliced this much finer to fill memory-bound cores
STREAM_MAX = 50_000  # above this many slices only the largest-first packing is tried
QUANTUM = 4096   # largest-first packing counts sizes in 1/QUANTUM of a core


def partition(model: NetworkModel, lower_bound: int, max_pieces: int = 200_000, patience: int = 2) -> Partition:
    """Best partition over the granularities (fewest cores; ties: coarser). Stops at the lower bound,
    when slices would exceed ``max_pieces``, or after ``patience`` granularities without improvement."""
    best: Partition | None = None
    worse, pieces_g1 = 0, None
    for g in GRANULARITIES:
        if pieces_g1 is not None and pieces_g1 * g > max_pieces:
            break  # finer slices would be too many to pack quickly
        try:
            plans = plan_all(model, g)
        except MappingError:
            if g == 1:
                raise
            break  # finer slices made some fan-out too wide: keep the coarser result
        n_pieces = sum(p.n_pieces for p in plans)
        pieces_g1 = n_pieces if pieces_g1 is None else pieces_g1
        if g > 1 and n_pieces > max_pieces:
            break
        part = pack_plans(model, plans, g)
        log.info("granularity %d: %d slices on %d cores (%s)", g, n_pieces, part.n_cores, part.packing)
        if best is None or part.n_cores < best.n_cores:
            best, worse = part, 0
        else:
            worse += 1
        if best.n_cores <= lower_bound or worse >= patience:
            break
    assert best is not None
    if best.n_cores > lower_bound:
        best = _with_fillers(model, best)
    return best


def _with_fillers(model: NetworkModel, best: Partition) -> Partition:
    """Populations whose slices are bound by neurons (their memory is light) are sliced FILLER times
    finer, so that their small slices fill the memory-bound cores' spare neurons; kept if better."""
    caps = model.caps
    finer = {}
    for p in best.plans:
        m = p.costs.matrix().max(axis=0) / caps
        if m[0] >= m.max() and p.granularity == best.granularity:
            finer[p.name] = best.granularity * FILLER
    if not finer:
        return best
    try:
        plans = plan_all(model, best.granularity, finer)
    except MappingError:
        return best
    part = pack_plans(model, plans, best.granularity)
    log.info("neuron-bound populations %s sliced finer: %d cores", sorted(finer), part.n_cores)
    return part if part.n_cores < best.n_cores else best
