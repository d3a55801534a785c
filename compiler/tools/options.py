"""Parsing of the command options that are not plain click types (lists, ranges)."""

from __future__ import annotations

from ..errors import SnncError


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
        raise SnncError(f"--{what}: {bad or 'nothing'} not understood; give a comma-separated list of "
                        + (", ".join(choices) if choices else "values"))
    try:
        return [cast(v) for v in items]
    except ValueError:
        raise SnncError(f"--{what} must be a comma-separated list of integers, got '{value}'") from None
