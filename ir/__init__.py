"""snnc.ir — the spiking graph IR (see docs/ir.md for its integer semantics).

What a network *means* lives here: neuron models (``neurons``), nodes (``nodes``; the transformer's
graded units and their integer arithmetic in the ``graded`` package), projections
(``projections``), codings (``coding``), the schedules (``schedule``) and the integer arithmetic of
projections every backend and the compiler's bounds share (``arithmetic``). ``bundle`` reads and
writes the ``.snnc`` file.
"""

from .arithmetic import (ProjectionRangeError, apply_projection, as_int_inputs, fanout, per_channel,
                         quantize_inputs)
from .bundle import FORMAT, VERSION, Bundle, Extras, load, load_header, load_with_extras, read_bundle, save
from .coding import CODINGS, Coding, DifferentialCoding, RateCoding
from .errors import BundleError, IRError, IRValidationError, OutputError
from .graph import Network
from .neurons import NEURON_MODELS, DualThreshold, IFSoftReset, MultiThreshold, NeuronModel
from .nodes import GRADED_UNITS, NODE_TYPES, GradedMaxPool, GradedUnit, Input, Node, Population, Readout, graded_edge
from .projections import PROJECTION_TYPES, Conv2d, Dense, Projection, SumPool2d
from .schedule import Schedule, layerwise_latency
from .validation import conv_output_size, replace, weight_dtype
from .graded import (GradedElementwise, GradedFunctionUnit, GradedLayerNorm, GradedMatMul,  # noqa: E402  (registers
                     GradedSoftmax)                                                        # the units' node types)

__all__ = [
    "FORMAT", "VERSION", "Bundle", "Extras", "load", "load_header", "load_with_extras", "read_bundle", "save",
    "BundleError", "IRError", "IRValidationError", "OutputError", "Network",
    "CODINGS", "Coding", "DifferentialCoding", "RateCoding", "MultiThreshold",
    "NEURON_MODELS", "NODE_TYPES", "PROJECTION_TYPES",
    "Conv2d", "Dense", "DualThreshold", "IFSoftReset", "Input", "NeuronModel", "Node", "Population", "Projection",
    "Readout", "SumPool2d", "GRADED_UNITS", "GradedMaxPool", "GradedUnit", "graded_edge",
    "GradedElementwise", "GradedFunctionUnit", "GradedLayerNorm", "GradedMatMul", "GradedSoftmax",
    "Schedule", "layerwise_latency",
    "ProjectionRangeError", "apply_projection", "as_int_inputs", "fanout", "per_channel", "quantize_inputs",
    "conv_output_size", "replace", "weight_dtype",
]
