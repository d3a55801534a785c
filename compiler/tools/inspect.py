"""``snnc inspect``: a compiled bundle, readably (``network_summary`` for ``--json``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import onnx

from snnc.ir import DifferentialCoding, Network

from ..dumps import network_summary
from ..fidelity import layer_bits
from ..weight_precision import WEIGHT_FLOOR_BITS, layer_weight_bits
from ..metadata import Conversion, conversion_of, layer_records

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightBitsRow:
    """One layer's effective weight precision: the signed bits of its largest integer weight mantissa
    (``kept``), the bits the model's integer weights have (``needed``; None for float weights or when the
    model is not embedded) and the floor below which snnc warns (docs/fidelity.md, 'Weight bits')."""

    layer: str
    kept: int
    needed: int | None
    floor: int

    @property
    def below_floor(self) -> bool:
        return self.kept < self.floor

    def to_dict(self) -> dict:
        return {"layer": self.layer, "kept": self.kept, "needed": self.needed, "floor": self.floor,
                "below_floor": self.below_floor}


#: inspect reads an embedded model (for its own weight bits) only up to this declared size: a larger one
#: (or a zip bomb declaring gigabytes) is never decompressed by inspect
MODEL_BITS_MAX_BYTES = 16 << 20


def weight_bits_rows(net: Network, extras) -> list[WeightBitsRow]:
    """Every integerized layer's weight bits; the model's own bits where the bundle embeds a model of at
    most ``MODEL_BITS_MAX_BYTES``."""
    needed: dict[str, int] = {}
    if extras is not None and "onnx_model" in extras and extras.nbytes("onnx_model") > MODEL_BITS_MAX_BYTES:
        log.info("the embedded model (%d bytes) is larger than inspect reads (%d): its weight bits are not shown",
                 extras.nbytes("onnx_model"), MODEL_BITS_MAX_BYTES)
    elif extras is not None and "onnx_model" in extras:
        try:
            needed = {b.layer: b.needed for b in layer_bits(net, onnx.load_from_string(bytes(extras["onnx_model"])))}
        except (onnx.onnx_cpp2py_export.checker.ValidationError, ValueError, KeyError, TypeError) as e:
            log.info("the embedded model's weight bits were not read: %s", e)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError: the bits stay unknown, inspect goes on
            log.info("the embedded model is not readable: %s", e)
    rows = []
    for layer, kept in layer_weight_bits(net).items():
        need = needed.get(layer)
        rows.append(WeightBitsRow(layer, kept, need, WEIGHT_FLOOR_BITS if need is None else min(WEIGHT_FLOOR_BITS, need)))
    return rows


def weight_bits_lines(rows: list[WeightBitsRow]) -> list[str]:
    out = ["", f"effective weight bits (signed; floor {WEIGHT_FLOOR_BITS}, or the model's own bits if fewer):"]
    for r in rows:
        need = "" if r.needed is None else f" of the model's {r.needed}"
        out.append(f"  {r.layer:<10} {r.kept}{need}" + ("  WARNING: below the floor" if r.below_floor else ""))
    return out


def inspect_text(bundle, net: Network, extras) -> str:
    """The bundle's source, configuration, nodes, projections and layer records as text."""
    d = network_summary(net, extras)
    md = net.metadata
    cfg = md.get("config", {})
    out = [f"bundle {bundle}  (snnc {md.get('snnc_version', '?')}, target {cfg.get('target', '?')})",
           f"source model: {md.get('source_model', {}).get('path', '?')}  "
           f"sha256 {md.get('source_model', {}).get('sha256', '?')[:16]}"]
    L = md.get("levels")
    rel = "" if L is None else (" = L (exact)" if L == net.timesteps else f", L = {L}: rates rescaled, levels theta/T")
    if net.mixed_steps:
        rel = (f" = the largest L; mixed levels: each population runs its own L steps "
               f"({', '.join(f'{k}: {v}' for k, v in net.mixed_steps.items())}), layerwise only (exact)")
    out.append(f"timesteps T = {net.timesteps}{rel}; default schedule {cfg.get('schedule', '?')}; "
               f"neuron {cfg.get('neuron', '?')}; v0 {cfg.get('v0', '?')}")
    if conversion_of(net) is Conversion.TRAINING_FREE:
        coding = (f"differential, F = {net.coding.frac_bits} (frac_bits {cfg.get('frac_bits')})"
                  if isinstance(net.coding, DifferentialCoding) else "rate")
        out.append(f"multi-threshold n = {cfg.get('mt_n')}; coding {coding}; thresholds {cfg.get('thresholds')} "
                   f"per {cfg.get('threshold_scope', 'layer')}, scale {cfg.get('threshold_scale')}")
    out += ["", "nodes:", f"  {'name':<10} {'type':<11} {'shape':<13} details"]
    for n in d["nodes"]:
        det = {k: v for k, v in n.items() if k not in ("name", "type", "shape")}
        out.append(f"  {n['name']:<10} {n['type']:<11} {str(tuple(n['shape'])):<13} "
                   + ", ".join(f"{k}={v}" for k, v in det.items()))
    out += ["", "projections:"]
    for p in d["projections"]:
        out.append(f"  {p['name']:<18} {p['type']:<9} W{tuple(p['weight_shape'])} in [{p['weight_range'][0]}, "
                   f"{p['weight_range'][1]}] << {p['exponent']}, {p['synapses']} synapses")
    records = layer_records(net)
    if records:
        out += ["", "layers (from the ONNX model):"]
        for r in records:
            out.append(f"  {r.layer:<10} linear={r.onnx_linear}  activation={r.onnx_activation}  "
                       f"Q={r.quantizer}  L={r.levels}  lambda={r.lam if r.lam is None else round(r.lam, 5)}"
                       + (f"  V0={r.v0_mode}{'' if r.v0_matched else ' (not matched to Q)'}" if r.v0_mode else ""))
    out += weight_bits_lines(weight_bits_rows(net, extras))
    return "\n".join(out)
