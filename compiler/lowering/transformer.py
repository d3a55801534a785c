"""The transformer's nonlinear layer kinds (paper 004 Theorems 4.2 and 4.3), for the training-free front.

Each LayerNorm, GELU / SiLU, Softmax and MatMul of two activations becomes a graded unit of
``snnc.ir.graded`` (a ``GradedPlan``: its ports' real projections and biases; the integerizer,
``compiler/integerize_units.py``, fixes its integers for the coding's G). Every unit's output scale
is 1 (one unit of its message is worth 2^-G): so its readers' real weights are known here. The values
a linear layer reads -- LayerNorm, GELU / SiLU and attention (A V) outputs, ``tokens.spiking_points``
-- are re-encoded by a population of signed multi-threshold neurons (``MultiThreshold(relu=False)``,
threshold from calibration); the attention scores Q K^T reach the softmax, and the softmax A V, as
graded messages. Token tensors are laid out (features, tokens, 1) (``tokens.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from snnc.ir import GradedElementwise, GradedLayerNorm, GradedMatMul, GradedSoftmax, Projection

from ..frontend.float_graph import Gelu, LayerNorm, MatMul, Op, Reshape, Silu, Softmax, Transpose
from ..metadata import LayerRecord
from .affine import Refusal, RefusedUpstream, Source
from .endpoints import check_finite, linear_ops
from .front import LoweringState
from .plan import MultiThresholdPopulation, RealLayer
from .tokens import TokenExpressions, float_to_ir, ir_shape, spiking_points, view_chain_end

#: the graded unit's output scale: one unit of its message is worth 2^-G (module docstring)
UNIT_OUT_SCALE = 1.0


@dataclass
class PortPlan:
    """One port of a graded unit: its IR shape, its incoming projections (real weight per unit of the
    source's message, already times the source's scale; ``make(int weight, exponent)``) and its real
    bias (the linear layers' biases before it, a full tensor of the port's shape)."""

    port: str
    shape: tuple[int, ...]
    weights: list[np.ndarray]
    make: list[Callable[[np.ndarray, int], Projection]]
    bias: np.ndarray

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.make) or not self.weights:
            raise ValueError(f"port {self.port}: {len(self.weights)} weights for {len(self.make)} projections")
        if self.bias.shape != tuple(self.shape):
            raise ValueError(f"port {self.port}: bias of shape {self.bias.shape} for a port of shape {self.shape}")


@dataclass(frozen=True)
class UnitSpec:
    """What kind of unit a ``GradedPlan`` becomes, with its float parameters: ``kind`` the unit class;
    ``function`` (elementwise), ``gamma`` / ``beta`` / ``eps`` / ``axis`` (LayerNorm, softmax axis),
    the MatMul's views and gather indices."""

    kind: type
    function: str = ""
    axis: int = 0
    gamma: np.ndarray | None = None
    beta: np.ndarray | None = None
    eps: float = 0.0
    a_view: tuple[int, ...] = ()
    b_view: tuple[int, ...] = ()
    a_index: np.ndarray | None = None
    b_index: np.ndarray | None = None
    out_index: np.ndarray | None = None


@dataclass
class GradedPlan:
    """A transformer graded unit in real arithmetic; ``compiler/integerize_units.py`` fixes its integers."""

    name: str
    shape: tuple[int, ...]
    spec: UnitSpec
    ports: list[PortPlan]
    record: LayerRecord

    def __post_init__(self) -> None:
        if [p.port for p in self.ports] != list(self.spec.kind.PORTS):
            raise ValueError(f"unit '{self.name}': ports {[p.port for p in self.ports]}, {self.spec.kind.__name__} "
                             f"has {list(self.spec.kind.PORTS)}")


def _port(state: LoweringState, tensor: str, unit: str, port: str, what: str) -> tuple[PortPlan, list[str]]:
    """The port of ``unit`` reading the expression of ``tensor``; its projections named unit.port."""
    exprs = state.exprs
    e = exprs.expr(tensor)
    exprs.check_usable(e)
    maps = exprs.projections(e, unit)
    ws = [exprs.sources[m.term.source].gamma * m.weight for m in maps]
    check_finite(unit, what, ws, e.bias)

    def named(mk):
        return lambda wi, ex: _renamed(mk(wi, ex), port)
    return PortPlan(port, tuple(e.shape), ws, [named(m.make) for m in maps], np.asarray(e.bias, np.float64)), \
        linear_ops(maps)


