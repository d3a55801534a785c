"""Compile-time bound on every state: no membrane, accumulator or auxiliary state can leave the
state width (docs/ir.md, "Bit widths and the overflow check", states the equations proven here).

Rate-coded IF / dual-threshold populations and readouts: for per-step current I_t in [I-, I+] (over
every source value in range: spikes 0/1, or -1/0/1 from dual-threshold neurons, inputs qmin..qmax)

    pipelined:  |v| <= |V0| + T * max(|I+ + B|, |I- + B|)
    layerwise:  |v| <= T*|V0| + T * max(|T I+|, |T I-|)     (counts are at most T times a step's value)
                (mixed levels: tau_p instead of T for the population, tau_s for each source's count)

and the layerwise threshold T*Theta must be representable too.

Multi-threshold populations (both codings), differential readouts and graded units are bounded by
interval propagation over t = 1..T, per neuron (vectorised): every node also returns an
``Envelope``, the interval of what it has sent by step t in the units its consumers accumulate, so
a consumer's accumulated input is the projection of its sources' envelopes. Which rule bounds a node
is looked up in ``RULES`` by (node kind, coding): a new node kind adds one function and one entry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from snnc.ir import (Coding, DifferentialCoding, DualThreshold, GradedMaxPool, IFSoftReset, Input, MultiThreshold,
                     Network, Node, Population, Projection, RateCoding, Readout, apply_projection, per_channel, replace)

from ..errors import StateOverflowError
from .currents import signed_sums

log = logging.getLogger(__name__)


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
    shape = tuple(bi.target.shape)
    lo_tot = np.zeros((bi.T + 1,) + shape, np.int64)
    hi_tot = np.zeros((bi.T + 1,) + shape, np.int64)
    for p in bi.incoming:
        src = bi.sources[p.source]
        env = bi.envelope(p.source)
        lo, hi = getattr(env, which + "_lo"), getattr(env, which + "_hi")
        if _is_uniform(lo) and _is_uniform(hi):  # P(c * 1) = c * P(1): one projection of ones
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


def _amax(*arrays) -> int:
    return int(max(int(np.abs(a).max(initial=0)) for a in arrays))


def _cdiv(a: np.ndarray, b) -> np.ndarray:
    """ceil(a / b) for integers, b > 0."""
    return -((-np.asarray(a, np.int64)) // b)


def _residual(n: int, theta_one: np.ndarray) -> np.ndarray:
    """q: |m - MTH(m)*one| <= max(|m| - Theta*one, q) (docs/ir.md): Theta*one/4 for n >= 2, /2 for n = 1."""
    return _cdiv(theta_one, 4 if n >= 2 else 2)


# ---- rules -----------------------------------------------------------------------------------------
def _spiking_rate(bi: BoundInput) -> tuple[StateBound, Envelope]:
    """IF / dual-threshold population or readout in rate coding (the closed forms above)."""
    target, T = bi.target, bi.T
    lo, hi = current_range(target, bi.incoming, bi.sources)
    b = per_channel(target.bias, target.shape)[0]
    v0 = np.abs(per_channel(target.v0, target.shape)[0])
    step = np.maximum(np.abs(lo + b), np.abs(hi + b))
    pipe = int((v0 + T * step).max())
    steps = _steps(target, T), [_steps(bi.sources[p.source], T) for p in bi.incoming]
    if steps[0] != T or any(s != T for s in steps[1]):  # mixed L: layerwise only, each with its own steps
        return _spiking_rate_mixed(bi, v0, b), default_envelope(target, T, bi.coding)
    if isinstance(target, Population):
        lw = int((T * v0 + T * T * step).max())
        thr = int(T * np.max(target.threshold))
    else:
        lw, thr = pipe, 0
    return StateBound(target.name, pipe, lw, thr, {"v": pipe}), default_envelope(target, T, bi.coding)


def _steps(node: Node, T: int) -> int:
    """The steps a node integrates (and so the most its count can be, times its per-step value) in the
    layerwise schedule: a population's own ``timesteps`` (mixed L), else T."""
    own = getattr(node, "timesteps", None) if isinstance(node, Population) else None
    return T if own is None else int(own)


