"""Bit-accurate reference simulator of the spiking IR (docs/ir.md), batched over samples.

This is the oracle every other backend is compared against. All state is int64; the compile-time
bound check guarantees it stays within the target's state width, and ``state_bits`` (when given)
re-checks it at run time.
"""

from __future__ import annotations

import numpy as np

from snnc.backends.base import Keep, NodeOps, SimResult, SimulationError, check_keep, kept_part, train_dtype
from snnc.ir import (DifferentialCoding, GradedFunctionUnit, Input, Network, Population, Readout, Schedule, apply_projection, as_int_inputs,
                     fanout, layerwise_latency, per_channel)

from .graded import add_encoded, check_graded, graded_unit, is_graded
from .neurons import check_layerwise, stepper


class _OpCounter:
    def __init__(self, net: Network, B: int):
        T = net.timesteps
        mixed = net.mixed_steps  # mixed L (layerwise only): a population updates over its own steps
        K = max([T, *mixed.values()])
        self.out = {n.name: [(p.target, fanout(p).reshape(-1)) for p in net.outgoing(n.name)] for n in net.nodes}
        self.ops = {n.name: NodeOps(np.zeros(K, np.int64), np.zeros(K, np.int64), np.zeros(K, np.int64), 0)
                    for n in net.nodes}
        for n in net.nodes:
            if not isinstance(n, Input):
                self.ops[n.name].updates = mixed.get(n.name, T) * B * n.size

    def add(self, name: str, t: int, events: np.ndarray) -> None:
        """``events``: (B, *shape) booleans: a spike of either sign, or a non-zero graded value."""
        ev = events.reshape(events.shape[0], -1).sum(axis=0)
        self.ops[name].events[t] += int(ev.sum())
        for target, fan in self.out[name]:
            n = int(ev @ fan)
            self.ops[name].sops_out[t] += n
            self.ops[target].sops_in[t] += n


def simulate(
    net: Network,
    x,
    schedule: Schedule | str = Schedule.LAYERWISE,
    record: bool = False,
    quantized: bool = False,
    state_bits: int | None = None,
    count_ops: bool = False,
    keep: Keep = Keep.ALL,
) -> SimResult:
    """Run ``net`` on a batch. ``x``: float inputs (B, *shape), or x_int when ``quantized``. ``keep``:
    ``Keep.READOUTS`` returns the readouts, ``max_abs_state`` and ops only (computed in full, dropped at the
    end: the oracle stays one code path)."""
    check_keep(keep, record)
    schedule = Schedule(schedule)
    net.check_schedule(schedule.value)  # mixed L: layerwise only
    x_int = as_int_inputs(net, x, quantized)
    for pop in net.populations:  # unsupported neuron models fail before any work
        if schedule is Schedule.LAYERWISE:
            check_layerwise(pop, net.coding)
        else:
            stepper(pop, 1, net.coding)
    check_graded(net, schedule is Schedule.LAYERWISE)  # graded units: wiring checked, pipelined only
    run = _run_layerwise if schedule is Schedule.LAYERWISE else _run_pipelined
    counter = _OpCounter(net, next(iter(x_int.values())).shape[0]) if count_ops else None
    res = run(net, x_int, record, counter)
    if counter is not None:
        steps = 1 if isinstance(net.coding, DifferentialCoding) else net.timesteps  # differential: sent once
        for node in net.inputs:  # a graded input value is sent every step it is presented, while non-zero
            for t in range(steps):
                counter.add(node.name, t, x_int[node.name] != 0)
        res.ops = counter.ops
    if state_bits is not None:
        limit = 2 ** (state_bits - 1) - 1
        for name, m in res.max_abs_state.items():
            if isinstance(net.node(name), GradedFunctionUnit):
                continue   # a transformer's unit runs on the target's host processors: its own int64 checks
            if m > limit:
                raise SimulationError(
                    f"node '{name}': state reached |v| = {m}, beyond the {state_bits}-bit state width"
                )
    return kept_part(res, keep)


