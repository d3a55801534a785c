"""A cheap, rigorous refusal of weight scales before their weights are rounded (the integerize stage's
scale search, ``integerize._fit_scales``; issue 16: VGG-16 at 224x224 rounded its 4096 x 100352 fc1
once per candidate scale, eight times).

The search tries scales finest first and keeps the first whose state bound (analysis/bounds.py) fits.
A candidate the bound refuses need not be rounded when a *lower* bound on its state bound, computed
from per-row statistics of the real weights gathered once, already exceeds the state width: the
search then takes the same scale as without the screen, and rounds its weights once.

The lower bound holds for the case it is written for, checked on the first candidate's exact build
(``DenseScreen.applies``): an IF (soft reset) population in rate coding, every source a population
sending 0/1 spikes over the network's T (no mixed levels), every incoming projection ``Dense``
(its signed sums are row sums). For such a node the rule (bounds.py ``_spiking_rate``) gives

    worst >= layerwise = max_i T |V0_i| + T^2 max(|hi_i + B_i|, |lo_i + B_i|),   worst >= T max Theta

with hi_i = sum over projections of 2^e sum_j max(W_ij, 0) and lo_i the same over negative weights.
W_ij = clip(round(w_ij Theta_i / 2^e)); where the row cannot reach the clip (Theta_i max_j |w_ij| / 2^e
< the largest mantissa + 1/2), |round(x)| >= |x| - 1/2 gives

    2^e sum_j max(W_ij, 0) >= Theta_i P_i - 2^(e-1) n+_i      (P_i: sum of the positive w_ij, n+_i: their count)

and alike for the negative weights; float rounding of P_i and of the products is covered by a relative
margin (``REL_MARGIN``). Rows that could clip contribute the trivial bound 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snnc.ir import Dense, IFSoftReset, Node, Population, Projection, RateCoding, weight_dtype

from .analysis.envelopes import value_range

REL_MARGIN = 1e-6        # relative error allowed for float sums/products (n * 2^-53 is far below for n < 1e9)
ROWS_PER_BLOCK = 1 << 19  # weights read per block while gathering the statistics (bounds the temporaries)
MAX_FAN_IN = 1 << 30
SCREEN_MIN_WEIGHTS = 1 << 22  # a layer with this many real weights has its scales screened before rounding


@dataclass(frozen=True)
class DenseScreen:
    """Per output row of a dense layer's real weights (one entry per incoming projection): the sum and
    count of its positive weights, of its negative weights (magnitudes) and its largest |w|."""

    pos_sum: tuple[np.ndarray, ...]
    pos_count: tuple[np.ndarray, ...]
    neg_sum: tuple[np.ndarray, ...]
    neg_count: tuple[np.ndarray, ...]
    row_max: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        n = len(self.pos_sum)
        if not n or any(len(f) != n for f in (self.pos_count, self.neg_sum, self.neg_count, self.row_max)):
            raise ValueError("DenseScreen: one entry per projection in every field")
        rows = {a.shape for f in (self.pos_sum, self.pos_count, self.neg_sum, self.neg_count, self.row_max)
                for a in f}
        if len(rows) != 1 or len(next(iter(rows))) != 1:
            raise ValueError(f"DenseScreen: every field must be one vector per projection, of one length; got {rows}")

    @classmethod
    def of(cls, weights: list[np.ndarray]) -> DenseScreen | None:
        """The statistics of 2-D real weights (rows: output neurons), read by blocks of rows; None when
        a weight is not 2-D, the projections disagree on the rows, or a fan-in is out of range."""
        if not weights or any(np.ndim(w) != 2 for w in weights) or len({np.shape(w)[0] for w in weights}) != 1:
            return None
        if any(np.shape(w)[1] >= MAX_FAN_IN for w in weights):
            return None
        fields: list[list[np.ndarray]] = [[], [], [], [], []]
        for w in weights:
            n_out, n_in = w.shape
            ps, ns, rm = (np.zeros(n_out, np.float64) for _ in range(3))
            pc, nc = np.zeros(n_out, np.int64), np.zeros(n_out, np.int64)
            step = max(1, ROWS_PER_BLOCK // max(1, n_in))
            for a in range(0, n_out, step):
                block = np.asarray(w[a:a + step], np.float64)
                pos = np.maximum(block, 0.0)
                ps[a:a + step] = pos.sum(axis=1)
                pc[a:a + step] = np.count_nonzero(pos, axis=1)
                rm[a:a + step] = pos.max(axis=1, initial=0.0)
                np.minimum(block, 0.0, out=pos)
                ns[a:a + step] = -pos.sum(axis=1)
                nc[a:a + step] = np.count_nonzero(pos, axis=1)
                rm[a:a + step] = np.maximum(rm[a:a + step], -pos.min(axis=1, initial=0.0))
            for f, v in zip(fields, (ps, pc, ns, nc, rm)):
                f.append(v)
        return cls(*(tuple(f) for f in fields))

    def applies(self, target: Node, projs: list[Projection], e: int, sources: dict[str, Node], T: int,
                coding) -> bool:
        """Whether the lower bound is sound for ``target`` fed by ``projs`` (the case named above), built
        at exponent ``e`` from the weights these statistics were gathered from (one projection each)."""
        if len(projs) != len(self.pos_sum) or not (isinstance(target, Population) and type(target.neuron) is IFSoftReset
                and type(coding) is RateCoding and target.timesteps in (None, T)):
            return False
        for p, rows in zip(projs, self.pos_sum):
            src = sources.get(p.source)
            if type(p) is not Dense or not isinstance(src, Population) or src.timesteps not in (None, T):
                return False
            if value_range(src) != (0, 1) or p.weight.shape[0] != target.size or p.weight.shape[0] != rows.size \
                    or p.exponent != e:
                return False
        return True

    def refuses(self, theta: np.ndarray, e: int, bias: np.ndarray, v0: np.ndarray, T: int, weight_max: int,
                state_max: int) -> bool:
        """True when the state bound of the layer at this scale (thresholds ``theta``, exponent ``e``,
        per-step ``bias``, ``v0``, all per row) certainly exceeds ``state_max``; False when it may fit."""
        if e < 0:
            return False
        theta = np.asarray(theta, np.float64).reshape(-1)
        rows = self.pos_sum[0].shape[0]
        if theta.size == 1:
            theta = np.full(rows, float(theta[0]))
        b = np.broadcast_to(np.asarray(bias, np.float64).reshape(-1), (rows,))
        v = np.broadcast_to(np.abs(np.asarray(v0, np.float64).reshape(-1)), (rows,))
        if theta.size != rows:
            return False
        if T * float(theta.max(initial=0.0)) > state_max:  # the layerwise threshold T * Theta
            return True
        half = 2.0 ** (e - 1)
        hi = np.zeros(rows)
        lo = np.zeros(rows)
        for ps, pc, ns, nc, rm in zip(self.pos_sum, self.pos_count, self.neg_sum, self.neg_count, self.row_max):
            # no weight of the row can clip: |t| < weight_max + 1/2 rounds to at most weight_max
            free = theta * rm * (1.0 + REL_MARGIN) / 2.0 ** e < weight_max + 0.5
            hi += np.where(free, np.maximum(theta * ps * (1.0 - REL_MARGIN) - half * pc, 0.0), 0.0)
            lo += np.where(free, np.maximum(theta * ns * (1.0 - REL_MARGIN) - half * nc, 0.0), 0.0)
        step = np.maximum(np.maximum(hi + b, lo - b), 0.0)
        lw = T * v + float(T) * T * step
        return float(lw.max(initial=0.0)) * (1.0 - REL_MARGIN) > state_max


@dataclass
class ScaleScreen:
    """The screen of one layer's scale search: its weights' statistics, and whether the bound applies
    (``active``: None until the first candidate has been built exactly and ``learn`` has seen it)."""

    stats: DenseScreen
    sources: dict[str, Node]
    timesteps: int
    coding: object
    weight_max: int
    state_max: int
    active: bool | None = None

    def learn(self, target: Node, projs: list[Projection], e: int) -> None:
        if self.active is None:
            self.active = self.stats.applies(target, projs, e, self.sources, self.timesteps, self.coding)

    def refuses(self, theta: np.ndarray, e: int, bias: np.ndarray, v0: np.ndarray) -> bool:
        return bool(self.active) and self.stats.refuses(theta, e, bias, v0, self.timesteps, self.weight_max,
                                                        self.state_max)


def scale_screen(weights: list[np.ndarray], fmt, timesteps: int, coding, sources: dict[str, Node]) -> ScaleScreen | None:
    """The scale screen of a large float dense layer (``SCREEN_MIN_WEIGHTS`` real weights or more), else
    None (a layer on the model's integer grid keeps its own integers: its caller does not screen it)."""
    if sum(int(np.size(w)) for w in weights) < SCREEN_MIN_WEIGHTS:
        return None
    stats = DenseScreen.of(weights)
    if stats is None:
        return None
    return ScaleScreen(stats, sources, timesteps, coding, fmt.weight_max, fmt.state_max)


# ---- rounding (the scale chosen) ------------------------------------------------------------------------
ROUND_BLOCK = 1 << 19   # weights rounded per block of rows of about this many (elementwise: same values)


def round_weights(w: np.ndarray, scale, e: int, fmt) -> np.ndarray:
    """clip(round(w * scale / 2^e)) as integers (the IR's ``weight_dtype`` of the format's range), by
    blocks of rows (a per-row ``scale`` sliced alike), so that no float temporary is the size of a large
    matrix; every element gets the same operations."""
    s = np.asarray(scale)
    per_row = s.ndim > 0 and not (s.ndim == w.ndim and s.shape[0] == 1)
    if w.ndim == 0 or w.size <= ROUND_BLOCK or (per_row and (s.ndim != w.ndim or s.shape[0] != w.shape[0])):
        return round_block(w, scale, e, fmt)
    out = np.empty(w.shape, weight_dtype(fmt.weight_min, fmt.weight_max))
    step = max(1, ROUND_BLOCK // max(1, w[0].size))
    buf = None  # one float buffer for every block (a fresh 32 MB temporary per block costs its page faults)
    for a in range(0, w.shape[0], step):
        sa = scale[a:a + step] if per_row else scale
        wa = w[a:a + step]  # a view of an ndarray; a ScaledWeight's rows computed once
        dt = np.multiply(wa[:1], sa[:1] if per_row else sa).dtype  # numpy's own promotion, on one row
        if dt.kind != "f":
            out[a:a + step] = round_block(wa, sa, e, fmt)
            continue
        shape = np.broadcast_shapes(wa.shape, np.shape(sa))
        n = int(np.prod(shape))
        if buf is None or buf.dtype != dt or buf.size < n:
            buf = np.empty(n, dt)
        t = buf[:n].reshape(shape)
        np.multiply(wa, sa, out=t)  # w * scale in numpy's own result type, as round_block does
        t /= 2**e
        np.round(t, out=t)
        np.clip(t, fmt.weight_min, fmt.weight_max, out=t)
        out[a:a + step] = t  # the same cast as round_block's astype (the values are integers in range)
    return out


def round_block(w: np.ndarray, scale, e: int, fmt) -> np.ndarray:
    """clip(round(w * scale / 2^e)) as integers: the same operations in the same order and dtypes, done in
    place in the product's buffer (no further temporaries the size of the weights)."""
    t = np.asarray(w * scale)  # numpy's own promotion, as before (a float32 layer times a Python int stays float32)
    dt = weight_dtype(fmt.weight_min, fmt.weight_max)
    if t.dtype.kind != "f":
        return np.clip(np.round(t / 2**e), fmt.weight_min, fmt.weight_max).astype(dt)
    t /= 2**e
    np.round(t, out=t)
    np.clip(t, fmt.weight_min, fmt.weight_max, out=t)
    return t.astype(dt)