def _spiking_rate_mixed(bi: BoundInput, v0: np.ndarray, b: np.ndarray) -> StateBound:
    """Layerwise bound of an IF / dual-threshold population or readout in a network with mixed levels
    (docs/ir.md, "Mixed levels"): a source s sends its count, at most tau_s times its per-step range;
    a population integrates tau_p steps of I = sum_s P_s(N_s) + tau_p*B from v(0) = tau_p*V0, so
    |v| <= tau_p*|V0| + tau_p*max(|I-|, |I+|), and its threshold tau_p*Theta must fit. A readout holds
    R0 + sum_s P_s(N_s) + T*B. Such a network has no pipelined schedule (refused), so no pipelined bound."""
    target, T = bi.target, bi.T
    shape = tuple(target.shape)
    lo_tot, hi_tot = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    for p in bi.incoming:
        src = bi.sources[p.source]
        lo, hi = value_range(src)
        k = _steps(src, T)
        pp, pn = (a.reshape(shape) for a in signed_sums(p, k * max(abs(lo), abs(hi))))  # closed form
        hi_tot += k * hi * pp + k * lo * pn
        lo_tot += k * lo * pp + k * hi * pn
    if isinstance(target, Population):
        tau = _steps(target, T)
        cur = np.maximum(np.abs(lo_tot + tau * b), np.abs(hi_tot + tau * b))
        lw = int((tau * v0 + tau * cur).max())
        thr = int(tau * np.max(target.threshold))
    else:
        lw = int((v0 + np.maximum(np.abs(lo_tot + T * b), np.abs(hi_tot + T * b))).max())
        thr = 0
    return StateBound(target.name, 0, lw, thr, {"v": lw})


