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
from typing import Callable

import numpy as np

from snnc.ir import (GRADED_UNITS, Coding, DifferentialCoding, DualThreshold, GradedFunctionUnit, GradedMaxPool, IFSoftReset, Input, MultiThreshold,
                     Network, Node, Population, Projection, RateCoding, Readout, apply_projection, per_channel, replace)

from ..errors import StateOverflowError
from .currents import signed_sums
from .envelopes import (BoundInput, Envelope, StateBound, amax, cdiv, current_range, default_envelope,  # noqa: F401
                        project, value_range)
from .unit_bounds import UNIT_RULES

log = logging.getLogger(__name__)


INT64_EXACT = 2.0 ** 62  # below this a float64 estimate says an int64 sum cannot have wrapped


def _max_sum(*terms: tuple[int, np.ndarray]) -> int:
    """max over neurons of sum_i c_i * a_i (Python ints c_i >= 0, arrays a_i >= 0), never wrapped: in
    int64 when a float64 estimate shows it fits, else the estimate itself, which is then far beyond any
    state width (so the overflow check fails as it must instead of passing on a wrapped value)."""
    est = sum(float(c) * np.asarray(a, np.float64) for c, a in terms)
    top = float(np.max(est, initial=0.0))
    if top < INT64_EXACT:
        return int(np.max(sum(int(c) * np.asarray(a, np.int64) for c, a in terms), initial=0))
    return int(top)


def _residual(n: int, theta_one: np.ndarray) -> np.ndarray:
    """q: |m - MTH(m)*one| <= max(|m| - Theta*one, q) (docs/ir.md): Theta*one/4 for n >= 2, /2 for n = 1."""
    return cdiv(theta_one, 4 if n >= 2 else 2)


# ---- rules -----------------------------------------------------------------------------------------
def _spiking_rate(bi: BoundInput) -> tuple[StateBound, Envelope]:
    """IF / dual-threshold population or readout in rate coding (the closed forms above)."""
    target, T = bi.target, bi.T
    if any(isinstance(bi.sources[p.source], GradedFunctionUnit) for p in bi.incoming):
        slo, shi = project(bi, "step")      # a transformer unit's per-step messages: from its envelope
        lo, hi = slo[1:].min(axis=0), shi[1:].max(axis=0)
    else:
        lo, hi = current_range(target, bi.incoming, bi.sources)
    b = per_channel(target.bias, target.shape)[0]
    v0 = np.abs(per_channel(target.v0, target.shape)[0])
    step = np.maximum(np.abs(lo + b), np.abs(hi + b))
    pipe = _max_sum((1, v0), (T, step))
    steps = _steps(target, T), [_steps(bi.sources[p.source], T) for p in bi.incoming]
    if steps[0] != T or any(s != T for s in steps[1]):  # mixed L: layerwise only, each with its own steps
        return _spiking_rate_mixed(bi, v0, b), default_envelope(target, T, bi.coding)
    if isinstance(target, Population):
        lw = _max_sum((T, v0), (T * T, step))
        thr = T * int(np.max(target.threshold))
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
        lw = _max_sum((tau, v0), (tau, cur))
        thr = tau * int(np.max(target.threshold))
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
    sb, cb, gb = amax(v0), 0, 0
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
        sb, cb, gb = max(sb, amax(slo, shi)), max(cb, amax(clo, chi)), max(gb, amax(g))
        env_lo.append(cdiv(clo, unit))
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
    st = {"R": amax(v0), "Y": amax(f(v0)), "d": 0, "m": 0, "V": 0, "M": amax(A)}
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
        A = np.minimum(cdiv(Vb + Delta, t), A + db + theta * Rt)
        elo = np.maximum(ylo - A, elo - theta * Rt)
        ehi = np.minimum(yhi + A, ehi + theta * Rt)
        for k, v in (("R", (rlo, rhi)), ("Y", (ylo, yhi)), ("d", (db,)), ("m", (mb,)), ("V", (Vb,)), ("M", (A,))):
            st[k] = max(st[k], amax(*v))
        env_lo.append(cdiv(elo, unit))   # sum_k msg_k R_k = E_t / unit, an integer
        env_hi.append(ehi // unit)
    env = Envelope.uniform(-u, u, bi.reciprocals(), len(pop.shape))
    env.cum_lo, env.cum_hi = np.maximum(env.cum_lo, np.stack(env_lo)), np.minimum(env.cum_hi, np.stack(env_hi))
    return StateBound(pop.name, max(st.values()), 0, 0, st), env


def _readout_differential(bi: BoundInput) -> tuple[StateBound, Envelope]:
    """Differential readout: r_t = V0*one + sum_s P_s(cum_s,t) (no bias)."""
    ro = bi.target
    v0 = per_channel(ro.v0, ro.shape)[0].astype(np.int64) * bi.coding.one
    alo, ahi = project(bi, "cum")
    r = max(amax(v0), amax(v0 + alo, v0 + ahi))
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
    s = amax(clo, chi)
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
    **UNIT_RULES,   # the transformer's graded units (unit_bounds.py)
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


def state_limit(node: Node, state_bits: int, unit_state_bits: int | None = None) -> int:
    """The largest |state| a node may reach: 2^(w-1) - 1 with w the neuro-core state width, or for a
    graded unit (placed on the target's host / embedded processors) ``unit_state_bits`` when given."""
    w = unit_state_bits if (unit_state_bits is not None and isinstance(node, GRADED_UNITS)) else state_bits
    return 2 ** (w - 1) - 1


def check_network(net: Network, state_bits: int, unit_state_bits: int | None = None) -> list[StateBound]:
    """Bound every node; raise StateOverflowError listing every node that could overflow. Graded units
    are held to ``unit_state_bits`` (the target's [embedded] width) when given, else to ``state_bits``."""
    bounds = network_bounds(net)
    bad = [(b, state_limit(net.node(n), state_bits, unit_state_bits)) for n, b in bounds.items()]
    bad = [(b, lim) for b, lim in bad if b.worst > lim]
    if bad:
        lines = "; ".join(f"layer '{b.node}' needs |v| up to {b.worst} > {lim}" for b, lim in bad)
        raise StateOverflowError(
            f"state could overflow the {state_bits}-bit width: {lines}. Use fewer timesteps, smaller weights "
            "or a target with wider state"
            + (f" (differential coding: or fewer fractional bits than F = {net.coding.frac_bits})"
               if isinstance(net.coding, DifferentialCoding) else "")
        )
    return list(bounds.values())
