"""Built-in TOML resources shipped with the package (target profiles, energy models), or a user's TOML file.

A user's file must be a regular file (a FIFO would block, a folder is a mistake) of at most
``Limits.max_toml_bytes``, UTF-8 TOML; every error names the file.
"""

from __future__ import annotations

import os
import stat
import tomllib
from importlib import resources
from pathlib import Path

from snnc.ir.limits import DEFAULT_LIMITS


def builtin_names(package: str) -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(package).iterdir() if p.name.endswith(".toml"))


def _read_user_file(p: Path, what: str, error: type[Exception], max_bytes: int) -> str:
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise error(f"{what} '{p}' does not exist") from None
    except OSError as e:
        raise error(f"cannot read {what} '{p}': {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise error(f"{what} '{p}' is {kind}; give a .toml file")
    if st.st_size > max_bytes:
        raise error(f"{what} '{p}' is {st.st_size:,} bytes; a {what} is at most {max_bytes:,} bytes")
    try:
        with open(p, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        raise error(f"cannot read {what} '{p}': {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} '{p}' is not UTF-8 text (byte {e.start})") from None


def read_toml(package: str, name_or_path: str, what: str, error: type[Exception],
              max_bytes: int = DEFAULT_LIMITS.max_toml_bytes) -> tuple[dict, str]:
    """A built-in ``<name>.toml`` of ``package``, or a user's ``.toml`` path; returns (data, source)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or os.path.lexists(p) or os.sep in str(name_or_path):
        text, source = _read_user_file(p, what, error, max_bytes), str(p)
    elif name_or_path in builtin_names(package):
        text, source = resources.files(package).joinpath(f"{name_or_path}.toml").read_text(), name_or_path
    else:
        raise error(f"unknown {what} '{name_or_path}'; built-in: {', '.join(builtin_names(package))} (or a .toml file)")
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what} '{source}' is not valid TOML: {e}") from None
    except RecursionError:
        raise error(f"{what} '{source}' nests tables or arrays too deeply") from None
