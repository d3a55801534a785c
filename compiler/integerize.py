"""Integerization: the lowered network's real weights in level units -> integer weights, thresholds,
V0 and bias, one layer after the other (the integerize stage: ``integerize_network``).

For a population fed by source counts M_s, the matched ANN computes z = sum_s w'_s M_s + b' and
M = clip(Q(z + beta), 0, L) (docs/conversion.md). Per output channel c we pick a threshold Theta_c
and a per-projection exponent e so that the largest weight of the channel uses the whole mantissa:

    Theta_c = round(2^e * Wmax / max|w'_c|),   W = round(w' * Theta_c / 2^e),   B = round(b' Theta_c / L)

V0 carries the quantizer (docs/ir.md table, docs/conversion.md "V0 modes"): matched, floor(beta*Theta)
for floor and Theta - 1 + ceil(beta*Theta) for ceil; or a mode the user picks (zero, half, full). The
exponent is the largest that passes the state bound check (analysis/bounds.py).

Everything a layer's choice depends on besides its own weights is in one explicit
``IntegerizeContext``: the target's numeric format, the network's coding and T, the weight-bit floor
(``frac_bits = auto:k``; ``fitting_timesteps(keep_all_bits=True)``) and the envelopes of the layers
integerized so far (what they can send, so a later layer's bound is tighter than from their value
ranges alone).

A quantized-clip layer whose real weights are the model's integers times one factor per channel
(QDQ / QONNX weights; ``integer_grid``) holds those integers exactly (W = k n per channel) and moves the
bias's rounding remainder into V0 (``split_bias``); its weights may not keep fewer than
``WEIGHT_FLOOR_BITS`` signed bits (``WeightPrecisionError`` names the T that keeps them; issue 13,
docs/fidelity.md "Weight bits").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Callable, TypeVar

import numpy as np

from snnc.ir import (Coding, DifferentialCoding, IFSoftReset, MultiThreshold, Network, NeuronModel, Node, Population,
                     Projection, Readout, weight_dtype)

from .analysis.bounds import Envelope, bound_node
from .errors import StateOverflowError
from .integerize_units import integerize_unit
from .lowering.plan import (FixedNodes, LoweredGraph, MultiThresholdPopulation, PlanItem, QuantizedPopulation,
                            ReadoutPlan, RealLayer)
from .lowering.transformer import GradedPlan
from .metadata import Conversion, LayerRecord
from .targets import NumericFormat
from .weight_precision import (WEIGHT_FLOOR_BITS, WeightBits, WeightPrecisionError, abs_max, integer_grid,
                               layer_weight_precision, signed_bits, weight_bits, weight_bits_at)
from .weight_scale import round_weights, scale_screen

log = logging.getLogger(__name__)

_X = TypeVar("_X")


@dataclass
class IntegerizeContext:
    """What integerizing one network shares across its layers (no other state is kept anywhere).

    ``fmt``: the target's numeric format; ``coding``: the network's coding (the state bounds depend
    on it: differential states are values times 2^F); ``timesteps``: the network's T (what the bounds
    run over); ``min_weight_bits``: refuse (StateOverflowError) rather than shrink any layer's weights
    below that many signed bits (None: shrink as far as needed); ``envelopes``: node name -> what the
    node integerized so far can send (filled in as layers are integerized)."""

    fmt: NumericFormat
    coding: Coding
    timesteps: int
    min_weight_bits: int | None = None
    envelopes: dict[str, Envelope] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.coding, Coding) or type(self.coding) is Coding:
            raise ValueError(f"coding must be RateCoding or DifferentialCoding, got {self.coding!r}")
        if isinstance(self.timesteps, bool) or int(self.timesteps) < 1:
            raise ValueError(f"timesteps must be >= 1, got {self.timesteps!r}")
        self.timesteps = int(self.timesteps)

    @property
    def differential(self) -> bool:
        return isinstance(self.coding, DifferentialCoding)


@dataclass
class IntegerNetwork:
    """The integerize stage's output: the integer network (no metadata yet), one record per layer,
    the matched ANN's L (None: training-free) and each activation's L when they differ."""

    network: Network
    layers: list[LayerRecord]
    levels: int | None
    mixed_levels: dict[str, int]
    conversion: Conversion


def _bits_at(build, T: int, fmt: NumericFormat, sources: dict[str, Node], coding, floor: int,
             bits_of: Callable[[float], int]) -> int:
    """The signed weight bits of the finest scale whose state bound fits at T (0 if none down to 1 bit; -1
    when no scale could be built at all: the bias register, not the state, is what refuses)."""
    built_any = False
    for e, wtop in _scales(fmt, 1):
        built = build(e, wtop)
        if built is None:
            continue
        built_any = True
        node, projs = built
        b, _ = bound_node(node, projs, sources, T, coding, {})
        if b.worst <= fmt.state_max:
            return bits_of(wtop)
    return 0 if built_any else -1


def suggest_timesteps(build, T: int, fmt: NumericFormat, sources: dict[str, Node], coding, needed: int, floor: int,
                      bits_of: Callable[[float], int]) -> list[tuple[int, int]]:
    """(T', bits kept) for the largest power-of-two T' < T keeping all ``needed`` bits and, if that T' is
    much smaller, the largest keeping at least ``floor`` bits (one layer's view; the network's T is the
    smallest over its layers)."""
    full = at_floor = None
    t = 1 << (max(T - 1, 1).bit_length() - 1)
    while t >= 1 and full is None:
        k = _bits_at(build, t, fmt, sources, coding, floor, bits_of)
        if k >= floor and at_floor is None:
            at_floor = (t, k)
        if k >= needed:
            full = (t, k)
        t //= 2
    out = [s for s in (full, at_floor) if s is not None]
    return list(dict.fromkeys(out))


def fitting_timesteps(lower_at: Callable[[int, int | None], _X], timesteps: int, keep_all_bits: bool = False,
                      max_tries: int = 16) -> tuple[int, _X]:
    """The largest T' <= ``timesteps`` at which ``lower_at(T', min_weight_bits)`` compiles without a
    WeightPrecisionError, following each error's suggestion (the failing layer's largest T that passes the
    floor; the network's T is the smallest over its layers, so the search only goes down).
    ``lower_at(T', min_weight_bits)`` integerizes at T' with that ``IntegerizeContext.min_weight_bits``
    (None: the default floor, ``WEIGHT_FLOOR_BITS``). ``keep_all_bits``: the floor is every bit each
    layer's weights need (no layer loses one): min_weight_bits = 64, more than any layer needs. Returns
    (T', its result); re-raises the last error when even T' = 1 fails. For the command that reports the
    network-wide option (issue 13: "the option that works")."""
    t = int(timesteps)
    floor = 64 if keep_all_bits else None
    err: WeightPrecisionError | None = None
    for _ in range(max_tries):
        try:
            return t, lower_at(t, floor)
        except WeightPrecisionError as e:
            err = e
            nxt = [s for s, b in e.suggestions if s < t and b >= e.floor]
            if not nxt:
                raise
            t = max(nxt)
    if err is None:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    raise err


def _scales(fmt: NumericFormat, min_weight_bits: int | None = None):
    """Candidate (exponent, largest mantissa) pairs, finest first: the largest exponent that fits wins;
    if even the smallest exponent overflows (tiny weights want a huge threshold, or differential
    coding's states times 2^F), the mantissa range shrinks by halves, down to ``min_weight_bits``
    signed bits (largest |W| = 2^(k-1) - 1; default: down to weights that round to zero, such a
    layer's input is negligible)."""
    for e in range(fmt.weight_exp_max, fmt.weight_exp_min - 1, -1):
        yield e, fmt.weight_max
    for k in range(1, 48):
        wtop = fmt.weight_max / 2**k
        if min_weight_bits is not None and wtop < 2 ** (min_weight_bits - 1) - 1:
            return
        yield fmt.weight_exp_min, wtop


def _first_fitting(build, name: str, ctx: IntegerizeContext, sources: dict[str, Node],
                   bits_of: Callable[[float], WeightBits] | None = None,
                   refuses: Callable[[int, float], bool] | None = None):
    """Try the scales finest first; return (node, projections, exponent) of the first whose state
    bound (analysis/bounds.py, for the context's coding and T) fits the target's width, and remember
    its envelope in the context; else raise naming the layer.

    ``bits_of`` (quantized-clip layers and their readout): wtop -> the WeightBits at that scale; the
    weights may then not go below min(WEIGHT_FLOOR_BITS or the context's ``min_weight_bits``, the bits
    they need): WeightPrecisionError names the bits the layer would keep and the T that keeps them; a
    layer keeping fewer bits than it needs is logged as a warning."""
    if bits_of is None:
        return _fit_scales(build, name, ctx, sources, ctx.min_weight_bits, refuses)
    fmt, T, coding = ctx.fmt, ctx.timesteps, ctx.coding
    need = bits_of(fmt.weight_max).needed
    floor = min(WEIGHT_FLOOR_BITS if ctx.min_weight_bits is None else ctx.min_weight_bits, need)
    tops: list[float] = []

    def recorded(e, wtop):
        tops.append(wtop)
        return build(e, wtop)

    try:
        node, projs, e = _fit_scales(recorded, name, ctx, sources, floor, refuses)
    except StateOverflowError as err:
        kept = _bits_at(build, T, fmt, sources, coding, floor, lambda w: bits_of(w).kept)
        if kept >= floor or kept < 0:  # not the weight floor (e.g. the bias register): the original error stands
            raise
        raise WeightPrecisionError(name, T, kept, need, floor, fmt.state_bits, suggest_timesteps(
            build, T, fmt, sources, coding, need, floor, lambda w: bits_of(w).kept)) from err
    wb = bits_of(tops[-1])
    if wb.short:  # what the mantissas really use (tiny thresholds can round weights past wtop)
        wb = WeightBits(min(weight_bits(projs), wb.needed), wb.needed, wb.grid)
    if wb.short:
        log.warning("layer '%s' keeps %d of its weights' %d signed bits at T=%d (the %d-bit state bound); "
                    "fewer timesteps keep more (docs/fidelity.md, 'Weight bits')", name, wb.kept, wb.needed, T,
                    fmt.state_bits)
    return node, projs, e


def _fit_scales(build, name: str, ctx: IntegerizeContext, sources: dict[str, Node], min_weight_bits: int | None,
                refuses: Callable[[int, float], bool] | None = None):
    """``_first_fitting``'s search, down to ``min_weight_bits`` signed bits (None: as far as needed).
    ``refuses(e, wtop)``: True when that scale's state bound certainly overflows (weight_scale.py), so
    it is skipped without rounding its weights; the search takes the same scale either way."""
    worst = None
    fmt, T, coding = ctx.fmt, ctx.timesteps, ctx.coding
    envs = {k: env for k, env in ctx.envelopes.items() if k in sources}
    bias_clipped = False
    skipped = None
    for e, wtop in _scales(fmt, min_weight_bits):
        if refuses is not None and refuses(e, wtop):
            skipped = (e, wtop)
            continue
        skipped = None
        built = build(e, wtop)
        if built is None:  # the per-step bias would not fit the bias register at this scale
            bias_clipped = True
            continue
        node, projs = built
        b, env = bound_node(node, projs, sources, T, coding, envs)
        if b.worst <= fmt.state_max:
            ctx.envelopes[node.name] = env
            return node, projs, e
        worst = b.worst
        built = node = projs = env = None  # freed before the next scale is built (VGG-16 224's fc1: 3 GB)
    if skipped is not None:  # the last scale was refused unbuilt: its exact bound is the one to report
        built = build(*skipped)
        if built is not None:
            node, projs = built
            b, env = bound_node(node, projs, sources, T, coding, envs)
            if b.worst <= fmt.state_max:  # cannot happen (the screen's bound is a lower bound); sound anyway
                ctx.envelopes[node.name] = env
                return node, projs, skipped[0]
            worst = b.worst
    floor = f" with weights of at least {min_weight_bits} bits" if min_weight_bits is not None else \
        " even with the smallest weight scale"
    extra = (f" or fewer fractional bits than F = {coding.frac_bits}" if isinstance(coding, DifferentialCoding)
             else "")
    if worst is None:
        raise StateOverflowError(
            f"layer '{name}': its per-step bias exceeds the target's bias register (|B| <= {fmt.bias_max}) at every "
            "weight scale; the layer's bias is too large against its weights (check the model's bias and scales)")
    raise StateOverflowError(
        f"layer '{name}':{floor} its state could reach {worst} > {fmt.state_max} "
        f"({fmt.state_bits}-bit) at T={T}; use fewer timesteps{extra} or a target with a wider state"
        + (" (finer scales were also refused: their bias exceeds the bias register)" if bias_clipped else "")
    )


def choose_frac_bits(lower_at: Callable[[DifferentialCoding, int | None], _X], timesteps: int,
                     min_weight_bits: int | None = None,
                     candidates=range(16, -1, -1), network_of=lambda r: r[0] if isinstance(r, tuple) else r,
                     error: Callable | None = None) -> tuple[DifferentialCoding, _X]:
    """``frac_bits = auto``: pick F for a differential network. Its states are values times 2^F, so F
    and the weight scale share the state width: a larger F makes the reciprocals R_t = round(2^F/t)
    finer and forces coarser weights (the integerizer shrinks a layer's weights until its bound fits).

    ``lower_at(coding, min_weight_bits)`` integerizes the network in that coding with that weight-bit
    floor (raising StateOverflowError when it cannot fit); ``network_of`` takes the Network out of its
    result.

    * ``min_weight_bits`` = k: the largest F of ``candidates`` whose every layer keeps weights of at
      least k signed bits (``auto:k``).
    * None (``auto``): balance the two roundings: the largest relative error of R_t is
      t/2^(F+1) <= 2^-(F+1-log2 T); a layer's weights have a signal-to-rounding ratio of
      2^p (p = ``layer_weight_precision``, bits), so F maximizes min(F + 1 - log2 T, p_min); ties go to
      the larger F. (A first version compared the largest mantissa's bits instead; it could not see
      a 1024-input layer whose weights had nearly all rounded to 0 and picked F = 14 at T = 16, 17 %.)
    * ``error`` given (``auto`` with calibration data; compiler/api.py): F minimizes the measured
      error ``error(network)`` (the SNN's outputs against the float ANN's on calibration inputs);
      ties go to the larger F. The worst-case state bound is loose for deep nets, so the rounding
      estimate above can favour an F whose squeezed weights fail in practice; the data decide.
    Raises StateOverflowError when no candidate fits."""
    err: Exception | None = None
    best = None
    if error is not None and min_weight_bits is None:
        for F in candidates:
            coding = DifferentialCoding(frac_bits=int(F))
            try:
                res = lower_at(coding, None)
            except StateOverflowError as e:
                err = e
                continue
            e_f = float(error(network_of(res)))
            if best is None or e_f < best[0]:
                best = (e_f, coding, res)
        if best is None:
            raise StateOverflowError(f"differential coding: no F in {list(candidates)} fits: {err}")
        return best[1], best[2]
    for F in candidates:
        coding = DifferentialCoding(frac_bits=int(F))
        pf = F + 1 - float(np.log2(max(int(timesteps), 1)))
        if min_weight_bits is None and best is not None and pf <= best[0]:
            break  # a smaller F cannot beat the best score any more
        try:
            res = lower_at(coding, min_weight_bits)
        except StateOverflowError as e:
            err = e
            continue
        if min_weight_bits is not None:
            return coding, res
        prec = layer_weight_precision(network_of(res))
        score = min(pf, min(prec.values(), default=0.0))
        if best is None or score > best[0]:
            best = (score, coding, res)
    if best is None:
        floor = f" with weights of at least {min_weight_bits} bits" if min_weight_bits is not None else ""
        raise StateOverflowError(f"differential coding: no F in {list(candidates)} fits{floor}: {err}")
    return best[1], best[2]


def _channel_max(w, n_channels: int) -> np.ndarray:
    """max |w| per output channel (or the layer's max for every channel when ``w`` has no channel axis);
    ``w`` an ndarray or a ``ScaledWeight``."""
    if w.ndim == 0:
        return np.full(n_channels, abs(float(w)))
    if isinstance(w, np.ndarray):
        return abs_max(w.reshape(w.shape[0], -1), axis=1) if w.shape[0] == n_channels else np.full(n_channels, abs_max(w))
    rows = w.row_abs_max()  # a ScaledWeight: without forming the product
    return rows if w.shape[0] == n_channels else np.full(n_channels, rows.max(initial=0.0))


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
    layer: RealLayer, mode: str, beta: float, levels: int, real_threshold: float, ctx: IntegerizeContext,
    sources: dict[str, Node], neuron: NeuronModel | None = None, v0_mode: str = "auto", steps: int | None = None,
) -> tuple[Population, list[Projection], int]:
    """Integer population for one activation. The per-step bias spreads b' over the L steps of the
    matched ANN (B = round(b' Theta / L)); T only enters the state bound, so a T != L network has
    the same parameters as the T = L one and its levels are Theta/T (rate rescaling).
    ``steps``: the population's own layerwise steps (``Population.timesteps``; mixed L: its L)."""
    neuron = neuron if neuron is not None else IFSoftReset()
    fmt = ctx.fmt
    resolved, r = resolve_v0_mode(v0_mode, mode, beta)
    C = layer.shape[0]
    wmax = np.max([_channel_max(w, C) for w in layer.weights], axis=0)
    layer_max = float(wmax.max()) if wmax.size else 0.0
    if layer_max == 0.0:
        layer_max = 1.0
    wmax = np.where(wmax > 0, wmax, layer_max)  # channels without weights share the layer's scale
    grid = integer_grid(layer.weights, C)  # the model's integer weights, if it has them

    def params(e, wtop):
        """(theta, k, B, V0) at this scale, or None when B does not fit the bias register."""
        theta = np.maximum(np.round((2**e) * wtop / wmax), 1).astype(np.int64)
        k = None
        if grid is not None:  # hold the model's integers exactly: W = k_c * n, Theta_c from k_c * N_c
            k = np.floor(wtop / np.maximum(grid, 1) + 1e-9).astype(np.int64)
            k = np.where(grid > 0, k, 0)
            theta = np.where(k >= 1, np.maximum(np.round((2**e) * k * grid / wmax), 1), theta).astype(np.int64)
        raw = np.round(layer.bias * theta / levels)
        if np.any(np.abs(raw) > fmt.bias_max):
            return None
        bias = np.array([fmt.representable_bias(int(v)) for v in raw], np.int64)
        v0 = v0_for(resolved, r, theta)
        if grid is not None and v0_mode == "auto":
            v0 = split_bias(layer.bias, theta, levels, bias, v0)
        return theta, k, bias, v0

    screen = None if grid is not None else scale_screen(layer.weights, ctx.fmt, ctx.timesteps, ctx.coding, sources)

    def population(theta, bias, v0):
        return Population(layer.name, layer.shape, neuron=neuron, threshold=theta, v0=v0,
                          bias=bias, levels=levels, real_threshold=np.array(real_threshold), timesteps=steps)

    def refuses(e, wtop):
        p = params(e, wtop)
        if p is None or screen is None:
            return False
        if screen.active is None:  # what the layer's projections are: built on zero weights (no memory)
            screen.learn(population(p[0], p[2], p[3]), [mk(np.broadcast_to(weight_dtype(0, 0)(0), np.shape(w)), e)
                                                        for w, mk in zip(layer.weights, layer.make_projection)], e)
        return screen.refuses(p[0], e, p[2], p[3])

    def build(e, wtop):
        p = params(e, wtop)
        if p is None:
            return None
        theta, k, bias, v0 = p
        projs = []
        for w, mk in zip(layer.weights, layer.make_projection):
            th = theta.reshape(_channel_view(w)) if w.ndim and w.shape[0] == C else theta.max()
            wi = round_weights(w, th, e, fmt)
            if k is not None:
                view = _channel_view(w)
                n = np.round(w * (grid / wmax).reshape(view)).astype(np.int64)
                wi = np.where((k >= 1).reshape(view), k.reshape(view) * n, wi)
            projs.append(mk(wi, e))
        return population(theta, bias, v0), projs

    return _first_fitting(build, layer.name, ctx, sources, bits_of=lambda wtop: weight_bits_at(grid, wtop, fmt),
                          refuses=refuses)


def split_bias(bias_levels: np.ndarray, theta: np.ndarray, levels: int, B: np.ndarray, v0: np.ndarray) -> np.ndarray:
    """V0 carrying what the per-step bias B loses to rounding (a model with integer weights; issue 13).

    The matched ANN adds L*B for the real bias b' Theta (level units times Theta); B = round(b' Theta / L)
    misses by up to L/2 (and more where the bias register rounds B). Its remainder round(b' Theta) - L*B
    moves into V0 where V0 stays in [0, Theta) (the layerwise theorem's condition): at tau = L the bias is
    then exact to 1/2 instead of L/2 (in units of 1/Theta of a level). Channels where it would leave
    [0, Theta) keep their V0. (At T != L the remainder does not scale with T: at most L/(2 Theta) of a level
    on top of the rate rescaling's own error.)"""
    theta = np.asarray(theta, np.int64)
    C = len(np.asarray(bias_levels).reshape(-1))
    th = np.broadcast_to(theta.reshape(-1), (C,)) if theta.size in (1, C) else None
    v = np.broadcast_to(np.asarray(v0, np.int64).reshape(-1), (C,)) if np.size(v0) in (1, C) else None
    if th is None or v is None:
        return v0
    rem = np.round(np.asarray(bias_levels, np.float64).reshape(-1) * th) - levels * np.asarray(B, np.int64).reshape(-1)
    new = v + rem.astype(np.int64)
    ok = (new >= 0) & (new < th)
    return np.where(ok, new, v).astype(np.int64)


def integerize_mt_population(
    layer: RealLayer, neuron: MultiThreshold, real_threshold: float, ctx: IntegerizeContext, sources: dict[str, Node],
) -> tuple[Population, list[Projection], int]:
    """Integer multi-threshold population for a plain ReLU (paper 004; docs/conversion.md).

    ``layer`` is in units of the neuron's base threshold theta (w' = W gamma_s / theta, b' = b / theta).
    Theta_c is chosen like the IF case and rounded to a multiple of 2^(n-1) so every threshold
    Theta/2^(i-1) is an integer. Rate coding: the bias is a per-step current B = round(b' Theta),
    V0 = 0 (the nearest-threshold choice already rounds). Differential coding: the bias is the
    initial encoded value V0 = round(b' Theta) (Theorem 4.5), B = 0.

    The population's levels are the context's T; the state bound that picks the scale depends on the
    context's coding (differential states are values times 2^F) and its weight-bit floor.
    """
    fmt, T, differential = ctx.fmt, ctx.timesteps, ctx.differential
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
            wi = round_weights(w, th, e, fmt)
            projs.append(mk(wi, e))
        b = np.round(layer.bias * theta).astype(np.int64)
        if differential:
            v0, bias = b, np.zeros(C, np.int64)
        else:
            if np.any(np.abs(b) > fmt.bias_max):
                return None
            v0, bias = np.zeros(C, np.int64), np.array([fmt.representable_bias(int(v)) for v in b], np.int64)
        pop = Population(layer.name, layer.shape, neuron=neuron, threshold=theta, v0=v0, bias=bias, levels=T,
                         real_threshold=np.array(real_threshold))
        return pop, projs

    return _first_fitting(build, layer.name, ctx, sources)


def integerize_readout(
    layer: RealLayer, ctx: IntegerizeContext, sources: dict[str, Node], levels: int | None = None,
    steps: int | None = None, quantized: bool = False,
) -> tuple[Readout, list[Projection], int]:
    """One scale S for all outputs (so argmax is preserved): W = round(w' S / 2^e), R0 = round(b S T / L).

    The weights act on source counts, which grow like T/L times the ANN's levels, so the offset R0
    and the output scale follow: output = value * L / (S T). With T = L, R0 = round(b S). ``steps``
    is the T of these formulas (default the context's T; a differential readout takes T = L = 1: it
    accumulates the encoded value once), while the state bound runs over the context's T and coding.
    ``quantized``: the readout of a quantized-clip network (rate coded): its weights keep at least
    min(WEIGHT_FLOOR_BITS, the target's weight bits) signed bits (``_first_fitting``'s ``bits_of``).
    """
    T = ctx.timesteps if steps is None else int(steps)
    L = T if levels is None else int(levels)
    fmt = ctx.fmt
    wabs = max(float(abs_max(w)) if w.size else 0.0 for w in layer.weights) or 1.0

    def build(e, wtop):
        S = max(1, round((2**e) * wtop / wabs))
        projs = [mk(round_weights(w, S, e, fmt), e) for w, mk in zip(layer.weights, layer.make_projection)]
        r0 = np.round(layer.bias * S * T / L).astype(np.int64)
        return Readout(layer.name, layer.shape, v0=r0, bias=0, scale=L / (S * T)), projs

    quantized = quantized and not ctx.differential  # the quantized path: the weight floor applies
    return _first_fitting(build, layer.name, ctx, sources,
                          bits_of=(lambda wtop: WeightBits(signed_bits(wtop), fmt.weight_bits, False)) if quantized
                          else None)


# ---- the integerize stage ----------------------------------------------------------------------------
def _quantized(item: QuantizedPopulation, ctx: IntegerizeContext, sources: dict[str, Node]) -> FixedNodes:
    node, projs, ex = integerize_population(item.layer, item.mode, item.beta, item.levels, item.lam, ctx, sources,
                                            neuron=item.neuron, v0_mode=item.v0_mode, steps=item.steps)
    resolved, r = resolve_v0_mode(item.v0_mode, item.mode, item.beta)
    matched, _ = resolve_v0_mode("auto", item.mode, item.beta)
    o = item.origin
    record = LayerRecord(
        item.layer.name, o.onnx_linear, o.activation, item.quantizer, item.levels, item.lam, ex, list(item.layer.shape),
        ann_macs=o.ann_macs, onnx_linears=o.onnx_linears, sources=o.sources, v0_mode=resolved,
        v0_matched=resolved == matched, neuron=type(node.neuron).__name__,
        # the quantized ANN (verify's reference) keeps the quantizer's own V0
        matched_v0=v0_for(matched, r, node.threshold).tolist() if resolved != matched else None)
    return FixedNodes([node], projs, [record])


def _multi_threshold(item: MultiThresholdPopulation, ctx: IntegerizeContext, sources: dict[str, Node]) -> FixedNodes:
    node, projs, ex = integerize_mt_population(item.layer, item.neuron, item.theta, ctx, sources)
    o = item.origin
    record = LayerRecord(
        item.layer.name, o.onnx_linear, o.activation, None, None, float(item.theta.max()), ex, list(item.layer.shape),
        ann_macs=o.ann_macs, onnx_linears=o.onnx_linears, neuron=type(item.neuron).__name__,
        threshold_real=item.theta.tolist(), threshold_scope="channel" if item.per_channel else "layer")
    return FixedNodes([node], projs, [record])


def _fixed(item: FixedNodes, ctx: IntegerizeContext, sources: dict[str, Node]) -> FixedNodes:
    return item


def _graded(item: GradedPlan, ctx: IntegerizeContext, sources: dict[str, Node]) -> FixedNodes:
    done, env = integerize_unit(item, ctx.fmt, ctx.coding, ctx.timesteps, sources,
                                {k: v for k, v in ctx.envelopes.items() if k in sources})
    ctx.envelopes[item.name] = env
    return done


#: plan item type -> how its integers are chosen (a new plan item kind adds an entry)
INTEGERIZERS: dict[type, Callable[[PlanItem, IntegerizeContext, dict[str, Node]], FixedNodes]] = {
    QuantizedPopulation: _quantized,
    MultiThresholdPopulation: _multi_threshold,
    FixedNodes: _fixed,
    GradedPlan: _graded,
}


def _readout(plan: ReadoutPlan, ctx: IntegerizeContext, sources: dict[str, Node], quantized: bool) -> FixedNodes:
    # rate: the readout sums T per-step currents; differential: it accumulates the encoded value once
    # (R0 = round(b S), the value scaled by 2^F in the simulator). ``quantized``: the network's
    # conversion is quantized (its readout's weights keep the weight floor)
    node, projs, ex = integerize_readout(plan.layer, ctx, sources, levels=plan.levels,
                                         steps=1 if ctx.differential else None, quantized=quantized)
    if ctx.differential:
        node = replace(node, scale=node.scale / ctx.coding.one)
    o = plan.origin
    record = LayerRecord("readout", o.onnx_linear, None, None, None, None, ex, list(plan.layer.shape),
                         ann_macs=o.ann_macs, onnx_linears=o.onnx_linears, sources=o.sources)
    return FixedNodes([node], projs, [record])


def integerize_network(lowered: LoweredGraph, ctx: IntegerizeContext) -> IntegerNetwork:
    """Every plan item in order, then the readout, into one integer Network in ``ctx.coding``; each
    layer's bound uses the envelopes of the layers before it (kept in ``ctx``)."""
    if ctx.timesteps != lowered.timesteps:
        raise ValueError(f"integerizing a network of T={lowered.timesteps} in a context of T={ctx.timesteps}")
    nodes: list[Node] = [lowered.input]
    projs: list[Projection] = []
    records: list[LayerRecord] = []
    sources: dict[str, Node] = {lowered.input.name: lowered.input}
    for item in [*lowered.items, lowered.readout]:
        if isinstance(item, ReadoutPlan):
            done = _readout(item, ctx, sources, quantized=lowered.conversion.quantized)
        else:
            fn = INTEGERIZERS.get(type(item))
            if fn is None:
                raise TypeError(f"no integerizer for plan item {type(item).__name__}; known: "
                                f"{sorted(c.__name__ for c in INTEGERIZERS)}")
            done = fn(item, ctx, sources)
        nodes.extend(done.nodes)
        projs.extend(done.projections)
        records.extend(done.records)
        sources.update({n.name: n for n in done.nodes})
    net = Network(nodes, projs, lowered.timesteps, coding=ctx.coding)
    return IntegerNetwork(net, records, lowered.levels, dict(lowered.mixed_levels), lowered.conversion)
