"""Compile-time bound on every state: no membrane or accumulator can leave the state width.

For a node with per-step current I_t in [I-, I+] (over every source value in range: spikes 0/1,
or -1/0/1 from dual-threshold neurons, inputs qmin..qmax) the states are bounded by (docs/ir.md, "Bit widths and the overflow check")

    pipelined:  |v| <= |V0| + T * max(|I+|, |I-|)
    layerwise:  |v| <= T*|V0| + T * max(|T I+|, |T I-|)     (counts are at most T times a step's value)

and the layerwise threshold T*Theta must be representable too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from snnc.backends.reference.ops import apply_projection, per_channel
from snnc.ir import DifferentialCoding, DualThreshold, Input, MultiThreshold, Network, Node, Population, Projection, nodes as irn

from ..errors import StateOverflowError

log = logging.getLogger(__name__)


@dataclass
class StateBound:
    node: str
    pipelined: int
    layerwise: int
    threshold_layerwise: int

    @property
    def worst(self) -> int:
        return max(self.pipelined, self.layerwise, self.threshold_layerwise)


def value_range(node: Node) -> tuple[int, int]:
    """Range of the per-step value a node sends: x_int for inputs, a spike for populations
    (0/1; -1/0/1 for dual-threshold neurons, whose negative spikes carry their sign)."""
    if isinstance(node, Input):
        return node.qmin, node.qmax
    if isinstance(node, Population) and isinstance(node.neuron, DualThreshold):
        return -1, 1
    if isinstance(node, Population) and isinstance(node.neuron, MultiThreshold):
        u = node.neuron.unit_divisor  # graded messages +-2^(n-1)
        return -u, u
    return 0, 1


def current_range(target: Node, incoming: list[Projection], sources: dict[str, Node]) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron smallest and largest per-step synaptic current (without bias), shape (*target.shape)."""
    lo_tot = np.zeros(target.shape, np.int64)
    hi_tot = np.zeros(target.shape, np.int64)
    for p in incoming:
        src = sources[p.source]
        lo, hi = value_range(src)
        pos = irn.replace(p, weight=np.maximum(p.weight, 0))
        neg = irn.replace(p, weight=np.minimum(p.weight, 0))
        ones = np.ones((1,) + tuple(src.shape), np.int64)
        hi_tot += (apply_projection(pos, hi * ones) + apply_projection(neg, lo * ones))[0].reshape(target.shape)
        lo_tot += (apply_projection(pos, lo * ones) + apply_projection(neg, hi * ones))[0].reshape(target.shape)
    return lo_tot, hi_tot


def node_bound(target: Node, incoming: list[Projection], sources: dict[str, Node], T: int) -> StateBound:
    lo, hi = current_range(target, incoming, sources)
    b = per_channel(target.bias, target.shape)[0]
    v0 = np.abs(per_channel(target.v0, target.shape)[0])
    step = np.maximum(np.abs(lo + b), np.abs(hi + b))
    pipe = int((v0 + T * step).max())
    if isinstance(target, Population) and isinstance(target.neuron, MultiThreshold):
        # pipelined only: S as above; C (what it emitted) stays within |f(S)| + Theta
        return StateBound(target.name, int((v0 + T * step + per_channel(target.threshold, target.shape)[0]).max()), 0, 0)
    if isinstance(target, Population):
        lw = int((T * v0 + T * T * step).max())
        thr = int(T * np.max(target.threshold))
    else:
        lw, thr = pipe, 0
    return StateBound(target.name, pipe, lw, thr)


def check_network(net: Network, state_bits: int) -> list[StateBound]:
    """Bound every node; raise StateOverflowError listing every node that could overflow."""
    if isinstance(net.coding, DifferentialCoding):
        # States hold values times 2^F and the differential neuron's V and M have no bound proven here
        # yet: such networks are checked at run time (simulate(..., state_bits=...), verify).
        log.warning("differential coding: the state width is checked at run time only (no compile-time bound yet)")
        return []
    limit = 2 ** (state_bits - 1) - 1
    sources = {n.name: n for n in net.nodes}
    bounds, bad = [], []
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            continue
        sb = node_bound(node, net.incoming(node.name), sources, net.timesteps)
        bounds.append(sb)
        if sb.worst > limit:
            bad.append(sb)
    if bad:
        lines = "; ".join(f"layer '{b.node}' needs |v| up to {b.worst} > {limit}" for b in bad)
        raise StateOverflowError(
            f"state could overflow the {state_bits}-bit width: {lines}. Use fewer timesteps, smaller weights "
            "or a target with wider state"
        )
    return bounds
