"""The exactness plan: which arithmetic each projection and each neuron state runs in (docs/torch_backend.md).

Everything here is integer arithmetic on the IR (no torch): a bound is *proven* from the network
and the largest input value, never measured on spikes.

* A projection's partial sums. For P(s) = A(W, s) << e, every partial sum a BLAS kernel or a direct
  convolution forms is a sum of a subset of the products W_i * s_i, so its magnitude is at most
  ``bound = max_abs_input_weight_sum * source_max`` (sum |W| over what one output reads, times the
  largest |value| the source can send). The power of two 2^e is folded into the float weights: it
  scales every partial sum by 2^e exactly (binary floating point), so the mantissa bound is what
  decides. float32 when ``bound < 2^24``, float64 when ``bound < 2^53``, else int64 (no rounding).
* A population's state (IF and dual-threshold): |v| <= max(|V0|, Theta) + T * max|I + B| in the
  pipelined schedule (the reset only moves v towards [0, Theta)); layerwise the same with V0, Theta
  and B times tau and I over the sources' counts. The state runs in float32 below 2^24, int32 below
  2^31, else int64. Multi-threshold neurons, graded units and readouts always run in int64.

Source values (what ``source_max`` is), by node kind and schedule:

=============================  ============================  =====================================
source                         pipelined (per step)          layerwise (counts)
=============================  ============================  =====================================
input                          max |x_int|                   T * max |x_int|
IF / dual-threshold            1 (spike 0/1 or -1/0/1)       tau_s (count in [0, tau_s])
multi-threshold (n)            2^(n-1) (graded message)      refused (pipelined only)
graded max-pool unit (b)       b (rate) / b * 2^F (diff.)    refused (pipelined only)
=============================  ============================  =====================================

max |x_int| is max(|qmin|, |qmax|) (``Input.quantize`` clips), or larger when the caller passes
already-quantized inputs beyond that range (then their own maximum).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from snnc.ir import (DifferentialCoding, DualThreshold, GradedMaxPool, IFSoftReset, Input, MultiThreshold, Network,
                     Node, Population, Projection)

FLOAT32_EXACT = 2**24   # every integer of magnitude <= 2^24 is a float32; sums strictly below stay exact
FLOAT64_EXACT = 2**53
INT32_LIMIT = 2**31
REFERENCE_LIMIT = 2**52  # the reference simulator refuses sum|W| * max|s| >= 2^52 (values out of any hardware range)


class Arith(str, Enum):
    """The arithmetic a projection or a state runs in."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"
    INT32 = "int32"
    INT64 = "int64"


def projection_arith(bound: int) -> Arith:
    """float32 only when every partial sum is below 2^24, else float64 below 2^53, else int64."""
    if bound < FLOAT32_EXACT:
        return Arith.FLOAT32
    if bound < FLOAT64_EXACT:
        return Arith.FLOAT64
    return Arith.INT64


def state_arith(bound: int) -> Arith:
    """A state's arithmetic: integers below 2^24 are exact in float32, below 2^31 in int32."""
    if bound < FLOAT32_EXACT:
        return Arith.FLOAT32
    if bound < INT32_LIMIT:
        return Arith.INT32
    return Arith.INT64


@dataclass(frozen=True)
class ProjectionPlan:
    """``bound``: the largest |partial sum| of A(W, s) (no 2^e), proven; ``arith`` follows from it.
    ``current_bound``: the largest |P(s)| = bound * 2^e."""

    name: str
    source_max: int
    bound: int
    exponent: int
    arith: Arith

    def __post_init__(self) -> None:
        if self.source_max < 0 or self.bound < 0 or self.exponent < 0:
            raise ValueError(f"projection '{self.name}': bounds and exponent must be >= 0")
        if self.arith is not projection_arith(self.bound):
            raise ValueError(f"projection '{self.name}': arithmetic {self.arith.value} does not follow from bound "
                             f"{self.bound}")

    @property
    def current_bound(self) -> int:
        return self.bound << self.exponent

    @property
    def int8_exact(self) -> bool:
        """An int8 GEMM with int32 accumulation computes A(W, s) exactly when the weights fit int8 (the
        projection's own check): every source value is an int8 and every partial sum is below 2^31."""
        return self.source_max <= 127 and self.bound < INT32_LIMIT

    @property
    def checked_at_run_time(self) -> bool:
        """The bound does not rule out the reference's refusal (sum|W| * max|s| >= 2^52): the run checks
        the values that really arrive, as the reference does."""
        return self.bound >= REFERENCE_LIMIT


@dataclass(frozen=True)
class StatePlan:
    """A node's state bound (|v| over the run) and the arithmetic its updates run in."""

    name: str
    bound: int
    arith: Arith

    def __post_init__(self) -> None:
        if self.bound < 0:
            raise ValueError(f"node '{self.name}': state bound must be >= 0")


