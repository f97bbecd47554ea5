"""The test folders mean what they say: everything under tests/integration runs real processes and servers and is
marked ``e2e``, so that ``pytest -m "not e2e"`` is the quick loop for contributors."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[2] / "integration"


def marks_module_e2e(module: Path) -> bool:
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "pytestmark" for t in node.targets):
            marks = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return "pytest.mark.e2e" in {ast.unparse(mark) for mark in marks}
    return False


@pytest.mark.parametrize("module", sorted(INTEGRATION.glob("test_*.py")), ids=lambda path: path.name)
def test_every_integration_module_is_marked_e2e(module: Path) -> None:
    assert marks_module_e2e(module), f"{module.name}: add `pytestmark = pytest.mark.e2e`"
