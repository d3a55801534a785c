"""Parsing of the command options that are not plain click types (lists, ranges)."""

from __future__ import annotations

import contextlib
from typing import Iterator

from ..errors import ConfigError, SnncError

OPTION_OF_FIELD = {"calibration_data": "--calib", "mt_n": "--neuron", "timesteps": "--timesteps"}


class OptionError(SnncError):
    """A command option has a value the command cannot use (the message names the option)."""


def option_name(field: str) -> str:
    """The command option that sets configuration field ``field`` (``input_range`` -> ``--input-range``)."""
    return OPTION_OF_FIELD.get(field, "--" + field.replace("_", "-"))


@contextlib.contextmanager
def naming_options() -> Iterator[None]:
    """Within: a ``ConfigError`` about a field is re-raised naming the option that set it."""
    try:
        yield
    except ConfigError as e:
        raise OptionError(f"{option_name(e.field)} {e.problem}") from None


def parse_input_range(text: str | None) -> tuple[float, float] | None:
    """``--input-range lo,hi`` -> (lo, hi); None (not given) stays None (the model's own quantizer)."""
    if text is None:
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise SnncError(f"--input-range must be 'lo,hi' (two numbers), got '{text}'") from None
    return lo, hi


def csv_list(value: str, what: str, choices=None, cast=str) -> list:
    """``--WHAT a,b,c`` -> [a, b, c], each one of ``choices`` (when given) and ``cast``."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if choices is not None and v not in choices]
    if bad or not items:
        raise SnncError(f"--{what}: " + (f"{bad} not understood" if bad else "no value given")
                        + "; give a comma-separated list of " + (", ".join(choices) if choices else "values"))
    try:
        return [cast(v) for v in items]
    except ValueError:
        raise SnncError(f"--{what} must be a comma-separated list of integers, got '{value}'") from None
