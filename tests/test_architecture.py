"""The shape of core: a cheap public facade and an import graph without cycles."""

from __future__ import annotations

import subprocess
import sys

import grimp

import speechquant.core as core


def test_facade_names_resolve_to_callables():
    for name in core.__all__:
        assert callable(getattr(core, name)), name


def test_importing_core_pulls_in_no_torch():
    code = "import sys, speechquant.core; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v) & modules:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles_in_core_or_gui_including_function_level_imports():
    # grimp reads every import statement, those inside functions included.
    graph = grimp.build_graph("speechquant", include_external_packages=False)
    modules = {m for m in graph.modules if m.startswith(("speechquant.core", "speechquant.gui"))}
    assert _cycles(graph, modules) == []


def test_cycle_finder_sees_a_cycle_hidden_in_a_lazy_import():
    graph = grimp.ImportGraph()
    for module in ("pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.c")
    graph.add_import(importer="pkg.c", imported="pkg.a")  # e.g. inside a function
    assert _cycles(graph, {"pkg.a", "pkg.b", "pkg.c"}) == [["pkg.a", "pkg.b", "pkg.c"]]
