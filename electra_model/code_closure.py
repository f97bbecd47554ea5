"""Which of the project's own source files a script's results depend on: its import closure within the project.

Two things must know it and must not keep a hand-written list that drifts from the code: dvc.yaml's ``deps`` (a
change to any of these files must re-run the stage; tests/unit/code/test_dvc_deps.py checks it) and pretraining's
resume key (a checkpoint written by other code must not be resumed, :func:`electra_model.pretrain.run_key`).
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
        "tracking",  # what is recorded in MLflow, not what is computed
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
    other such files, except :data:`OUTPUT_NEUTRAL` ones (which are not followed either)."""
    found: set[str] = set()
    pending = [entry.resolve()]
    while pending:
        for module in _imported_modules(pending.pop()):
            if module.split(".")[0] != PACKAGE:
                continue
            path = _module_file(module, root)
            relative = path.relative_to(root).as_posix() if path else None
            if relative is None or relative in found or relative in OUTPUT_NEUTRAL:
                continue
            found.add(relative)
            pending.append(path)
    return found
