"""Which of the project's own source files a script's results depend on: its import closure within the project.

Two things must know it and must not keep a hand-written list that drifts from the code: dvc.yaml's ``deps`` (a
change to any of these files must re-run the stage; tests/unit/code/test_dvc_deps.py checks it) and pretraining's
resume key (a checkpoint written by other code must not be resumed, :func:`electra_model.pretraining.loop.run_key`).
The closure follows ``import`` statements statically (nothing is imported), so it is cheap and has no side effects.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "electra_model"
ROOT = Path(__file__).resolve().parent.parent
OUTPUT_NEUTRAL = frozenset(
    f"{PACKAGE}/{name}.py"
    for name in (
        "__init__",  # the package marker
        "errors",  # how a failure is worded
        "progress",  # how progress is shown
        "tracking/runs",  # what is recorded in MLflow, not what is computed
        "io",  # how outputs are written (atomically), not what they hold
    )
)
"""Modules whose code cannot change what a stage computes or writes; neither followed nor required as deps."""


def _module_file(module: str, root: Path) -> Path | None:
    """The project file that defines ``module`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``), if it is ours."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_bare_marker(path: Path) -> bool:
    """A package ``__init__.py`` that holds nothing but a docstring: it cannot change what a stage computes, so it
    is not a dep (the day it gets code, the closure takes it in and the deps test asks for it)."""
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body
    docstring = body[:1] if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else []
    return body == docstring


def _with_parents(module: str) -> list[str]:
    """``module`` and the packages above it (``a.b.c`` -> ``a``, ``a.b``, ``a.b.c``): importing a module runs
    every enclosing package's ``__init__`` first, so their code is part of the closure too."""
    parts = module.split(".")
    return [".".join(parts[: length + 1]) for length in range(len(parts))]


def _imported_modules(source: Path) -> set[str]:
    """Every module name an ``import`` or ``from ... import`` in ``source`` can refer to, its submodules included
    (``from pkg import name`` may import the module ``pkg.name``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), filename=str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def project_closure(entry: Path, root: Path = ROOT) -> set[str]:
    """Repository-relative paths (posix) of ``electra_model`` files that ``entry`` imports, directly or through
    other such files (with the packages that enclose them), except :data:`OUTPUT_NEUTRAL` ones and package markers
    that hold only a docstring (neither of which is followed)."""
    found: set[str] = set()
    pending = [entry.resolve()]
    while pending:
        for module in {name for imported in _imported_modules(pending.pop()) for name in _with_parents(imported)}:
            if module.split(".")[0] != PACKAGE:
                continue
            path = _module_file(module, root)
            relative = path.relative_to(root).as_posix() if path else None
            if relative is None or relative in found or relative in OUTPUT_NEUTRAL or _is_bare_marker(path):
                continue
            found.add(relative)
            pending.append(path)
    return found
