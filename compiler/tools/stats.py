"""``snnc stats``: what an inference costs: ANN MACs (stored at compile time from the ONNX graph's shapes) and SNN
events, synaptic operations and neuron updates counted by an exact backend (the reference simulator,
or torch: the same integers), priced by an
energy model (compiler/energy/: a built-in TOML or the user's).

Per layer, the ANN's MACs that compute layer l's pre-activation are set beside the SOPs delivered
*into* layer l (the spikes of its sources times the synapses they reach). SNN energy of layer l:

    E_l = e_sop * SOP_in,l (e_input_op for the first layer's graded input)
        + e_spike * spikes_l + e_active * spikes_l + e_inactive * (updates_l - spikes_l)

(a neuron update is "active" in a step where the neuron spikes; a readout never spikes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from snnc.backends import Keep
from snnc.ir import Input, Network, Population, Schedule

from ..energy import EnergyModel, load_energy_model
from ..metadata import layer_records
from .backend_choice import CountingBackend, device_of, reference_backend


@dataclass
class LayerCost:
    name: str
    macs: int
    spikes_per_sample: float
    sops_per_sample: float
    updates_per_sample: float
    spike_rate: float
    energy_ann_j: float
    energy_snn_j: float
    spikes_per_step: list[float] = field(default_factory=list)
    sops_per_step: list[float] = field(default_factory=list)


@dataclass
class StatsReport:
    energy_model: str
    energy_source: str
    timesteps: int
    schedule: str
    samples: int
    ann: dict
    snn: dict
    layers: list[LayerCost]
    backend: str = "reference"   # what counted the operations (an exact backend)
    device: str = "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


def layer_macs(net: Network) -> dict[str, int]:
    return {r.layer: int(r.ann_macs or 0) for r in layer_records(net)}


@dataclass
class OpsCount:
    """Operations counted on some samples: integer totals per node (``NodeOps``), which add up exactly
    over any split of the samples (a shard's part of ``snnc stats --workers``)."""

    samples: int
    ops: dict


def count_operations(net: Network, x: np.ndarray, schedule: Schedule, backend: CountingBackend,
                     batch_size: int = 64, progress=None) -> OpsCount:
    """Run ``net`` on ``x`` in batches with ``backend`` and add up what every node did."""
    tot = None
    for i in range(0, len(x), batch_size):
        res = backend.simulate(net, x[i:i + batch_size], schedule=schedule, count_ops=True, keep=Keep.READOUTS)
        tot = res.ops if tot is None else add_ops(tot, res.ops)
        if progress is not None:
            progress(len(x[i:i + batch_size]))
    return OpsCount(len(x), tot)


def add_ops(a: dict, b: dict) -> dict:
    """Per node, the operations of ``a`` and ``b`` together (in place in ``a``)."""
    for k, o in b.items():
        t = a[k]
        t.events, t.sops_out, t.sops_in, t.updates = (t.events + o.events, t.sops_out + o.sops_out,
                                                      t.sops_in + o.sops_in, t.updates + o.updates)
    return a


def compute_stats(net: Network, x: np.ndarray, schedule: Schedule | str = Schedule.LAYERWISE,
                  energy: str | EnergyModel = "qiao2015", batch_size: int = 64, progress=None,
                  backend: CountingBackend | None = None) -> StatsReport:
    """Count the operations of ``net`` on ``x`` with ``backend`` (default the reference) and price them."""
    backend = reference_backend(backend)
    schedule = Schedule(schedule)
    counted = count_operations(net, x, schedule, backend, batch_size, progress)
    return price_operations(net, [counted], schedule, energy, backend.name, device_of(backend))


def price_operations(net: Network, parts: list[OpsCount], schedule: Schedule, energy: str | EnergyModel,
                     backend: str, device: str) -> StatsReport:
    """The report of the counts ``parts`` (one run or the shards of one), priced by ``energy``."""
    em = energy if isinstance(energy, EnergyModel) else load_energy_model(energy)
    T, n = net.timesteps, sum(p.samples for p in parts)
    tot = parts[0].ops
    for p in parts[1:]:
        tot = add_ops(tot, p.ops)
    macs = layer_macs(net)
    first = {p.target for inp in net.inputs for p in net.outgoing(inp.name)}
    layers = []
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            continue
        o = tot[node.name]
        spikes = float(o.events.sum()) / n
        sops = float(o.sops_in.sum()) / n
        upd = o.updates / n
        e_op = em.energy_per_input_op_j if node.name in first else em.energy_per_sop_j
        e_snn = (e_op * sops + (em.energy_per_spike_j + em.energy_per_update_active_j) * spikes
                 + em.energy_per_update_inactive_j * (upd - spikes))
        m = macs.get(node.name, 0)
        layers.append(LayerCost(
            node.name, m, spikes, sops, upd,
            spikes / (node.size * net.steps(node)) if isinstance(node, Population) else 0.0,  # own steps (mixed L)
            m * em.ann_energy_per_mac_j, e_snn,
            (o.events / n).tolist(), (o.sops_in / n).tolist(),
        ))
    total_macs = int(net.metadata.get("ann_macs_total", sum(L.macs for L in layers)))
    ann = {"macs": total_macs, "flops": 2 * total_macs, "energy_j": total_macs * em.ann_energy_per_mac_j}
    snn_e = sum(L.energy_snn_j for L in layers)
    snn = {"sops_per_sample": sum(L.sops_per_sample for L in layers),
           "spikes_per_sample": sum(L.spikes_per_sample for L in layers),
           "input_events_per_sample": float(sum(tot[i.name].events.sum() for i in net.inputs)) / n,
           "neuron_updates_per_sample": sum(L.updates_per_sample for L in layers),
           "energy_j": snn_e,
           "energy_ratio_ann_over_snn": ann["energy_j"] / snn_e if snn_e > 0 else None}
    return StatsReport(em.name, em.source, T, schedule.value, n, ann, snn, layers, backend, device)


def format_stats(bundle, rep: StatsReport) -> str:
    """What ``snnc stats`` prints: per layer and in total, per sample."""
    out = [f"stats {bundle}: energy model {rep.energy_model} ({rep.energy_source})",
           f"  schedule {rep.schedule}, T={rep.timesteps}, {rep.samples} samples, counted on {rep.backend} "
           f"({rep.device}); per sample:",
           f"  {'layer':<10} {'ANN MACs':>12} {'SNN SOPs':>12} {'spikes':>10} {'rate':>7} {'E_ANN [J]':>11} {'E_SNN [J]':>11}"]
    for L in rep.layers:
        out.append(f"  {L.name:<10} {L.macs:>12,} {L.sops_per_sample:>12,.0f} {L.spikes_per_sample:>10,.1f} "
                   f"{L.spike_rate:>7.4f} {L.energy_ann_j:>11.3e} {L.energy_snn_j:>11.3e}")
    r = rep.snn["energy_ratio_ann_over_snn"]
    out.append(f"  {'total':<10} {rep.ann['macs']:>12,} {rep.snn['sops_per_sample']:>12,.0f} "
               f"{rep.snn['spikes_per_sample']:>10,.1f} {'':>7} {rep.ann['energy_j']:>11.3e} {rep.snn['energy_j']:>11.3e}")
    out.append(f"  ANN/SNN energy ratio: {'n/a' if r is None else f'{r:.2f}'}")
    return "\n".join(out)