def _mt_rate(bi: BoundInput) -> tuple[StateBound, Envelope]:
    """Multi-threshold population, rate coding: S_t = V0 + sum_s P_s(cum_s,t) + t*B; C_t within the
    hull of f(S_0..t) and 0, widened by q; g = f(S) - C (the MTH argument)."""
    pop, T = bi.target, bi.T
    shape = (1,) + tuple(pop.shape)
    theta = np.broadcast_to(per_channel(pop.threshold, pop.shape), shape)[0].astype(np.int64)
    v0 = np.broadcast_to(per_channel(pop.v0, pop.shape), shape)[0].astype(np.int64)
    B = np.broadcast_to(per_channel(pop.bias, pop.shape), shape)[0].astype(np.int64)
    n, relu, u = pop.neuron.n, pop.neuron.relu, pop.neuron.unit_divisor
    unit = theta // u
    f = (lambda a: np.maximum(a, 0)) if relu else (lambda a: a)
    q = _residual(n, theta)
    alo, ahi = project(bi, "cum")
    plo, phi = project(bi, "step")
    slo, shi = v0.copy(), v0.copy()
    flo, fhi = np.minimum(0, f(v0)), np.maximum(0, f(v0))
    clo, chi = np.zeros_like(v0), np.zeros_like(v0)
    rho = np.abs(f(v0))  # |f(S_0) - C_0|
    sb, cb, gb = _amax(v0), 0, 0
    env_lo, env_hi = [np.zeros_like(v0)], [np.zeros_like(v0)]
    for t in range(1, T + 1):
        nlo = np.maximum(v0 + alo[t] + t * B, slo + plo[t] + B)
        nhi = np.minimum(v0 + ahi[t] + t * B, shi + phi[t] + B)
        dfs = np.maximum(np.abs(f(nhi) - f(slo)), np.abs(f(shi) - f(nlo)))  # |f(S_t) - f(S_{t-1})|
        slo, shi = nlo, nhi
        flo, fhi = np.minimum(flo, f(slo)), np.maximum(fhi, f(shi))
        g = np.minimum(np.maximum(np.abs(f(shi) - clo), np.abs(chi - f(slo))), dfs + rho)
        clo = np.maximum(flo - q, clo - theta)
        chi = np.minimum(fhi + q, chi + theta)
        rho = np.minimum(g, np.maximum(g - theta, q))
        sb, cb, gb = max(sb, _amax(slo, shi)), max(cb, _amax(clo, chi)), max(gb, _amax(g))
        env_lo.append(_cdiv(clo, unit))
        env_hi.append(chi // unit)
    states = {"S": sb, "C": cb, "g": gb}
    env = Envelope.uniform(-u, u, bi.reciprocals(), len(pop.shape))
    env.cum_lo, env.cum_hi = np.maximum(env.cum_lo, np.stack(env_lo)), np.minimum(env.cum_hi, np.stack(env_hi))
    return StateBound(pop.name, max(states.values()), 0, 0, states), env


def _mt_differential(bi: BoundInput) -> tuple[StateBound, Envelope]:
    """Multi-threshold population, differential coding (docs/ir.md): R, Y = f(R), d, m, V, M per step
    from R_t = V0*one + sum_s P_s(cum_s,t), the identities M_t = Y_t - E_t (E_t = sum_k x_k R_k what it
    encoded), V_t = t*M_t + D_t with |D_t| <= Delta_t = sum_k Theta*|k R_k - one|, and the MTH residual."""
    pop, T, coding = bi.target, bi.T, bi.coding
    one = coding.one
    shape = (1,) + tuple(pop.shape)
    theta = np.broadcast_to(per_channel(pop.threshold, pop.shape), shape)[0].astype(np.int64)
    v0 = np.broadcast_to(per_channel(pop.v0, pop.shape), shape)[0].astype(np.int64) * one
    n, relu, u = pop.neuron.n, pop.neuron.relu, pop.neuron.unit_divisor
    unit = theta // u
    f = (lambda a: np.maximum(a, 0)) if relu else (lambda a: a)
    th1 = theta * one
    q = _residual(n, th1)
    alo, ahi = project(bi, "cum")
    plo, phi = project(bi, "step")
    rlo, rhi = v0.copy(), v0.copy()
    A = np.abs(f(v0))                      # |M_0| = |Y_0|
    Vb = np.zeros_like(v0)                 # V_0 = 0
    Delta = np.zeros_like(v0)              # D_0 = 0
    elo, ehi = np.zeros_like(v0), np.zeros_like(v0)  # E_0 = 0
    st = {"R": _amax(v0), "Y": _amax(f(v0)), "d": 0, "m": 0, "V": 0, "M": _amax(A)}
    env_lo, env_hi = [np.zeros_like(v0)], [np.zeros_like(v0)]
    for t in range(1, T + 1):
        Rt = coding.reciprocal(t)
        nlo = np.maximum(v0 + alo[t], rlo + plo[t])
        nhi = np.minimum(v0 + ahi[t], rhi + phi[t])
        ylo, yhi = f(nlo), f(nhi)
        db = np.minimum(np.maximum(np.abs(phi[t]), np.abs(plo[t])),            # f is 1-Lipschitz
                        np.maximum(np.abs(yhi - f(rlo)), np.abs(f(rhi) - ylo)))  # both ends in range
        rlo, rhi = nlo, nhi
        prev = np.minimum(Vb + A, t * A + Delta)                               # |V_{t-1} + M_{t-1}|
        mb = np.minimum(prev + t * db,
                        t * np.maximum(np.abs(yhi - elo), np.abs(ehi - ylo)) + Delta)  # m = t(Y_t - E_{t-1}) + D
        Vb = np.minimum(mb, np.maximum(mb - th1, q))
        Delta = Delta + theta * abs(t * Rt - one)
        A = np.minimum(_cdiv(Vb + Delta, t), A + db + theta * Rt)
        elo = np.maximum(ylo - A, elo - theta * Rt)
        ehi = np.minimum(yhi + A, ehi + theta * Rt)
        for k, v in (("R", (rlo, rhi)), ("Y", (ylo, yhi)), ("d", (db,)), ("m", (mb,)), ("V", (Vb,)), ("M", (A,))):
            st[k] = max(st[k], _amax(*v))
        env_lo.append(_cdiv(elo, unit))   # sum_k msg_k R_k = E_t / unit, an integer
        env_hi.append(ehi // unit)
    env = Envelope.uniform(-u, u, bi.reciprocals(), len(pop.shape))
    env.cum_lo, env.cum_hi = np.maximum(env.cum_lo, np.stack(env_lo)), np.minimum(env.cum_hi, np.stack(env_hi))
    return StateBound(pop.name, max(st.values()), 0, 0, st), env


def _readout_differential(bi: BoundInput) -> tuple[StateBound, Envelope]:
    """Differential readout: r_t = V0*one + sum_s P_s(cum_s,t) (no bias)."""
    ro = bi.target
    v0 = per_channel(ro.v0, ro.shape)[0].astype(np.int64) * bi.coding.one
    alo, ahi = project(bi, "cum")
    r = max(_amax(v0), _amax(v0 + alo, v0 + ahi))
    return StateBound(ro.name, r, 0, 0, {"r": r}), default_envelope(ro, bi.T, bi.coding)


def _graded_max(bi: BoundInput) -> tuple[StateBound, Envelope]:
    """Graded max-pool unit (both codings): its running value per source element is the source's cum
    (sum of msg, or msg*R_t / d, in encoded units); it sends increments of window maxima, so what it
    has sent by t is maxwin(cum_src,t), within the per-channel hull of the source's cum."""
    node = bi.target
    (p,) = bi.incoming
    env = bi.envelope(p.source)
    full = (bi.T + 1,) + tuple(node.in_shape)
    clo, chi = np.broadcast_to(env.cum_lo, full), np.broadcast_to(env.cum_hi, full)
    s = _amax(clo, chi)
    lo = clo.min(axis=(2, 3), keepdims=True)
    hi = chi.max(axis=(2, 3), keepdims=True)
    slo = np.broadcast_to(env.step_lo, full).min(axis=(1, 2, 3), keepdims=True)
    shi = np.broadcast_to(env.step_hi, full).max(axis=(1, 2, 3), keepdims=True)
    sb = max(abs(slo).max(), abs(shi).max())
    out = Envelope(-sb * np.ones_like(slo), sb * np.ones_like(shi), lo, hi)
    return StateBound(node.name, s, 0, 0, {"S": s}), out


Rule = Callable[[BoundInput], "tuple[StateBound, Envelope]"]

# (node kind, coding class) -> rule; a population's kind is its neuron model's class.
RULES: dict[tuple[type, type], Rule] = {
    (IFSoftReset, RateCoding): _spiking_rate,
    (DualThreshold, RateCoding): _spiking_rate,
    (Readout, RateCoding): _spiking_rate,
    (MultiThreshold, RateCoding): _mt_rate,
    (MultiThreshold, DifferentialCoding): _mt_differential,
    (Readout, DifferentialCoding): _readout_differential,
    (GradedMaxPool, RateCoding): _graded_max,
    (GradedMaxPool, DifferentialCoding): _graded_max,
}


def _kind(node: Node) -> type:
    return type(node.neuron) if isinstance(node, Population) else type(node)


def bound_node(target: Node, incoming: list[Projection], sources: dict[str, Node], T: int,
               coding: Coding | None = None, envelopes: dict[str, Envelope] | None = None
               ) -> tuple[StateBound, Envelope]:
    """(bound, envelope) of one node. ``envelopes``: what its sources send, when known (else each
    source's ``default_envelope`` is used, which is sound but looser)."""
    coding = coding if coding is not None else RateCoding()
    rule = RULES.get((_kind(target), type(coding)))
    if rule is None:
        raise NotImplementedError(f"node '{target.name}': no state bound for {_kind(target).__name__} with "
                                  f"{type(coding).__name__} (compiler/analysis/bounds.py RULES)")
    return rule(BoundInput(target, list(incoming), sources, dict(envelopes or {}), T, coding))


def node_bound(target: Node, incoming: list[Projection], sources: dict[str, Node], T: int,
               coding: Coding | None = None, envelopes: dict[str, Envelope] | None = None) -> StateBound:
    return bound_node(target, incoming, sources, T, coding, envelopes)[0]


def network_bounds(net: Network) -> dict[str, StateBound]:
    """Bound every non-input node of ``net`` (in topological order), with its sources' envelopes."""
    sources = {n.name: n for n in net.nodes}
    envs: dict[str, Envelope] = {}
    out = {}
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            envs[node.name] = default_envelope(node, net.timesteps, net.coding)
            continue
        sb, env = bound_node(node, net.incoming(node.name), sources, net.timesteps, net.coding, envs)
        out[node.name], envs[node.name] = sb, env
    return out


def check_network(net: Network, state_bits: int) -> list[StateBound]:
    """Bound every node; raise StateOverflowError listing every node that could overflow."""
    limit = 2 ** (state_bits - 1) - 1
    bounds = list(network_bounds(net).values())
    bad = [b for b in bounds if b.worst > limit]
    if bad:
        lines = "; ".join(f"layer '{b.node}' needs |v| up to {b.worst} > {limit}" for b in bad)
        raise StateOverflowError(
            f"state could overflow the {state_bits}-bit width: {lines}. Use fewer timesteps, smaller weights "
            "or a target with wider state"
            + (f" (differential coding: or fewer fractional bits than F = {net.coding.frac_bits})"
               if isinstance(net.coding, DifferentialCoding) else "")
        )
    return bounds
