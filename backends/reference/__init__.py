"""Bit-accurate reference simulator (the oracle) and the integer ANN it must equal."""

from snnc.backends.base import SimulationError

from .ann import IntegerANNResult, run_integer_ann
from .backend import ReferenceBackend
from .simulator import simulate

__all__ = ["IntegerANNResult", "run_integer_ann", "ReferenceBackend", "SimulationError", "simulate"]
