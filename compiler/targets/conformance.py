"""Does a network fit its target's formats? The checks the compiler proves, run again on a network read
from a bundle (which may have been edited, re-sealed or written by anyone).

``check_formats(net)`` takes the target the bundle stores (``metadata["target"]``, validated against the
profile schema) and checks, naming the bundle, the node and the field:

- every projection's weights lie in the target's signed ``weight_bits`` range and its exponent in
  ``weight_exp_min..weight_exp_max``;
- every bias is a value the bias register holds (``mant << exp``, ``bias_mant_bits``, ``bias_exp_max``);
- every threshold is in 1..state_max and every initial potential within +-state_max;
- the input's integer range fits ``input_bits``; a population's own timesteps do not exceed T;
- no state can overflow the ``state_bits`` width (``analysis.bounds.check_network``: the compiler's
  own proof), after a check in Python integers that the proof's int64 arithmetic cannot wrap and that
  its per-step envelopes fit the memory budget.

A network whose bundle names no target cannot be checked: the report says so (``checked=False``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir import (DifferentialCoding, GradedMaxPool, Input, MultiThreshold, Network, Population, Readout,
                     SumPool2d)
from snnc.ir.limits import DEFAULT_LIMITS, Limits, memory_budget

from ..errors import StateOverflowError, TargetError
from . import TargetProfile, profile_from_dict

INT64_SAFE = 1 << 62


class FormatError(TargetError):
    """A network does not fit its target's formats; the message names the source, the node and the field."""


@dataclass(frozen=True)
class FormatReport:
    """What was checked: ``checked`` is False when the network names no target (formats unchecked)."""

    checked: bool
    target: TargetProfile | None
    worst_state: int | None = None     # the largest proven |state| over all nodes
    note: str = ""


def _range(a: np.ndarray) -> tuple[int, int]:
    a = np.asarray(a)
    return (int(a.min()), int(a.max())) if a.size else (0, 0)


def _bias_ok(b: np.ndarray, mant_bits: int, exp_max: int) -> np.ndarray:
    """Per element: is b = m << e with |m| <= 2^(mant_bits-1)-1 and 0 <= e <= exp_max? (Python ints)"""
    mmax = (1 << (mant_bits - 1)) - 1
    flat = [abs(int(v)) for v in np.asarray(b).reshape(-1)]
    ok = [any(v % (1 << e) == 0 and (v >> e) <= mmax for e in range(exp_max + 1)) for v in flat]
    return np.array(ok, bool).reshape(np.shape(b))


def _value_max(node) -> int:
    """Largest |value| a node sends per step (the bounds' value_range, in Python ints)."""
    if isinstance(node, Input):
        return max(abs(node.qmin), abs(node.qmax))
    if isinstance(node, GradedMaxPool):
        return node.max_message
    if isinstance(node, Population) and isinstance(node.neuron, MultiThreshold):
        return node.neuron.unit_divisor
    return 1


