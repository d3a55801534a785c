"""Bit-accurate reference simulator (the oracle) and the integer ANN it must equal."""

from .ann import IntegerANNResult, run_integer_ann
from .ops import SimulationError, apply_projection, fanout
from .simulator import NodeOps, Schedule, SimResult, quantize_inputs, simulate

__all__ = [
    "IntegerANNResult", "run_integer_ann", "SimulationError", "apply_projection", "fanout", "NodeOps",
    "Schedule", "SimResult", "quantize_inputs", "simulate",
]
