"""Fit a compiled network to the hardware: slice populations, pack slices onto cores, cores onto chips.

    placement = map_network(net, target, chips=None, rates=None)   # -> dict for net.metadata["placement"]

Resource model: ``resources.py`` (one model per projection kind, registry ``MODELS``); slicing and
packing: ``partition.py`` (a tiling's costs by classes of equal tiles: ``factored.py``); readouts too large for a core as partial accumulators: ``split.py``;
chips: ``placement.py`` (METIS via pymetis); text / JSON / PNG: ``report.py``. The readings of the
hardware behind every count are in docs/mapping.md.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from snnc.ir import Network

from ..errors import MappingError
from ..targets import TargetProfile
from .geometry import Tiling, cdiv
from .host import host_placement, host_unit_bits, host_units, is_host_unit
from .partition import BUDGET_NAMES, BUDGETS, NetworkModel, partition
from .placement import assign_chips

__all__ = ["host_placement", "host_unit_bits", "host_units", "is_host_unit", "map_network", "MappingError", "rates_from_counts", "slice_box", "BUDGETS", "BUDGET_NAMES"]

log = logging.getLogger(__name__)


def rates_from_counts(net: Network, counts: dict[str, np.ndarray]) -> dict[str, float]:
    """Spikes per neuron per timestep of every population, from a simulation's counts (B, *shape)."""
    out = {}
    for p in net.populations:
        c = np.abs(np.asarray(counts[p.name]))
        out[p.name] = float(c.sum() / max(1, c.shape[0] * p.size * net.steps(p)))  # its own steps (mixed L)
    return out


def _too_many_cores(model: NetworkModel, part, n_cores: int, chips: int, how: str) -> MappingError:
    cap = model.target.cores_per_chip
    # cores per population, a shared core counted as a fraction
    per_core = np.bincount(part.piece_core, minlength=n_cores)
    share = np.bincount(part.piece_plan, weights=1.0 / per_core[part.piece_core], minlength=len(part.plans))
    top = np.argsort(-share, kind="stable")[:3]
    biggest = ", ".join(f"'{part.plans[i].name}' ({share[i]:,.1f} cores)" for i in top)
    need = cdiv(n_cores, cap)
    systems = sorted(((v, k) for k, v in model.target.systems.items() if v >= need))
    sys_hint = f"--system {systems[0][1]} ({systems[0][0]} chips)" if systems else "a larger system"
    return MappingError(
        f"the network needs {n_cores:,} cores of {model.target.name} ({cap} per chip: {need} chips) but {how} offers "
        f"{chips} chip(s) = {chips * cap:,} cores; the largest populations are {biggest}. Use more chips "
        f"(--chips {need}), {sys_hint}, a target with bigger cores (--target loihi2), or a smaller model")


def _population_entry(part, i: int) -> dict:
    """One population's tiling and totals; a readout split into partial accumulators also records
    its split (partials per slice, the input-unit ranges, the cores holding them)."""
    p = part.plans[i]
    e = {"name": p.name, "view": list(p.view), "tile": p.tiling.to_list(), "slices": p.tiling.n_slices,
         "neurons": int(p.costs.neurons.sum()), "synapse_bits": int(p.costs.syn_bits.sum()),
         "in_axons": int(p.costs.in_axons.sum()), "out_axons": int(p.costs.out_axons.sum())}
    if p.split is not None:
        cores = np.unique(part.piece_core[part.piece_plan == i])
        e["split"] = {**p.split.to_dict(), "cores": cores.tolist(),
                      "host_adds": f"{p.split.partials} partial values per output"}
        log.info("readout '%s' split into %d partial accumulators per slice on %d cores", p.name,
                 p.split.partials, len(cores))
    return e


