"""The contributor's map: snnc's packages and modules and who imports whom, derived from the code.

    .venv/bin/python benchmarks/architecture_graph.py            # rewrite docs/architecture.md's map + PNG
    .venv/bin/python benchmarks/architecture_graph.py --check    # exit 1 when the committed map is stale

Every module of ``ir/``, ``compiler/``, ``backends/`` and ``src/snnc/`` is parsed with ``ast``; its
imports (module level and inside functions, relative ones resolved) are the edges. The text part
(between ``<!-- map:begin -->`` and ``<!-- map:end -->`` in docs/architecture.md) is the package tree,
every module with the first line of its docstring, and which snnc packages each package imports;
docs/img/architecture.png draws the package graph. ``tests/test_architecture.py`` checks the layering
rules on the same graph (``import_graph``); ``tests/benchmarks/test_architecture_graph.py`` fails
when the committed map no longer matches the code.
"""

from __future__ import annotations

import argparse
import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
PNG = ROOT / "docs" / "img" / "architecture.png"
BEGIN, END = "<!-- map:begin -->", "<!-- map:end -->"
#: top-level source folder -> the package it is installed as (pyproject.toml's package-dir)
SOURCES = {"src/snnc": "snnc", "ir": "snnc.ir", "compiler": "snnc.compiler", "backends": "snnc.backends"}


@dataclass(frozen=True)
class Import:
    """One import statement of a module: the snnc module it names, the names taken from it, its line."""

    module: str
    names: tuple[str, ...]
    line: int


@dataclass(frozen=True)
class Module:
    name: str          # snnc.compiler.lowering.driver
    path: Path
    is_package: bool   # an __init__.py
    doc: str           # the first line of its docstring

    @property
    def package(self) -> str:
        return self.name if self.is_package else self.name.rpartition(".")[0]


def summary(doc: str, width: int = 100) -> str:
    """The first sentence of a docstring's first paragraph, at most ``width`` characters."""
    para = " ".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
    end = para.find(". ")
    first = para if end < 0 else para[:end + 1]
    return first if len(first) <= width else first[:width - 3].rstrip() + "..."


def modules(root: Path = ROOT) -> dict[str, Module]:
    """Every snnc module by dotted name."""
    out = {}
    for folder, pkg in SOURCES.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            rel = path.relative_to(base).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([pkg, *parts]) if parts else pkg
            tree = ast.parse(path.read_text(encoding="utf-8"))
            out[name] = Module(name, path, path.name == "__init__.py", summary(ast.get_docstring(tree) or ""))
    return out


