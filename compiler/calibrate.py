"""Calibration data in the compile: ReLU thresholds of a training-free conversion (float graph only),
and the data-driven choices that run the spiking network (through a ``Runner``: the compiler never
imports a backend; ``snnc compile`` passes the reference simulator, docs/architecture.md).

* ``relu_thresholds``: every ReLU's threshold from the calibration inputs (paper 004, docs/calibration.md).
* ``output_error``: ``net -> error`` for ``frac_bits = auto``: the SNN's outputs against the float
  ANN's on the first calibration inputs.
* ``firing_rates``: spikes per neuron per step, which weight the chip placement.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, Mapping, Protocol

import numpy as np

from snnc.ir import Network, Schedule

from .calibration import (collect_point_stats, collect_relu_stats, compute_thresholds, parse_threshold_method,
                          quantization_levels)
from .config import CompileConfig, ThresholdScope
from .data import load_arrays, load_data
from .errors import ConversionError, DataFileError, SnncError
from .lowering.tokens import spiking_points
from .lowering.transformer import has_transformer_ops
from .mapping import rates_from_counts

log = logging.getLogger(__name__)


class RunResult(Protocol):
    """What the compiler reads from a run: the counts of every node, the readouts' final values."""

    counts: Mapping[str, np.ndarray]
    readout: Mapping[str, np.ndarray]


#: runs a network on float inputs in a schedule (``snnc.compiler.tools.runner.reference_runner`` wires
#: the reference simulator); the compiler's data-driven choices take one explicitly
Runner = Callable[[Network, np.ndarray, Schedule], RunResult]


class RunnerRequiredError(SnncError):
    """A data-driven choice needs to run the network, and no runner was given."""


def require_runner(runner: Runner | None, why: str) -> Runner:
    if runner is None:
        raise RunnerRequiredError(
            f"{why} runs the spiking network on the calibration data, and no runner was given: pass "
            "runner=snnc.compiler.tools.runner.reference_runner (what `snnc compile` does) to the compile call")
    return runner


def calibration_inputs(model, path) -> tuple[np.ndarray, dict]:
    """(inputs x, ReLU pre-activation statistics) of the calibration file, read and collected once per
    file (path, size, mtime) per imported model (``model.calib_cache``)."""
    try:
        st = os.stat(path)
    except OSError:  # let the data loader name the problem
        load_arrays(path, tuple(model.graph.input_shape))
        raise
    key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if key not in model.calib_cache:
        x, _ = load_arrays(path, tuple(model.graph.input_shape))
        model.calib_cache[key] = (x, collect_relu_stats(model.graph, x))
    return model.calib_cache[key]


def relu_thresholds(model, config: CompileConfig) -> dict[str, np.ndarray]:
    """Thresholds of every ReLU from the calibration data (``--calib``; paper 004):
    ``config.thresholds`` = max | percentile:q | iterate, with N = 2^n T levels for the threshold
    iteration (docs/calibration.md), times ``config.threshold_scale``; one per output channel
    (``config.threshold_scope`` = channel, shape (C,)) or one per layer (shape ())."""
    if config.calibration_data is None:
        raise DataFileError("converting a plain ReLU network needs calibration data: give --calib FILE.npz "
                            "(an .npz with x: a few hundred training inputs)")
    if config.timesteps is None:
        raise ConversionError("a plain ReLU network has no quantization levels L to take T from: give --timesteps")
    x, stats = calibration_inputs(model, config.calibration_data)
    points = spiking_points(model.graph) if has_transformer_ops(model.graph) else {}
    if points:   # a transformer: the values its signed multi-threshold populations re-encode
        stats = {**stats, **collect_point_stats(model.graph, x, points)}
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


def output_error(model, config: CompileConfig, runner: Runner | None) -> Callable[[Network], float]:
    """``net -> error``: the relative rms difference between the SNN's real-valued outputs (readout
    value times its scale) and the float ANN's, on the first ``calibration_samples`` inputs of the
    calibration data (``frac_bits = auto`` picks the F with the smallest)."""
    run = require_runner(runner, "frac_bits=auto with calibration data (F chosen by the measured output error)")
    x = calibration_inputs(model, config.calibration_data)[0][:config.calibration_samples]
    ref = model.graph.run(x)[model.graph.output].reshape(len(x), -1)
    norm = float(np.sqrt(np.mean(ref * ref))) or 1.0

    def error(net: Network) -> float:
        ro = net.readouts[0]
        out = run(net, x, Schedule.PIPELINED).readout[ro.name].reshape(len(x), -1) * ro.scale
        return float(np.sqrt(np.mean((out - ref) ** 2))) / norm

    return error


def firing_rates(net: Network, config: CompileConfig, schedule: Schedule,
                 runner: Runner | None) -> dict[str, float] | None:
    """Firing rates (spikes per neuron per step) measured on ``config.calibration_data`` in
    ``schedule``, or None without calibration data."""
    if config.calibration_data is None:
        return None
    run = require_runner(runner, "--calib (the chip placement weighted by measured firing rates)")
    x, _ = load_data(config.calibration_data, net, config.calibration_samples)
    res = run(net, x, schedule)
    return rates_from_counts(net, res.counts)