def _run_pipelined(net: Network, x_int: dict[str, np.ndarray], record: bool, counter: _OpCounter | None) -> SimResult:
    T = net.timesteps
    B = next(iter(x_int.values())).shape[0]
    diff = isinstance(net.coding, DifferentialCoding)
    msg, counts, trains, steppers, acc, maxabs, encoded = {}, {}, {}, {}, {}, {}, {}
    units = {}  # graded units (graded.py): their messages are graded values, counted like MT messages
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            counts[node.name] = (1 if diff else T) * x_int[node.name]   # differential: presented once
        elif is_graded(node):
            units[node.name] = graded_unit(node, net, B)
            counts[node.name] = np.zeros((B,) + node.shape, np.int64)
            if diff:
                encoded[node.name] = counts[node.name]   # its differential messages are already encoded
            if record:
                trains[node.name] = np.zeros((T, B) + node.shape, np.int64)
            if counter is not None:   # one update per running value (per source element, per port element)
                counter.ops[node.name].updates = T * B * units[node.name].updates_per_step
        elif isinstance(node, Population):
            steppers[node.name] = stepper(node, B, net.coding)
            counts[node.name] = np.zeros((B,) + node.shape, np.int64)
            if diff:
                encoded[node.name] = np.zeros((B,) + node.shape, np.int64)
            if record:
                trains[node.name] = np.zeros((T, B) + node.shape, train_dtype(node))
        else:
            scale = net.coding.one if diff else 1
            acc[node.name] = np.broadcast_to(scale * per_channel(node.v0, node.shape), (B,) + node.shape).astype(np.int64)
            maxabs[node.name] = int(np.abs(acc[node.name]).max(initial=0))
    for t in range(T):
        for node in net.inputs:
            msg[node.name] = x_int[node.name] if (t == 0 or not diff) else np.zeros_like(x_int[node.name])
        for node in net.ordered_nodes():
            if isinstance(node, Input):
                continue
            if node.name in units:  # graded unit: reads this step's messages (its source's, or its projections')
                s = units[node.name].step_from(t + 1, msg)
                msg[node.name] = s
                counts[node.name] += s
                if record:
                    trains[node.name][t] = s
                if counter is not None:
                    counter.add(node.name, t, s != 0)
                continue
            cur, enc = 0, 0  # enc: differential messages of graded units, already encoded (no R_t)
            for p in net.incoming(node.name):
                if not np.any(msg[p.source]):   # P(0) = 0 (the input after step 1 in differential coding)
                    continue
                if diff and p.source in units:
                    enc = enc + apply_projection(p, msg[p.source])
                else:
                    cur = cur + apply_projection(p, msg[p.source])
            if isinstance(node, Population):
                if isinstance(enc, np.ndarray):
                    add_encoded(steppers[node.name], enc, node.name)
                s = steppers[node.name].step(t + 1, cur, counts[node.name])
                msg[node.name] = s
                counts[node.name] += s
                if diff:
                    encoded[node.name] += s * net.coding.reciprocal(t + 1)
                if record:
                    trains[node.name][t] = s
                if counter is not None:
                    counter.add(node.name, t, s != 0)
            else:  # readout: rate accumulates I + B; differential accumulates I * R_t (docs/ir.md)
                add = cur * net.coding.reciprocal(t + 1) + enc if diff else cur + per_channel(node.bias, node.shape)
                acc[node.name] = acc[node.name] + add
                maxabs[node.name] = max(maxabs[node.name], int(np.abs(acc[node.name]).max(initial=0)))
    for name, st in {**steppers, **units}.items():
        maxabs[name] = st.max_abs
    final_v = {**{k: st.state for k, st in {**steppers, **units}.items()}, **acc}
    return SimResult(
        Schedule.PIPELINED, T, counts, dict(acc), trains if record else None,
        final_v=final_v, phase={p.name: 0 for p in net.populations}, max_abs_state=maxabs,
        encoded=encoded if diff else None,
    )


def _run_layerwise(net: Network, x_int: dict[str, np.ndarray], record: bool, counter: _OpCounter | None) -> SimResult:
    T = net.timesteps
    B = next(iter(x_int.values())).shape[0]
    depth = net.depth()
    counts, trains, final_v, maxabs, readout = {}, {}, {}, {}, {}
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            counts[node.name] = T * x_int[node.name]
            continue
        cur = T * per_channel(node.bias, node.shape)
        for p in net.incoming(node.name):
            cur = cur + apply_projection(p, counts[p.source])
        cur = np.broadcast_to(cur, (B,) + node.shape)
        v0 = per_channel(node.v0, node.shape)
        if isinstance(node, Readout):
            r = v0 + cur  # the readout integrates the same total; it has no threshold to scale
            readout[node.name] = final_v[node.name] = np.asarray(r, dtype=np.int64)
            maxabs[node.name] = int(np.abs(r).max(initial=0))
            continue
        # the population's own steps tau (mixed L; else T): state, threshold and bias scaled by tau
        tau = net.steps(node)
        if tau != T:
            cur = cur + (tau - T) * per_channel(node.bias, node.shape)
        fire = check_layerwise(node, net.coding)(node, tau)
        v = np.broadcast_to(tau * v0, (B,) + node.shape).astype(np.int64)
        n = np.zeros((B,) + node.shape, np.int64)
        m = int(np.abs(v).max(initial=0))
        train = np.zeros((tau, B) + node.shape, np.int8) if record else None
        for t in range(tau):
            v = v + cur
            m = max(m, int(np.abs(v).max(initial=0)))
            s, v = fire.step(v, n)
            n += s
            if record:
                train[t] = s
            if counter is not None:
                counter.add(node.name, t, s != 0)
        counts[node.name], final_v[node.name], maxabs[node.name] = n, v, m
        if record:
            trains[node.name] = train
    mixed = net.mixed_steps
    phase = {p.name: depth[p.name] - 1 for p in net.populations}
    return SimResult(
        Schedule.LAYERWISE, T, counts, readout, trains if record else None,
        final_v=final_v, phase=phase, max_abs_state=maxabs, steps=mixed,
        mixed_latency=layerwise_latency(net) if mixed else 0,
    )

