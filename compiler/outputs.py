"""What commands write: JSON on stdout and files through ``snnc.ir.atomic`` (the safe writer).

- ``to_json(obj)``: valid JSON always (numpy values converted, NaN and Infinity as null).
- ``write_json`` / ``write_text`` / ``write_bytes``: a regular file written atomically (``ir.atomic``).
- ``save_figure(fig, path)``: a matplotlib figure (PNG) written the same way.
- ``write_folder``: a report folder, built aside and swapped into place.

Every writer refuses devices, FIFOs, sockets, folders and the command's own inputs by name, creates
missing parent folders only when the write succeeded (``make_parents=True``), honours the umask and
turns disk-full / read-only / permission errors into one ``OutputError`` line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from snnc.ir.atomic import check_output, write_bytes, write_file, write_folder, write_text
from snnc.ir.jsonio import to_json

__all__ = ["to_json", "write_json", "write_text", "write_bytes", "write_file", "write_folder", "save_figure",
           "check_output"]


def write_json(path: str | os.PathLike, obj: Any, *, inputs: Iterable = (), make_parents: bool = True,
               what: str = "JSON output") -> Path:
    return write_text(path, to_json(obj) + "\n", inputs=inputs, make_parents=make_parents, what=what)


def save_figure(fig, path: str | os.PathLike, *, inputs: Iterable = (), make_parents: bool = True,
                what: str = "plot", **savefig_kw) -> Path:
    """``fig.savefig`` into a safe, atomic write (the format from ``savefig_kw`` or PNG)."""
    savefig_kw.setdefault("format", "png")
    return write_file(path, lambda fh: fig.savefig(fh, **savefig_kw), inputs=inputs, make_parents=make_parents,
                      what=what)
