"""What a lowering front is, and the state its layer kinds share while one graph is lowered.

A *front* turns one kind of float model into plan items (``plan.py``): the quantized front (clip
activations -> IF / dual-threshold populations), the training-free front (plain ReLUs -> multi-
threshold populations, max pools -> graded units). It is a :class:`Front`: a ``prepare`` step that
checks the graph and decides T and L, and ``layers``, the registry of its nonlinear layer kinds keyed
by the float graph's op type. The driver (``driver.py``) walks the graph once and hands every op whose
type is registered to its :data:`LayerLowering`; everything between them is linear and becomes the
layers' projections (``affine.py``). A new nonlinear layer kind is one function and one registry
entry (docs/architecture.md, "How to add a nonlinear layer kind").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from snnc.ir import IFSoftReset, NeuronModel

from ..frontend.float_graph import FGraph, Op
from ..metadata import Conversion
from .affine import Expressions, Refusal
from .plan import Origin, PlanItem


@dataclass(frozen=True)
class LoweringOptions:
    """What the lowering takes from the compile configuration and the target.

    ``input_bits``: the target's input width; ``timesteps``: T (None: T = L); ``input_range``: the
    float input range (None: the model's own input quantizer, else 0..1); ``neuron``: the neuron model
    of the quantized front's populations and the training-free front's multi-threshold model;
    ``v0_mode``: auto | zero | half | full; ``relu_thresholds``: calibrated thresholds per ReLU
    (training-free); ``macs``: the ANN's MACs per ONNX op, for the layer records.
    """

    input_bits: int
    timesteps: int | None = None
    input_range: tuple[float, float] | None = None
    neuron: NeuronModel = field(default_factory=IFSoftReset)
    v0_mode: str = "auto"
    relu_thresholds: Mapping[str, np.ndarray] | None = None
    macs: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.input_bits < 1:
            raise ValueError(f"input_bits must be >= 1, got {self.input_bits}")
        if self.timesteps is not None and self.timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {self.timesteps}")


@dataclass(frozen=True)
class FrontSetup:
    """What a front's ``prepare`` decided: T, the matched ANN's L (None: training-free), each
    activation's L when they differ, and the levels one input count is worth (L; 1 training-free)."""

    timesteps: int
    levels: int | None
    mixed_levels: dict[str, int]
    input_levels: int


@dataclass
class LoweringState:
    """What the driver and the layer kinds share while lowering one graph: the expressions over the
    sources found so far, the plan items in graph order, the problems found (every refusal, reported
    all at once at the end) and the counters that name layers (conv1, fc2, mpool1...)."""

    g: FGraph
    options: LoweringOptions
    setup: FrontSetup
    exprs: Expressions
    items: list[PlanItem] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    @property
    def mixed(self) -> bool:
        return bool(self.setup.mixed_levels)

    def fresh(self, kind: str) -> str:
        """The next name of a layer kind: conv1, conv2, ..."""
        self.counters[kind] = self.counters.get(kind, 0) + 1
        return f"{kind}{self.counters[kind]}"

    def refuse(self, name: str, err: Refusal) -> None:
        self.exprs.refuse(name, err, self.problems)

    def origin(self, linears: list[str], activation: str | None, onnx_linears: list[str] | None = None,
               sources: list[str] | None = None) -> Origin:
        """The layer's ``Origin``; its ANN MACs are those of the linear ops it reads (its pooling op)."""
        ops = onnx_linears or [linears[0] if linears else None]
        macs = int(sum(self.options.macs.get(op, 0) for op in ops if op is not None))
        return Origin(linears[0] if linears else None, activation, macs, onnx_linears, sources)


#: lowers one nonlinear op: appends its plan item(s) to ``state.items`` and registers its output as a
#: source in ``state.exprs.sources``, or records a refusal with ``state.refuse``
LayerLowering = Callable[[Op, LoweringState], None]


@dataclass(frozen=True)
class Front:
    """One lowering front: the conversion it performs, its graph checks and T/L decision, its
    registry of nonlinear layer kinds, and how its readout is recorded."""

    conversion: Conversion
    prepare: Callable[[FGraph, LoweringOptions], FrontSetup]
    layers: Mapping[type[Op], LayerLowering]
    readout_levels: Callable[[FrontSetup], int]
    readout_lists_joins: bool = True  # the readout's record lists its linear ops and sources when it joins several
    expressions: Callable[[FGraph], Expressions] = Expressions  # the affine expressions its layers read

    def layer_for(self, op: Op) -> LayerLowering | None:
        """The registered lowering of ``op``'s type (or of its nearest registered base class)."""
        for cls in type(op).__mro__:
            fn = self.layers.get(cls)
            if fn is not None:
                return fn
        return None
