"""What the lowering hands to the integerizer: the network in real arithmetic, layer by layer.

``LoweredGraph`` is the lowering stage's record: the input node, then in graph order one plan item
per nonlinear layer, then the readout. A plan item is either a layer whose integers the integerizer
chooses (``QuantizedPopulation``, ``MultiThresholdPopulation``: real weights in level units, a
``RealLayer``) or nodes whose integers the lowering fixed itself (``FixedNodes``: the populations of
a max-pool tournament, a graded unit and its edge). ``Origin`` says where a layer came from in the
ONNX model, for its ``LayerRecord``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np

from snnc.ir import Input, MultiThreshold, NeuronModel, Node, Projection

from ..metadata import Conversion, LayerRecord


#: a layer's real weight with this many entries or more is scaled lazily (``ScaledWeight``)
LAZY_MIN_WEIGHTS = 1 << 24


@dataclass(frozen=True, eq=False)
class ScaledWeight:
    """A real weight ``factor * base`` in float64, computed by rows when read instead of held whole.

    A folded ImageNet classifier's weight is 4096 x 100352: an eager product would be another 3 GiB
    next to the float graph's weight and the integers. Reading ``w[rows]`` gives exactly what the
    eager product's rows are (numpy multiplies elementwise: ``np.multiply(factor, base[rows])`` in
    float64, the float graph's float64 or exactly-float32 values widened first). ``np.asarray(w)``
    builds the whole product (correct, for the small readers that need it); the integerizer's readers
    take rows (``w[a:b]``) or the statistics below, which need no product at all.
    """

    base: np.ndarray
    factor: float

    def __post_init__(self) -> None:
        if self.base.dtype.kind != "f" or self.base.ndim < 1:
            raise ValueError(f"ScaledWeight needs a float array with rows, got {self.base.dtype} {self.base.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        return self.base.shape

    @property
    def ndim(self) -> int:
        return self.base.ndim

    @property
    def size(self) -> int:
        return self.base.size

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float64)

    def __len__(self) -> int:
        return self.base.shape[0]

    def __getitem__(self, idx) -> np.ndarray:
        return np.multiply(self.factor, self.base[idx], dtype=np.float64)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        full = self[...]
        return full if dtype is None else full.astype(dtype)

    def row_abs_max(self) -> np.ndarray:
        """max |factor * base| per row (over the trailing axes), in float64, without forming the
        product: a correctly rounded product is monotone in each factor, so the largest |f * w| of a
        row is |f| times its largest |w|, rounded once (the same float the product's max would be)."""
        rows = self.base.reshape(self.base.shape[0], -1)
        top = np.maximum(rows.max(axis=1), -rows.min(axis=1)).astype(np.float64)
        return np.multiply(abs(float(self.factor)), top) + 0.0

    def value_range(self) -> tuple[float, float]:
        """(max, min) of ``factor * base`` without forming it (monotone rounding, as ``row_abs_max``;
        a NaN anywhere gives NaN, as the product's max would)."""
        hi, lo = float(self.base.max()), float(self.base.min())
        f = float(self.factor)
        a, b = f * hi, f * lo
        return (a, b) if f >= 0 else (b, a)


def scaled_weight(factor, w: np.ndarray):
    """``factor * w``: the eager product for a small weight (as the lowering always computed it), a
    ``ScaledWeight`` for one of ``LAZY_MIN_WEIGHTS`` entries or more (the same values, read by rows)."""
    if np.ndim(w) >= 1 and np.size(w) >= LAZY_MIN_WEIGHTS and np.asarray(w).dtype.kind == "f":
        return ScaledWeight(w, factor)
    return factor * w


@dataclass
class RealLayer:
    """A layer in real arithmetic, in level units of its sources' counts.

    ``weights``: per incoming projection, real weights shaped like the IR projection's weight
    (``make_projection[i](int weight, exponent)`` builds the IR projection); a large one is a
    ``ScaledWeight`` (read it by rows).
    """

    name: str
    shape: tuple[int, ...]
    weights: list[np.ndarray]
    make_projection: list[Callable[[np.ndarray, int], Projection]]
    bias: np.ndarray  # b' per channel (levels), or per output for readout (real units)

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.make_projection):
            raise ValueError(f"layer '{self.name}': {len(self.weights)} weights for {len(self.make_projection)} projections")


@dataclass(frozen=True)
class Origin:
    """Where a layer came from in the ONNX model: ``onnx_linear`` (the first linear op feeding it, or
    its pooling op), the ``activation`` it replaced, the ANN's MACs feeding it; ``onnx_linears`` and
    ``sources`` are set where its record lists them (a layer reading several linear ops or sources)."""

    onnx_linear: str | None
    activation: str | None
    ann_macs: int
    onnx_linears: list[str] | None = None
    sources: list[str] | None = None


@dataclass
class QuantizedPopulation:
    """A quantized clip activation y = gamma*clip(Q(alpha*x + beta), 0, L) as a population of
    ``neuron`` (IF or dual-threshold): ``mode``/``beta`` the quantizer, ``levels`` L, ``lam`` lambda;
    ``steps`` its own layerwise steps (mixed levels: its L; else None)."""

    layer: RealLayer
    mode: str
    beta: float
    levels: int
    lam: float
    quantizer: str
    neuron: NeuronModel
    v0_mode: str
    steps: int | None
    origin: Origin


@dataclass
class MultiThresholdPopulation:
    """A plain ReLU as a population of multi-threshold neurons with calibrated threshold(s)
    ``theta`` (one per layer, or one per output channel when ``per_channel``)."""

    layer: RealLayer
    neuron: MultiThreshold
    theta: np.ndarray
    per_channel: bool
    origin: Origin


@dataclass
class FixedNodes:
    """Nodes whose integers the lowering fixed (max-pool tournaments, graded units), their projections
    and their records, in network order."""

    nodes: list[Node]
    projections: list[Projection]
    records: list[LayerRecord]


PlanItem = Union[QuantizedPopulation, MultiThresholdPopulation, FixedNodes]


@dataclass
class ReadoutPlan:
    """The network's output layer: one scale for every output (argmax is kept); ``levels`` is the L
    its sources' counts are worth (1 for training-free sources, whose messages carry their value)."""

    layer: RealLayer
    levels: int
    origin: Origin


@dataclass
class LoweredGraph:
    """The lowering stage's output: the whole network in real arithmetic (see the module docstring).

    ``timesteps`` is the network's T; ``levels`` the matched ANN's L (None: training-free);
    ``mixed_levels`` each activation's L when they differ."""

    conversion: Conversion
    input: Input
    items: list[PlanItem]
    readout: ReadoutPlan
    timesteps: int
    levels: int | None
    mixed_levels: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {self.timesteps}")
