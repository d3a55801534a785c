"""snnc.ir — the spiking graph IR (see docs/ir.md for its integer semantics)."""

from .bundle import FORMAT, VERSION, load, load_header, load_with_extras, save
from .coding import CODINGS, Coding, DifferentialCoding, RateCoding
from .errors import BundleError, IRError, IRValidationError
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
    "FORMAT", "VERSION", "load", "load_header", "load_with_extras", "save",
    "BundleError", "IRError", "IRValidationError", "Network",
    "CODINGS", "Coding", "DifferentialCoding", "RateCoding", "MultiThreshold",
    "NEURON_MODELS", "NODE_TYPES", "PROJECTION_TYPES",
    "Conv2d", "Dense", "DualThreshold", "IFSoftReset", "Input", "NeuronModel", "Node", "Population", "Projection",
    "Readout", "SumPool2d", "GRADED_UNITS", "GradedMaxPool", "graded_edge",
]
