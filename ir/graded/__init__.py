"""snnc.ir.graded -- the graded units of transformers (paper 004 Theorems 4.2 and 4.3), in integers.

``units.py`` says what each unit is (``GradedElementwise`` for GELU / SiLU, ``GradedLayerNorm``,
``GradedSoftmax``, ``GradedMatMul``; registered in ``snnc.ir.NODE_TYPES``), ``functions.py`` what it
computes (``unit_output``, ``FUNCTIONS``), ``dynamics.py`` how it steps in either coding
(``UnitDynamics``), ``arith.py`` the integer primitives (rounded shifts and divisions, an exact integer
square root, table interpolation). docs/ir.md, "Graded units", states the equations. Backends call
these; none re-implements them.
"""

from .arith import bit_length, interpolate, isqrt, round_div, round_shift
from .dynamics import UnitDynamics, reciprocal
from .functions import FUNCTIONS, GradedRangeError, unit_output
from .units import (LIMIT, UNIT_TYPES, GradedElementwise, GradedFunctionUnit, GradedLayerNorm, GradedMatMul,
                    GradedSoftmax)

__all__ = [
    "bit_length", "interpolate", "isqrt", "round_div", "round_shift", "UnitDynamics", "reciprocal",
    "FUNCTIONS", "GradedRangeError", "unit_output", "LIMIT", "UNIT_TYPES", "GradedElementwise",
    "GradedFunctionUnit", "GradedLayerNorm", "GradedMatMul", "GradedSoftmax",
]
