"""The placement stored in a bundle (``net.metadata["placement"]``) as JSON, text tables and a PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SnncError
from ..outputs import save_figure
from .geometry import Tiling
from .partition import BUDGET_NAMES, BUDGETS

PIECE_FIELDS = ("neurons", "synapse_bits", "memory_bits", "in_axons", "out_axons")


def _check(placement) -> dict:
    if not isinstance(placement, dict) or "pieces" not in placement or "populations" not in placement:
        raise SnncError("the bundle holds no placement (compiled by an snnc without a mapper?): recompile it")
    return placement


def _boxes(placement: dict) -> list[list[list[int]]]:
    tilings = [Tiling(tuple(p["view"]), tuple(p["tile"])) for p in placement["populations"]]
    pcs = placement["pieces"]
    return [[list(r) for r in tilings[p].box(s)] for p, s in zip(pcs["population"], pcs["slice"])]


def _slice_str(name: str, box) -> str:
    return f"{name}[" + ",".join(f"{a}:{b}" for a, b in box) + "]"


def core_entries(placement: dict) -> list[dict]:
    """One entry per core: its chip, populations, slices and resources (summed over its pieces)."""
    pl = _check(placement)
    pcs = pl["pieces"]
    names = [p["name"] for p in pl["populations"]]
    boxes = _boxes(pl)
    splits = [p.get("split") for p in pl["populations"]]
    partial = pcs.get("partial") or [0] * len(pcs["core"])
    cores: list[dict] = [{"core": k, "chip": int(c), "pieces": []} for k, c in enumerate(pl["core_chip"])]
    for i, k in enumerate(pcs["core"]):
        piece = {"population": names[pcs["population"][i]], "slice": boxes[i]}
        split = splits[pcs["population"][i]]
        if split is not None:  # a partial readout: its share of the input units
            j = int(partial[i])
            piece.update(partial=j, inputs=[split["unit_bounds"][j], split["unit_bounds"][j + 1]])
        piece.update({f: int(pcs[f][i]) for f in PIECE_FIELDS})
        cores[k]["pieces"].append(piece)
    out = []
    for c in cores:
        pieces = c.pop("pieces")
        e = {"core": c["core"], "chip": c["chip"],
             "population": "+".join(dict.fromkeys(p["population"] for p in pieces)),
             "slice": "+".join(_slice_str(p["population"], p["slice"]) for p in pieces)}
        e.update({f: sum(p[f] for p in pieces) for f in PIECE_FIELDS})
        e["pieces"] = pieces
        out.append(e)
    return out


def utilization(placement: dict) -> dict[str, dict[str, float]]:
    """Per budget: used in total, offered by the cores used, and the mean / max per-core fraction."""
    pl = _check(placement)
    pcs, n = pl["pieces"], pl["cores_used"]
    core = np.asarray(pcs["core"], np.int64)
    out = {}
    for b, field in zip(BUDGETS, ("neurons", "in_axons", "out_axons", "memory_bits")):
        per = np.bincount(core, weights=np.asarray(pcs[field], np.float64), minlength=n) / pl["budgets"][b]
        out[b] = {"used": int(np.asarray(pcs[field], np.int64).sum()), "available": int(n * pl["budgets"][b]),
                  "mean": float(per.mean()) if n else 0.0, "max": float(per.max()) if n else 0.0}
    return out


def map_json(placement: dict) -> dict:
    pl = _check(placement)
    lb = pl["lower_bound_cores"]
    return {
        "target": pl["target"], "profile": pl.get("profile"), "system": pl.get("system"),
        "chips_available": pl.get("chips_available"), "cores_per_chip": pl["cores_per_chip"],
        "budgets": pl["budgets"],
        "cores_used": pl["cores_used"], "chips_used": pl["chips_used"], "lower_bound_cores": lb,
        "ratio_to_lower_bound": pl["cores_used"] / lb if lb else None,
        "lower_bound": pl["lower_bound"], "utilization": utilization(pl),
        "granularity": pl.get("granularity"), "packing": pl.get("packing"), "chip_placement": pl.get("chip_placement"),
        "traffic_basis": pl.get("traffic_basis"), "inter_chip_traffic": pl.get("inter_chip_traffic"),
        "total_traffic": pl.get("total_traffic"), "seconds": pl.get("seconds"),
        "populations": population_rows(pl),
        "split_readouts": split_readouts(pl),
        "cores": core_entries(pl),
        **({"host_units": pl["host_units"]} if pl.get("host_units") else {}),
    }


def split_readouts(placement: dict) -> dict[str, dict]:
    """Readouts placed as partial accumulators: per readout, partials per slice, the input-unit
    ranges and the cores; the host adds the partial values of every output."""
    return {p["name"]: p["split"] for p in _check(placement)["populations"] if p.get("split")}


def population_rows(placement: dict) -> list[dict]:
    pl = _check(placement)
    pcs = pl["pieces"]
    pop = np.asarray(pcs["population"], np.int64)
    core = np.asarray(pcs["core"], np.int64)
    rows = []
    for i, p in enumerate(pl["populations"]):
        sel = pop == i
        rows.append({"population": p["name"], "view": p["view"], "tile": p["tile"], "slices": p["slices"],
                     "partials": int((p.get("split") or {}).get("partials", 1)),
                     "cores": int(len(np.unique(core[sel]))),
                     **{f: int(np.asarray(pcs[f], np.int64)[sel].sum()) for f in PIECE_FIELDS}})
    return rows


def format_text(placement: dict, title: str = "") -> str:
    pl = _check(placement)
    lb = pl["lower_bound_cores"]
    lines = [f"placement{(' of ' + title) if title else ''} on {pl['target']}"
             + (f" + profile {pl['profile']}" if pl.get("profile") else "")
             + (f", system {pl['system']}" if pl.get("system") else ""),
             f"  {pl['cores_used']:,} cores on {pl['chips_used']:,} chip(s) of {pl['cores_per_chip']} cores"
             + (f" ({pl['chips_available']} available)" if pl.get("chips_available") else "")
             + f"; lower bound {lb:,} cores (ratio {pl['cores_used'] / lb:.3f})",
             f"  slices at granularity 1/{pl.get('granularity')}, packed {pl.get('packing')}, "
             f"cores onto chips: {pl.get('chip_placement')}"]
    if pl.get("inter_chip_traffic") is not None:
        lines.append(f"  spike traffic ({pl.get('traffic_basis')}): {pl['total_traffic']:,.0f} between cores, "
                     f"{pl['inter_chip_traffic']:,.0f} between chips per timestep")
    lines.append("")
    lines.append(f"  {'budget':<30} {'used':>16} {'of available':>16} {'mean/core':>10} {'max/core':>9} {'LB cores':>9}")
    util = utilization(pl)
    for b in BUDGETS:
        u = util[b]
        lines.append(f"  {BUDGET_NAMES[b]:<30} {u['used']:>16,} {u['available']:>16,} {u['mean']:>9.1%} {u['max']:>9.1%} "
                     f"{pl['lower_bound']['cores'][b]:>9,}")
    lines.append("")
    lines.append(f"  {'population':<12} {'shape (C,H,W)':<16} {'tile':<14} {'slices':>7} {'cores':>7} {'neurons':>10} "
                 f"{'synapse bits':>15} {'in axons':>10} {'out axons':>10}")
    for r in population_rows(pl):
        lines.append(f"  {r['population']:<12} {str(tuple(r['view'])):<16} {str(tuple(r['tile'])):<14} {r['slices']:>7,} "
                     f"{r['cores']:>7,} {r['neurons']:>10,} {r['synapse_bits']:>15,} {r['in_axons']:>10,} {r['out_axons']:>10,}")
    for name, sp in split_readouts(pl).items():
        lines.append(f"  readout '{name}' is split: {sp['partials']} partial accumulators per slice (each a range of "
                     f"its input axons) on {len(sp['cores'])} cores; the host adds {sp['partials']} values per output")
    lines += host_unit_lines(pl)
    return "\n".join(lines)


def host_unit_lines(placement: dict) -> list[str]:
    """The graded units placed off the neuro cores (``host.py``), one line each."""
    host = placement.get("host_units")
    if not host:
        return []
    units = host["units"]
    out = ["", f"  {len(units)} graded units on the {host['resource']} ({host['processors_per_chip']} per chip, "
               f"{host['state_bits']}-bit values), not on neuro cores:",
           f"  {'unit':<12} {'kind':<18} {'values':>8} {'port values':>12} {'weights in':>11}"]
    for u in units:
        out.append(f"  {u['name']:<12} {u['kind']:<18} {u['values']:>8,} {u['port_values']:>12,} {u['weights']:>11,}")
    return out


def plot_utilization(placement: dict, path, inputs=()) -> Path:
    """PNG: per-core utilization of every budget (cores in order on the x axis), chips shaded. Written
    through ``compiler.outputs.save_figure`` (never over ``inputs``, a FIFO or a folder; parents on success)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pl = _check(placement)
    pcs, n = pl["pieces"], pl["cores_used"]
    core = np.asarray(pcs["core"], np.int64)
    fig, axes = plt.subplots(len(BUDGETS), 1, figsize=(10, 7), sharex=True)
    x = np.arange(n)
    chip = np.asarray(pl["core_chip"], np.int64)
    for ax, b, field in zip(axes, BUDGETS, ("neurons", "in_axons", "out_axons", "memory_bits")):
        per = np.bincount(core, weights=np.asarray(pcs[field], np.float64), minlength=n) / pl["budgets"][b]
        if n <= 512:
            ax.bar(x, per, width=0.9, color=plt.cm.tab10(chip % 10), edgecolor="none")
        else:
            ax.plot(x, per, lw=0.4)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(b.replace("_", " "), fontsize=8)
        ax.axhline(1.0, color="k", lw=0.5, ls="--")
    axes[-1].set_xlabel("core (colour: chip)" if n <= 512 else "core")
    axes[-1].xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.suptitle(f"{pl['target']}: {n:,} cores on {pl['chips_used']} chip(s), lower bound {pl['lower_bound_cores']:,}")
    fig.tight_layout()
    try:
        return save_figure(fig, path, inputs=inputs, dpi=110)
    finally:
        plt.close(fig)