def coarse_state_bound(net: Network) -> int:
    """An upper bound, in Python integers, on every magnitude the bounds proof computes: per node
    (T |v0| + T^2 (|B| + sum_p (sum|w| << e) max|value|)) * R, T * Theta, with R = 2^F in differential
    coding. When it is below 2^62 the proof's int64 arithmetic cannot wrap."""
    T = net.timesteps
    R = (1 << net.coding.frac_bits) if isinstance(net.coding, DifferentialCoding) else 1
    worst = 0
    for node in net.nodes:
        if not isinstance(node, (Population, Readout, GradedMaxPool)):
            continue
        step = 0
        for p in net.incoming(node.name):
            w = np.abs(np.asarray(p.weight, dtype=object))
            if isinstance(p, SumPool2d):
                wsum = int(abs(int(p.weight))) * p.kernel[0] * p.kernel[1]
            else:
                wsum = int(w.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0
            step += (wsum << p.exponent) * _value_max(net.node(p.source))
        b = v0 = th = 0
        if isinstance(node, (Population, Readout)):
            b = max(abs(x) for x in _range(node.bias))
            v0 = max(abs(x) for x in _range(node.v0))
        if isinstance(node, Population):
            th = _range(node.threshold)[1]
        worst = max(worst, (T * v0 + T * T * (b + step)) * R, T * th * R)
    return worst


def check_formats(net: Network, target: TargetProfile | None = None, *, source: str = "the network",
                  limits: Limits = DEFAULT_LIMITS, input_bytes: int = 0) -> FormatReport:
    """Raise ``FormatError`` when ``net`` does not fit ``target`` (default: the target its metadata stores)."""
    def fail(what: str) -> FormatError:
        return FormatError(f"'{source}': {what}")

    if target is None:
        stored = net.metadata.get("target") if isinstance(net.metadata, dict) else None
        if stored is None:
            return FormatReport(False, None, note="the bundle names no target: its formats were not checked")
        try:
            target = profile_from_dict(stored, f"{source}: metadata.target")
        except TargetError as e:
            raise FormatError(str(e)) from None
    fmt = target.numeric
    tname = f"target {target.name}"
    if net.timesteps > limits.max_timesteps:
        raise fail(f"timesteps T = {net.timesteps} is above the limit {limits.max_timesteps}")
    for p in net.projections:
        lo, hi = _range(p.weight)
        if lo < fmt.weight_min or hi > fmt.weight_max:
            raise fail(f"projection '{p.name}': weights {lo}..{hi} do not fit the {tname}'s {fmt.weight_bits}-bit "
                       f"weight (weight_bits: {fmt.weight_min}..{fmt.weight_max})")
        if not fmt.weight_exp_min <= p.exponent <= fmt.weight_exp_max:
            raise fail(f"projection '{p.name}': exponent {p.exponent} is outside the {tname}'s "
                       f"{fmt.weight_exp_min}..{fmt.weight_exp_max} (weight_exp_min..weight_exp_max)")
    for n in net.nodes:
        if isinstance(n, Input):
            lo_in = -(1 << (fmt.input_bits - 1))
            hi_in = (1 << fmt.input_bits) - 1
            if n.qmin < lo_in or n.qmax > hi_in:
                raise fail(f"input '{n.name}': integer range {n.qmin}..{n.qmax} does not fit the {tname}'s "
                           f"{fmt.input_bits}-bit input (input_bits)")
        if isinstance(n, (Population, Readout)):
            bad = ~_bias_ok(n.bias, fmt.bias_mant_bits, fmt.bias_exp_max)
            if bad.any():
                v = int(np.asarray(n.bias).reshape(-1)[int(np.argmax(bad.reshape(-1)))])
                raise fail(f"{type(n).__name__.lower()} '{n.name}': bias {v} is not a value the {tname}'s bias "
                           f"register holds (mantissa of bias_mant_bits = {fmt.bias_mant_bits} << exponent 0.."
                           f"{fmt.bias_exp_max}: |bias| <= {fmt.bias_max})")
            lo, hi = _range(n.v0)
            if max(-lo, hi) > fmt.state_max:
                raise fail(f"{type(n).__name__.lower()} '{n.name}': initial potential v0 {lo}..{hi} exceeds the "
                           f"{fmt.state_bits}-bit state (state_bits: |v| <= {fmt.state_max})")
        if isinstance(n, Population):
            lo, hi = _range(n.threshold)
            if hi > fmt.state_max:
                raise fail(f"population '{n.name}': threshold {hi} exceeds the {fmt.state_bits}-bit state "
                           f"(state_bits: thresholds 1..{fmt.state_max})")
            if n.timesteps is not None and n.timesteps > net.timesteps:
                raise fail(f"population '{n.name}': its own timesteps {n.timesteps} exceed the network's T = "
                           f"{net.timesteps}")
        if isinstance(n, GradedMaxPool) and n.max_message > fmt.state_max:
            raise fail(f"graded unit '{n.name}': max_message {n.max_message} exceeds the {fmt.state_bits}-bit state")
    coarse = coarse_state_bound(net)
    if coarse >= INT64_SAFE:
        raise fail(f"its state bound cannot be proven in 64-bit arithmetic (up to {coarse:.3e} with T = "
                   f"{net.timesteps}); recompile with fewer timesteps or smaller weights")
    envelopes = (isinstance(net.coding, DifferentialCoding) or any(isinstance(n, GradedMaxPool) for n in net.nodes)
                 or any(isinstance(p.neuron, MultiThreshold) for p in net.populations))
    if envelopes:
        need = (net.timesteps + 1) * max(n.size for n in net.nodes) * 8 * 8
        budget = memory_budget(input_bytes)
        if need > budget:
            raise fail(f"proving its state bound needs {need:,} bytes of per-step envelopes (T = {net.timesteps}); "
                       f"the budget is {budget:,}")
    from ..analysis.bounds import check_network

    try:
        bounds = check_network(net, fmt.state_bits)
    except StateOverflowError as e:
        raise fail(f"does not fit the {tname}: {e}") from None
    return FormatReport(True, target, max((b.worst for b in bounds), default=0))
