"""``snnc simulate``: run a bundle on a backend in batches; spikes per sample, rates, latency, accuracy."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from snnc.backends import Backend
from snnc.ir import DualThreshold, MultiThreshold, Network, Schedule

from .backend_choice import device_of


@dataclass
class SimulateReport:
    """Per population: events per sample (a spike of either sign or a graded message is one event),
    negative ones, and the rate per neuron per step (its own steps with mixed levels)."""

    backend: str
    device: str
    schedule: str
    timesteps: int
    samples: int
    latency_steps: int
    accuracy: float | None
    spikes_per_sample: dict[str, float]
    negative_spikes_per_sample: dict[str, float]
    spike_rate: dict[str, float]
    predictions: list[int] | None

    def to_dict(self) -> dict:
        return asdict(self)


def signed_messages(net: Network) -> bool:
    """Do populations send signed spikes or graded messages (dual-threshold, multi-threshold)? Then
    counts are net sums, and events are counted from the recorded trains."""
    return any(isinstance(p.neuron, (DualThreshold, MultiThreshold)) for p in net.populations)


def simulate_bundle(net: Network, x: np.ndarray, y: np.ndarray | None, be: Backend, schedule: Schedule,
                    keep_predictions: bool = False, progress: Callable[[int], None] | None = None) -> SimulateReport:
    """Run ``net`` on the backend ``be`` in batches of its ``batch_size`` samples (256 for the reference and
    torch; 32 for a backend that declares none, e.g. Lava: one compile and start per batch)."""
    batch = int(getattr(be, "batch_size", 32))
    signed = signed_messages(net)
    preds, totals, negs = [], {p.name: 0 for p in net.populations}, {p.name: 0 for p in net.populations}
    res = None
    for i in range(0, len(x), batch):
        res = be.run(net, x[i:i + batch], schedule, record=signed)
        preds.append(res.predictions())
        for p in net.populations:
            if signed:
                tr = res.spikes[p.name]
                totals[p.name] += int(np.count_nonzero(tr))
                negs[p.name] += int(np.count_nonzero(tr < 0))
            else:
                totals[p.name] += int(res.counts[p.name].sum())
        if progress is not None:
            progress(len(x[i:i + batch]))
    pred = np.concatenate(preds)
    n = len(x)
    return SimulateReport(
        backend=be.name, device=device_of(be), schedule=schedule.value, timesteps=net.timesteps, samples=n,
        latency_steps=res.latency_steps, accuracy=None if y is None else float(np.mean(pred == y)),
        spikes_per_sample={k: v / n for k, v in totals.items()},
        negative_spikes_per_sample={k: v / n for k, v in negs.items()},
        spike_rate={p.name: totals[p.name] / (n * p.size * net.steps(p)) for p in net.populations},
        predictions=pred.tolist() if keep_predictions else None)


def format_simulate(bundle, net: Network, rep: SimulateReport) -> str:
    out = [f"simulate {bundle} on {rep.backend} ({rep.device}), schedule {rep.schedule}, T={rep.timesteps}, "
           f"latency {rep.latency_steps} steps, {rep.samples} samples"]
    signed = signed_messages(net)
    for p in net.populations:
        neg = f"  ({rep.negative_spikes_per_sample[p.name]:.1f} negative)" if signed else ""
        out.append(f"  {p.name:<10} {rep.spikes_per_sample[p.name]:>10.1f} spikes/sample  "
                   f"rate {rep.spike_rate[p.name]:.4f} per neuron-step{neg}")
    out.append(f"  total {sum(rep.spikes_per_sample.values()):.1f} spikes/sample")
    if rep.accuracy is not None:
        out.append(f"  accuracy {rep.accuracy:.4f}")
    return "\n".join(out)
