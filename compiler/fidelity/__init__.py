"""Fidelity to the user's model (issue 13): run the model that came in with its own semantics, read its
quantized activations as levels, compare them with snnc's integer network and the SNN, and decide a
verdict that cannot lie. See docs/fidelity.md.

Library only: the compiler imports no backend, so the functions that run snnc's integer network and SNN
are passed in by the command layer (``measure_fidelity``'s ``integer_run`` / ``snn_predictions``).
"""

from .bits import layer_bits, model_weight_bits
from .compare import (DEFAULT_BOUNDARY_TOL, FidelityAccumulator, FidelityPartial, FidelityResult, IntegerRun,
                      LayerFidelity, LocalRun, local_runs, measure_fidelity, measure_fidelity_partial, merge_fidelity)
from .inputs import InputRangeReport, input_range_report, merge_input_ranges
from .levels import LevelsRead, Probe, ProbeSet, Unmapped, activation_probes, probe_tensor_sizes, read_levels
from .reference import (ModelFormat, OnnxRuntimeExecutor, ReferenceModelError, model_format, reference_executor)
from .verdict import (DEFAULT_MIN_FIDELITY, EXIT_CHECK_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USER_ERROR, Faithfulness,
                      LayerBits, MinFidelity, Verdict, VerdictName, WeightKind, fidelity_verdict, weight_kind)

__all__ = [
    "DEFAULT_BOUNDARY_TOL", "DEFAULT_MIN_FIDELITY", "EXIT_CHECK_FAILED", "EXIT_INTERNAL", "EXIT_OK", "EXIT_USER_ERROR",
    "Faithfulness", "FidelityAccumulator", "FidelityResult", "IntegerRun", "LayerBits", "LayerFidelity", "LevelsRead",
    "LocalRun", "local_runs", "FidelityPartial", "measure_fidelity_partial", "merge_fidelity", "merge_input_ranges",
    "MinFidelity", "ModelFormat", "OnnxRuntimeExecutor", "Probe", "ProbeSet", "ReferenceModelError", "Unmapped",
    "Verdict", "VerdictName", "WeightKind", "activation_probes", "fidelity_verdict", "measure_fidelity", "model_format",
    "probe_tensor_sizes", "read_levels", "reference_executor", "weight_kind", "layer_bits", "model_weight_bits",
    "InputRangeReport", "input_range_report",
]
