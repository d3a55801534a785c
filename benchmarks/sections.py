"""Shared plumbing of the results scripts that own a marked section of docs/results.md.

    from sections import Section, run_eval, tally

A ``Section`` is a `<!-- name:begin -->` / `<!-- name:end -->` pair in a markdown file: ``read``
returns what is between the markers (or None), ``write`` replaces it (or appends the pair), through a
temporary file renamed into place so a failed run never leaves a half-written document.
``run_eval`` runs `snnc eval ... --json` in a subprocess (the command users type), its progress bar
going to this process's stderr, and returns the parsed report.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs/results.md"

log = logging.getLogger("benchmarks.sections")


@dataclass(frozen=True)
class Section:
    """One marked section of a markdown document."""

    name: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", self.name):
            raise ValueError(f"section name {self.name!r}: lower-case letters, digits and '-' only")

    @property
    def begin(self) -> str:
        return f"<!-- {self.name}:begin -->"

    @property
    def end(self) -> str:
        return f"<!-- {self.name}:end -->"

    def read(self, doc: Path) -> str | None:
        """The section's text, markers included; None when the document or the section is missing."""
        if not doc.is_file():
            return None
        m = re.search(re.escape(self.begin) + ".*?" + re.escape(self.end), doc.read_text(), flags=re.S)
        return m.group(0) if m else None

    def write(self, doc: Path, section: str) -> None:
        """Replace the section (``section`` includes the markers) or append it to the document."""
        if not (section.startswith(self.begin) and section.endswith(self.end)):
            raise ValueError(f"section text must start with {self.begin} and end with {self.end}")
        text = doc.read_text() if doc.exists() else "# Results\n"
        if self.begin in text:
            text = re.sub(re.escape(self.begin) + ".*?" + re.escape(self.end), lambda _: section, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n" + section + "\n"
        fd, tmp = tempfile.mkstemp(dir=doc.parent, prefix=f".{doc.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, doc)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def run_eval(args: list[str]) -> dict:
    """``snnc eval ARGS --json`` in a subprocess; its stderr (progress bar, warnings) passes through."""
    cmd = [sys.executable, "-m", "snnc", "eval", *map(str, args), "--json"]
    log.info("snnc eval %s", " ".join(_short(a) for a in map(str, args)))
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    return json.loads(out.stdout)


def _short(arg: str) -> str:
    p = Path(arg)
    return str(p.relative_to(ROOT)) if p.is_absolute() and p.is_relative_to(ROOT) else arg


def write_json(path: Path, obj) -> None:
    """JSON with a trailing newline, written through a temporary file renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(obj, indent=1) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_figure(fig, path: Path) -> None:
    """Save a matplotlib figure to ``path`` through a temporary file renamed into place, and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp)
    import matplotlib.pyplot as plt

    plt.close(fig)
    tmp.replace(path)


def tally(pairs) -> tuple[int, int, int]:
    """Pairs (a, b): how many have a > b, a == b, a < b."""
    gt = eq = lt = 0
    for a, b in pairs:
        gt += a > b
        eq += a == b
        lt += a < b
    return gt, eq, lt


def sign(x: float) -> int:
    return (x > 0) - (x < 0)


def rel(path: Path) -> str:
    """``path`` relative to the repository root (for the text of a section)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)
