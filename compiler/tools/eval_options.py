"""``snnc eval``'s options as library values: the grid of its comma-separated lists and the base
configuration every grid point starts from."""

from __future__ import annotations

from snnc.ir import Schedule

from ..config import CodingKind, CompileConfig, V0Mode, parse_neuron_spec
from ..errors import SnncError
from .evaluate import EvalGrid
from .options import csv_list, naming_options


def eval_grid(timesteps: str, neuron: str | None, v0: str | None, schedule: str | None, coding: str | None,
              thresholds: str | None) -> EvalGrid:
    """The grid of ``snnc eval``'s comma-separated options (None: the model kind's default)."""
    neurons = None
    if neuron is not None:
        neurons = [v.strip() for v in neuron.split(",") if v.strip()]
        bad = []
        for v in neurons:
            try:
                parse_neuron_spec(v)
            except SnncError:
                bad.append(v)
        if bad or not neurons:
            raise SnncError(f"--neuron: {bad or 'nothing'} not understood; give a comma-separated list of "
                            "if, dual-threshold, multi-threshold:N")
    with naming_options():
        return _grid(timesteps, neurons, v0, schedule, coding, thresholds)


def _grid(timesteps: str, neurons: list[str] | None, v0: str | None, schedule: str | None, coding: str | None,
          thresholds: str | None) -> EvalGrid:
    return EvalGrid(
        timesteps=csv_list(timesteps, "timesteps", cast=int),
        neurons=neurons,
        v0s=None if v0 is None else csv_list(v0, "v0", [m.value for m in V0Mode]),
        schedules=None if schedule is None else csv_list(schedule, "schedule", [m.value for m in Schedule]),
        codings=None if coding is None else csv_list(coding, "coding", [c.value for c in CodingKind]),
        thresholds=None if thresholds is None else csv_list(thresholds, "thresholds"),
    )


def eval_base_config(target: str, profile: str | None, input_range, neg_divisor: int | None,
                     calibration_data: str | None, threshold_scale: float | None, frac_bits: str | None,
                     threshold_scope: str | None) -> CompileConfig:
    """The configuration every grid point starts from (an option not given keeps compile's default)."""
    defaults = CompileConfig()
    with naming_options():
        return _base_config(defaults, target, profile, input_range, neg_divisor, calibration_data, threshold_scale,
                            frac_bits, threshold_scope)


def _base_config(defaults, target, profile, input_range, neg_divisor, calibration_data, threshold_scale, frac_bits,
                 threshold_scope) -> CompileConfig:
    return CompileConfig(target=target, profile=profile, input_range=input_range,
                         neg_divisor=defaults.neg_divisor if neg_divisor is None else neg_divisor,
                         calibration_data=calibration_data,
                         threshold_scale=defaults.threshold_scale if threshold_scale is None else threshold_scale,
                         frac_bits=defaults.frac_bits if frac_bits is None else frac_bits,
                         threshold_scope=defaults.threshold_scope if threshold_scope is None else threshold_scope)