def _renamed(p: Projection, port: str) -> Projection:
    return replace(p, name=f"{p.name}.{port}")


def _record(state: LoweringState, name: str, op: Op, linears: list[str], shape, role: str,
            holds: str | None = None) -> LayerRecord:
    """The unit's record; its ``onnx_activation`` is the float tensor whose value it holds (``holds``:
    a MatMul reshaped back to tokens holds the reshaped tensor)."""
    origin = state.origin(linears, op.name)
    return LayerRecord(name, origin.onnx_linear, holds or op.name, None, None, None, 0, list(shape),
                       ann_macs=origin.ann_macs, role=role)


def _unit_source(state: LoweringState, key: str, unit: str, shape, kind) -> None:
    state.exprs.sources[key] = Source(unit, tuple(shape), UNIT_OUT_SCALE, UNIT_OUT_SCALE, kind=kind)


def _spiking(state: LoweringState, op: Op, unit_key: str, tensor: str) -> None:
    """A population of signed multi-threshold neurons re-encoding the unit's value (registered under
    ``tensor``, the name the float graph's readers use)."""
    exprs, options = state.exprs, state.options
    theta = np.asarray(options.relu_thresholds[op.name], np.float64)
    theta = float(theta.max())                     # one threshold per layer (the unit's value is signed)
    if not (np.isfinite(theta) and theta > 0):
        raise Refusal(f"{type(op).__name__} '{op.name}': calibrated threshold {theta} is not a positive number")
    neuron = replace(options.neuron, relu=False)
    name = state.fresh("mt")
    e = exprs.expr(unit_key)
    maps = exprs.projections(e, name)
    ws = [exprs.sources[m.term.source].gamma * m.weight / theta for m in maps]
    layer = RealLayer(name, tuple(e.shape), ws, [m.make for m in maps], np.zeros(e.shape[0]))
    origin = state.origin([], tensor)   # the float tensor whose value the population re-encodes
    state.items.append(MultiThresholdPopulation(layer, neuron, np.asarray(theta), False, origin))
    exprs.sources[tensor] = Source(name, tuple(e.shape), theta / neuron.unit_divisor, theta,
                                   max_message=neuron.unit_divisor)


def _lower(op: Op, state: LoweringState, build: Callable[[str], GradedPlan], kind: type, key: str) -> None:
    """Shared tail: build the plan (refusals recorded by name), register the unit and, where its value
    is read by a linear layer, its multi-threshold population."""
    if not isinstance(state.exprs, TokenExpressions):
        state.refuse(op.name, Refusal(f"node '{op.name}' ({type(op).__name__}): this front has no token expressions"))
        return
    points = spiking_points(state.g)
    try:
        name = state.fresh(key)
        plan = build(name)
        state.items.append(plan)
        if op.name in points:
            unit_key = f"{op.name}/unit"
            _unit_source(state, unit_key, name, plan.shape, kind)
            _spiking(state, op, unit_key, points[op.name])
        else:
            _unit_source(state, op.name, name, plan.shape, kind)
    except Refusal as err:
        state.refuse(op.name, err)
        end = points.get(op.name, op.name)
        if end != op.name:   # the reshaped tensor its readers use is refused with it (reported once)
            state.refuse(end, RefusedUpstream())


def lower_layernorm(op: LayerNorm, state: LoweringState) -> None:
    def build(name):
        port, linears = _port(state, op.input, name, "a", f"LayerNorm '{op.name}'")
        shape = port.shape
        D = shape[0]
        if np.asarray(op.scale).size != D:
            raise Refusal(f"LayerNorm '{op.name}' normalizes {np.asarray(op.scale).size} features, its input has {D}")
        spec = UnitSpec(GradedLayerNorm, axis=0, gamma=np.asarray(op.scale, np.float64).reshape(-1),
                        beta=np.asarray(op.bias, np.float64).reshape(-1), eps=float(op.eps))
        return GradedPlan(name, shape, spec, [port], _record(state, name, op, linears, shape, "graded LayerNorm unit"))
    _lower(op, state, build, GradedLayerNorm, "ln")