def _resolve(mod: Module, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.package.split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(mod: Module, known: set[str]) -> list[Import]:
    """The snnc modules ``mod`` imports (``from pkg import submodule`` names the submodule)."""
    out = []
    for node in ast.walk(ast.parse(mod.path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "snnc":
                    out.append(Import(a.name, (), node.lineno))
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(mod, node)
            if target.split(".")[0] != "snnc":
                continue
            subs = [a.name for a in node.names if f"{target}.{a.name}" in known]
            names = tuple(a.name for a in node.names if f"{target}.{a.name}" not in known)
            out += [Import(f"{target}.{s}", (), node.lineno) for s in subs]
            if names or not subs:
                out.append(Import(target, names, node.lineno))
    return out


def import_graph(root: Path = ROOT) -> tuple[dict[str, Module], dict[str, list[Import]]]:
    mods = modules(root)
    known = set(mods)
    return mods, {name: imports_of(m, known) for name, m in mods.items()}


def find_cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Every strongly connected group of modules that import each other (Tarjan), sorted."""
    edges = {m: sorted({i.module for i in imps if i.module in graph and i.module != m}) for m, imps in graph.items()}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


# ---- the map ------------------------------------------------------------------------------------------
def _group(name: str) -> str:
    """The package a module is drawn in: snnc.compiler.lowering.driver -> snnc.compiler.lowering."""
    parts = name.split(".")
    return ".".join(parts[:3]) if len(parts) > 3 else (name if len(parts) <= 2 else ".".join(parts[:3]))


def package_edges(mods: dict[str, Module], graph: dict[str, list[Import]]) -> dict[str, list[str]]:
    """Package -> the snnc packages its modules import (itself excluded)."""
    pkgs = {m.package if not m.is_package else m.name for m in mods.values()}
    def pkg_of(name):
        m = mods.get(name)
        return None if m is None else (m.name if m.is_package else m.package)
    out: dict[str, set[str]] = {p: set() for p in pkgs}
    for name, imps in graph.items():
        src = pkg_of(name)
        for i in imps:
            dst = pkg_of(i.module)
            if dst is not None and dst != src:
                out[src].add(dst)
    return {p: sorted(v) for p, v in sorted(out.items())}


def render_text(root: Path = ROOT) -> str:
    mods, graph = import_graph(root)
    edges = package_edges(mods, graph)
    lines = ["```"]
    for pkg in sorted(edges):
        folder = mods[pkg].path.parent.relative_to(root).as_posix() + "/"
        lines.append(f"{folder:<28} {pkg}")
        lines.append(f"{'':<4}{mods[pkg].doc}" if mods[pkg].doc else "")
        for m in sorted(mods.values(), key=lambda m: m.name):
            if not m.is_package and m.package == pkg:
                lines.append(f"    {m.path.name:<24} {m.doc}")
        if edges[pkg]:
            lines.append(f"    imports: {', '.join(edges[pkg])}")
        lines.append("")
    while lines and not lines[-1]:
        lines.pop()
    lines.append("```")
    return "\n".join(line.rstrip() for line in lines if line is not None) + "\n"


def draw_png(path: Path = PNG, root: Path = ROOT) -> None:
    """The package graph as a PNG (networkx layout, matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    mods, graph = import_graph(root)
    edges = package_edges(mods, graph)
    g = nx.DiGraph()
    for src, dsts in edges.items():
        g.add_node(src)
        for d in dsts:
            g.add_edge(src, d)
    def place(p: str) -> tuple[float, float, str]:
        """(x, y, colour): ir at the bottom, the compiler's stage packages above it and their top-level
        modules above those, the backends to the right, the commands and the entry point on top."""
        if p.startswith("snnc.ir"):
            return 0.0, 0.0, "#7570b3"
        if p.startswith("snnc.backends"):
            sub = {"snnc.backends": (3.2, 1.2), "snnc.backends.reference": (2.6, 2.2), "snnc.backends.lava": (3.8, 2.2)}
            return (*sub.get(p, (3.2, 2.2)), "#d95f02")
        if p == "snnc.compiler.tools":
            return 0.5, 3.2, "#e7298a"
        if p == "snnc":
            return 0.5, 4.2, "#e7298a"
        if p == "snnc.compiler":
            return -0.8, 2.2, "#1b9e77"
        stages = sorted(q for q in g.nodes if q.startswith("snnc.compiler.") and q != "snnc.compiler.tools")
        return -3.0 + 4.6 * stages.index(p) / max(1, len(stages) - 1), 1.0, "#66c2a5"

    pos = {p: place(p)[:2] for p in g.nodes}
    fig, ax = plt.subplots(figsize=(15, 8), dpi=110)
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=True, arrowsize=9, edge_color="#9a9a9a", width=0.7,
                           connectionstyle="arc3,rad=0.12", node_size=900)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=[place(p)[2] for p in g.nodes], node_size=900, alpha=0.95)
    for p, (x, y) in pos.items():
        ax.annotate(p.replace("snnc.", "") if p != "snnc" else "snnc (entry point)", (x, y), xytext=(0, -17),
                    textcoords="offset points", ha="center", va="top", fontsize=8)
    ax.set_title("snnc packages and who imports whom (an arrow points at the imported package): ir at the bottom, "
                 "the compiler's stages, the backends (right), the commands on top", fontsize=10)
    ax.margins(0.08)
    ax.axis("off")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def splice(doc: str, text: str) -> str:
    """``doc`` with the part between the markers replaced by ``text``."""
    a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[:a] + "\n" + text + doc[b:]


def committed_text(doc: str) -> str:
    a, b = doc.index(BEGIN) + len(BEGIN), doc.index(END)
    return doc[a:b].lstrip("\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when docs/architecture.md's map is stale")
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--png", type=Path, default=PNG)
    args = ap.parse_args(argv)
    doc = args.doc.read_text(encoding="utf-8")
    text = render_text()
    if args.check:
        if committed_text(doc) != text:
            print(f"{args.doc}: the map is stale; run benchmarks/architecture_graph.py", file=sys.stderr)
            return 1
        return 0
    args.doc.write_text(splice(doc, text), encoding="utf-8")
    draw_png(args.png)
    print(f"wrote {args.doc} and {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