def map_network(net: Network, target: TargetProfile, chips: int | None = None, system: str | None = None,
                rates: dict[str, float] | None = None) -> dict:
    """Place ``net`` on ``target``; returns the JSON-serialisable placement (bundle metadata).

    ``chips``/``system`` bound the number of chips (default: as many as needed); ``rates`` (spikes
    per neuron per timestep per population, e.g. from ``rates_from_counts``) weight the traffic the
    chip placement minimises, else every neuron counts once per destination core (fan-out).
    Raises MappingError when a neuron does not fit a core or the cores do not fit the chips.
    """
    t0 = time.perf_counter()
    bound, how = None, None
    if system is not None:
        bound, how = target.system_chips(system), f"--system {system}"
    if chips is not None:
        if chips < 1:
            raise MappingError(f"--chips must be >= 1, got {chips}")
        bound, how = (chips, f"--chips {chips}") if bound is None or chips < bound else (bound, how)
    model = NetworkModel(net, target)
    lb = model.lower_bound()
    part = partition(model, lb.best)
    n_cores = part.n_cores
    n_chips = cdiv(n_cores, target.cores_per_chip)
    if bound is not None and n_chips > bound:
        raise _too_many_cores(model, part, n_cores, bound, how)
    t1 = time.perf_counter()
    chips_of = assign_chips(model, part, n_chips, rates)
    t2 = time.perf_counter()
    caps = model.caps
    pops = [_population_entry(part, i) for i in range(len(part.plans))]
    pieces = {
        "core": part.piece_core.tolist(),
        "population": part.piece_plan.tolist(),
        "slice": part.piece_slice.tolist(),
    }
    if any(p.split is not None for p in part.plans):   # only then: bundles without splits stay as they were
        pieces["partial"] = part.piece_part.tolist()
    k = np.asarray([p.partials for p in part.plans], np.int64)
    offset = np.cumsum([0] + [p.n_pieces for p in part.plans])[:-1]
    item = offset[part.piece_plan] + part.piece_slice * k[part.piece_plan] + part.piece_part
    for key, attr in (("neurons", "neurons"), ("synapse_bits", "syn_bits"), ("memory_bits", "mem_bits"),
                      ("in_axons", "in_axons"), ("out_axons", "out_axons")):
        flat = np.concatenate([getattr(p.costs, attr) for p in part.plans])
        pieces[key] = flat[item].tolist()
    placement = {
        "version": 1,
        "target": target.name,
        "profile": target.profile,
        "system": system,
        "chips_available": bound,
        "cores_per_chip": target.cores_per_chip,
        "budgets": {b: int(c) for b, c in zip(BUDGETS, caps)},
        "neuron_memory_bits": target.core.neuron_memory_bits,
        "atoms_per_axon": target.synapse.atoms_per_axon,
        "cores_used": int(n_cores),
        "chips_used": int(n_chips),
        "lower_bound_cores": int(lb.best),
        "lower_bound": {"totals": lb.totals, "cores": lb.cores},
        "granularity": part.granularity,
        "packing": part.packing,
        "chip_placement": chips_of.method,
        "traffic_basis": "rates" if rates is not None else "fan-out",
        "inter_chip_traffic": chips_of.inter_chip_traffic,
        "total_traffic": chips_of.total_traffic,
        "populations": pops,
        "core_chip": chips_of.chip.tolist(),
        "pieces": pieces,
        "seconds": {"partition": t1 - t0, "chips": t2 - t1},
    }
    host = host_placement(net, target)
    if host is not None:   # only then: placements without graded units stay as they were
        placement["host_units"] = host
    log.info("placed on %d cores, %d chips (lower bound %d cores) in %.2f s", n_cores, n_chips, lb.best, t2 - t0)
    return placement


def slice_box(placement: dict, population: int, index: int) -> list[list[int]]:
    """[[c0, c1], [y0, y1], [x0, x1]] of a piece, from the stored tiling."""
    p = placement["populations"][population]
    return [list(r) for r in Tiling(tuple(p["view"]), tuple(p["tile"])).box(index)]

