"""Errors raised by the spiking IR."""

from __future__ import annotations


class IRError(Exception):
    """Base class of every IR error."""


class IRValidationError(IRError, ValueError):
    """A node or a network violates an invariant of the IR.

    The message always names the node (``node``) and says what was expected.
    """

    def __init__(self, node: str, problem: str):
        self.node = node
        self.problem = problem
        super().__init__(f"IR node '{node}': {problem}")


class BundleError(IRError):
    """A ``.snnc`` bundle cannot be read or written."""


class OutputError(IRError):
    """An output file or folder cannot be written where the user asked (``snnc.ir.atomic``): the path
    names something that is not a regular file, the input itself, a missing or read-only folder, or
    the disk is full. The message names the path and says what to do."""
