"""The package's layers import one way only: no cycle between robert's subpackages, at import time or lazily.

Imports guarded by ``if TYPE_CHECKING:`` are left out (they never run); imports inside functions count (they run
when called). The subpackage graph must be acyclic, so e.g. the training data module and inference never import
each other (both import the shared helpers in robert.spectra instead).
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

from helpers.config import ROOT

PACKAGE = ROOT / "src" / "robert"


def unit_of(module: str) -> str:
    """robert.data.datamodule -> data; robert.errors -> errors (top-level modules are their own unit)."""
    return module.split(".")[1] if module.count(".") >= 1 else module


def runtime_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded |= {id(child) for stmt in node.body for child in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("robert."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("robert.")}
    return found


def subpackage_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        unit = unit_of("robert." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
        edges = graph.setdefault(unit, set())
        edges |= {unit_of(m) for m in runtime_imports(path) if unit_of(m) != unit}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = 2
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_subpackages_import_each_other_in_one_direction_only():
    cycle = find_cycle(subpackage_graph())
    assert cycle is None, f"import cycle between robert's subpackages: {' -> '.join(cycle)}"


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None



def test_the_libraries_the_benchmarks_use_import_with_the_benchmarks_folder_first_on_the_path():
    # A script's own folder comes first on sys.path: a benchmark named like a module a library imports is what that
    # library gets (benchmarks/coverage.py broke numba, which imports `coverage` when it can, and so TauREx's workers).
    libraries = [name for name in ("numba", "taurex", "mlflow", "lightning.pytorch", "sklearn", "optuna")
                 if importlib.util.find_spec(name.split(".")[0])]
    script = f"import sys; sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import " + ", ".join(libraries)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
