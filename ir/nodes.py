"""Nodes of the spiking graph IR: small typed dataclasses, validated on construction.

What a node *is* lives here; how a backend runs it lives in ``snnc.backends``. The integer
semantics every backend must implement are stated as equations in ``docs/ir.md``.

- ``Input``: integer input x_int (one value per element, held constant over the T steps).
- ``Population``: spiking neurons (a neuron model of ``neurons.py``) with integer threshold,
  initial potential and bias.
- ``Readout``: a non-spiking accumulator (the network's output layer).
- graded units (``GradedUnit`` subclasses: ``GradedMaxPool`` here, the transformer units of
  ``snnc.ir.graded``): non-spiking nonlinear layers that send graded values.

Projections (the synaptic maps between nodes) are in ``projections.py``; ``NODE_TYPES`` registers
every node class by name for the bundle codec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from .errors import IRValidationError
from .neurons import NEURON_MODELS, IFSoftReset, NeuronModel
from .projections import Projection, SumPool2d
from .validation import INT_DTYPE, as_int_array, check_name, check_shape, conv_output_size, per_channel_shapes


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------


@dataclass
class Node:
    """Base of the IR's nodes (things that hold state or values)."""

    name: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        check_name(type(self).__name__, self.name)
        self.shape = check_shape(self.name, self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def input_shape(self, projection: Projection) -> tuple[int, ...]:
        """The shape ``projection`` (one of this node's incoming projections) writes: the node's own
        shape, except for units with several input ports (``snnc.ir.graded.GradedMatMul``)."""
        return self.shape

    def check_wiring(self, net) -> None:
        """Checks that need the whole network (a node's incoming projections); ``Network`` calls it
        once it is built. Nothing to check by default."""


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
        shapes = per_channel_shapes(self.shape)
        self.threshold = as_int_array(self.name, "threshold", self.threshold, shapes)
        self.v0 = as_int_array(self.name, "v0", self.v0, shapes)
        self.bias = as_int_array(self.name, "bias", self.bias, shapes)
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
        shapes = per_channel_shapes(self.shape)
        self.v0 = as_int_array(self.name, "v0", self.v0, shapes)
        self.bias = as_int_array(self.name, "bias", self.bias, shapes)
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise IRValidationError(self.name, f"readout scale must be finite and > 0, got {self.scale}")
        self.scale = float(self.scale)


NODE_TYPES: dict[str, type[Node]] = {"Input": Input, "Population": Population, "Readout": Readout}

# --------------------------------------------------------------------------------------------
# Graded units (non-spiking nonlinear layers; docs/ir.md, "Graded max-pool unit")
# --------------------------------------------------------------------------------------------


@dataclass
class GradedUnit(Node):
    """Base of the graded units: non-spiking nonlinear layers that send graded values (paper 004
    Theorems 4.2 and 4.3; docs/ir.md, "Graded units"). It adds no field: ``GRADED_UNITS`` is this class,
    so every subclass (``GradedMaxPool``, the units of ``snnc.ir.graded``) is a graded unit."""


def register_node_type(cls: type[Node]) -> type[Node]:
    """Register a node class for the bundle codec (``NODE_TYPES``, keyed by class name); used by the
    modules that define node kinds outside this one (``snnc.ir.graded``)."""
    if cls.__name__ in NODE_TYPES and NODE_TYPES[cls.__name__] is not cls:
        raise ValueError(f"node type '{cls.__name__}' is registered twice")
    NODE_TYPES[cls.__name__] = cls
    return cls


@dataclass
class GradedMaxPool(GradedUnit):
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
        self.in_shape = check_shape(self.name, self.in_shape)
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
GRADED_UNITS: tuple[type[Node], ...] = (GradedUnit,)


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
    if not isinstance(src, (Population, GradedMaxPool)):
        raise IRValidationError(node.name, f"source '{src.name}' ({type(src).__name__}) is not a population: a graded "
                                "max-pool unit pools a population's (or another graded unit's) messages")
    return p
