"""Typed records a compiled bundle carries in its metadata, written once and read back through here.

* :class:`Conversion`: how the network was converted (quantized clip activations; the same with
  layers at different quantization levels; a plain ReLU net converted training-free). Decided once,
  at compile time (``decide_conversion``; ``model_conversion`` says what a model allows before any
  configuration), stored as ``metadata["conversion"]``, read back with ``conversion_of`` (which
  derives it for bundles written before it was stored).
* :class:`LayerRecord`: one per IR layer (population, graded unit, readout): where it came from in
  the ONNX model and how it was converted. Stored as ``metadata["layers"]``, a list of dicts with the
  keys ``snnc inspect``, ``snnc report`` and docs/ir.md name (``layer``, ``onnx_linear``, ``lambda``...),
  versioned by ``metadata["layers_version"]``; read back with ``layer_records``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import Enum
from typing import Any, ClassVar

from snnc.ir import MultiThreshold, Network

from .config import CompileConfig, NeuronKind
from .errors import SnncError
from .frontend.float_graph import FGraph, QuantAct, Relu

LAYER_RECORDS_VERSION = 1


class MetadataError(SnncError):
    """A bundle's metadata records are malformed or newer than this snnc."""


class Conversion(str, Enum):
    """How a float model became a spiking network (one decision per compile)."""

    QUANTIZED = "quantized"            # quantized clip activations (QCFS, QDQ, QONNX), one L: exact at T = L
    MIXED_LEVELS = "mixed-levels"      # quantized activations with different L per layer: exact, layerwise only
    TRAINING_FREE = "training-free"    # plain ReLUs, calibrated thresholds, multi-threshold neurons (paper 004)

    @property
    def quantized(self) -> bool:
        """Has a quantized ANN the network equals (verify proves it); training-free is measured instead."""
        return self is not Conversion.TRAINING_FREE


def model_conversion(g: FGraph) -> Conversion:
    """What a model's activations allow: quantized clip activations (one L or several), or plain ReLUs
    only (training-free); a model with neither is taken as quantized (its lowering explains)."""
    levels = {op.levels for op in g.ops if isinstance(op, QuantAct)}
    if levels:
        return Conversion.MIXED_LEVELS if len(levels) > 1 else Conversion.QUANTIZED
    if any(isinstance(op, Relu) for op in g.ops):
        return Conversion.TRAINING_FREE
    return Conversion.QUANTIZED


def decide_conversion(config: CompileConfig, g: FGraph) -> Conversion:
    """The compile's one decision: multi-threshold neurons convert a plain ReLU net training-free;
    any other neuron model converts quantized activations (mixed levels when their L differ)."""
    if config.neuron is NeuronKind.MULTI_THRESHOLD:
        return Conversion.TRAINING_FREE
    levels = {op.levels for op in g.ops if isinstance(op, QuantAct)}
    return Conversion.MIXED_LEVELS if len(levels) > 1 else Conversion.QUANTIZED


def conversion_of(net: Network) -> Conversion:
    """The stored decision; for bundles written before it was stored, derived from the network: a
    training-free network has no quantizer levels or multi-threshold populations; mixed levels have
    per-population steps."""
    stored = net.metadata.get("conversion")
    if stored is not None:
        try:
            return Conversion(stored)
        except ValueError:
            raise MetadataError(f"bundle metadata: unknown conversion {stored!r}; this snnc knows "
                                f"{[c.value for c in Conversion]}") from None
    if net.metadata.get("levels", 0) is None or any(isinstance(p.neuron, MultiThreshold) for p in net.populations):
        return Conversion.TRAINING_FREE
    return Conversion.MIXED_LEVELS if net.mixed_steps else Conversion.QUANTIZED


@dataclass(frozen=True)
class LayerRecord:
    """What one IR layer (population, graded unit or readout) came from and how it was converted.

    Always present: ``layer`` (the IR node), ``onnx_linear`` (the first linear ONNX op feeding it, or
    the pooling op of a max-pool unit), ``onnx_activation`` (the activation it replaced), ``quantizer``
    (floor | round | ceil, quantized activations), ``levels`` (L), ``lam`` (lambda, the activation's
    range; key "lambda"), ``exponent`` (its weights' exponent), ``shape``, ``ann_macs`` (the ANN's
    multiply-accumulates feeding it). Present only where they apply (else None, and not written):
    ``onnx_linears`` and ``sources`` (a layer reading several linear ops or sources: residual joins),
    ``v0_mode``/``v0_matched``/``neuron`` (quantized populations), ``matched_v0`` (the V0 matched to
    the quantizer when ``--v0`` chose another: verify's reference), ``role`` (max-pool populations and
    graded units), ``threshold_real``/``threshold_scope`` (training-free populations).
    """

    layer: str
    onnx_linear: str | None
    onnx_activation: str | None
    quantizer: str | None
    levels: int | None
    lam: float | None
    exponent: int
    shape: list[int]
    ann_macs: int | None = None
    onnx_linears: list[str] | None = None
    sources: list[str] | None = None
    v0_mode: str | None = None
    v0_matched: bool | None = None
    neuron: str | None = None
    matched_v0: list[int] | None = None
    role: str | None = None
    threshold_real: list[float] | None = None
    threshold_scope: str | None = None

    ALWAYS: ClassVar[tuple[str, ...]] = ("layer", "onnx_linear", "onnx_activation", "quantizer", "levels", "lam",
                                         "exponent", "shape", "ann_macs")
    KEYS: ClassVar[dict[str, str]] = {"lam": "lambda"}   # field -> metadata key, where they differ

    def __post_init__(self) -> None:
        if not isinstance(self.layer, str) or not self.layer:
            raise MetadataError(f"a layer record needs a layer name, got {self.layer!r}")
        if isinstance(self.exponent, bool) or int(self.exponent) != self.exponent or self.exponent < 0:
            raise MetadataError(f"layer record '{self.layer}': exponent must be an int >= 0, got {self.exponent!r}")

    def to_dict(self) -> dict[str, Any]:
        """The metadata dict: every always-present key, and the optional ones that apply."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in self.ALWAYS or v is not None:
                out[self.KEYS.get(f.name, f.name)] = v
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "LayerRecord":
        keys = {v: k for k, v in cls.KEYS.items()}
        known = {f.name for f in fields(cls)}
        kwargs = {keys.get(k, k): v for k, v in d.items()}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise MetadataError(f"layer record '{d.get('layer')}' has unknown keys {unknown}")
        missing = [k for k in ("layer", "exponent", "shape") if k not in kwargs]
        if missing:
            raise MetadataError(f"layer record '{d.get('layer')}' lacks {missing}")
        for k in ("onnx_linear", "onnx_activation", "quantizer", "levels", "lam"):
            kwargs.setdefault(k, None)
        return cls(**kwargs)


def layer_records(net: Network) -> list[LayerRecord]:
    """The network's layer records (``metadata["layers"]``; [] when it has none)."""
    version = net.metadata.get("layers_version", LAYER_RECORDS_VERSION)
    if version != LAYER_RECORDS_VERSION:
        raise MetadataError(f"the bundle's layer records are version {version}; this snnc reads version "
                            f"{LAYER_RECORDS_VERSION}. Recompile the model with this snnc.")
    return [LayerRecord.from_dict(d) for d in net.metadata.get("layers") or []]


def records_metadata(records: list[LayerRecord]) -> dict[str, Any]:
    """The metadata entries of ``records``: ``layers`` and ``layers_version``."""
    return {"layers": [r.to_dict() for r in records], "layers_version": LAYER_RECORDS_VERSION}