def lower_elementwise(op: Op, state: LoweringState) -> None:
    function = "gelu" if isinstance(op, Gelu) else "silu"

    def build(name):
        port, linears = _port(state, op.input, name, "a", f"{function.upper()} '{op.name}'")
        spec = UnitSpec(GradedElementwise, function=function)
        return GradedPlan(name, port.shape, spec, [port],
                          _record(state, name, op, linears, port.shape, f"graded {function.upper()} unit"))
    _lower(op, state, build, GradedElementwise, function)


def lower_softmax(op: Softmax, state: LoweringState) -> None:
    def build(name):
        fshape = state.exprs.float_shape(op.input)
        if len(fshape) == 2:
            raise Refusal(f"Softmax '{op.name}' over a token tensor: only attention scores (heads, queries, keys) "
                          "are supported")
        axis = int(op.axis) - 1 if op.axis > 0 else int(op.axis) % len(fshape)
        port, linears = _port(state, op.input, name, "a", f"Softmax '{op.name}'")
        spec = UnitSpec(GradedSoftmax, axis=axis)
        return GradedPlan(name, port.shape, spec, [port],
                          _record(state, name, op, linears, port.shape, "graded softmax unit"))
    _lower(op, state, build, GradedSoftmax, "softmax")


def _chain_index(state: LoweringState, start: str, end: str) -> np.ndarray:
    """For each float element of ``end`` (a Reshape / Transpose chain from ``start``), the float flat
    index of ``start`` it holds."""
    g = state.g
    idx = np.arange(int(np.prod(state.exprs.float_shape(start)))).reshape(state.exprs.float_shape(start))
    cur = start
    while cur != end:
        op = g.consumers(cur)[0]
        if isinstance(op, Reshape):
            idx = idx.reshape(tuple(op.shape))
        elif isinstance(op, Transpose):
            idx = np.transpose(idx, [p - 1 for p in op.perm[1:]])
        cur = op.name
    return idx.reshape(-1)


def lower_matmul(op: MatMul, state: LoweringState) -> None:
    exprs = state.exprs

    def build(name):
        ports, linears, idx, views = [], [], [], []
        for port, tensor in (("a", op.input), ("b", op.other)):
            base, view = exprs.view_of(tensor)
            plan, lin = _port(state, base, name, port, f"MatMul '{op.name}'")
            ports.append(plan)
            linears += lin
            idx.append(float_to_ir(exprs.float_shape(base))[view])
            views.append(exprs.float_shape(tensor))
        end = view_chain_end(state.g, op.name) if op.name in spiking_points(state.g) else op.name
        shape = ir_shape(exprs.float_shape(end))
        out_index = np.empty(int(np.prod(shape)), np.int64)
        out_index[float_to_ir(exprs.float_shape(end))] = _chain_index(state, op.name, end)
        spec = UnitSpec(GradedMatMul, a_view=views[0], b_view=views[1], a_index=idx[0], b_index=idx[1],
                        out_index=out_index)
        return GradedPlan(name, shape, spec, ports,
                          _record(state, name, op, linears, shape, "graded two-input MatMul unit", end))
    _lower(op, state, build, GradedMatMul, "matmul")


#: the transformer's nonlinear layer kinds (float-graph op type -> lowering), merged into the
#: training-free front's registry
TRANSFORMER_LAYERS = {LayerNorm: lower_layernorm, Gelu: lower_elementwise, Silu: lower_elementwise,
                      Softmax: lower_softmax, MatMul: lower_matmul}


def has_transformer_ops(g) -> bool:
    return any(type(o) in TRANSFORMER_LAYERS for o in g.ops)


__all__ = ["GradedPlan", "PortPlan", "UnitSpec", "TRANSFORMER_LAYERS", "has_transformer_ops", "UNIT_OUT_SCALE"]
