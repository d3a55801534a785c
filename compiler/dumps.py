"""Readable dumps of the pipeline's records (``snnc compile --stop-after STAGE --dump DIR``).

* a float graph: ``graph.txt`` (one line per op: name, type, inputs, attributes, output shape) and
  ``graph.json`` (the same, arrays as shape/dtype/min/max/sha256);
* a lowered graph: ``lowered.json`` (every layer in real arithmetic: its weights' shapes and ranges,
  bias, where it came from);
* a network: ``network.snnc`` (a bundle: ``snnc inspect`` reads it) and ``network.json``
  (``network_summary``: nodes, projections, metadata).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from snnc.ir import Input, Network, Population, Readout, save

from .frontend.float_graph import FGraph
from .lowering.plan import FixedNodes, LoweredGraph, MultiThresholdPopulation, QuantizedPopulation, RealLayer


def _array(a) -> dict[str, Any]:
    a = np.asarray(a)
    d = {"shape": list(a.shape), "dtype": str(a.dtype)}
    if a.size:
        d.update(min=float(a.min()), max=float(a.max()))
    d["sha256"] = hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]
    return d


def _plain(v):
    """A JSON-able form of a field value (arrays summarized)."""
    if isinstance(v, np.ndarray):
        return _array(v)
    if isinstance(v, (np.integer, np.floating)):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {"type": type(v).__name__, **{f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return repr(v)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=1, default=repr) + "\n", encoding="utf-8")


def dump_json(folder: Path, name: str, obj) -> None:
    """``obj`` (arrays summarized, dataclasses as dicts) as ``folder/name``."""
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / name, _plain(obj))


def dump_float_graph(g: FGraph, folder: Path, extra: dict[str, Any] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shapes = g.shapes()
    ops, lines = [], [f"input {g.input_name} {tuple(g.input_shape)}"]
    for op in g.ops:
        fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op) if f.name not in ("name", "input")}
        ops.append({"name": op.name, "type": type(op).__name__, "inputs": op.sources(), "shape": list(shapes[op.name]),
                    **{k: _plain(v) for k, v in fields.items()}})
        attrs = ", ".join(f"{k}={np.asarray(v).shape if isinstance(v, np.ndarray) else v}" for k, v in fields.items())
        lines.append(f"{op.name:<24} {type(op).__name__:<12} {', '.join(op.sources()):<24} {attrs} -> {tuple(shapes[op.name])}")
    lines.append(f"output {g.output}")
    (folder / "graph.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _write_json(folder / "graph.json", {"input": g.input_name, "input_shape": list(g.input_shape), "output": g.output,
                                        "meta": _plain(g.meta), "ops": ops, **_plain(extra or {})})


def _real_layer(layer: RealLayer) -> dict[str, Any]:
    return {"name": layer.name, "shape": list(layer.shape), "weights": [_array(w) for w in layer.weights],
            "bias": _array(layer.bias)}


def dump_lowered(lowered: LoweredGraph, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for item in lowered.items:
        if isinstance(item, FixedNodes):
            items.append({"kind": "FixedNodes", "nodes": [_plain(n) for n in item.nodes],
                          "projections": [p.name for p in item.projections],
                          "records": [r.to_dict() for r in item.records]})
            continue
        d = {"kind": type(item).__name__, "layer": _real_layer(item.layer), "origin": _plain(item.origin)}
        if isinstance(item, QuantizedPopulation):
            d.update(mode=item.mode, beta=item.beta, levels=item.levels, lam=item.lam, quantizer=item.quantizer,
                     neuron=_plain(item.neuron), v0_mode=item.v0_mode, steps=item.steps)
        elif isinstance(item, MultiThresholdPopulation):
            d.update(neuron=_plain(item.neuron), theta=np.asarray(item.theta).tolist(), per_channel=item.per_channel)
        items.append(d)
    _write_json(folder / "lowered.json", {
        "conversion": lowered.conversion.value, "timesteps": lowered.timesteps, "levels": lowered.levels,
        "mixed_levels": lowered.mixed_levels, "input": _plain(lowered.input), "items": items,
        "readout": {"layer": _real_layer(lowered.readout.layer), "levels": lowered.readout.levels,
                    "origin": _plain(lowered.readout.origin)}})


def _summ(a) -> str:
    a = np.asarray(a)
    if a.ndim == 0 or a.size == 1:
        return str(a.reshape(-1)[0])
    return f"{a.min()}..{a.max()} ({a.size} ch)"


def network_summary(net: Network, extras=()) -> dict[str, Any]:
    """Nodes (shapes, thresholds, V0, bias, L, lambda), projections (weight ranges, exponents,
    synapses) and the metadata of ``net``: what ``snnc inspect --json`` prints."""
    nodes = []
    for n in net.ordered_nodes():
        d = {"name": n.name, "type": type(n).__name__, "shape": list(n.shape)}
        if isinstance(n, Input):
            d.update(scale=n.scale, qmin=n.qmin, qmax=n.qmax)
        if isinstance(n, Population):
            d.update(neuron=type(n.neuron).__name__, threshold=_summ(n.threshold), v0=_summ(n.v0),
                     bias=_summ(n.bias), levels=n.levels, real_threshold=_summ(np.round(n.real_threshold, 6)))
            if n.timesteps is not None:
                d.update(timesteps=n.timesteps)
        if isinstance(n, Readout):
            d.update(v0=_summ(n.v0), bias=_summ(n.bias), scale=n.scale)
        nodes.append(d)
    projs = [{"name": p.name, "type": type(p).__name__, "source": p.source, "target": p.target,
              "weight_shape": list(p.weight.shape), "weight_range": [int(p.weight.min()), int(p.weight.max())],
              "exponent": p.exponent, "synapses": p.num_synapses} for p in net.projections]
    return {"timesteps": net.timesteps, "nodes": nodes, "projections": projs, "metadata": net.metadata,
            "embedded": sorted(extras)}


def dump_network(net: Network, folder: Path, extra: dict[str, Any] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save(net, folder / "network.snnc")
    _write_json(folder / "network.json", {**network_summary(net), **_plain(extra or {})})
