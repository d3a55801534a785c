"""``snnc inspect``: a compiled bundle, readably (``network_summary`` for ``--json``)."""

from __future__ import annotations

from snnc.ir import DifferentialCoding, Network

from ..dumps import network_summary
from ..metadata import Conversion, conversion_of, layer_records


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
    return "\n".join(out)
