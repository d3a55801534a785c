"""Cores onto chips: METIS (pymetis) k-way partition of the core traffic graph, made to respect the
chips' core capacity, kept only when it cuts less inter-chip traffic than the sequential fill."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


from .partition import NetworkModel, Partition, PopulationPlan
from .split import source_counts

log = logging.getLogger(__name__)

MAX_GRAPH_ENTRIES = 20_000_000  # slice-pair entries above which the traffic graph is not built


@dataclass
class ChipAssignment:
    chip: np.ndarray            # per core
    n_chips: int
    method: str                 # "single" | "sequential" | "metis"
    inter_chip_traffic: float | None
    total_traffic: float | None


def core_traffic(model: NetworkModel, part: Partition, rates: dict[str, float] | None) -> sp.csr_matrix | None:
    """[core, core] estimated spikes per timestep from one core to another (diagonal removed):
    source neurons x destination slices they reach, times the source's firing rate (1 without rates:
    the fan-out). None when the graph would exceed MAX_GRAPH_ENTRIES."""
    index = {p.name: i for i, p in enumerate(part.plans)}
    core_of = []   # per plan: core of every piece (slice-major, then partial)
    for i, p in enumerate(part.plans):
        c = np.empty(p.n_pieces, np.int64)
        sel = part.piece_plan == i
        c[part.piece_slice[sel] * p.partials + part.piece_part[sel]] = part.piece_core[sel]
        core_of.append(c)
    on_cores = [(p, index[p.source], index[p.target]) for p in model.projections if p.source not in model.off_core]
    total = 0
    for proj, s, d in on_cores:   # counted first: a graph too large is given up before any of it is built
        total += _entry_count(model, proj.name, part.plans[s], part.plans[d])
        if total > MAX_GRAPH_ENTRIES:
            log.info("core traffic graph too large (> %d slice pairs): sequential chip placement", MAX_GRAPH_ENTRIES)
            return None
    blocks = []
    for proj, s, d in on_cores:
        m = slice_entries(model, proj.name, part.plans[s], part.plans[d])
        rate = 1.0 if rates is None else float(rates.get(proj.source, 0.0))
        r, c, v = _core_pairs(core_of[s], core_of[d], m)
        blocks.append((r, c, v * rate))
    n = part.n_cores
    if not blocks:
        return sp.csr_matrix((n, n))
    r, c, v = (np.concatenate(x) for x in zip(*blocks))
    keep = r != c
    return sp.coo_matrix((v[keep], (r[keep], c[keep])), shape=(n, n)).tocsr()


DENSE_PAIRS = 1 << 23   # core pairs of one projection counted in a dense array up to this many


def _core_pairs(src_core: np.ndarray, dst_core: np.ndarray, m: sp.coo_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One projection's [source slice, destination piece] entries summed per (source core, destination
    core): (rows, cols, neurons), each pair once. The sums are of integers, exact in float64."""
    us, ls = np.unique(src_core, return_inverse=True)
    ud, ld = np.unique(dst_core, return_inverse=True)
    nd = len(ud)
    key = ls.reshape(-1)[m.row].astype(np.int64) * nd + ld.reshape(-1)[m.col]
    if len(us) * nd <= DENSE_PAIRS:
        sums = np.bincount(key, weights=m.data, minlength=len(us) * nd)
        pairs = np.flatnonzero(sums)
        sums = sums[pairs]
    else:
        pairs, inv = np.unique(key, return_inverse=True)
        sums = np.bincount(inv.reshape(-1), weights=m.data, minlength=len(pairs))
    return us[pairs // nd], ud[pairs % nd], sums


def _split_counts(model: NetworkModel, proj: str, src: PopulationPlan, dst: PopulationPlan) -> np.ndarray:
    """[source slice, partial] neurons a dense input sends to each partial of a split readout."""
    return source_counts(model.models[proj], src.tiling, dst.split, dst.split.offsets()[proj])


def _entry_count(model: NetworkModel, proj: str, src: PopulationPlan, dst: PopulationPlan) -> int:
    """Non-zero (source slice, destination piece) entries of one projection."""
    if dst.split is not None:
        return int(np.count_nonzero(_split_counts(model, proj, src, dst))) * dst.tiling.n_slices
    pair = model.models[proj].pair(src.tiling, dst.tiling)
    return int(np.count_nonzero(pair.neurons) * np.count_nonzero(pair.rows) * np.count_nonzero(pair.cols))


def slice_entries(model: NetworkModel, proj: str, src: PopulationPlan, dst: PopulationPlan) -> sp.coo_matrix:
    """[source slice, destination piece] = source neurons that reach the piece. A dense input reaches
    every slice of a split readout, each neuron only the partial holding its unit (pieces numbered
    slice-major, then partial)."""
    if dst.split is not None:
        ones = sp.csr_matrix(np.ones((1, dst.tiling.n_slices), np.int64))
        return sp.kron(ones, sp.csr_matrix(_split_counts(model, proj, src, dst))).tocoo()
    pair = model.models[proj].pair(src.tiling, dst.tiling)
    return sp.kron(sp.csr_matrix(pair.neurons), sp.kron(sp.csr_matrix(pair.rows), sp.csr_matrix(pair.cols))).tocoo()


def _cut(sym: sp.csr_matrix, chip: np.ndarray) -> float:
    coo = sym.tocoo()
    return float(coo.data[chip[coo.row] != chip[coo.col]].sum()) / 2.0


def _metis(sym: sp.csr_matrix, n_chips: int, cap: int) -> np.ndarray | None:
    try:
        import pymetis
    except ImportError:  # pragma: no cover - pymetis is a dependency
        log.warning("pymetis is not installed: sequential chip placement")
        return None
    n = sym.shape[0]
    if sym.nnz == 0 or n * n_chips > 50_000_000:
        return None
    w = sym.data
    ew = np.maximum(1, np.round(w * (1e6 / w.max()))).astype(np.int64)
    adjacency = pymetis.CSRAdjacency(sym.indptr.astype(np.int64), sym.indices.astype(np.int64))
    res = pymetis.part_graph(n_chips, adjacency, eweights=ew, options=pymetis.Options(seed=0))
    chip = np.asarray(res.vertex_part, np.int64)
    # repair: move cores out of over-full chips, each to the chip (with room) it talks to most
    aff = np.asarray((sym @ sp.csr_matrix((np.ones(n), (np.arange(n), chip)), shape=(n, n_chips))).todense())
    load = np.bincount(chip, minlength=n_chips)
    while load.max() > cap:
        o = int(np.argmax(load))
        members = np.flatnonzero(chip == o)
        room = load < cap
        gain = aff[members][:, room] - aff[members, o][:, None]
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
        v, t = int(members[i]), int(np.flatnonzero(room)[j])
        row = sym.getrow(v)
        aff[row.indices, o] -= row.data
        aff[row.indices, t] += row.data
        chip[v], load[o], load[t] = t, load[o] - 1, load[t] + 1
    return chip


def assign_chips(model: NetworkModel, part: Partition, n_chips: int, rates: dict[str, float] | None) -> ChipAssignment:
    cap = model.target.cores_per_chip
    seq = np.arange(part.n_cores, dtype=np.int64) // cap
    traffic = core_traffic(model, part, rates)
    if traffic is None:
        return ChipAssignment(seq, n_chips, "sequential", None, None)
    sym = (traffic + traffic.T).tocsr()
    total = float(traffic.sum())
    if n_chips == 1:
        return ChipAssignment(seq, 1, "single", 0.0, total)
    best, method, cut = seq, "sequential", _cut(sym, seq)
    chip = _metis(sym, n_chips, cap)
    if chip is not None:
        c = _cut(sym, chip)
        log.info("inter-chip traffic: sequential %.4g, metis %.4g", cut, c)
        if c < cut:
            best, method, cut = chip, "metis", c
    return ChipAssignment(best, n_chips, method, cut, total)
