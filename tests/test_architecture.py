"""The layering rules of docs/architecture.md, checked on every snnc module's imports (parsed with
``ast``: module-level and function-level imports, relative ones resolved; the same graph
``benchmarks/architecture_graph.py`` draws). Run alone with:

    .venv/bin/python -m pytest tests/test_architecture.py
"""

import pytest

from snnc_testutil import REPO, load_architecture_graph


AG = load_architecture_graph()
MODULES, GRAPH = AG.import_graph()


def _edges():
    return [(m, i) for m, imps in GRAPH.items() for i in imps]


def _where(m, i):
    return f"{MODULES[m].path.relative_to(REPO)}:{i.line} imports {i.module}"


def _backend_package(name: str) -> str | None:
    """snnc.backends.lava.emit -> snnc.backends.lava; the contract (base) and the package itself are no backend."""
    parts = name.split(".")
    if len(parts) < 3 or parts[:2] != ["snnc", "backends"] or parts[2] == "base":
        return None
    return ".".join(parts[:3])


def test_the_graph_sees_every_layer():
    for pkg in ("snnc.ir", "snnc.compiler", "snnc.compiler.lowering", "snnc.compiler.tools", "snnc.backends",
                "snnc.backends.reference", "snnc.backends.lava"):
        assert pkg in MODULES
    assert len(MODULES) > 60 and sum(len(v) for v in GRAPH.values()) > 200


def test_the_compiler_never_imports_a_backend():
    bad = [_where(m, i) for m, i in _edges() if m.startswith("snnc.compiler") and not m.startswith("snnc.compiler.tools")
           and i.module.split(".")[:2] == ["snnc", "backends"]]
    assert not bad, "only compiler/tools/ may import snnc.backends:\n" + "\n".join(bad)


def test_only_the_command_layer_imports_the_command_layer():
    bad = [_where(m, i) for m, i in _edges() if i.module.startswith("snnc.compiler.tools")
           and not (m.startswith("snnc.compiler.tools") or m == "snnc.__main__")]
    assert not bad, "the compiler's stages never import its commands:\n" + "\n".join(bad)


def test_the_ir_imports_nothing_above_it():
    bad = [_where(m, i) for m, i in _edges() if m.startswith("snnc.ir")
           and i.module.split(".")[:2] in (["snnc", "compiler"], ["snnc", "backends"])]
    assert not bad, "\n".join(bad)


def test_backends_import_nothing_from_each_other():
    bad = [_where(m, i) for m, i in _edges()
           if _backend_package(m) and _backend_package(i.module) and _backend_package(m) != _backend_package(i.module)]
    assert not bad, "a backend imports only snnc.ir and snnc.backends.base:\n" + "\n".join(bad)
    base = [_where("snnc.backends.base", i) for i in GRAPH["snnc.backends.base"] if _backend_package(i.module)]
    assert not base, "the contract imports no backend (the registry names them as strings):\n" + "\n".join(base)


def test_no_import_cycle():
    cycles = AG.find_cycles(GRAPH)
    assert not cycles, "modules that import each other (function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def test_no_private_name_is_imported_from_another_module():
    bad = [f"{_where(m, i)}: {n}" for m, i in _edges() for n in i.names
           if n.startswith("_") and not n.startswith("__") and i.module != m]
    assert not bad, "make the name public or keep its users in its module:\n" + "\n".join(bad)


def test_the_cycle_finder_finds_a_cycle():
    """The rules above can fail: a two-module cycle and a private import are seen."""
    Imp = AG.Import
    graph = {"snnc.a": [Imp("snnc.b", ("x",), 1)], "snnc.b": [Imp("snnc.a", ("_y",), 2)], "snnc.c": []}
    assert AG.find_cycles(graph) == [["snnc.a", "snnc.b"]]


@pytest.mark.parametrize("folder", ["ir", "compiler", "backends"])
def test_no_god_module(folder):
    """A file over ~700 lines is split by responsibility (docs/architecture.md)."""
    big = {str(p.relative_to(REPO)): n for p in (REPO / folder).rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 750}
    assert not big, big
