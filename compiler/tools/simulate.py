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


@dataclass
class SimulatePartial:
    """What a run on some samples leaves to merge: integer event totals and predictions in sample order
    (a shard's; ``finish_simulate`` turns any list of them, in order, into the report)."""

    samples: int
    events: dict[str, int]
    negative_events: dict[str, int]
    predictions: np.ndarray
    correct: int | None          # predictions equal to the labels (None: no labels)
    latency_steps: int


def simulate_partial(net: Network, x: np.ndarray, y: np.ndarray | None, be: Backend, schedule: Schedule,
                     progress: Callable[[int], None] | None = None) -> SimulatePartial:
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
    return SimulatePartial(len(x), totals, negs, pred, None if y is None else int(np.sum(pred == y)),
                           res.latency_steps)


def finish_simulate(net: Network, parts: list[SimulatePartial], backend: str, device: str, schedule: Schedule,
                    keep_predictions: bool = False) -> SimulateReport:
    """The report of the runs ``parts`` (in sample order), as one run over all their samples gives it."""
    n = sum(p.samples for p in parts)
    totals = {p.name: sum(part.events[p.name] for part in parts) for p in net.populations}
    negs = {p.name: sum(part.negative_events[p.name] for part in parts) for p in net.populations}
    labelled = all(p.correct is not None for p in parts)
    pred = np.concatenate([p.predictions for p in parts])
    return SimulateReport(
        backend=backend, device=device, schedule=schedule.value, timesteps=net.timesteps, samples=n,
        latency_steps=parts[-1].latency_steps,
        accuracy=float(sum(p.correct for p in parts) / n) if labelled else None,
        spikes_per_sample={k: v / n for k, v in totals.items()},
        negative_spikes_per_sample={k: v / n for k, v in negs.items()},
        spike_rate={p.name: totals[p.name] / (n * p.size * net.steps(p)) for p in net.populations},
        predictions=pred.tolist() if keep_predictions else None)


def simulate_bundle(net: Network, x: np.ndarray, y: np.ndarray | None, be: Backend, schedule: Schedule,
                    keep_predictions: bool = False, progress: Callable[[int], None] | None = None) -> SimulateReport:
    """Run ``net`` on the backend ``be`` over ``x`` in this process (``simulate_partial``, ``finish_simulate``)."""
    return finish_simulate(net, [simulate_partial(net, x, y, be, schedule, progress)], be.name, device_of(be),
                           schedule, keep_predictions)


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
