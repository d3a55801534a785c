"""Errors of the NIR frontend (a typed SnncError: the CLI prints one line and exits 2)."""

from __future__ import annotations

from ..errors import SnncError


class NirImportError(SnncError):
    """A NIR graph cannot be read as an exact snnc network; the message names the NIR node and why."""
