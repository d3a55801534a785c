"""Integerization: real effective weights in level units -> integer weights, thresholds, V0, bias.

For a population fed by source counts M_s, the matched ANN computes z = sum_s w'_s M_s + b' and
M = clip(Q(z + beta), 0, L) (docs/conversion.md). Per output channel c we pick a threshold Theta_c
and a per-projection exponent e so that the largest weight of the channel uses the whole mantissa:

    Theta_c = round(2^e * Wmax / max|w'_c|),   W = round(w' * Theta_c / 2^e),   B = round(b' Theta_c / T)

V0 carries the quantizer (docs/ir.md table): floor(beta*Theta) for floor, Theta - 1 + ceil(beta*Theta)
for ceil. The exponent is the largest that passes the state bound check (analysis/bounds.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir import Node, Population, Projection, Readout

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


def _v0(mode: str, beta: float, theta: np.ndarray) -> np.ndarray:
    if mode == "floor":
        return np.floor(beta * theta).astype(np.int64)
    return (theta - 1 + np.ceil(beta * theta)).astype(np.int64)


def _channel_view(w: np.ndarray) -> tuple[int, ...]:
    return (-1,) + (1,) * (w.ndim - 1)


def integerize_population(
    layer: RealLayer, mode: str, beta: float, levels: int, real_threshold: float, T: int,
    fmt: NumericFormat, sources: dict[str, Node],
) -> tuple[Population, list[Projection], int]:
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
        bias = np.array([fmt.representable_bias(int(v)) for v in np.round(layer.bias * theta / T)], np.int64)
        pop = Population(layer.name, layer.shape, threshold=theta, v0=_v0(mode, beta, theta), bias=bias,
                         levels=levels, real_threshold=np.array(real_threshold))
        return pop, projs

    return _first_fitting(build, layer.name, T, fmt, sources)


def integerize_readout(
    layer: RealLayer, T: int, fmt: NumericFormat, sources: dict[str, Node],
) -> tuple[Readout, list[Projection], int]:
    """One scale S for all outputs (so argmax is preserved): W = round(w' S / 2^e), R0 = round(b S)."""
    wabs = max(float(np.abs(w).max()) if w.size else 0.0 for w in layer.weights) or 1.0

    def build(e, wtop):
        S = max(1, round((2**e) * wtop / wabs))
        projs = [mk(np.clip(np.round(w * S / 2**e), fmt.weight_min, fmt.weight_max).astype(np.int64), e)
                 for w, mk in zip(layer.weights, layer.make_projection)]
        r0 = np.round(layer.bias * S).astype(np.int64)
        return Readout(layer.name, layer.shape, v0=r0, bias=0, scale=1.0 / S), projs

    return _first_fitting(build, layer.name, T, fmt, sources)
