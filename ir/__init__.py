"""snnc.ir — the spiking graph IR (see docs/ir.md for its integer semantics)."""

from .bundle import FORMAT, VERSION, Bundle, Extras, load, load_header, load_with_extras, read_bundle, save
from .coding import CODINGS, Coding, DifferentialCoding, RateCoding
from .errors import BundleError, IRError, IRValidationError, OutputError
from .graph import Network
from .nodes import (
    GRADED_UNITS,
    NEURON_MODELS,
    NODE_TYPES,
    PROJECTION_TYPES,
    Conv2d,
    Dense,
    DualThreshold,
    GradedMaxPool,
    IFSoftReset,
    Input,
    MultiThreshold,
    NeuronModel,
    Node,
    Population,
    Projection,
    Readout,
    SumPool2d,
    graded_edge,
)

__all__ = [
    "FORMAT", "VERSION", "Bundle", "Extras", "load", "load_header", "load_with_extras", "read_bundle", "save",
    "BundleError", "IRError", "IRValidationError", "OutputError", "Network",
    "CODINGS", "Coding", "DifferentialCoding", "RateCoding", "MultiThreshold",
    "NEURON_MODELS", "NODE_TYPES", "PROJECTION_TYPES",
    "Conv2d", "Dense", "DualThreshold", "IFSoftReset", "Input", "NeuronModel", "Node", "Population", "Projection",
    "Readout", "SumPool2d", "GRADED_UNITS", "GradedMaxPool", "graded_edge",
]
