"""Integerization: real effective weights in level units -> integer weights, thresholds, V0, bias.

For a population fed by source counts M_s, the matched ANN computes z = sum_s w'_s M_s + b' and
M = clip(Q(z + beta), 0, L) (docs/conversion.md). Per output channel c we pick a threshold Theta_c
and a per-projection exponent e so that the largest weight of the channel uses the whole mantissa:

    Theta_c = round(2^e * Wmax / max|w'_c|),   W = round(w' * Theta_c / 2^e),   B = round(b' Theta_c / L)

V0 carries the quantizer (docs/ir.md table, docs/conversion.md "V0 modes"): matched, floor(beta*Theta)
for floor and Theta - 1 + ceil(beta*Theta) for ceil; or a mode the user picks (zero, half, full). The exponent is the largest that passes the state bound check (analysis/bounds.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir import IFSoftReset, MultiThreshold, NeuronModel, Node, Population, Projection, Readout

from .analysis.bounds import node_bound
from .errors import StateOverflowError
from .targets import NumericFormat


@dataclass
class RealLayer:
    """A layer in real arithmetic, in level units of its sources' counts.

    ``weights``: per incoming projection, real weights shaped like the IR projection's weight
    (``make_projection(name, int_weight, exponent)`` builds the IR projection).
    """

    name: str
    shape: tuple[int, ...]
    weights: list[np.ndarray]
    make_projection: list  # callables (int weight, exponent) -> Projection
    bias: np.ndarray  # b' per channel (levels), or per output for readout (real units)


def _scales(fmt: NumericFormat):
    """Candidate (exponent, largest mantissa) pairs, finest first: the largest exponent that fits wins;
    if even the smallest exponent overflows (tiny weights want a huge threshold), the mantissa range
    shrinks by halves (down to weights that round to zero: such a layer's input is negligible)."""
    for e in range(fmt.weight_exp_max, fmt.weight_exp_min - 1, -1):
        yield e, fmt.weight_max
    for k in range(1, 48):
        yield fmt.weight_exp_min, fmt.weight_max / 2**k


def _first_fitting(build, name: str, T: int, fmt: NumericFormat, sources: dict[str, Node]):
    """Try the scales finest first; return (node, projections, exponent) of the first whose state
    bound fits the target's width, else raise naming the layer."""
    worst = None
    for e, wtop in _scales(fmt):
        node, projs = build(e, wtop)
        b = node_bound(node, projs, sources, T)
        if b.worst <= fmt.state_max:
            return node, projs, e
        worst = b.worst
    raise StateOverflowError(
        f"layer '{name}': even with the smallest weight scale its state could reach {worst} > {fmt.state_max} "
        f"({fmt.state_bits}-bit) at T={T}; use fewer timesteps or a target with a wider state"
    )


def _channel_max(w: np.ndarray, n_channels: int) -> np.ndarray:
    if w.ndim == 0:
        return np.full(n_channels, abs(float(w)))
    return np.abs(w.reshape(w.shape[0], -1)).max(axis=1) if w.shape[0] == n_channels else np.full(n_channels, np.abs(w).max())


MATCHED_V0 = {"floor": "zero", "round": "half", "ceil": "full"}  # paper 003's quantization-voltage match


def resolve_v0_mode(v0_mode: str, mode: str, beta: float) -> tuple[str, float]:
    """(zero|half|full, r): the V0 mode to use and the quantizer's residual offset r.

    The activation is Q(z + beta), Q = floor or ceil; a floor with beta = 1/2 is round. r is what
    is left of beta once the rounding's own offset is taken out (0 for the papers' quantizers).
    ``auto`` picks the mode that matches the quantizer, which reproduces it exactly.
    """
    if mode == "ceil":
        quantizer, r = "ceil", beta
    elif beta == 0.5:
        quantizer, r = "round", 0.0
    else:
        quantizer, r = "floor", beta
    return (MATCHED_V0[quantizer] if v0_mode == "auto" else v0_mode), r


def v0_for(v0_mode: str, r: float, theta: np.ndarray) -> np.ndarray:
    """Integer V0 per channel (docs/conversion.md, "V0 modes"); spikes fire at v >= Theta.

    zero: floor(r*Theta); half: floor((r + 1/2)*Theta); full: Theta - 1 + ceil(r*Theta).
    "full" is the paper's V0 = theta with its strict reading (fire when v > theta): with integer
    states v > Theta is v - 1 >= Theta, so V0 = Theta - 1 under v >= Theta is the same neuron.
    """
    theta = np.asarray(theta, dtype=np.int64)
    if v0_mode == "zero":
        return np.floor(r * theta).astype(np.int64)
    if v0_mode == "half":
        return np.floor((r + 0.5) * theta).astype(np.int64)
    if v0_mode == "full":
        return (theta - 1 + np.ceil(r * theta)).astype(np.int64)
    raise ValueError(f"unknown V0 mode {v0_mode!r}; supported: zero, half, full (or auto)")


def _channel_view(w: np.ndarray) -> tuple[int, ...]:
    return (-1,) + (1,) * (w.ndim - 1)


def integerize_population(
    layer: RealLayer, mode: str, beta: float, levels: int, real_threshold: float, T: int,
    fmt: NumericFormat, sources: dict[str, Node], neuron: NeuronModel | None = None, v0_mode: str = "auto",
) -> tuple[Population, list[Projection], int]:
    """Integer population for one activation. The per-step bias spreads b' over the L steps of the
    matched ANN (B = round(b' Theta / L)); T only enters the state bound, so a T != L network has
    the same parameters as the T = L one and its levels are Theta/T (rate rescaling)."""
    neuron = neuron if neuron is not None else IFSoftReset()
    resolved, r = resolve_v0_mode(v0_mode, mode, beta)
    C = layer.shape[0]
    wmax = np.max([_channel_max(w, C) for w in layer.weights], axis=0)
    layer_max = float(wmax.max()) if wmax.size else 0.0
    if layer_max == 0.0:
        layer_max = 1.0
    wmax = np.where(wmax > 0, wmax, layer_max)  # channels without weights share the layer's scale
    def build(e, wtop):
        theta = np.maximum(np.round((2**e) * wtop / wmax), 1).astype(np.int64)
        projs = []
        for w, mk in zip(layer.weights, layer.make_projection):
            th = theta.reshape(_channel_view(w)) if w.ndim and w.shape[0] == C else theta.max()
            wi = np.clip(np.round(w * th / 2**e), fmt.weight_min, fmt.weight_max).astype(np.int64)
            projs.append(mk(wi, e))
        bias = np.array([fmt.representable_bias(int(v)) for v in np.round(layer.bias * theta / levels)], np.int64)
        pop = Population(layer.name, layer.shape, neuron=neuron, threshold=theta, v0=v0_for(resolved, r, theta),
                         bias=bias, levels=levels, real_threshold=np.array(real_threshold))
        return pop, projs

    return _first_fitting(build, layer.name, T, fmt, sources)


def integerize_mt_population(
    layer: RealLayer, neuron: MultiThreshold, real_threshold: float, T: int, fmt: NumericFormat,
    sources: dict[str, Node], differential: bool,
) -> tuple[Population, list[Projection], int]:
    """Integer multi-threshold population for a plain ReLU (paper 004; docs/conversion.md).

    ``layer`` is in units of the neuron's base threshold theta (w' = W gamma_s / theta, b' = b / theta).
    Theta_c is chosen like the IF case and rounded to a multiple of 2^(n-1) so every threshold
    Theta/2^(i-1) is an integer. Rate coding: the bias is a per-step current B = round(b' Theta),
    V0 = 0 (the nearest-threshold choice already rounds). Differential coding: the bias is the
    initial encoded value V0 = round(b' Theta) (Theorem 4.5), B = 0.
    """
    C = layer.shape[0]
    u = neuron.unit_divisor
    wmax = np.max([_channel_max(w, C) for w in layer.weights], axis=0)
    layer_max = float(wmax.max()) if wmax.size and wmax.max() > 0 else 1.0
    wmax = np.where(wmax > 0, wmax, layer_max)

    def build(e, wtop):
        theta = u * np.maximum(np.round((2**e) * wtop / wmax / u), 1).astype(np.int64)
        projs = []
        for w, mk in zip(layer.weights, layer.make_projection):
            th = theta.reshape(_channel_view(w)) if w.ndim and w.shape[0] == C else theta.max()
            wi = np.clip(np.round(w * th / 2**e), fmt.weight_min, fmt.weight_max).astype(np.int64)
            projs.append(mk(wi, e))
        b = np.round(layer.bias * theta).astype(np.int64)
        if differential:
            v0, bias = b, np.zeros(C, np.int64)
        else:
            v0, bias = np.zeros(C, np.int64), np.array([fmt.representable_bias(int(v)) for v in b], np.int64)
        pop = Population(layer.name, layer.shape, neuron=neuron, threshold=theta, v0=v0, bias=bias, levels=T,
                         real_threshold=np.array(real_threshold))
        return pop, projs

    return _first_fitting(build, layer.name, T, fmt, sources)


def integerize_readout(
    layer: RealLayer, T: int, fmt: NumericFormat, sources: dict[str, Node], levels: int | None = None,
) -> tuple[Readout, list[Projection], int]:
    """One scale S for all outputs (so argmax is preserved): W = round(w' S / 2^e), R0 = round(b S T / L).

    The weights act on source counts, which grow like T/L times the ANN's levels, so the offset R0
    and the output scale follow: output = value * L / (S T). With T = L, R0 = round(b S).
    """
    L = T if levels is None else int(levels)
    wabs = max(float(np.abs(w).max()) if w.size else 0.0 for w in layer.weights) or 1.0

    def build(e, wtop):
        S = max(1, round((2**e) * wtop / wabs))
        projs = [mk(np.clip(np.round(w * S / 2**e), fmt.weight_min, fmt.weight_max).astype(np.int64), e)
                 for w, mk in zip(layer.weights, layer.make_projection)]
        r0 = np.round(layer.bias * S * T / L).astype(np.int64)
        return Readout(layer.name, layer.shape, v0=r0, bias=0, scale=L / (S * T)), projs

    return _first_fitting(build, layer.name, T, fmt, sources)
