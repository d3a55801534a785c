"""The records of the compile-time state bounds (docs/ir.md, "Bit widths and the overflow check"):
a node's ``StateBound``, its ``Envelope`` (what it has sent, in the units its consumers accumulate),
the ``BoundInput`` a rule reads, and the interval arithmetic of projections (``project``) every rule
shares. The rules themselves are in ``bounds.py`` (neurons, readouts, max-pool units) and
``unit_bounds.py`` (the transformer's graded units).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snnc.ir import (Coding, DifferentialCoding, DualThreshold, GradedFunctionUnit, GradedMaxPool, Input, MultiThreshold, Node,
                     Population, Projection, apply_projection, replace)

from .currents import signed_sums


@dataclass
class StateBound:
    node: str
    pipelined: int
    layerwise: int
    threshold_layerwise: int
    states: dict[str, int] = field(default_factory=dict)  # pipelined bound per named state (max over neurons)

    @property
    def worst(self) -> int:
        return max(self.pipelined, self.layerwise, self.threshold_layerwise)


@dataclass
class Envelope:
    """What a node has sent, per neuron, in the units its consumers accumulate: the message (rate
    coding), message * R_t (differential coding), a graded unit's d as is. Arrays of shape
    (T+1, *shape), or (T+1, 1, ..., 1) when the same for every neuron; row t is step t (row 0: 0).

    ``step`` bounds what is sent at step t, ``cum`` the sum over steps 1..t (a consumer's
    accumulated input is sum_s P_s(cum_s))."""

    step_lo: np.ndarray
    step_hi: np.ndarray
    cum_lo: np.ndarray
    cum_hi: np.ndarray

    @classmethod
    def uniform(cls, lo: int, hi: int, weights: np.ndarray, ndim: int) -> "Envelope":
        """Messages in [lo, hi] every step, times ``weights[t]`` (1 rate, R_t differential, 0 when not sent)."""
        w = np.asarray(weights, np.int64).reshape((-1,) + (1,) * ndim)
        W = np.cumsum(w, axis=0)
        return cls(lo * w, hi * w, lo * W, hi * W)


@dataclass
class BoundInput:
    """Everything a rule needs about one node."""

    target: Node
    incoming: list[Projection]
    sources: dict[str, Node]
    envelopes: dict[str, Envelope]
    T: int
    coding: Coding

    @property
    def differential(self) -> bool:
        return isinstance(self.coding, DifferentialCoding)

    def reciprocals(self) -> np.ndarray:
        """w_t for t = 0..T: 1 (rate) or R_t (differential), w_0 = 0."""
        if self.differential:
            return np.array([0] + [self.coding.reciprocal(t) for t in range(1, self.T + 1)], np.int64)
        return np.array([0] + [1] * self.T, np.int64)

    def envelope(self, name: str) -> Envelope:
        env = self.envelopes.get(name)
        return env if env is not None else default_envelope(self.sources[name], self.T, self.coding)


def value_range(node: Node) -> tuple[int, int]:
    """Range of the per-step value a node sends: x_int for inputs, a spike for populations
    (0/1; -1/0/1 for dual-threshold neurons, whose negative spikes carry their sign)."""
    if isinstance(node, Input):
        return node.qmin, node.qmax
    if isinstance(node, GradedFunctionUnit):
        raise ValueError(f"graded unit '{node.name}': its envelope comes from its bound rule (unit_bounds.py), "
                         "not from a per-step value range; bound its sources first")
    if isinstance(node, GradedMaxPool):  # increments of window maxima obey the source's bound (docs/ir.md);
        return -node.max_message, node.max_message  # differential coding: d = what a source's msg*R_t adds
    if isinstance(node, Population) and isinstance(node.neuron, DualThreshold):
        return -1, 1
    if isinstance(node, Population) and isinstance(node.neuron, MultiThreshold):
        u = node.neuron.unit_divisor  # graded messages +-2^(n-1)
        return -u, u
    return 0, 1


def default_envelope(node: Node, T: int, coding: Coding) -> Envelope:
    """The envelope that follows from ``value_range`` alone: the input is presented every step (rate)
    or once, at step 1, with R_1 = 2^F (differential); other nodes send in range every step, times R_t
    in differential coding."""
    lo, hi = value_range(node)
    ndim = len(node.shape)
    if isinstance(coding, DifferentialCoding):
        if isinstance(node, Input):
            w = [0, coding.one] + [0] * (T - 1)
        else:
            w = [0] + [coding.reciprocal(t) for t in range(1, T + 1)]
    else:
        w = [0] + [1] * T
    return Envelope.uniform(lo, hi, np.array(w, np.int64), ndim)


def _is_uniform(a: np.ndarray) -> bool:
    return all(s == 1 for s in a.shape[1:])


def project(bi: BoundInput, which: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron interval (T+1, *target.shape) of sum_s P_s(env_s.<which>) over the incoming projections."""
    return project_into(bi, bi.incoming, tuple(bi.target.shape), which)


def project_into(bi: BoundInput, incoming: list[Projection], shape: tuple[int, ...], which: str
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``project`` over some of the incoming projections (one port of a unit), writing ``shape``."""
    shape = tuple(shape)
    lo_tot = np.zeros((bi.T + 1,) + shape, np.int64)
    hi_tot = np.zeros((bi.T + 1,) + shape, np.int64)
    for p in incoming:
        src = bi.sources[p.source]
        env = bi.envelope(p.source)
        lo, hi = getattr(env, which + "_lo"), getattr(env, which + "_hi")
        if _is_uniform(lo) and _is_uniform(hi):  # P(c * 1) = c * P(1): the closed-form signed weight sums
            pp, pn = (a.reshape(shape) for a in signed_sums(p, 1))
            lo1, hi1 = lo.reshape((-1,) + (1,) * len(shape)), hi.reshape((-1,) + (1,) * len(shape))
            hi_tot += hi1 * pp + lo1 * pn
            lo_tot += lo1 * pp + hi1 * pn
        else:
            pos = replace(p, weight=np.maximum(p.weight, 0))
            neg = replace(p, weight=np.minimum(p.weight, 0))
            full = (bi.T + 1,) + tuple(src.shape)
            lo_b, hi_b = np.broadcast_to(lo, full), np.broadcast_to(hi, full)
            hi_tot += (apply_projection(pos, hi_b) + apply_projection(neg, lo_b)).reshape(lo_tot.shape)
            lo_tot += (apply_projection(pos, lo_b) + apply_projection(neg, hi_b)).reshape(lo_tot.shape)
    return lo_tot, hi_tot


def current_range(target: Node, incoming: list[Projection], sources: dict[str, Node]) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron smallest and largest per-step synaptic current (without bias), shape (*target.shape)."""
    lo_tot = np.zeros(target.shape, np.int64)
    hi_tot = np.zeros(target.shape, np.int64)
    for p in incoming:
        src = sources[p.source]
        lo, hi = value_range(src)
        pp, pn = (a.reshape(target.shape) for a in signed_sums(p, max(abs(lo), abs(hi))))  # closed form
        hi_tot += hi * pp + lo * pn
        lo_tot += lo * pp + hi * pn
    return lo_tot, hi_tot


def amax(*arrays) -> int:
    return int(max(int(np.abs(a).max(initial=0)) for a in arrays))


def cdiv(a: np.ndarray, b) -> np.ndarray:
    """ceil(a / b) for integers, b > 0."""
    return -((-np.asarray(a, np.int64)) // b)
