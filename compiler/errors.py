"""Typed errors of the compiler. Each message names the node/layer, what was expected, what to do.

The CLI turns any ``SnncError`` into one readable line on stderr and exit status 2.
"""

from __future__ import annotations


class SnncError(Exception):
    """Base of every error a user can cause with bad input."""


class ConfigError(SnncError, ValueError):
    """A configuration field has a value outside what it accepts. ``field`` names the field (the
    command layer names the option that set it); the message is ``<field> <problem>``."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field} {problem}")


class ModelLoadError(SnncError):
    """The file is missing, not ONNX, truncated, or has missing external data."""


class UnsupportedOperatorError(SnncError):
    """One or more ONNX nodes use operators snnc cannot convert; lists all of them at once."""

    def __init__(self, nodes: list[tuple[str, str]], supported: list[str], source: str | None = None):
        self.nodes = nodes
        self.supported = supported
        self.source = source
        lines = "\n".join(f"  - node '{n}' (op_type {op})" for n, op in nodes)
        where = f"'{source}': " if source else ""
        super().__init__(
            f"{where}{len(nodes)} unsupported node(s):\n{lines}\nsupported operators: {', '.join(sorted(supported))}"
        )


class InvalidModelError(SnncError):
    """The graph is malformed (cycle, dangling input, NaN weights, bad parameter values...).

    ``problems`` lists every problem found; the message shows all of them (and the model file, when
    ``source`` names it).
    """

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = problems
        self.source = source
        head = f"invalid model '{source}':" if source else "invalid model:"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


class ConversionError(SnncError):
    """The model is valid ONNX but cannot be converted exactly (names the layer and why)."""


class StateOverflowError(ConversionError):
    """A membrane or accumulator could exceed the target's state width."""


class TargetError(SnncError):
    """Unknown target or malformed target profile."""


class DataFileError(SnncError):
    """A data file (.npz) is missing, malformed, or does not match the network's input."""


class MappingError(SnncError):
    """The network cannot be placed on the target's cores and chips (names the population, the budget,
    what is needed and what is available, and what to do)."""
