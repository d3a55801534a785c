"""The layerwise schedule on torch (docs/ir.md, "Schedule layerwise"), equal to the reference's.

Each layer's constant current I = tau*B + sum_s P_s(N_s) is computed once (one projection per edge on
the sources' counts, B samples: no time axis at all), then the neuron runs its tau steps with state
and thresholds scaled by tau, in chunks of steps so that memory does not grow with tau unless spikes
are recorded.
"""

from __future__ import annotations

import numpy as np
import torch

from snnc.backends.base import Keep, SimResult
from snnc.ir import Input, Network, Readout, Schedule, layerwise_latency

from .linear import TORCH_DTYPES, TorchProjection, check_reference_limit
from .neurons import firing_class, per_channel
from .opcount import OpCounter
from .plan import ExactnessPlan


def run_layerwise(net: Network, projections: dict[str, TorchProjection], plan: ExactnessPlan,
                  x: dict[str, torch.Tensor], device, record: bool, counter: OpCounter | None,
                  chunk_steps: int, keep: Keep = Keep.ALL) -> SimResult:
    """``keep=Keep.READOUTS``: no int64 copies of counts or final states; each layer's counts are freed
    when its last consumer has read them."""
    T = net.timesteps
    full = keep is Keep.ALL
    B = next(iter(x.values())).shape[0]
    depth = net.depth()
    counts: dict[str, torch.Tensor] = {}
    trains: dict[str, np.ndarray] = {}
    final_v: dict[str, np.ndarray] = {}
    maxabs: dict[str, int] = {}
    readout: dict[str, np.ndarray] = {}
    consumers = {n.name: len(net.outgoing(n.name)) for n in net.nodes}
    out_counts: dict[str, np.ndarray] = {}
    keep_trains = record or counter is not None
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            counts[node.name] = T * x[node.name]
            if full:
                out_counts[node.name] = _np64(counts[node.name])
            continue
        if isinstance(node, Readout):   # integrates the same total; no threshold to scale
            cur = _current(net, node, T, projections, plan, counts, consumers, torch.int64, device)
            r = (per_channel(node.v0, node.shape, torch.int64, device) + cur).expand(
                (B,) + tuple(node.shape))
            r = _np64(r)
            readout[node.name] = final_v[node.name] = r
            maxabs[node.name] = int(np.abs(r).max(initial=0))
            continue
        tau = net.steps(node)
        dtype = TORCH_DTYPES[plan.states[node.name].arith]   # proven: |v|, tau*I and the thresholds fit
        current = _current(net, node, tau, projections, plan, counts, consumers, dtype, device)
        current = current.expand((B,) + tuple(node.shape))
        st = firing_class(node, net.coding)(node, B, net.coding, dtype, device, scale=tau)
        v_init = st.v.clone()
        if record:
            trains[node.name] = np.zeros((tau, B) + tuple(node.shape), np.int8)
        K = max(1, min(int(chunk_steps), tau))
        for t0 in range(0, tau, K):
            k = min(K, tau - t0)
            s = st.run(k, None, current, t0, None, keep=keep_trains)
            if record:
                trains[node.name][t0:t0 + k] = s.cpu().numpy().astype(np.int8)
            if counter is not None:
                counter.add(node.name, t0, s)
            del s
        # v_final = v_init + tau*I - N*Theta' for IF and dual-threshold neurons alike (a negative spike adds
        # Theta' back and counts -1), so the net count is exact division, in the state's own dtype
        n = v_init.add_(current, alpha=tau).sub_(st.v)
        n = n.div_(st.thr) if n.is_floating_point() else torch.div(n, st.thr, rounding_mode="floor")
        maxabs[node.name] = st.max_abs
        if full:
            out_counts[node.name] = _np64(n)
            final_v[node.name] = _np64(st.state)
        del st, current, v_init
        if consumers[node.name] > 0:   # read by the next layers, then freed (``_current``)
            counts[node.name] = n
        del n
    mixed = net.mixed_steps
    return SimResult(
        Schedule.LAYERWISE, T, out_counts, readout, trains if record else None,
        final_v=final_v, phase={p.name: depth[p.name] - 1 for p in net.populations}, max_abs_state=maxabs,
        steps=mixed, mixed_latency=layerwise_latency(net) if mixed else 0, kept=keep,
    )


def _current(net: Network, node, steps: int, projections, plan, counts, consumers, dtype, device) -> torch.Tensor:
    """I = steps * B + sum_s P_s(N_s) in ``dtype`` (exact: the plan's bound covers it); frees counts
    no one reads any more."""
    cur = None
    for p in net.incoming(node.name):
        src = counts[p.source]
        check_reference_limit(p, plan.projections[p.name], src)
        y = projections[p.name].apply(src, plan.projections[p.name], dtype)
        cur = y if cur is None else cur.add_(y)
        consumers[p.source] -= 1
        if consumers[p.source] == 0:
            counts.pop(p.source)
    bias = np.asarray(node.bias)
    if np.any(bias != 0):
        cur = cur + steps * per_channel(bias, node.shape, dtype, device)
    return cur


def _np64(t: torch.Tensor) -> np.ndarray:
    return t.to(dtype=torch.int64, memory_format=torch.contiguous_format).cpu().numpy()
