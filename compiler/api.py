"""Library entry points the CLI wraps: compile, load."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnc import __version__
from snnc.ir import MultiThreshold, Network, save

from .analysis.bounds import check_network
from .analysis.macs import macs_per_op
from .config import CodingKind, CompileConfig
from .frontend.onnx_loader import import_onnx, model_bytes
from .graph import FGraph
from .integerize import choose_frac_bits
from .lower import lower
from .mapping import map_network, rates_from_counts
from .passes import default_passes, run_passes
from .targets import load_target

log = logging.getLogger(__name__)


@dataclass
class ImportedModel:
    """An ONNX model imported and simplified once, to be lowered under any number of configs."""

    path: str
    graph: FGraph
    raw: bytes                 # the model's self-contained bytes (external data inlined)
    macs: dict[str, int]       # ANN multiply-accumulates per ONNX linear op, before any folding
    # calibration inputs and their ReLU pre-activation statistics per file (path, size, mtime): one read
    # and one float-graph pass per file however many configs are compiled from this import (eval's grid)
    calib_cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()


def import_model(model_path: str | os.PathLike) -> ImportedModel:
    """ONNX file -> imported float graph after the default passes."""
    log.info("importing %s", model_path)
    g, model = import_onnx(model_path)
    macs = macs_per_op(g)  # from the imported graph, before any folding
    fired = run_passes(g, default_passes())
    log.info("passes: %s", {k: v for k, v in fired.items() if v})
    return ImportedModel(str(model_path), g, model_bytes(model), macs)


def compile_imported(imported: ImportedModel, config: CompileConfig | None = None) -> Network:
    """Lower an imported model under ``config`` to a verified-bounded integer Network."""
    config = config or CompileConfig()
    target = load_target(config.target, config.profile)
    neuron = config.neuron_model()
    relu_thr = _relu_thresholds(imported, config) if isinstance(neuron, MultiThreshold) else None

    def lower_at(coding):
        return lower(imported.graph, target, config.timesteps, config.input_range,
                     neuron, config.v0.value, relu_thr, coding)

    auto, min_bits = config.frac_bits_auto
    if auto and config.coding is CodingKind.DIFFERENTIAL:  # F shares the state width with the weights
        error = _calibration_output_error(imported, config) if min_bits is None and relu_thr is not None else None
        coding, (net, report) = choose_frac_bits(lower_at, config.timesteps or 1, min_bits, error=error)
        log.info("frac_bits=%s: F = %d", config.frac_bits, coding.frac_bits)
    else:
        net, report = lower_at(config.coding_model(frac_bits=12) if auto else config.coding_model())
    check_network(net, target.numeric.state_bits)
    net.check_schedule(config.schedule)  # mixed L: the layerwise schedule only, refused by name otherwise
    for layer in report["layers"]:
        linears = layer.get("onnx_linears") or [layer["onnx_linear"]]  # a residual join reads several
        layer["ann_macs"] = int(sum(imported.macs.get(op, 0) for op in linears if op is not None))
    net.metadata = {
        "snnc_version": __version__,
        "config": config.to_dict(),
        "target": target.to_dict(),
        "source_model": {"path": imported.path, "sha256": imported.sha256, "bytes": len(imported.raw)},
        "layers": report["layers"],
        "levels": report["levels"],
        **({"mixed_levels": report["mixed_levels"]} if "mixed_levels" in report else {}),
        "ann_macs_total": int(sum(imported.macs.values())),
    }
    net.metadata["placement"] = map_network(net, target, config.chips, config.system, _calibration_rates(net, config))
    return net


def _relu_thresholds(imported: ImportedModel, config: CompileConfig) -> dict[str, np.ndarray]:
    """Thresholds of every ReLU from the calibration data (``--calib``; paper 004):
    ``config.thresholds`` = max | percentile:q | iterate, with N = 2^n T levels for the threshold
    iteration (docs/calibration.md), times ``config.threshold_scale``; one per output channel
    (``config.threshold_scope`` = channel, shape (C,)) or one per layer (shape ())."""
    from .calibration import compute_thresholds, parse_threshold_method, quantization_levels
    from .config import ThresholdScope
    from .errors import DataFileError

    if config.calibration_data is None:
        raise DataFileError("converting a plain ReLU network needs calibration data: give --calib FILE.npz "
                            "(an .npz with x: a few hundred training inputs)")
    if config.timesteps is None:
        from .errors import ConversionError

        raise ConversionError("a plain ReLU network has no quantization levels L to take T from: give --timesteps")
    _, stats = _calibration(imported, config.calibration_data)
    spec = parse_threshold_method(config.thresholds, scale=config.threshold_scale)
    N = quantization_levels(config.timesteps, config.mt_n)
    per_channel = config.threshold_scope is ThresholdScope.CHANNEL
    out = {}
    for name, st in stats.items():
        th = compute_thresholds(st, spec, N=N, per_channel=per_channel)
        out[name] = np.asarray(th.theta, np.float64).reshape(-1) if per_channel else \
            np.asarray(np.asarray(th.theta).reshape(-1)[0], np.float64)
    log.info("calibrated ReLU thresholds (%s, %s, N=%d): %s", config.thresholds, config.threshold_scope.value, N,
             {k: np.round(v, 4).tolist() for k, v in out.items()})
    return out


def _calibration(imported: ImportedModel, path) -> tuple[np.ndarray, dict]:
    """(inputs x, ReLU pre-activation statistics) of the calibration file, read and collected once per
    file (path, size, mtime) per import."""
    from .calibration import collect_relu_stats
    from .data import load_arrays

    try:
        st = os.stat(path)
    except OSError:  # let the data loader name the problem
        load_arrays(path, tuple(imported.graph.input_shape))
        raise
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in imported.calib_cache:
        x, _ = load_arrays(path, tuple(imported.graph.input_shape))
        imported.calib_cache[key] = (x, collect_relu_stats(imported.graph, x))
    return imported.calib_cache[key]


def _calibration_output_error(imported: ImportedModel, config: CompileConfig):
    """``net -> error``: the relative rms difference between the SNN's real-valued outputs
    (readout value times its scale) and the float ANN's, on the first ``calibration_samples`` inputs
    of the calibration data (``frac_bits = auto`` picks the F with the smallest)."""
    from snnc.backends.reference.simulator import simulate

    x = _calibration(imported, config.calibration_data)[0][:config.calibration_samples]
    ref = imported.graph.run(x)[imported.graph.output].reshape(len(x), -1)
    norm = float(np.sqrt(np.mean(ref * ref))) or 1.0

    def error(net: Network) -> float:
        ro = net.readouts[0]
        out = simulate(net, x, "pipelined").readout[ro.name].reshape(len(x), -1) * ro.scale
        return float(np.sqrt(np.mean((out - ref) ** 2))) / norm

    return error


def _calibration_rates(net: Network, config: CompileConfig) -> dict[str, float] | None:
    """Firing rates (spikes per neuron per step) measured on ``config.calibration_data``, or None."""
    if config.calibration_data is None:
        return None
    from snnc.backends.reference.simulator import simulate

    from .data import load_data

    x, _ = load_data(config.calibration_data, net, config.calibration_samples)
    multi = any(isinstance(p.neuron, MultiThreshold) for p in net.populations)
    res = simulate(net, x, "pipelined" if multi else config.schedule)
    return rates_from_counts(net, res.counts)


def compile_model(model_path: str | os.PathLike, config: CompileConfig | None = None) -> tuple[Network, bytes]:
    """ONNX file -> verified-bounded integer Network (and the model's self-contained bytes)."""
    imported = import_model(model_path)
    return compile_imported(imported, config), imported.raw


def compile_to_file(model_path, out_path, config: CompileConfig | None = None) -> Network:
    config = config or CompileConfig()
    net, raw = compile_model(model_path, config)
    extras = {}
    if len(raw) <= config.embed_model_max_bytes:
        extras["onnx_model"] = np.frombuffer(raw, dtype=np.uint8)
    save(net, out_path, extras)
    return net



# ---- NIR graphs (docs/interop.md, "Import") ---------------------------------------------------

def is_nir_file(path: str | os.PathLike) -> bool:
    """Does ``path`` hold a NIR graph (an HDF5 file) rather than an ONNX model? By its signature."""
    try:
        with open(path, "rb") as fh:
            return fh.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def compile_nir(path: str | os.PathLike, config: CompileConfig | None = None, reading=None) -> Network:
    """A NIR file -> a bounded, format-checked integer Network with a compiled bundle's metadata.

    ``reading`` (``frontend.nir_loader.NirReading``) says how to read the neurons (reset, comparison,
    T, dt); an snnc export supplies them itself. The result passes the same checks as a compiled ONNX
    model: the state bound (``check_network``), the target's number formats (``check_format``) and
    the mapping onto cores; an snnc export gets its original metadata back (plus ``nir_import``)."""
    from .analysis.format import check_format
    from .frontend.nir_loader import NirReading, file_sha256, load_nir, read_nir

    config = config or CompileConfig()
    target = load_target(config.target, config.profile)
    reading = reading or NirReading(timesteps=config.timesteps)
    graph = read_nir(path)
    net, rec = load_nir(graph, target.numeric, reading, path=path)
    check_format(net, target.numeric)
    check_network(net, target.numeric.state_bits)
    net.check_schedule(config.schedule)
    if rec.snnc_export:
        net.metadata["nir_import"] = rec.to_dict()
        return net
    sha, size = file_sha256(path)
    cfg = config.to_dict()
    cfg.update(timesteps=net.timesteps, neuron="if", v0="zero")  # NIR has no V0; a '>' graph's shift is in nir_import
    net.metadata = {
        "snnc_version": __version__,
        "config": cfg,
        "target": target.to_dict(),
        "source_model": {"path": str(path), "sha256": sha, "bytes": size, "format": "nir"},
        "layers": [],
        "levels": net.timesteps,
        "nir_import": rec.to_dict(),
    }
    net.metadata["placement"] = map_network(net, target, config.chips, config.system, None)
    return net


def compile_nir_to_file(path, out_path, config: CompileConfig | None = None, reading=None) -> Network:
    net = compile_nir(path, config, reading)
    save(net, out_path)
    return net