@dataclass(frozen=True)
class ExactnessPlan:
    schedule: str
    projections: dict[str, ProjectionPlan]
    states: dict[str, StatePlan]

    def summary(self) -> dict[str, int]:
        """How many projections run in each arithmetic."""
        out: dict[str, int] = {}
        for p in self.projections.values():
            out[p.arith.value] = out.get(p.arith.value, 0) + 1
        return out


# ---- the largest |value| a source sends, by node kind -------------------------------------------------
def _population_message_max(pop: Population) -> int:
    return MESSAGE_MAX[type(pop.neuron)](pop.neuron)


MESSAGE_MAX: dict[type, Callable[[object], int]] = {
    IFSoftReset: lambda n: 1,
    DualThreshold: lambda n: 1,
    MultiThreshold: lambda n: 2 ** (n.n - 1),
}


def input_max(node: Input, x_max: int | None = None) -> int:
    """max |x_int|: the quantizer's range, or the data's own maximum when it is larger (already-quantized
    inputs are not clipped)."""
    m = max(abs(node.qmin), abs(node.qmax))
    return m if x_max is None else max(m, int(x_max))


def pipelined_source_max(net: Network, node: Node, x_max: dict[str, int]) -> int:
    if isinstance(node, Input):
        return input_max(node, x_max.get(node.name))
    if isinstance(node, GradedMaxPool):
        diff = isinstance(net.coding, DifferentialCoding)
        return node.max_message * (net.coding.one if diff else 1)
    if isinstance(node, Population):
        fn = MESSAGE_MAX.get(type(node.neuron))
        if fn is None:
            raise NotImplementedError(f"population '{node.name}': no message bound for {type(node.neuron).__name__} "
                                      f"(supported: {', '.join(c.__name__ for c in MESSAGE_MAX)})")
        return fn(node.neuron)
    raise NotImplementedError(f"node '{node.name}' ({type(node).__name__}) sends no messages")


def layerwise_source_max(net: Network, node: Node, x_max: dict[str, int]) -> int:
    if isinstance(node, Input):
        return net.timesteps * input_max(node, x_max.get(node.name))
    if isinstance(node, Population):   # IF / dual-threshold counts lie in [0, tau_s]
        return net.steps(node)
    raise NotImplementedError(f"node '{node.name}' ({type(node).__name__}) has no count in the layerwise schedule")


def projection_plan(p: Projection, source_max: int) -> ProjectionPlan:
    bound = int(p.max_abs_input_weight_sum) * max(int(source_max), 1)
    return ProjectionPlan(p.name, int(source_max), bound, int(p.exponent), projection_arith(bound))


def _abs_max(a) -> int:
    return int(np.abs(np.asarray(a, dtype=np.int64)).max(initial=0))


def spike_state_bound(pop: Population, steps: int, scale: int, current_max: int) -> int:
    """|v| of an IF or dual-threshold population over ``steps`` steps with thresholds and V0 times
    ``scale`` and |I_t + B| <= current_max: v only leaves [min(0, V0), max(V0, Theta)) by the current.

    Proof: v <- v + I; a positive spike (v >= Theta) leaves v - Theta >= 0, below v; no spike leaves v <
    Theta; a negative spike (v <= Theta_neg <= -1) leaves v + Theta < Theta. So after t steps
    min(0, V0) - t*a <= v <= max(V0, Theta) + t*a, with a = current_max.
    """
    return scale * max(_abs_max(pop.v0), _abs_max(pop.threshold)) + steps * current_max


def plan_network(net: Network, schedule: str, x_max: dict[str, int] | None = None) -> ExactnessPlan:
    """The exactness plan of ``net`` in ``schedule`` ("pipelined" | "layerwise"); ``x_max``: per input, the
    largest |x_int| of the data when it may exceed the quantizer's range."""
    x_max = dict(x_max or {})
    layerwise = str(getattr(schedule, "value", schedule)) == "layerwise"
    T = net.timesteps
    diff = isinstance(net.coding, DifferentialCoding)
    source_max = layerwise_source_max if layerwise else pipelined_source_max
    projections: dict[str, ProjectionPlan] = {}
    states: dict[str, StatePlan] = {}
    for node in net.ordered_nodes():
        if isinstance(node, Input):
            continue
        incoming = net.incoming(node.name)
        if not isinstance(node, GradedMaxPool):   # a graded unit reads its source's messages, not a projection
            for p in incoming:
                projections[p.name] = projection_plan(p, source_max(net, net.node(p.source), x_max))
        current = sum(projections[p.name].current_bound for p in incoming if p.name in projections)
        if isinstance(node, Population) and type(node.neuron) in (IFSoftReset, DualThreshold) and not diff:
            tau = net.steps(node) if layerwise else T
            bias = _abs_max(node.bias) * (tau if layerwise else 1)
            bound = spike_state_bound(node, tau, tau if layerwise else 1, current + bias)
            states[node.name] = StatePlan(node.name, bound, state_arith(bound))
    return ExactnessPlan("layerwise" if layerwise else "pipelined", projections, states)
