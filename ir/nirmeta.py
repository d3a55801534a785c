"""The ``snnc.*`` metadata namespace snnc writes into NIR files (docs/interop.md, "The snnc.* namespace").

NIR (the ``nir`` package) has no subtract-threshold reset, no ``>=`` comparison, no initial potential,
no number of steps, schedule, coding, neuron kind or input quantizer. An snnc export carries them as
metadata under the keys below, on the graph and on its nodes; the NIR export backend writes them, the
NIR loader of the compiler and the Sinabs backend read them. This module is the one place that names
them (it needs neither ``nir`` nor any backend): every key starts with ``PREFIX``.

Values are what ``nir.write`` stores and ``nir.read`` returns unchanged: strings, ints, floats and
numpy arrays; anything structured (lists of names, the bundle's metadata) is a JSON string.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

PREFIX = "snnc."
FORMAT = "snnc-nir"
VERSION = 1

# ---- graph keys ------------------------------------------------------------------------------
G_FORMAT = PREFIX + "format"            # "snnc-nir": the graph was written by snnc
G_VERSION = PREFIX + "version"          # this namespace's version (VERSION)
G_TIMESTEPS = PREFIX + "timesteps"      # T: every node runs T steps, t = 1..T
G_SCHEDULE = PREFIX + "schedule"        # "pipelined": every node steps every step, in topological order
G_CODING = PREFIX + "coding"            # JSON {"type": "RateCoding", "fields": {}}
G_EXACT = PREFIX + "exact"              # 1: the NIR graph, read with the node semantics below, is the network
G_INEXACT = PREFIX + "inexact"          # JSON list: why it is not (only with --inexact)
G_FLOAT32_BOUND = PREFIX + "float32_bound"  # largest |value| a float32 run of the graph can meet
G_FLOAT32_EXACT = PREFIX + "float32_exact"  # 1: that bound is below 2^24 (float32 holds every value exactly)
G_ORDER = PREFIX + "order"              # JSON {"nodes": [...], "projections": [...]}: the IR's order
G_METADATA = PREFIX + "bundle_metadata"  # JSON: the compiled bundle's metadata (config, target, layers, ...)
G_SEMANTICS = PREFIX + "semantics"      # one human-readable line pointing to docs/interop.md

# ---- node keys -------------------------------------------------------------------------------
KIND = PREFIX + "kind"                  # the IR object a NIR node stands for (KINDS below)
NAME = PREFIX + "name"                  # its IR name
FIELDS = PREFIX + "fields"              # JSON: the object's scalar fields (names, shapes, levels, ...)
RESET = PREFIX + "reset"                # neurons: "subtract" (v -= threshold after a spike)
COMPARE = PREFIX + "compare"            # neurons: ">=" (spike when v >= threshold)
V0 = PREFIX + "v0"                      # neurons / readouts: initial value (int array, IR shape)
THRESHOLD = PREFIX + "threshold"        # neurons: Theta as the IR holds it (scalar or per channel)
BIAS = PREFIX + "bias"                  # neurons / readouts: B per step as the IR holds it
REAL_THRESHOLD = PREFIX + "real_threshold"  # neurons: lambda (float, reports only)
NEURON = PREFIX + "neuron"              # neurons: JSON {"type": "IFSoftReset", "fields": {}}
READOUT = PREFIX + "readout"            # readouts: "sum" (the value is v0 + the sum over the T steps of the output)
EXPONENT = PREFIX + "exponent"          # projections: e (the weight is mantissa * 2^e)
MANTISSA = PREFIX + "weight_mantissa"   # projections: the integer weight mantissa (IR shape)
PRESENTATION = PREFIX + "presentation"  # inputs: "every_step" (rate) or "first_step" (differential coding)

KINDS = ("Input", "Population", "Readout", "GradedMaxPool", "Dense", "Conv2d", "SumPool2d",
         "Flatten", "SumPool2dScale")

RESET_SUBTRACT = "subtract"
RESET_ZERO = "zero"
COMPARE_GE = ">="
COMPARE_GT = ">"


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def loads(value: Any, what: str) -> Any:
    """JSON text stored by :func:`dumps` (``nir.read`` may hand back bytes or a numpy string)."""
    if isinstance(value, bytes):
        value = value.decode()
    try:
        return json.loads(str(value))
    except ValueError as e:
        raise ValueError(f"snnc metadata {what} is not valid JSON ({e})") from None


def text(value: Any) -> str:
    """A string value as ``nir.read`` returns it (str, bytes or a 0-d numpy array)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    return value.decode() if isinstance(value, bytes) else str(value)


def is_snnc_graph(metadata: dict) -> bool:
    return isinstance(metadata, dict) and text(metadata.get(G_FORMAT, "")) == FORMAT
