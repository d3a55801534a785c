"""docs/support.md: every row names a test, and every named test exists (a row cannot claim a test that is
not there)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_support_row_names_an_existing_test():
    text = (ROOT / "docs" / "support.md").read_text()
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| input ")
            and not ln.startswith("| operator ")]
    assert len(rows) >= 20
    for row in rows:
        refs = re.findall(r"(tests/[\w/]+\.py)::(test_\w+)", row)
        assert refs or "NIR" in row, row
        for path, name in refs:
            tree = ast.parse((ROOT / path).read_text())
            names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in names, f"{path}::{name} (docs/support.md) does not exist"
