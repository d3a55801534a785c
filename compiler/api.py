"""Library entry points the CLI wraps: compile, load."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

from snnc import __version__
from snnc.ir import Network, save

from .analysis.bounds import check_network
from .analysis.macs import macs_per_op
from .config import CompileConfig
from .frontend.onnx_loader import import_onnx, model_bytes
from .lower import lower
from .passes import default_passes, run_passes
from .targets import load_target

log = logging.getLogger(__name__)


def compile_model(model_path: str | os.PathLike, config: CompileConfig | None = None) -> tuple[Network, bytes]:
    """ONNX file -> verified-bounded integer Network (and the model's self-contained bytes)."""
    config = config or CompileConfig()
    target = load_target(config.target)
    log.info("importing %s", model_path)
    g, model = import_onnx(model_path)
    macs = macs_per_op(g)  # from the imported graph, before any folding
    fired = run_passes(g, default_passes())
    log.info("passes: %s", {k: v for k, v in fired.items() if v})
    net, report = lower(g, target, config.timesteps, config.input_range, config.neuron_model(), config.v0.value)
    check_network(net, target.numeric.state_bits)
    for layer in report["layers"]:
        layer["ann_macs"] = macs.get(layer["onnx_linear"], 0)
    raw = model_bytes(model)
    net.metadata = {
        "snnc_version": __version__,
        "config": config.to_dict(),
        "target": target.to_dict(),
        "source_model": {"path": str(model_path), "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw)},
        "layers": report["layers"],
        "levels": report["levels"],
        "ann_macs_total": int(sum(macs.values())),
    }
    return net, raw


def compile_to_file(model_path, out_path, config: CompileConfig | None = None) -> Network:
    config = config or CompileConfig()
    net, raw = compile_model(model_path, config)
    extras = {}
    if len(raw) <= config.embed_model_max_bytes:
        extras["onnx_model"] = np.frombuffer(raw, dtype=np.uint8)
    save(net, out_path, extras)
    return net

