"""Weight precision (issue 13): the integers a model's own weights already are, the signed bits a layer's
weight mantissas keep at a scale, the floor below which a layer is refused, and the per-layer figures the
reports show (docs/fidelity.md, "Weight bits"). ``integerize.py`` chooses the scales; this module says
what a scale keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from snnc.ir import Population, Projection, Readout

from .errors import StateOverflowError
from .targets import NumericFormat

# A quantized-clip layer is refused when its weights would keep fewer than this many signed bits (largest
# |W| <= 7), or fewer than the model's own integer weights need if those have fewer bits (binary weights:
# 2); it is warned about when it keeps fewer bits than its weights have (docs/fidelity.md, "Weight bits").
WEIGHT_FLOOR_BITS = 4
GRID_TOL = 1e-4  # how far (in grid steps) a real weight may lie from the integer grid (float32 dequantization)
GRID_NMAX = 512  # the largest integer magnitude detected: 10 signed bits (fractions n/N with N <= 512 lie
#                  >= 1/512^2 apart, far more than the float32 error of dequantized weights)


def integer_grid(weights: list[np.ndarray], n_channels: int, nmax: int = GRID_NMAX) -> np.ndarray | None:
    """The model's integer weight magnitude per output channel, when the layer's real weights are
    integer multiples of one step per channel (QDQ / QONNX weights dequantized, scaled per channel by
    batch norms, folded pools and the activation's scales): N_c (int64, 0 for an all-zero channel) with
    every weight of channel c = n * max_c / N_c, |n| <= N_c <= ``nmax``. None when the weights are not on
    such a grid (float weights), or a projection has no output-channel axis."""
    if not weights or any(not (np.ndim(w) and np.shape(w)[0] == n_channels) for w in weights):
        return None
    out = np.zeros(n_channels, np.int64)
    for c in range(n_channels):  # one channel at a time (no copy of all; a ScaledWeight computes only its row)
        row = np.abs(np.concatenate([np.reshape(w[c], -1) for w in weights]).astype(np.float64))
        a = row[row > 0]
        if a.size == 0:
            continue
        r = a / a.max()
        distinct = np.unique(np.round(r, 9))
        if distinct.size > nmax:  # a grid of N values has at most N distinct magnitudes
            return None
        den = 1
        for v in distinct:
            den = math.lcm(den, Fraction(float(v)).limit_denominator(nmax).denominator)
            if den > nmax:
                return None
        q = r * den
        if np.max(np.abs(q - np.round(q))) > GRID_TOL:
            return None
        out[c] = den
    return out


def signed_bits(magnitude: float) -> int:
    """Signed bits of the largest weight mantissa ``magnitude`` (0 when it rounds below 1)."""
    m = int(np.floor(magnitude + 1e-9))
    return 0 if m < 1 else 1 + m.bit_length()


@dataclass(frozen=True)
class WeightBits:
    """The bits one layer's weights keep (signed, largest mantissa) and what they need: the model's own
    integer weights' bits (``grid``: they are integers) or the target's full width (float weights)."""

    kept: int
    needed: int
    grid: bool

    @property
    def short(self) -> int:
        return max(self.needed - self.kept, 0)


def weight_bits_at(grid: np.ndarray | None, wtop: float, fmt: NumericFormat) -> WeightBits:
    """What a layer's weights keep at the scale whose largest mantissa is ``wtop``: on the model's own
    integer ``grid`` (``integer_grid``) every bit they need when each channel's step still fits, else the
    bits of ``wtop``; float weights keep the bits of ``wtop`` out of the target's full width."""
    if grid is None or not np.any(grid):
        return WeightBits(signed_bits(wtop), fmt.weight_bits, False)
    needed = signed_bits(float(grid.max()))
    held = np.floor(wtop / np.maximum(grid, 1) + 1e-9) >= 1
    return WeightBits(needed if np.all(held | (grid == 0)) else signed_bits(wtop), needed, True)


class WeightPrecisionError(StateOverflowError):
    """A layer's weights would keep fewer bits than the floor at the requested T (``suggestions``: pairs
    (T, bits kept) that work, best first)."""

    def __init__(self, layer: str, timesteps: int, kept: int, needed: int, floor: int, state_bits: int,
                 suggestions: list[tuple[int, int]]):
        self.layer, self.timesteps, self.kept, self.needed = layer, timesteps, kept, needed
        self.floor, self.suggestions = floor, suggestions
        opts = ", ".join(f"--timesteps {t} keeps {b} weight bits" for t, b in suggestions)
        super().__init__(
            f"layer '{layer}': at T={timesteps} the {state_bits}-bit state bound leaves its weights {kept} of the "
            f"{needed} signed bits they need (snnc refuses fewer than {floor}: such weights round to a few levels)"
            + (f"; {opts} (T below the model's L rescales rates: levels theta/T, verify compares rates)" if opts
               else "; no smaller T keeps them either")
            + ", or use a target with a wider state (--profile with [numeric] state_bits)")


def abs_max(a: np.ndarray, axis: int | None = None):
    """max |a| (over ``axis``) without a temporary the size of ``a``: max(max a, -min a), the same
    values as ``np.abs(a).max(axis)`` (a float -0.0 becomes 0.0, as abs gives)."""
    m = np.maximum(a.max(axis=axis), -a.min(axis=axis))
    return m + 0.0 if m.dtype.kind == "f" else m


def weight_bits(projs: list[Projection]) -> int:
    """Signed bits the largest weight mantissa of ``projs`` uses (1 + bit length of max |W|)."""
    m = max((int(abs_max(p.weight)) if p.weight.size else 0 for p in projs), default=0)
    return 1 + m.bit_length()


def layer_weight_precision(net) -> dict[str, float]:
    """Per integerized layer, the precision of its weights in bits: log2(rms(W) / (1/sqrt(12))) for its
    worst incoming projection (W the integer mantissas; the exponent scales weights and rounding step
    alike). Rounding a weight to the integer grid has error of standard deviation 1/sqrt(12), so this is
    log2 of the weights' signal-to-rounding ratio; a layer whose weights mostly round to 0 gets a low or
    negative value (the largest mantissa alone cannot tell such a layer from a healthy 2-bit one)."""
    out: dict[str, float] = {}
    for p in net.projections:
        if isinstance(net.node(p.target), (Population, Readout)):
            w = np.asarray(p.weight, np.float64)
            rms = float(np.sqrt(np.mean(w * w))) if w.size else 0.0
            v = float(np.log2(max(rms, 1e-12) * np.sqrt(12.0)))
            out[p.target] = min(out.get(p.target, np.inf), v)
    return out


def layer_weight_bits(net) -> dict[str, int]:
    """Signed bits of the largest weight mantissa per integerized layer (population or readout) of a
    Network: its weight precision. Edges into graded units (fixed weight 1) are not layers."""
    out: dict[str, int] = {}
    for p in net.projections:
        if isinstance(net.node(p.target), (Population, Readout)):
            out[p.target] = max(out.get(p.target, 0), weight_bits([p]))
    return out
