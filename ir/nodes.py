"""Spiking graph IR: small typed dataclasses, validated on construction.

What a node *is* lives here; how a backend runs it lives in ``snnc.backends``. The integer
semantics every backend must implement are stated as equations in ``docs/ir.md``.

Node kinds
- ``Input``: integer input x_int (one value per element, held constant over the T steps).
- ``Population``: integrate-and-fire neurons with integer threshold, initial potential and bias.
- ``Readout``: a non-spiking accumulator (the network's output layer).
- projections ``Dense``, ``Conv2d``, ``SumPool2d``: integer synaptic maps from a source node to a
  target node, ``weight`` mantissas times ``2**exponent``.

Neuron models are separate small dataclasses (``IFSoftReset``, ``DualThreshold``,
``MultiThreshold``) so that a new model adds a class, not a string case.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np

from .errors import IRValidationError

INT_DTYPE = np.int64


def _as_int_array(node: str, name: str, value, allow_shapes) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise IRValidationError(node, f"{name} contains NaN or Inf")
        if not np.all(arr == np.round(arr)):
            raise IRValidationError(node, f"{name} must be integer-valued, got non-integers")
    elif arr.dtype.kind not in "iub":
        raise IRValidationError(node, f"{name} must be an integer array, got dtype {arr.dtype}")
    arr = arr.astype(INT_DTYPE)
    if allow_shapes is not None and arr.shape not in allow_shapes:
        raise IRValidationError(
            node, f"{name} has shape {arr.shape}; expected one of {sorted(allow_shapes)}"
        )
    return arr


def _check_name(kind: str, name: str) -> None:
    if not isinstance(name, str) or not name:
        raise IRValidationError(str(name), f"{kind} needs a non-empty string name")


def _check_shape(node: str, shape) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if not shape or any(s <= 0 for s in shape):
        raise IRValidationError(node, f"shape must be a non-empty tuple of positive ints, got {shape}")
    return shape


def _per_channel_shapes(shape: tuple[int, ...]) -> set[tuple[int, ...]]:
    """A per-node parameter is a scalar (per layer) or one value per channel (axis 0)."""
    return {(), (shape[0],)}


# --------------------------------------------------------------------------------------------
# Neuron models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeuronModel:
    """Base of neuron models. Subclasses are registered by class name for serialization."""

    kind: ClassVar[str] = "abstract"


@dataclass(frozen=True)
class IFSoftReset(NeuronModel):
    """Integrate-and-fire, no leak, spike when v >= threshold, reset by subtraction.

    At most one spike per timestep (docs/ir.md, "Population").
    """

    kind: ClassVar[str] = "if_soft_reset"


@dataclass(frozen=True)
class DualThreshold(NeuronModel):
    """Paper 000's dual-threshold neuron (Eq. 4-5) in integers, soft reset both ways.

    Per step, after integrating: a positive spike (+1) when v >= Theta (v -= Theta); otherwise a
    negative spike (-1) when v <= Theta_neg and the neuron's net count so far is >= 1 (v += Theta).
    Theta_neg = -ceil(Theta / neg_divisor) is the integer form of the paper's theta' = -theta/1000:
    the smallest integer at or below -theta/neg_divisor's ceiling, so always <= -1 (docs/ir.md).
    Net counts stay in [0, T]; spikes carry their sign to the next layer.
    """

    kind: ClassVar[str] = "dual_threshold"
    neg_divisor: int = 1000

    def __post_init__(self) -> None:
        if isinstance(self.neg_divisor, bool) or not isinstance(self.neg_divisor, (int, np.integer)):
            raise IRValidationError("DualThreshold", f"neg_divisor must be an int >= 1, got {self.neg_divisor!r}")
        if self.neg_divisor < 1:
            raise IRValidationError("DualThreshold", f"neg_divisor must be >= 1, got {self.neg_divisor}")
        object.__setattr__(self, "neg_divisor", int(self.neg_divisor))

    def negative_threshold(self, threshold: np.ndarray) -> np.ndarray:
        """Theta_neg = -ceil(Theta / neg_divisor), integer arithmetic only (Theta > 0)."""
        th = np.asarray(threshold, dtype=INT_DTYPE)
        return -((th + self.neg_divisor - 1) // self.neg_divisor)


@dataclass(frozen=True)
class MultiThreshold(NeuronModel):
    """Paper 004's multi-threshold neuron (Eq. 1-6, App. J) with an optional ReLU on its input.

    Thresholds Theta, Theta/2, ..., Theta/2^(n-1) and their negatives; per step it emits at most one
    of them (or nothing): the candidate in {0, +-Theta/2^(i-1)} nearest to the membrane potential,
    halves rounded away from zero. A spike is sent as the graded message +-2^(n-i) (the value in
    units of the finest threshold Theta/2^(n-1)), so Theta must be a multiple of 2^(n-1).
    ``relu``: the neuron encodes max(encoded input, 0) (a converted ReLU layer); else the identity.
    Its dynamics depend on the network's coding (rate or differential; docs/ir.md).
    """

    kind: ClassVar[str] = "multi_threshold"
    n: int = 1
    relu: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or not 1 <= self.n <= 16:
            raise IRValidationError("MultiThreshold", f"n (thresholds per sign) must be an int in 1..16, got {self.n!r}")
        if not isinstance(self.relu, (bool, np.bool_)):
            raise IRValidationError("MultiThreshold", f"relu must be a bool, got {self.relu!r}")
        object.__setattr__(self, "n", int(self.n))
        object.__setattr__(self, "relu", bool(self.relu))

    @property
    def unit_divisor(self) -> int:
        """Theta / (finest threshold): messages are counted in units of Theta / 2^(n-1)."""
        return 2 ** (self.n - 1)

    def check_population(self, pop: "Population") -> None:
        if np.any(pop.threshold % self.unit_divisor):
            raise IRValidationError(
                pop.name, f"multi-threshold neurons with n={self.n} need thresholds that are multiples of "
                f"2^(n-1) = {self.unit_divisor}, so that every threshold Theta/2^(i-1) is an integer")


NEURON_MODELS: dict[str, type[NeuronModel]] = {
    "IFSoftReset": IFSoftReset, "DualThreshold": DualThreshold, "MultiThreshold": MultiThreshold,
}


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------


@dataclass
class Node:
    """Base of the IR's nodes (things that hold state or values)."""

    name: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        self.shape = _check_shape(self.name, self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Input(Node):
    """Network input. x_int = clip(round(x / scale) + zero_point, qmin, qmax), round half up
    (floor(v + 1/2)) or half to even (``rounding`` = "half_even": the model's own ONNX
    QuantizeLinear on its input, kept exactly).

    The integer x_int is delivered to the first layer as a constant current every timestep
    (docs/ir.md, "Input"), so over T steps it contributes like a source of count T * x_int.
    """

    scale: float = 1.0
    zero_point: int = 0
    qmin: int = 0
    qmax: int = 255
    rounding: str = "half_up"

    ROUNDINGS: ClassVar[tuple[str, ...]] = ("half_up", "half_even")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.rounding not in self.ROUNDINGS:
            raise IRValidationError(self.name, f"rounding must be one of {self.ROUNDINGS}, got {self.rounding!r}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise IRValidationError(self.name, f"input scale must be finite and > 0, got {self.scale}")
        self.scale = float(self.scale)
        self.zero_point, self.qmin, self.qmax = int(self.zero_point), int(self.qmin), int(self.qmax)
        if self.qmin >= self.qmax:
            raise IRValidationError(self.name, f"qmin {self.qmin} must be < qmax {self.qmax}")
        if self.zero_point != 0:
            raise IRValidationError(
                self.name, "zero_point must be 0 (an offset input is folded into the first layer's bias)"
            )

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Float input (batch, *shape) -> integer x_int; half up is floor(v + 1/2), half even np.rint."""
        v = np.asarray(x, dtype=np.float64) / self.scale
        q = (np.rint(v) if self.rounding == "half_even" else np.floor(v + 0.5)) + self.zero_point
        return np.clip(q, self.qmin, self.qmax).astype(INT_DTYPE)


@dataclass
class Population(Node):
    """A layer of spiking neurons.

    ``threshold``, ``v0`` and ``bias`` are integers, each a scalar (per layer) or one value per
    channel (axis 0 of ``shape``). ``bias`` is the per-timestep constant current.
    ``levels`` is L, the most spikes the matched ANN activation can count (clip(.., 0, L)).
    ``real_threshold`` is the threshold in the float ANN's units (lambda, for reports).
    ``timesteps``: how many steps this population integrates in the layerwise schedule (its own
    tau_p; None: the network's T). Set by the compiler only for networks whose layers have different
    quantization levels L (each layer runs T = its L, docs/ir.md "Mixed levels"); such a network runs
    only in the layerwise schedule.
    """

    neuron: NeuronModel = field(default_factory=IFSoftReset)
    threshold: np.ndarray = field(default_factory=lambda: np.array(1))
    v0: np.ndarray = field(default_factory=lambda: np.array(0))
    bias: np.ndarray = field(default_factory=lambda: np.array(0))
    levels: int = 1
    real_threshold: np.ndarray = field(default_factory=lambda: np.array(1.0))
    timesteps: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.timesteps is not None:
            if isinstance(self.timesteps, bool) or int(self.timesteps) != self.timesteps or self.timesteps < 1:
                raise IRValidationError(self.name, f"timesteps must be None or an int >= 1, got {self.timesteps!r}")
            self.timesteps = int(self.timesteps)
        if not isinstance(self.neuron, NeuronModel) or type(self.neuron) is NeuronModel:
            raise IRValidationError(
                self.name, f"neuron must be one of {sorted(NEURON_MODELS)}, got {self.neuron!r}"
            )
        shapes = _per_channel_shapes(self.shape)
        self.threshold = _as_int_array(self.name, "threshold", self.threshold, shapes)
        self.v0 = _as_int_array(self.name, "v0", self.v0, shapes)
        self.bias = _as_int_array(self.name, "bias", self.bias, shapes)
        if np.any(self.threshold <= 0):
            raise IRValidationError(self.name, "threshold must be > 0 for every neuron")
        self.levels = int(self.levels)
        if self.levels < 1:
            raise IRValidationError(self.name, f"levels (L) must be >= 1, got {self.levels}")
        rt = np.asarray(self.real_threshold, dtype=np.float64)
        if rt.shape not in shapes or not np.all(np.isfinite(rt)) or np.any(rt <= 0):
            raise IRValidationError(self.name, "real_threshold must be finite, > 0, scalar or per channel")
        self.real_threshold = rt
        check = getattr(self.neuron, "check_population", None)
        if check is not None:
            check(self)


@dataclass
class Readout(Node):
    """Non-spiking output layer: accumulates its input current; never spikes.

    ``v0`` is the accumulator's initial value, ``bias`` its per-step constant current (integers,
    scalar or per output channel). The float ANN output is approximated by value * ``scale``.
    """

    v0: np.ndarray = field(default_factory=lambda: np.array(0))
    bias: np.ndarray = field(default_factory=lambda: np.array(0))
    scale: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        shapes = _per_channel_shapes(self.shape)
        self.v0 = _as_int_array(self.name, "v0", self.v0, shapes)
        self.bias = _as_int_array(self.name, "bias", self.bias, shapes)
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise IRValidationError(self.name, f"readout scale must be finite and > 0, got {self.scale}")
        self.scale = float(self.scale)


NODE_TYPES: dict[str, type[Node]] = {"Input": Input, "Population": Population, "Readout": Readout}


# --------------------------------------------------------------------------------------------
# Projections
# --------------------------------------------------------------------------------------------


@dataclass
class Projection:
    """Base of synaptic projections: current = (linear_map(weight, source_values)) << exponent.

    ``in_shape``/``out_shape`` are the shapes the map reads and writes; the network checks them
    against the source and target nodes (a flattening dense projection reads a (C, H, W) source).
    """

    name: str
    source: str
    target: str
    weight: np.ndarray
    exponent: int = 0
    in_shape: tuple[int, ...] = ()
    out_shape: tuple[int, ...] = ()

    weight_ndim: ClassVar[int] = 0

    def __post_init__(self) -> None:
        _check_name(type(self).__name__, self.name)
        for attr in ("source", "target"):
            if not isinstance(getattr(self, attr), str) or not getattr(self, attr):
                raise IRValidationError(self.name, f"{attr} must name a node")
        self.weight = _as_int_array(self.name, "weight", self.weight, None)
        if self.weight.ndim != self.weight_ndim:
            raise IRValidationError(
                self.name, f"weight must have {self.weight_ndim} dims, got shape {self.weight.shape}"
            )
        self.exponent = int(self.exponent)
        if self.exponent < 0:
            raise IRValidationError(self.name, f"exponent must be >= 0 (a left shift), got {self.exponent}")
        self.in_shape = _check_shape(self.name, self.in_shape)
        self.out_shape = _check_shape(self.name, self.out_shape)
        self._check_geometry()

    def _check_geometry(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def num_synapses(self) -> int:
        """Synapses with a non-zero weight (what a dense table would store is larger)."""
        raise NotImplementedError

    @cached_property
    def max_abs_input_weight_sum(self) -> int:
        """max over outputs of sum |w| over what one output reads: |current| <= this * max|source|."""
        w = np.abs(self.weight)
        if w.ndim == 0:  # sum-pool: one weight per window element
            return int(w) * int(np.prod(getattr(self, "kernel", (1, 1))))
        return int(w.reshape(w.shape[0], -1).sum(axis=1).max()) if w.size else 0


@dataclass
class Dense(Projection):
    """out[o] = sum_i weight[o, i] * flatten(source)[i] (C order)."""

    weight_ndim: ClassVar[int] = 2

    def _check_geometry(self) -> None:
        n_out, n_in = self.weight.shape
        if int(np.prod(self.in_shape)) != n_in:
            raise IRValidationError(
                self.name, f"weight has {n_in} inputs but in_shape {self.in_shape} has {int(np.prod(self.in_shape))}"
            )
        if int(np.prod(self.out_shape)) != n_out:
            raise IRValidationError(
                self.name, f"weight has {n_out} outputs but out_shape {self.out_shape} has {int(np.prod(self.out_shape))}"
            )

    @property
    def num_synapses(self) -> int:
        return int(np.count_nonzero(self.weight))


def conv_output_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int, dilation: int = 1) -> int:
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


@dataclass
class Conv2d(Projection):
    """out[o, y, x] = sum_{c, i, j} weight[o, c, i, j] * pad(source)[g*Cg + c, y*sy + i*dy, x*sx + j*dx].

    ``padding`` is (top, left, bottom, right) zeros; ``groups`` splits channels as in ONNX Conv.
    """

    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    weight_ndim: ClassVar[int] = 4

    def _check_geometry(self) -> None:
        self.stride = tuple(int(s) for s in self.stride)
        self.padding = tuple(int(p) for p in self.padding)
        self.dilation = tuple(int(d) for d in self.dilation)
        self.groups = int(self.groups)
        if len(self.stride) != 2 or min(self.stride) < 1:
            raise IRValidationError(self.name, f"stride must be two ints >= 1, got {self.stride}")
        if len(self.dilation) != 2 or min(self.dilation) < 1:
            raise IRValidationError(self.name, f"dilation must be two ints >= 1, got {self.dilation}")
        if len(self.padding) != 4 or min(self.padding) < 0:
            raise IRValidationError(self.name, f"padding must be 4 ints >= 0 (t, l, b, r), got {self.padding}")
        if len(self.in_shape) != 3 or len(self.out_shape) != 3:
            raise IRValidationError(self.name, "conv2d in_shape and out_shape must be (C, H, W)")
        c_out, c_in_g, kh, kw = self.weight.shape
        c_in, h, w = self.in_shape
        if self.groups < 1 or c_in % self.groups or c_out % self.groups:
            raise IRValidationError(self.name, f"groups={self.groups} must divide in ({c_in}) and out ({c_out}) channels")
        if c_in // self.groups != c_in_g:
            raise IRValidationError(
                self.name, f"weight expects {c_in_g} channels per group, source has {c_in}/{self.groups}"
            )
        oh = conv_output_size(h, kh, self.stride[0], self.padding[0], self.padding[2], self.dilation[0])
        ow = conv_output_size(w, kw, self.stride[1], self.padding[1], self.padding[3], self.dilation[1])
        if (c_out, oh, ow) != tuple(self.out_shape):
            raise IRValidationError(
                self.name, f"conv geometry gives output {(c_out, oh, ow)}, out_shape is {self.out_shape}"
            )

    @property
    def num_synapses(self) -> int:
        return conv2d_synapses(self)


@dataclass
class SumPool2d(Projection):
    """out[c, y, x] = weight * sum_{i<kh, j<kw} pad(source)[c, y*sy + i, x*sx + j]; weight is a scalar."""

    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    weight_ndim: ClassVar[int] = 0

    def _check_geometry(self) -> None:
        self.kernel = tuple(int(k) for k in self.kernel)
        self.stride = tuple(int(s) for s in self.stride)
        self.padding = tuple(int(p) for p in self.padding)
        if len(self.kernel) != 2 or min(self.kernel) < 1 or len(self.stride) != 2 or min(self.stride) < 1:
            raise IRValidationError(self.name, "kernel and stride must be two ints >= 1")
        if len(self.padding) != 4 or min(self.padding) < 0:
            raise IRValidationError(self.name, "padding must be 4 ints >= 0 (t, l, b, r)")
        if len(self.in_shape) != 3:
            raise IRValidationError(self.name, "sum-pool in_shape must be (C, H, W)")
        c, h, w = self.in_shape
        oh = conv_output_size(h, self.kernel[0], self.stride[0], self.padding[0], self.padding[2])
        ow = conv_output_size(w, self.kernel[1], self.stride[1], self.padding[1], self.padding[3])
        if (c, oh, ow) != tuple(self.out_shape):
            raise IRValidationError(self.name, f"pool geometry gives {(c, oh, ow)}, out_shape is {self.out_shape}")

    @property
    def num_synapses(self) -> int:
        return int(np.prod(self.out_shape)) * self.kernel[0] * self.kernel[1] if self.weight != 0 else 0


PROJECTION_TYPES: dict[str, type[Projection]] = {"Dense": Dense, "Conv2d": Conv2d, "SumPool2d": SumPool2d}


def conv2d_synapses(p: Conv2d) -> int:
    """Synapses a conv projection actually uses: non-zero weights at in-bounds input positions."""
    c_out, c_in_g, kh, kw = p.weight.shape
    _, h, w = p.in_shape
    _, oh, ow = p.out_shape

    def valid(n_out, size, k, s, pad, d):
        pos = np.arange(n_out)[:, None] * s + np.arange(k)[None, :] * d - pad
        return ((pos >= 0) & (pos < size)).sum(axis=0)  # per kernel offset: outputs that see real input

    vy = valid(oh, h, kh, p.stride[0], p.padding[0], p.dilation[0])
    vx = valid(ow, w, kw, p.stride[1], p.padding[1], p.dilation[1])
    nz = (p.weight != 0).astype(np.int64)  # (O, Cg, kh, kw)
    return int(np.einsum("ocij,i,j->", nz, vy, vx))


def replace(obj, **changes):
    """dataclasses.replace that re-runs validation (used by passes and tests)."""
    return dataclasses.replace(obj, **changes)


# --------------------------------------------------------------------------------------------
# Graded units (non-spiking nonlinear layers; docs/ir.md, "Graded max-pool unit")
# --------------------------------------------------------------------------------------------


@dataclass
class GradedMaxPool(Node):
    """A graded unit (paper 004 Theorem 4.2; Huang et al.'s graded unit in rate coding) that max-pools
    the *encoded value* of exactly one source over 2-D windows, per channel.

    ``shape`` is the pooled output (C, OH, OW); ``in_shape`` the source's (C, H, W); ``kernel``,
    ``stride`` and ``padding`` (t, l, b, r) as in ``SumPool2d`` (padding never wins: it is -inf, and
    every window must hold at least one real element). ``max_message`` bounds |message| of the
    source per step (2^(n-1) for a multi-threshold source): the unit's own messages obey the same
    bound (rate coding; differential coding: times R_t), see docs/ir.md.

    The unit keeps one running value per *source* element: rate coding S <- S + msg, differential
    coding m <- m + msg * R_t (or + d from a graded source); it sends the increment of the window
    maxima, out_t = max_window(S_t) - max_window(S_{t-1}). These messages are graded values, not
    spikes. The source is wired by exactly one incoming ``SumPool2d`` projection of the same
    geometry with weight 1 and exponent 0 (the edge the network orders nodes by; its window sum is
    *not* used: the unit takes the max); ``graded_edge`` checks it.
    """

    in_shape: tuple[int, ...] = ()
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    max_message: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        self.in_shape = _check_shape(self.name, self.in_shape)
        self.kernel = tuple(int(k) for k in self.kernel)
        self.stride = tuple(int(s) for s in self.stride)
        self.padding = tuple(int(p) for p in self.padding)
        if len(self.kernel) != 2 or min(self.kernel) < 1 or len(self.stride) != 2 or min(self.stride) < 1:
            raise IRValidationError(self.name, f"kernel {self.kernel} and stride {self.stride} must be two ints >= 1")
        if len(self.padding) != 4 or min(self.padding) < 0:
            raise IRValidationError(self.name, f"padding must be 4 ints >= 0 (t, l, b, r), got {self.padding}")
        if len(self.in_shape) != 3 or len(self.shape) != 3:
            raise IRValidationError(self.name, f"graded max-pool needs (C, H, W) in_shape and shape, got "
                                    f"{self.in_shape} -> {self.shape}")
        c, h, w = self.in_shape
        (kh, kw), (sy, sx), (t, l, b, r) = self.kernel, self.stride, self.padding
        oh, ow = conv_output_size(h, kh, sy, t, b), conv_output_size(w, kw, sx, l, r)
        if (c, oh, ow) != self.shape:
            raise IRValidationError(self.name, f"pool geometry gives {(c, oh, ow)}, shape is {self.shape}")
        for n_out, size, k, s, lo in ((oh, h, kh, sy, t), (ow, w, kw, sx, l)):
            first = np.arange(n_out) * s - lo        # window start; it holds a real element iff
            if np.any((first + k - 1 < 0) | (first >= size)):  # [first, first + k) meets [0, size)
                raise IRValidationError(self.name, "a pooling window lies entirely in the padding (its max is -inf)")
        if isinstance(self.max_message, bool) or int(self.max_message) != self.max_message or self.max_message < 1:
            raise IRValidationError(self.name, f"max_message must be an int >= 1, got {self.max_message!r}")
        self.max_message = int(self.max_message)

    def edge_geometry(self) -> dict:
        """The ``SumPool2d`` fields its one incoming edge must have."""
        return dict(weight=1, exponent=0, in_shape=self.in_shape, out_shape=self.shape, kernel=self.kernel,
                    stride=self.stride, padding=self.padding)


NODE_TYPES["GradedMaxPool"] = GradedMaxPool
GRADED_UNITS: tuple[type[Node], ...] = (GradedMaxPool,)


def graded_edge(net, node: GradedMaxPool) -> Projection:
    """The one incoming projection of graded unit ``node`` in network ``net``, checked: a ``SumPool2d``
    with the unit's geometry, weight 1 and exponent 0, from a ``Population`` or another graded unit.
    Raises ``IRValidationError`` naming the unit otherwise."""
    inc = net.incoming(node.name)
    if len(inc) != 1:
        raise IRValidationError(node.name, f"a graded max-pool unit reads exactly one source through one projection; "
                                f"it has {len(inc)} incoming projections {[p.name for p in inc]}")
    p = inc[0]
    want = node.edge_geometry()
    got = dict(weight=int(p.weight) if isinstance(p, SumPool2d) else None, exponent=p.exponent,
               in_shape=tuple(p.in_shape), out_shape=tuple(p.out_shape), kernel=getattr(p, "kernel", None),
               stride=getattr(p, "stride", None), padding=getattr(p, "padding", None))
    if not isinstance(p, SumPool2d) or got != want:
        raise IRValidationError(node.name, f"its incoming projection '{p.name}' must be a SumPool2d with {want}; "
                                f"got {type(p).__name__} with {got}")
    src = net.node(p.source)
    if not isinstance(src, (Population,) + GRADED_UNITS):
        raise IRValidationError(node.name, f"source '{src.name}' ({type(src).__name__}) is not a population: a graded "
                                "max-pool unit pools a population's (or another graded unit's) messages")
    return p
