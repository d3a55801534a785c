"""Built-in TOML resources shipped with the package (target profiles, energy models), or a user's TOML file."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path


def builtin_names(package: str) -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(package).iterdir() if p.name.endswith(".toml"))


def read_toml(package: str, name_or_path: str, what: str, error: type[Exception]) -> tuple[dict, str]:
    """A built-in ``<name>.toml`` of ``package``, or a user's ``.toml`` path; returns (data, source)."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        try:
            text, source = p.read_text(), str(p)
        except OSError as e:
            raise error(f"cannot read {what} '{p}': {e.strerror}") from None
    elif name_or_path in builtin_names(package):
        text, source = resources.files(package).joinpath(f"{name_or_path}.toml").read_text(), name_or_path
    else:
        raise error(f"unknown {what} '{name_or_path}'; built-in: {', '.join(builtin_names(package))} (or a .toml file)")
    try:
        return tomllib.loads(text), source
    except tomllib.TOMLDecodeError as e:
        raise error(f"{what} '{source}' is not valid TOML: {e}") from None
