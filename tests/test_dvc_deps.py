"""dvc.yaml's deps are true: every stage lists every package and module its entry script imports, so editing any
code a stage runs makes ``dvc repro`` run it again."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest
import yaml

from helpers.config import ROOT

SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    """The source file of a ``robert...`` module (a package's ``__init__.py``), None if it is not ours."""
    path = SRC.joinpath(*name.split("."))
    if path.is_dir():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").exists() else None


def imports_of(path: Path) -> set[str]:
    """Every ``robert`` module a file imports, at any depth of the file (lazy imports inside functions count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "robert"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "robert":
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if module_file(f"{node.module}.{alias.name}")}
    return found


def import_closure(script: Path) -> set[Path]:
    """The files of every robert module ``script`` imports, directly or through others (parents included)."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in imports_of(path):
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
                target = module_file(".".join(parts[:depth]))
                if target is not None and target not in seen:
                    todo.append(target)
    return seen


def stage_commands() -> list[tuple[str, list[str], list[str]]]:
    """(stage name, its commands' scripts, its deps) for every stage, foreach stages expanded by their first item."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    out = []
    for name, stage in pipeline["stages"].items():
        body = stage.get("do", stage)
        scripts = [word for word in shlex.split(body["cmd"].replace("&&", " ")) if word.endswith(".py")]
        out.append((name, scripts, [str(d).split("$")[0] for d in body.get("deps", [])]))
    return out


@pytest.mark.parametrize(("stage", "scripts", "deps"), stage_commands(), ids=[s[0] for s in stage_commands()])
def test_every_stage_lists_the_code_it_imports(stage, scripts, deps):
    assert scripts, f"stage {stage} runs no Python script"
    needed = set().union(*(import_closure(ROOT / script) for script in scripts))
    covered = [(ROOT / d).resolve() for d in deps]
    missing = sorted(str(p.relative_to(ROOT)) for p in needed
                     if not any(p == d or d in p.parents for d in covered))
    assert not missing, f"dvc.yaml stage {stage} imports code it does not list in deps: {missing}"


def test_the_closure_follows_lazy_imports():
    closure = import_closure(SRC / "train.py")
    assert SRC / "robert" / "inference" / "package.py" in closure  # imported inside train._log_results
    assert SRC / "robert" / "spectra" / "observation.py" in closure
