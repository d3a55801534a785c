"""Lowering: a float graph after the passes -> the network in real arithmetic (``LoweredGraph``).

* ``affine.py``: the shared core: affine expressions over sources (``Term``, ``Expr``, ``Source``),
  their IR projections (``Expressions.projections``), typed refusals (``Refusal``).
* ``endpoints.py``: the input node, the readout layer, the checks every layer applies.
* ``front.py``: what a front is (``Front``, ``LoweringOptions``, ``LoweringState``, ``LayerLowering``).
* one module per front or unit kind: ``quantized.py`` (quantized clip activations), ``relu.py``
  (training-free ReLUs), ``graded.py`` (graded max-pool units), ``transformer.py`` (the transformer's
  graded units, over the token expressions of ``tokens.py``); ``registry.py`` keys the fronts by
  conversion, each front keys its nonlinear layer kinds by float-graph op type.
* ``driver.py``: the one driver (``lower_graph``); ``plan.py``: its output, which
  ``compiler/integerize.py`` turns into an integer Network.
"""

from .affine import Expr, Expressions, Refusal, RefusedUpstream, Source, Term, TermMap
from .driver import lower_graph
from .front import Front, FrontSetup, LayerLowering, LoweringOptions, LoweringState
from .plan import (FixedNodes, LoweredGraph, MultiThresholdPopulation, Origin, PlanItem, QuantizedPopulation,
                   ReadoutPlan, RealLayer, ScaledWeight, scaled_weight)
from .quantized import count_maxpool
from .registry import FRONTS, front_for
from .transformer import GradedPlan, PortPlan, UnitSpec

__all__ = [
    "Expr", "Expressions", "Refusal", "RefusedUpstream", "Source", "Term", "TermMap", "lower_graph",
    "Front", "FrontSetup", "LayerLowering", "LoweringOptions", "LoweringState",
    "FixedNodes", "LoweredGraph", "MultiThresholdPopulation", "Origin", "PlanItem", "QuantizedPopulation",
    "ReadoutPlan", "RealLayer", "ScaledWeight", "scaled_weight", "count_maxpool", "FRONTS", "front_for", "GradedPlan", "PortPlan", "UnitSpec",
]
